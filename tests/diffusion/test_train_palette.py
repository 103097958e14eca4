"""Palette-conditioned training (the separately trained model of the Palette editing baseline): the network sees
``[x_t, c]`` with ``c = m⊙N(0, I) + (1−m)⊙x_0``; the condition keeps the image exactly outside the mask and is
standard normal inside, fresh noise fills it at every step, and the conditioning kind travels in the checkpoint
(the falling loss and the exact resume are in ``test_train_mask.py``, for both kinds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai", reason='monai not installed (pip install "medlens[diffusion]")')

from tests.diffusion._conditioned import blob_data, tiny  # noqa: E402

from medlens._validation import InputError  # noqa: E402
from medlens.diffusion import (  # noqa: E402
    build_unet,
    load_unet,
    palette_condition,
    run_anomaly_train,
    train_diffusion,
)

TINY = tiny("palette")
_data = blob_data


def test_condition_is_the_image_outside_and_standard_normal_inside() -> None:
    from scipy import stats

    g = torch.Generator().manual_seed(0)
    x = torch.rand((4, 1, 64, 64), generator=g) * 1.8 - 0.9
    m = torch.zeros((4, 1, 64, 64))
    m[:, :, 8:56, 10:50] = 1
    c = palette_condition(x, m, generator=torch.Generator().manual_seed(1))
    assert c.shape == x.shape
    outside = (m == 0).expand_as(x)
    assert torch.equal(c[outside], x[outside])  # bit for bit
    inside = c[~outside].double().numpy()
    assert abs(inside.mean()) < 0.03
    assert abs(inside.std() - 1) < 0.03
    assert stats.kstest(inside, "norm").pvalue > 1e-3
    assert np.abs(inside).max() > 1  # not the image: [-0.9, 0.9] cannot reach it
    # seeded: the same generator seed gives the same condition, another seed another one
    again = palette_condition(x, m, generator=torch.Generator().manual_seed(1))
    assert torch.equal(c, again)
    assert not torch.equal(c, palette_condition(x, m, generator=torch.Generator().manual_seed(2)))
    # multi-channel images share the one-channel mask
    x3 = x.expand(-1, 3, -1, -1)
    c3 = palette_condition(x3, m, generator=torch.Generator().manual_seed(1))
    assert torch.equal(c3[(m == 0).expand_as(x3)], x3[(m == 0).expand_as(x3)])


def test_palette_network_takes_two_channels_and_knows_its_kind() -> None:
    model = build_unet(TINY, seed=0)
    assert model.palette_conditioned
    assert not model.mask_conditioned
    assert model.conditioning == "palette"
    assert model.config["in_channels"] == 1
    first = next(m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == 2  # [x_t, c]
    x, m = (torch.as_tensor(a) for a in _data(2))
    c = palette_condition(x, m)
    assert model(x, torch.tensor([3, 5]), cond=c).shape == (2, 1, 16, 16)
    with pytest.raises(InputError, match="palette-conditioned"):
        model(x, 3)
    with pytest.raises(InputError, match="palette-conditioned"):
        model(x, 3, cond=torch.cat([c, m.float()], dim=1))  # a mask model's condition
    assert "palette_conditioned" not in build_unet({**TINY, "palette_conditioned": False}).config
    assert build_unet({**TINY, "palette_conditioned": False}).conditioning is None
    with pytest.raises(InputError, match="not both"):
        build_unet({**TINY, "mask_conditioned": True})
    with pytest.raises(InputError, match="not both"):
        build_unet({**TINY, "num_classes": 2})
    with pytest.raises(InputError, match="palette_conditioned must be true or false"):
        build_unet({**TINY, "palette_conditioned": "yes"})


def test_palette_condition_noise_is_fresh_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each optimiser step fills the mask with new noise (not one fixed draw per image)."""
    import medlens.diffusion._backbones as bb

    seen: list[torch.Tensor] = []
    real = bb.palette_condition

    def spy(images, mask, **kw):  # noqa: ANN001, ANN003, ANN202
        c = real(images, mask, **kw)
        seen.append(c.clone())
        return c

    monkeypatch.setattr(bb, "palette_condition", spy)
    x, m = _data(1)
    train_diffusion(build_unet(TINY, seed=0), x, masks=m, epochs=1, steps_per_epoch=3, batch_size=1,
                    num_train_timesteps=50, seed=0)  # fmt: skip
    assert len(seen) == 3
    inside = torch.as_tensor(m, dtype=torch.bool)
    assert not torch.equal(seen[0][inside], seen[1][inside])
    assert torch.equal(seen[0][~inside], seen[1][~inside])  # the image outside, every step


def test_bad_masks_are_clear() -> None:
    x, m = _data()
    with pytest.raises(InputError, match="masks go with a mask-conditioned model"):
        train_diffusion(build_unet(TINY), x, epochs=1)
    with pytest.raises(InputError, match=r"masks must have shape \(8, 1, 16, 16\)"):
        train_diffusion(build_unet(TINY), x, masks=m[:4], epochs=1)


def test_anomaly_train_conditioned_palette_on_a_folder(tmp_path: Path) -> None:
    x, m = _data(4)
    for d in ("images", "masks"):
        (tmp_path / "data" / d).mkdir(parents=True)
    for i in range(4):
        np.save(tmp_path / "data" / "images" / f"s{i}.npy", x[i, 0])
        np.save(tmp_path / "data" / "masks" / f"s{i}.npy", m[i, 0])
    unet = {k: v for k, v in TINY.items() if k not in ("palette_conditioned", "sample_size")}
    doc = run_anomaly_train(tmp_path / "run", images=tmp_path / "data", conditioned="palette", steps=2, batch_size=2,
                            unet=unet)  # fmt: skip
    model, _ = load_unet(doc["model_path"])
    assert model.conditioning == "palette"
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["unet"]["palette_conditioned"] is True
    with pytest.raises(InputError, match="--conditioned palette needs two sub-folders"):
        run_anomaly_train(tmp_path / "run2", images=tmp_path / "data" / "images", conditioned="palette", steps=1)
