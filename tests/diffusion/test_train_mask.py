"""Mask-conditioned training (the inpainting model of counterfactual editing): the network sees
``[x_t, x_0⊙(1−m), m]``; the loss falls, and a killed run resumes to the same weights (both also for a
Palette-conditioned model, whose own tests are in ``test_train_palette.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai", reason='monai not installed (pip install "medlens[diffusion]")')

from tests.diffusion._conditioned import blob_data, tiny  # noqa: E402

from medlens._validation import InputError  # noqa: E402
from medlens.diffusion import MODEL_FILE, build_unet, load_unet, mask_condition, train_diffusion  # noqa: E402

TINY = tiny("mask")
_data = blob_data


def test_mask_condition_and_network_channels() -> None:
    model = build_unet(TINY, seed=0)
    assert model.mask_conditioned
    assert model.config["in_channels"] == 1
    x, m = (torch.as_tensor(a) for a in _data(2))
    cond = mask_condition(x, m)
    assert cond.shape == (2, 2, 16, 16)
    assert torch.equal(cond[:, 1:], m.float())
    assert torch.equal(cond[:, :1], torch.where(m > 0, torch.zeros_like(x), x))
    assert model(x, torch.tensor([3, 5]), cond=cond).shape == (2, 1, 16, 16)
    with pytest.raises(InputError, match="mask-conditioned"):
        model(x, 3)
    # an unset flag leaves the config as it always was (old files and hashes unchanged)
    assert "mask_conditioned" not in build_unet({**TINY, "mask_conditioned": False}).config
    with pytest.raises(InputError, match="not both"):
        build_unet({**TINY, "num_classes": 2})


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mask", "palette"])
def test_twenty_steps_lower_the_loss(kind: str) -> None:
    x, m = _data()
    res = train_diffusion(build_unet(tiny(kind), seed=0), x, masks=m, epochs=2, steps_per_epoch=10, batch_size=8,
                          lr=3e-3, num_train_timesteps=100, seed=0)  # fmt: skip
    first, last = (row["train_loss"] for row in res["history"])
    assert last < first


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.state_dict().values()]


@pytest.mark.parametrize("kind", ["mask", "palette"])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path: Path, kind: str) -> None:
    """Also for a Palette model, whose condition draws noise every step (before ε, from the checkpointed generator)."""
    x, m = _data()
    cfg = tiny(kind)
    kw = dict(masks=m, epochs=3, steps_per_epoch=2, batch_size=4, lr=1e-3, num_train_timesteps=50, seed=3)
    full = train_diffusion(build_unet(cfg, seed=1), x, out=tmp_path / "a", **kw)

    def killed(epoch: int, row: dict) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_diffusion(build_unet(cfg, seed=1), x, out=tmp_path / "b", callback=killed, **kw)
    resumed = train_diffusion(build_unet(cfg, seed=99), x, out=tmp_path / "b", resume=True, **kw)
    assert all(torch.equal(a, b) for a, b in zip(_params(full["model"]), _params(resumed["model"]), strict=True))
    assert [r["train_loss"] for r in full["history"]] == [r["train_loss"] for r in resumed["history"]]
    saved, _ = load_unet(tmp_path / "b" / MODEL_FILE)
    assert saved.conditioning == kind
    # the masks are part of the data: other masks are another run
    other = m.copy()
    other[0] = 1 - other[0]
    with pytest.raises(InputError):
        train_diffusion(build_unet(cfg, seed=1), x, out=tmp_path / "b", resume=True, **{**kw, "masks": other})
    # the same data into a model of the other kind is another configuration, not a resume
    other_kind = tiny("palette" if kind == "mask" else "mask")
    with pytest.raises(InputError):
        train_diffusion(build_unet(other_kind, seed=1), x, out=tmp_path / "b", resume=True, **kw)


def test_bad_masks_are_clear() -> None:
    x, m = _data()
    with pytest.raises(InputError, match="masks go with a mask-conditioned model"):
        train_diffusion(build_unet(TINY), x, epochs=1)
    plain = {k: v for k, v in TINY.items() if k != "mask_conditioned"}
    with pytest.raises(InputError, match="masks go with a mask-conditioned model"):
        train_diffusion(build_unet(plain), x, masks=m, epochs=1)
    with pytest.raises(InputError, match=r"masks must have shape \(8, 1, 16, 16\)"):
        train_diffusion(build_unet(TINY), x, masks=m[:4], epochs=1)
    with pytest.raises(InputError, match="only 0 and 1"):
        train_diffusion(build_unet(TINY), x, masks=m * 2, epochs=1)
