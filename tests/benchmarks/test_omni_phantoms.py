"""The omni-phantoms generator and a small run of the benchmark."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("nilearn")
pytest.importorskip("torch")
pytest.importorskip("torch_geometric")

from medlens.benchmarks.omni_phantoms import generate_phantoms  # noqa: E402


def test_generator_is_seeded_oblique_anisotropic_and_balanced():
    a = generate_phantoms(4, size=24, seed=1)
    b = generate_phantoms(4, size=24, seed=1)
    assert [p.label for p in a] == [0, 1, 0, 1]
    for p, q in zip(a, b, strict=True):
        np.testing.assert_array_equal(p.volume, q.volume)
        assert p.mask.any()
        spacing = np.linalg.norm(p.affine[:3, :3], axis=0)
        assert spacing.min() >= 2.6
        assert spacing.max() <= 3.4
        direction = p.affine[:3, :3] / spacing
        assert not np.allclose(direction, np.eye(3))
        assert p.volume[p.mask].mean() > p.volume[~p.mask].mean()


@pytest.mark.slow
def test_small_run_and_report(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    from medlens.benchmarks import BENCHMARKS

    spec = BENCHMARKS.get("omni-phantoms")
    doc = spec.run(tmp_path / "run", n=20, size=24, views=8, folds=2, epochs=2, patience=1, n_bootstrap=50)
    layouts = {(r["layout"], r["head"]) for r in doc["results"]}
    assert layouts == {(lay, h) for lay in ("omni", "canonical", "axial-stack") for h in ("graph", "mean")}
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert "random-init" in " ".join(spec.report_section(doc).body)
    assert spec.summary_lines(doc)[0].startswith("omni-phantoms")
    if doc["ct_montage"] is not None:  # pydicom's real CT series, read as a DICOM folder
        assert doc["ct_montage"]["reader"] == "pydicom"
        assert doc["ct_montage"]["shape"] == [16, 16, 5]
        assert (tmp_path / "run" / "ct_montage.png").read_bytes()[:4] == b"\x89PNG"
        assert "real CT series pydicom ships" in " ".join(spec.report_section(doc).body)


def test_quick_demo_section_with_ablation_in_full_mode():
    from medlens.benchmarks import DEMO, DEMO_FULL

    assert "omni-phantoms" in DEMO
    assert "omni-phantoms" not in DEMO_FULL


@pytest.mark.slow
def test_full_mode_runs_the_view_count_ablation_and_a_rerun_reads_the_cached_features(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    from medlens.benchmarks import BENCHMARKS

    spec = BENCHMARKS.get("omni-phantoms")
    kw = dict(n=12, size=16, views=4, folds=2, epochs=1, patience=1, n_bootstrap=20, heads=("mean",), full=True)
    doc = spec.run(tmp_path / "a", **kw)
    omni = sorted(r["views"] for r in doc["results"] if r["layout"] == "omni")
    assert omni == [3, 4, 8, 12, 16, 24]  # the ablation counts plus the main view count
    assert doc["cache_hits"] == 0
    assert doc["timing_s"]["generate"] > 0
    layouts = len(omni) + 2  # + canonical and axial stack
    assert len(list((tmp_path / "cache" / "omni-phantoms").glob("*.npz"))) == layouts
    again = spec.run(tmp_path / "b", **kw)
    assert again["cache_hits"] == 12 * layouts
    assert again["timing_s"]["generate"] == 0.0  # a warm run neither generates nor slices
    assert [r["metrics"] for r in again["results"]] == [r["metrics"] for r in doc["results"]]
    quick = spec.run(tmp_path / "c", **{**kw, "full": False})  # a subset of the layouts: all cached
    assert quick["cache_hits"] == 12 * 3
    assert sorted(r["views"] for r in quick["results"] if r["layout"] == "omni") == [4]
    assert "View-count ablation" in " ".join(spec.report_section(doc).body)
    assert "View-count ablation" not in " ".join(spec.report_section(quick).body)
