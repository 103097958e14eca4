"""NIfTI volumes in `medlens anomaly` folders: slices as ``<volume>/z<k>`` ids, per-volume scaling, per-volume
evaluation, and clean exit 2 for a mask volume that does not match its image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from medlens._validation import InputError  # noqa: E402
from medlens.cli import main  # noqa: E402
from medlens.diffusion import read_image_folder, run_anomaly_evaluate  # noqa: E402

AFFINE = np.diag([2.0, 2.0, 3.0, 1.0])


def _save(path: Path, array: np.ndarray, affine: np.ndarray = AFFINE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.Nifti1Image(array, affine).to_filename(str(path))


def _case(tmp: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1000, (8, 8, 3)).astype(np.float32)
    mask = np.zeros((8, 8, 3), np.uint8)
    mask[2:4, 2:4, 1] = 1
    _save(tmp / "img" / "a.nii.gz", img)
    _save(tmp / "img" / "b.nii.gz", img[::-1].copy())
    _save(tmp / "mask" / "a.nii.gz", mask)
    _save(tmp / "mask" / "b.nii.gz", np.zeros_like(mask))
    maps = tmp / "maps"
    for vol, m in (("a", mask), ("b", np.zeros_like(mask))):
        for k in range(3):
            (maps / vol).mkdir(parents=True, exist_ok=True)
            np.save(maps / vol / f"z{k:04d}.npy", (0.1 + 0.8 * m[..., k]).astype(np.float32))
    return {"img": tmp / "img", "mask": tmp / "mask", "maps": maps}


def test_volumes_read_slice_by_slice(tmp_path: Path) -> None:
    d = _case(tmp_path)
    f = read_image_folder(d["img"])
    assert f["ids"] == [f"{v}/z{k:04d}" for v in "ab" for k in range(3)]
    assert f["array"].shape == (6, 1, 8, 8)
    assert f["array"].min() == pytest.approx(-1.0)
    assert f["array"].max() == pytest.approx(1.0)  # per volume: [min, 99th percentile] -> [-1, 1], clipped
    vol = nib.load(str(d["img"] / "a.nii.gz")).get_fdata()
    lo, hi = vol.min(), np.percentile(vol, 99)
    np.testing.assert_allclose(f["array"][1, 0], np.clip((vol[..., 1] - lo) / (hi - lo), 0, 1) * 2 - 1, atol=1e-5)
    masks = read_image_folder(d["mask"], kind="mask")
    assert masks["array"][1].sum() == 4
    assert set(masks["volumes"]) == {"a", "b"}


def test_evaluation_per_slice_and_per_volume(tmp_path: Path) -> None:
    d = _case(tmp_path)
    doc = run_anomaly_evaluate(d["maps"], d["mask"], n_bootstrap=5)
    assert doc["n_images"] == 6
    pv = doc["per_volume"]
    assert pv["n_volumes"] == 2
    rows = {r["id"]: r for r in pv["volumes"]}
    assert rows["a"]["lesion_voxels"] == 4
    assert rows["a"]["dice"] == pytest.approx(1.0)  # the maps are 0.9 exactly on the lesion
    assert np.isnan(rows["b"]["dice"])  # nothing predicted, nothing true
    assert pv["volume_auroc"] == pytest.approx(1.0)
    assert pv["dice_mean"] == pytest.approx(1.0)


def test_mask_volume_that_does_not_match_its_image_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _case(tmp_path)
    short = tmp_path / "short"
    _save(short / "a.nii.gz", np.zeros((8, 8, 2), np.uint8))
    _save(short / "b.nii.gz", np.zeros((8, 8, 3), np.uint8))
    rc = main(["anomaly", "evaluate", "--maps", str(d["maps"]), "--masks", str(short)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "has 2 slices" in err
    assert "does not match its image" in err
    shifted = tmp_path / "shifted"
    moved = AFFINE.copy()
    moved[0, 3] = 1.5
    for v in "ab":
        _save(shifted / f"{v}.nii.gz", np.asarray(nib.load(str(d["mask"] / f"{v}.nii.gz")).dataobj), moved)
    with pytest.raises(InputError, match="another grid"):
        run_anomaly_evaluate(d["maps"], shifted, n_bootstrap=5, images=d["img"], reconstructions=d["maps"])
    rc = main(["anomaly", "evaluate", "--maps", str(d["maps"]), "--masks", str(shifted), "--images", str(d["img"]),
               "--reconstructions", str(d["maps"]), "--json"])  # fmt: skip
    assert rc == 2
    assert "resample the mask" in capsys.readouterr().err
    rc = main(
        ["anomaly", "evaluate", "--maps", str(d["maps"]), "--masks", str(d["mask"]), "--bootstrap", "5", "--json"]
    )
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["per_volume"]["n_volumes"] == 2
