"""The brain-anomaly benchmark: the shipped demo checkpoint (sha256 and loading, never retrained), the spec's
summary and report on a small document, and (slow) a tiny end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medlens._provenance import file_sha256
from medlens.benchmarks import BENCHMARKS
from medlens.benchmarks.brain_anomaly._demo import DEMO_FILE, DEMO_TRAIN, DEMO_UNET, demo_record


def test_the_shipped_checkpoint_is_the_recorded_one() -> None:
    rec = demo_record()
    assert DEMO_FILE.is_file()
    assert file_sha256(DEMO_FILE) == rec["sha256"]
    assert DEMO_FILE.stat().st_size == rec["bytes"] <= 20 * 2**20
    assert rec["unet"] == DEMO_UNET
    assert rec["train"]["seed"] == DEMO_TRAIN["seed"]
    assert rec["command"].startswith("PYTHONPATH=src python scripts/train_demo_diffusion.py")
    assert rec["n_parameters"] <= 2_000_000
    assert rec["loss_curve"][-1] < rec["loss_curve"][0]  # it learnt something


@pytest.mark.slow  # imports MONAI (~25 s on a loaded 2-core machine)
def test_the_shipped_checkpoint_loads_into_its_unet() -> None:
    pytest.importorskip("monai", reason='monai not installed (pip install "medlens[diffusion]")')
    torch = pytest.importorskip("torch")
    from medlens.diffusion import load_unet

    model, meta = load_unet(DEMO_FILE)
    assert model.config["channels"] == DEMO_UNET["channels"]
    assert sum(p.numel() for p in model.parameters()) == demo_record()["n_parameters"]
    with torch.no_grad():
        eps = model(torch.zeros(1, 1, 64, 64), 500)
    assert eps.shape == (1, 1, 64, 64)
    assert torch.isfinite(eps).all()


def _doc(tmp: Path) -> dict:
    row = {"value": 0.5, "ci": [0.4, 0.6]}
    method = {k: row for k in ("auprc", "auroc", "dice", "dice_per_image", "image_auroc", "fpr")}
    ex = {"input": np.zeros((3, 8, 8)), "truth": np.zeros((3, 8, 8))}
    for m in ("anoddpm", "thor"):
        ex[f"{m}_recon"], ex[f"{m}_map"] = np.zeros((3, 8, 8)), np.ones((3, 8, 8))
    np.savez(tmp / "examples.npz", **ex)
    return {"methods": {m: {**method, "threshold": 0.1, "oracle_dice": 0.7, "nfe": 10, "seconds_per_image": 0.2}
                        for m in ("anoddpm", "thor")},
            "data": {"n_test": 4, "n_lesion": 2, "n_healthy": 4, "size": 8}, "t0": 250, "steps": 10, "fpr": 0.05,
            "n_bootstrap": 10, "examples": str(tmp / "examples.npz"),
            "model": {"source": "shipped demo checkpoint", "n_parameters": 1000}}  # fmt: skip


def test_spec_is_registered_and_renders(tmp_path: Path) -> None:
    spec = BENCHMARKS.get("brain-anomaly")
    doc = _doc(tmp_path)
    assert spec.summarize(doc)["thor"] == {"auprc": 0.5, "dice": 0.5, "image_auroc": 0.5, "nfe": 10}
    lines = spec.summary_lines(doc)
    assert lines[0].startswith("AnoDDPM (Gaussian): AUPRC 0.500")
    assert "10 NFE" in lines[0]
    pytest.importorskip("matplotlib")
    body = "".join(spec.report_section(doc).body)
    assert "THOR" in body
    assert "oracle Dice" in body
    assert "<img" in body


def test_in_the_quick_demo_and_the_normative_table_renders(tmp_path: Path) -> None:
    from medlens.benchmarks import DEMO, DEMO_FULL

    assert "brain-anomaly" in DEMO
    assert "brain-anomaly" not in DEMO_FULL
    doc = _doc(tmp_path)
    caci = {"inside": {"mae": 0.3}, "outside": {"mae": 0.1}, "mae_ratio": 3.0}
    doc["methods"]["thor"]["normative"] = {"rqi": {"mae": 0.05, "ssim": 0.9}, "caci": caci, "ahi": {"ahi": 0.25}}
    body = "".join(BENCHMARKS.get("brain-anomaly").report_section(doc).body)
    assert "Normative-learning metrics per method" in body
    assert "our interpretation" in body


@pytest.mark.slow
def test_tiny_quick_run_with_the_shipped_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("monai", reason='monai not installed (pip install "medlens[diffusion]")')
    spec = BENCHMARKS.get("brain-anomaly")
    doc = spec.run(tmp_path / "b", n_test=4, n_healthy=4, steps=2, t0=50, n_bootstrap=10)
    assert set(doc["methods"]) == {"anoddpm", "simplex", "patched", "thor"}
    assert doc["methods"]["anoddpm"]["nfe"] == 2
    assert doc["methods"]["patched"]["nfe"] == 9
    assert 0 <= doc["methods"]["thor"]["auprc"]["value"] <= 1
    norm = doc["methods"]["thor"]["normative"]
    assert set(norm) == {"rqi", "caci", "ahi"}
    assert norm["rqi"]["n_images"] == 4  # the healthy slices
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["mode"] == "quick"
