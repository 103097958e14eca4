"""``medlens slice``: files written for an oblique NIfTI and for nibabel's real T1, with a mask and a stack."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

ANATOMICAL = Path(nib.__file__).parent / "tests" / "data" / "anatomical.nii"


def _oblique(tmp_path):
    rot = np.array([[0.8, -0.6, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([1.0, 1.5, 3.0])
    aff[:3, 3] = [5.0, -8.0, 12.0]
    g = np.meshgrid(*[np.arange(s) for s in (20, 18, 12)], indexing="ij")
    vol = (g[0] + 2 * g[1] + 3 * g[2]).astype(np.float32)
    mask = np.zeros(vol.shape, np.uint8)
    mask[6:12, 5:10, 3:8] = 1
    nib.save(nib.Nifti1Image(vol, aff), str(tmp_path / "vol.nii.gz"))
    nib.save(nib.Nifti1Image(mask, aff), str(tmp_path / "mask.nii.gz"))
    return aff


def test_slice_writes_npz_views_and_montage_for_an_oblique_nifti(cli, tmp_path):
    _oblique(tmp_path)
    out = tmp_path / "run"
    res = cli("slice", tmp_path / "vol.nii.gz", "--mask", tmp_path / "mask.nii.gz", "--views", "6", "--size", "32",
              "--offset", "max-area", "--stack", "3", "--spacing-mm", "1.5", "--fov-mm", "20", "--out", out, "--json")  # fmt: skip
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["schema_version"]
    assert doc["provenance"]["command"] == "medlens slice"
    assert doc["provenance"]["input_hashes"]["mask"]["sha256"]
    with np.load(out / "slices.npz") as z:
        slices, valid = z["slices"], z["valid"]
    assert slices.dtype == np.float32
    assert slices.shape == valid.shape == (18, 32, 32)
    views = json.loads((out / "views.json").read_text())["views"]
    assert len(views) == 18
    assert [v["view"] for v in views[:4]] == [0, 0, 0, 1]
    for v in views:
        n, u, w = (np.array(v[k]) for k in ("normal", "u", "v"))
        np.testing.assert_allclose(np.cross(u, w), n, atol=1e-12)
        assert len(v["centre_mm"]) == 3
    offs = [v["offset_mm"] for v in views[:3]]
    assert offs[1] - offs[0] == pytest.approx(1.5)
    assert doc["spacing_mm"] == pytest.approx(20 / 32)
    assert (out / "montage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_slice_the_real_t1_brain_with_torch_backend_matches_numpy(cli, tmp_path):
    pytest.importorskip("torch")
    a = cli("slice", ANATOMICAL, "--views", "12", "--size", "48", "--intensity", "mr", "--out", tmp_path / "a")
    assert a.rc == 0, a.err
    assert "wrote 12 slices of 48x48" in a.out
    b = cli("slice", ANATOMICAL, "--views", "12", "--size", "48", "--intensity", "mr", "--backend", "torch",
            "--out", tmp_path / "b", "--json")  # fmt: skip
    assert b.rc == 0, b.err
    with np.load(tmp_path / "a" / "slices.npz") as za, np.load(tmp_path / "b" / "slices.npz") as zb:
        np.testing.assert_allclose(za["slices"], zb["slices"], atol=1e-5)
        assert za["slices"].max() <= 1.0
        assert za["valid"].mean() > 0.3
    doc = json.loads(b.out)
    assert doc["directions"]["canonical"] == ["axial", "coronal", "sagittal"]
    assert doc["volume"]["frame"] == "RAS+ mm"
