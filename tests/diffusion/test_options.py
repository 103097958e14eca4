"""`anomaly train --unet` (presets and JSON configs) and `anomaly score --perceptual` (none, random, TorchScript)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.diffusion import UNET_PRESETS, unet_config

torch = pytest.importorskip("torch")
pytest.importorskip("monai", reason='monai not installed (pip install "medlens[diffusion]")')

from medlens.cli import main  # noqa: E402
from medlens.diffusion import build_unet, run_anomaly_score, save_unet  # noqa: E402


def test_unet_presets_and_json(tmp_path: Path) -> None:
    assert unet_config("small") == UNET_PRESETS["small"]
    assert unet_config("small") is not UNET_PRESETS["small"]  # a copy: callers may edit it
    assert unet_config(None) is None
    cfg = {"channels": [8, 16], "attention_levels": [False, False], "norm_num_groups": 8, "num_head_channels": 8}
    (tmp_path / "u.json").write_text(json.dumps(cfg))
    assert unet_config(tmp_path / "u.json") == cfg
    (tmp_path / "list.json").write_text("[8, 16]")
    with pytest.raises(InputError, match="an object of UNet keys"):
        unet_config(tmp_path / "list.json")
    with pytest.raises(InputError, match="small, default, paper"):
        unet_config("huge")
    # the presets build, and the small one is the shipped demo denoiser's shape (~0.6 M parameters)
    small = build_unet({**UNET_PRESETS["small"], "sample_size": 64})
    assert 5e5 < sum(p.numel() for p in small.parameters()) < 7e5


def test_train_with_a_unet_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        np.save(imgs / f"h{i}.npy", rng.uniform(-1, 1, (16, 16)).astype(np.float32))
    cfg = {"channels": [8, 16], "attention_levels": [False, False], "norm_num_groups": 8, "num_head_channels": 8}
    (tmp_path / "u.json").write_text(json.dumps(cfg))
    rc = main(["anomaly", "train", "--images", str(imgs), "--unet", str(tmp_path / "u.json"), "--steps", "1",
               "--batch-size", "2", "--out", str(tmp_path / "run"), "--json"])  # fmt: skip
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    expect = build_unet({**cfg, "sample_size": 16})
    assert doc["n_parameters"] == sum(p.numel() for p in expect.parameters())


def _model_and_images(tmp: Path) -> tuple[Path, Path]:
    tiny = {"channels": [8, 16], "attention_levels": [False, False], "norm_num_groups": 8, "num_head_channels": 8,
            "sample_size": 16}  # fmt: skip
    save_unet(
        tmp / "m.safetensors", build_unet(tiny, seed=0), metadata={"schedule": "linear", "num_train_timesteps": 50}
    )
    imgs = tmp / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        np.save(imgs / f"c{i}.npy", rng.uniform(-1, 1, (16, 16)).astype(np.float32))
    return tmp / "m.safetensors", imgs


class _Extractor(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = torch.relu(self.conv(x))
        return [h, torch.nn.functional.avg_pool2d(h, 2)]


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning")
def test_perceptual_none_random_exported_and_torchscript(tmp_path: Path) -> None:
    model, imgs = _model_and_images(tmp_path)
    maps = {}
    for name in ("none", "random", "script", "export"):
        value: str | Path = name
        if name == "script":
            value = tmp_path / "ext.pt"
            torch.jit.script(_Extractor()).save(str(value))
        if name == "export":
            value = tmp_path / "ext.pt2"
            # exported with a static batch of 3: the scorer's batches are run in chunks of 3
            torch.export.save(torch.export.export(_Extractor(), (torch.zeros(3, 1, 16, 16),)), str(value))
        doc = run_anomaly_score(model, imgs, tmp_path / name, method="anoddpm", t0=10, steps=2, perceptual=value)
        maps[name] = np.load(Path(doc["maps"]) / "c0.npy")
        assert np.isfinite(maps[name]).all()
    assert not np.allclose(maps["none"], maps["random"])  # the weighting changes the map
    assert not np.allclose(maps["random"], maps["script"])
    np.testing.assert_allclose(maps["export"], maps["script"], rtol=1e-5, atol=1e-6)  # the same extractor, two formats
    wrong = tmp_path / "ext32.pt2"
    torch.export.save(torch.export.export(_Extractor(), (torch.zeros(2, 1, 32, 32),)), str(wrong))
    with pytest.raises(ValueError, match=r"exported for inputs of shape \(2, 1, 32, 32\)"):
        run_anomaly_score(model, imgs, tmp_path / "wrong", method="anoddpm", t0=10, steps=2, perceptual=wrong)
    # the weighting multiplies the residual: zero residual stays zero, and no map is negative
    assert (maps["script"] >= 0).all()


def test_evaluate_reports_rqi_caci_ahi(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from medlens.diffusion import run_anomaly_evaluate
    from medlens.metrics import masked_fidelity, restoration_quality

    model, _ = _model_and_images(tmp_path)
    rng = np.random.default_rng(2)
    imgs, masks, ref = tmp_path / "test", tmp_path / "masks", tmp_path / "ref"
    for d in (imgs, masks, ref):
        d.mkdir()
    x = rng.uniform(-1, 0, (4, 16, 16)).astype(np.float32)
    m = np.zeros((4, 16, 16), np.uint8)
    m[:2, 4:8, 4:8] = 1
    for i in range(4):
        np.save(imgs / f"c{i}.npy", x[i])
        np.save(masks / f"c{i}.npy", m[i])
        np.save(ref / f"r{i}.npy", rng.uniform(-1, 0, (16, 16)).astype(np.float32))
    doc = run_anomaly_score(model, imgs, tmp_path / "s", method="anoddpm", t0=10, steps=2)
    recon = np.stack([np.load(Path(doc["reconstructions"]) / f"c{i}.npy") for i in range(4)])
    ev = run_anomaly_evaluate(Path(doc["maps"]), masks, n_bootstrap=5, images=imgs,
                              reconstructions=doc["reconstructions"], reference=ref)  # fmt: skip
    n = ev["normative"]
    assert n["rqi"]["mae"] == pytest.approx(restoration_quality(x[2:], recon[2:])["mae"])
    assert n["caci"]["inside"]["mae"] == pytest.approx(masked_fidelity(x[:2], recon[:2], masks=m[:2])["inside"]["mae"])
    assert set(n["ahi"]) >= {"ahi", "fid_pathological", "fid_restored", "fid_unseen_healthy"}
    # one of the pair alone is a clean exit 2
    rc = main(["anomaly", "evaluate", "--maps", doc["maps"], "--masks", str(masks), "--images", str(imgs)])
    assert rc == 2
    assert "--reconstructions" in capsys.readouterr().err
