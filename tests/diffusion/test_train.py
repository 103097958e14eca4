"""Training: the loss falls, a run is reproducible, and an interrupted run resumes to the same weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai", reason='monai not installed (pip install "medlens[diffusion]")')

from tests.diffusion._conditioned import TINY_BASE as TINY  # noqa: E402

from medlens._validation import InputError  # noqa: E402
from medlens.diffusion import MODEL_FILE, build_unet, load_unet, train_diffusion  # noqa: E402


def _images(n: int = 8, seed: int = 0) -> np.ndarray:
    # smooth blobs in [-1, 1]: easy enough that a few steps help
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:16, :16]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(4, 12, 2)
        out.append(2 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0) - 1)
    return np.asarray(out, dtype=np.float32)[:, None]


@pytest.mark.slow
def test_twenty_steps_lower_the_loss() -> None:
    res = train_diffusion(build_unet(TINY, seed=0), _images(), epochs=2, steps_per_epoch=10, batch_size=8,
                          lr=3e-3, num_train_timesteps=100, seed=0)  # fmt: skip
    first, last = (row["train_loss"] for row in res["history"])
    assert last < first


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.state_dict().values()]


@pytest.mark.parametrize("conditioned", [False, True])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path: Path, conditioned: bool) -> None:
    cfg = {**TINY, "num_classes": 2 if conditioned else None}
    labels = np.arange(8) % 2 if conditioned else None
    kw = dict(labels=labels, epochs=3, steps_per_epoch=2, batch_size=4, lr=1e-3, num_train_timesteps=50,
              ema_decay=0.9, noise="simplex" if conditioned else "gaussian", seed=3)  # fmt: skip
    full = train_diffusion(build_unet(cfg, seed=1), _images(), out=tmp_path / "a", **kw)

    def killed(epoch: int, row: dict) -> None:
        if epoch == 1:
            raise KeyboardInterrupt  # as if the process died right after the first checkpoint

    with pytest.raises(KeyboardInterrupt):
        train_diffusion(build_unet(cfg, seed=1), _images(), out=tmp_path / "b", callback=killed, **kw)
    resumed = train_diffusion(build_unet(cfg, seed=99), _images(), out=tmp_path / "b", resume=True, **kw)
    for a, b in zip(_params(full["model"]) + _params(full["ema"]), _params(resumed["model"]) + _params(resumed["ema"]),
                    strict=True):  # fmt: skip
        assert torch.equal(a, b)
    assert [r["train_loss"] for r in full["history"]] == [r["train_loss"] for r in resumed["history"]]
    saved, meta = load_unet(tmp_path / "b" / MODEL_FILE)  # the EMA weights
    assert meta["num_train_timesteps"] == 50
    assert all(torch.equal(a, b) for a, b in zip(_params(saved), _params(full["ema"]), strict=True))


def test_bad_training_input_is_clear() -> None:
    model = build_unet(TINY)
    with pytest.raises(InputError, match=r"scaled to \[-1, 1\]"):
        train_diffusion(model, _images() * 3, epochs=1)
    with pytest.raises(InputError, match="non-empty batch"):
        train_diffusion(model, _images()[:, 0], epochs=1)
    with pytest.raises(InputError, match="class-conditioned"):
        train_diffusion(model, _images(), labels=np.zeros(8), epochs=1)
    with pytest.raises(InputError, match="class indices"):
        train_diffusion(build_unet({**TINY, "num_classes": 2}), _images(), labels=np.full(8, 2), epochs=1)
