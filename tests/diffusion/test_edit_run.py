"""``medlens edit`` end to end: one image to a file, a folder to a resumable run, exact preservation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai", reason='monai not installed (pip install "medlens[diffusion]")')

from medlens._validation import InputError  # noqa: E402
from medlens.cli import main  # noqa: E402
from medlens.diffusion import build_unet, save_unet  # noqa: E402
from medlens.diffusion.edit import run_edit  # noqa: E402

TINY = {"channels": [8, 16], "attention_levels": [False, False], "norm_num_groups": 8, "num_head_channels": 8,
        "sample_size": 16}  # fmt: skip


def _inputs(root: Path, n: int = 3) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(0)
    imgs, masks, brains = root / "img", root / "les", root / "brain"
    for d in (imgs, masks, brains):
        d.mkdir(parents=True)
    for i in range(n):
        x = np.full((16, 16), -1.0, np.float32)
        x[2:14, 2:14] = rng.uniform(-0.5, 0.5, (12, 12))
        m = np.zeros((16, 16), np.uint8)
        m[5 + i : 8 + i, 6:9] = 1
        np.save(imgs / f"s{i}.npy", x)
        np.save(masks / f"s{i}.npy", m)
        np.save(brains / f"s{i}.npy", (x > -1).astype(np.uint8))
    return imgs, masks, brains


def test_single_image_cli_writes_the_edit_and_keeps_the_outside(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    imgs, masks, brains = _inputs(tmp_path)
    model = save_unet(tmp_path / "m.safetensors", build_unet(TINY, seed=0))
    rc = main(["edit", "--model-path", str(model), "--image", str(imgs / "s0.npy"), "--lesion-mask",
               str(masks / "s0.npy"), "--brain-mask", str(brains / "s0.npy"), "--dilate", "5", "--steps", "4",
               "--out", str(tmp_path / "e.npy"), "--json"])  # fmt: skip
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["nfe"] == 4
    assert doc["preservation_mae"] == 0.0
    assert "provenance" in doc
    assert "schema_version" in doc
    x, e = np.load(imgs / "s0.npy"), np.load(tmp_path / "e.npy")
    from medlens.diffusion.edit import edit_region

    region = edit_region(np.load(masks / "s0.npy")[None, None], np.load(brains / "s0.npy")[None, None], dilate=5)
    outside = region.numpy()[0, 0] == 0
    assert np.array_equal(e[outside], x[outside])
    png = run_edit(model, tmp_path / "e.png", image=imgs / "s1.npy", lesion_mask=masks / "s1.npy", steps=2,
                   method="sdedit", dilate=3)  # fmt: skip
    assert png["preservation_mae"] > 0
    assert (tmp_path / "e.png").is_file()


def test_folder_mode_resumes_to_the_same_edits(tmp_path: Path) -> None:
    imgs, masks, brains = _inputs(tmp_path)
    model = save_unet(tmp_path / "m.safetensors", build_unet(TINY, seed=0))
    kw = dict(images=imgs, lesion_masks=masks, brain_masks=brains, method="repaint", steps=4, batch_size=2)
    full = run_edit(model, tmp_path / "a", **kw)
    assert full["n_images"] == 3
    assert full["nfe"] == 4
    assert full["preservation_mae"] == 0.0
    # a run stopped after the first chunk: drop the second chunk's row and edit, then resume
    part = run_edit(model, tmp_path / "b", **kw)
    rows = (tmp_path / "b" / "results.jsonl").read_text().splitlines()
    (tmp_path / "b" / "results.jsonl").write_text("\n".join(rows[:2]) + "\n")
    (tmp_path / "b" / "edits" / "s2.npy").unlink()
    again = run_edit(model, tmp_path / "b", **kw)
    assert again["n_images"] == part["n_images"] == 3
    for i in range(3):
        assert np.array_equal(
            np.load(tmp_path / "a" / "edits" / f"s{i}.npy"), np.load(tmp_path / "b" / "edits" / f"s{i}.npy")
        )
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["status"] == "done"
    with pytest.raises(InputError):  # another configuration in the same folder
        run_edit(model, tmp_path / "b", **{**kw, "steps": 3})


def test_palette_with_a_palette_checkpoint(tmp_path: Path) -> None:
    imgs, masks, _ = _inputs(tmp_path, n=1)
    model = save_unet(tmp_path / "c.safetensors", build_unet({**TINY, "palette_conditioned": True}, seed=0))
    kw = dict(image=imgs / "s0.npy", lesion_mask=masks / "s0.npy", method="palette", steps=3, dilate=3)
    doc = run_edit(model, tmp_path / "p.npy", **kw)
    assert doc["nfe"] == 3
    assert doc["preservation_mae"] > 0  # the whole image is regenerated
    run_edit(model, tmp_path / "q.npy", **kw)
    assert np.array_equal(np.load(tmp_path / "p.npy"), np.load(tmp_path / "q.npy"))  # same seed, same edit


def test_the_wrong_kind_of_checkpoint_exits_2(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    imgs, masks, _ = _inputs(tmp_path, n=1)
    mask_ckpt = save_unet(tmp_path / "mask.safetensors", build_unet({**TINY, "mask_conditioned": True}, seed=0))
    pal_ckpt = save_unet(tmp_path / "pal.safetensors", build_unet({**TINY, "palette_conditioned": True}, seed=0))
    one = dict(image=imgs / "s0.npy", lesion_mask=masks / "s0.npy", steps=1)
    with pytest.raises(InputError, match="--method palette needs a Palette-conditioned model") as err:
        run_edit(mask_ckpt, tmp_path / "e.npy", method="palette", **one)
    assert str(mask_ckpt) in str(err.value)
    assert "anomaly train --conditioned palette" in str(err.value)
    with pytest.raises(InputError, match="--method mededit cannot use the checkpoint") as err:
        run_edit(pal_ckpt, tmp_path / "e.npy", method="mededit", **one)
    assert str(pal_ckpt) in str(err.value)
    assert not (tmp_path / "e.npy").exists()
    base = ["edit", "--image", str(imgs / "s0.npy"), "--lesion-mask", str(masks / "s0.npy"), "--out",
            str(tmp_path / "e.npy")]  # fmt: skip
    for ckpt, method, words in ((mask_ckpt, "palette", "Palette-conditioned"), (pal_ckpt, "sdedit", "cannot use")):
        assert main([*base, "--model-path", str(ckpt), "--method", method]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err
        assert len(err.splitlines()) == 1


def test_a_region_covering_the_whole_image_has_no_preservation(tmp_path: Path) -> None:
    imgs, masks, _ = _inputs(tmp_path, n=1)
    model = save_unet(tmp_path / "c.safetensors", build_unet({**TINY, "mask_conditioned": True}, seed=0))
    whole = run_edit(model, tmp_path / "w.npy", image=imgs / "s0.npy", lesion_mask=masks / "s0.npy", steps=1)
    assert whole["preservation_mae"] is None  # MedEdit's default 25x25 dilation covers this 16x16 image
