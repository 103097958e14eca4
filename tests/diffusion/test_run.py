"""`medlens anomaly train | score | evaluate` end to end on 16x16 images (tiny UNet, 2 steps)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai", reason='monai not installed (pip install "medlens[diffusion]")')

from medlens.cli import main  # noqa: E402
from medlens.diffusion import build_unet, run_anomaly_train, save_unet  # noqa: E402

TINY = {"channels": [8, 16], "attention_levels": [False, False], "norm_num_groups": 8, "num_head_channels": 8,
        "sample_size": 16}  # fmt: skip


def _folders(tmp: Path) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(0)
    imgs, masks, healthy = tmp / "imgs", tmp / "masks", tmp / "healthy"
    for d in (imgs, masks, healthy):
        d.mkdir()
    for i in range(4):
        x = rng.uniform(-1, 0, (16, 16)).astype(np.float32)
        m = np.zeros((16, 16), np.uint8)
        if i < 2:
            m[5:9, 5:9] = 1
            x[m > 0] = 0.9
        np.save(imgs / f"case{i}.npy", x)
        np.save(masks / f"case{i}.npy", m)
        np.save(healthy / f"h{i}.npy", rng.uniform(-1, 0, (16, 16)).astype(np.float32))
    return imgs, masks, healthy


@pytest.mark.slow
def test_train_score_evaluate_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imgs, masks, healthy = _folders(tmp_path)
    doc = run_anomaly_train(tmp_path / "run", images=imgs, steps=2, batch_size=2, num_train_timesteps=50, unet=TINY)
    assert Path(doc["model_path"]).is_file()
    assert doc["steps"] == 2
    model = tmp_path / "run"
    args = ["anomaly", "score", "--model-path", str(model), "--method", "thor", "--t0", "20", "--steps", "2",
            "--batch-size", "3", "--json"]  # fmt: skip
    assert main([*args, "--images", str(imgs), "--out", str(tmp_path / "s")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_images"] == 4
    assert out["nfe_per_image"] == 2
    first = np.load(tmp_path / "s" / "maps" / "case0.npy")
    assert first.dtype == np.float32
    assert first.shape == (16, 16)
    # a re-run resumes: nothing recomputed, same maps
    assert main([*args, "--images", str(imgs), "--out", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    assert np.array_equal(np.load(tmp_path / "s" / "maps" / "case0.npy"), first)
    assert main([*args, "--images", str(healthy), "--out", str(tmp_path / "h")]) == 0
    capsys.readouterr()
    rc = main(["anomaly", "evaluate", "--maps", str(tmp_path / "s" / "maps"), "--masks", str(masks), "--healthy",
               str(tmp_path / "h" / "maps"), "--fpr", "0.05", "--bootstrap", "20", "--json"])  # fmt: skip
    assert rc == 0
    ev = json.loads(capsys.readouterr().out)
    for key in ("auprc", "auroc", "dice", "image_auroc", "fpr"):
        assert len(ev[key]["ci"]) == 2
    assert ev["threshold_method"] == "healthy_fpr"
    assert ev["provenance"]["command"] == "anomaly evaluate"


def test_size_mismatch_and_missing_masks_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imgs, masks, _ = _folders(tmp_path)
    model = build_unet({**TINY, "sample_size": 32}, seed=0)
    save_unet(tmp_path / "m.safetensors", model, metadata={"schedule": "linear", "num_train_timesteps": 50})
    rc = main(["anomaly", "score", "--model-path", str(tmp_path / "m.safetensors"), "--images", str(imgs),
               "--out", str(tmp_path / "o")])  # fmt: skip
    assert rc == 2
    assert "Resize the images" in capsys.readouterr().err
    (masks / "case3.npy").unlink()
    rc = main(["anomaly", "evaluate", "--maps", str(imgs), "--masks", str(masks)])
    assert rc == 2
    assert "no mask for map 'case3'" in capsys.readouterr().err


@pytest.mark.slow
def test_class_conditioned_training_then_guided_scoring(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imgs, _, _ = _folders(tmp_path)
    split = tmp_path / "split"
    for sub, ids in (("healthy", (2, 3)), ("anomalous", (0, 1))):
        (split / sub).mkdir(parents=True)
        for i in ids:
            np.save(split / sub / f"case{i}.npy", np.load(imgs / f"case{i}.npy"))
    doc = run_anomaly_train(tmp_path / "run", images=split, conditioned="class", steps=2, batch_size=2,
                            num_train_timesteps=50, unet=TINY)  # fmt: skip
    assert doc["n_labels"] == [2, 2]
    assert Path(doc["classifier_path"]).is_file()
    base = ["anomaly", "score", "--model-path", str(tmp_path / "run"), "--images", str(imgs), "--t0", "20",
            "--steps", "2", "--json"]  # fmt: skip
    assert main([*base, "--method", "cfg", "--weight", "2", "--out", str(tmp_path / "c")]) == 0
    assert json.loads(capsys.readouterr().out)["nfe_per_image"] == 4  # two evaluations per guided step
    assert main([*base, "--method", "classifier", "--scale", "5", "--out", str(tmp_path / "k")]) == 0
    assert json.loads(capsys.readouterr().out)["nfe_per_image"] == 4  # UNet + classifier per step
    assert np.load(tmp_path / "k" / "maps" / "case0.npy").shape == (16, 16)
    # an unconditioned model cannot do cfg; a folder without healthy/ and anomalous/ cannot be class-trained
    save_unet(tmp_path / "plain.safetensors", build_unet(TINY, seed=0))
    rc = main(
        [*base[:3], str(tmp_path / "plain.safetensors"), *base[4:], "--method", "cfg", "--out", str(tmp_path / "x")]
    )
    assert rc == 2
    assert "not class-conditioned" in capsys.readouterr().err
    with pytest.raises(Exception, match="healthy/ and anomalous/"):
        run_anomaly_train(tmp_path / "run2", images=imgs, conditioned="class", steps=1, unet=TINY)
