"""Counterfactual editing samplers (issue 15 §1, §5): exact paste-back, the known region on the level of the
step being taken (not the public code's one step off), RePaint jumps counted, seeds reproduce edits."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai", reason='monai not installed (pip install "medlens[diffusion]")')

from medlens._validation import InputError  # noqa: E402
from medlens.diffusion import build_unet, make_schedule  # noqa: E402
from medlens.diffusion.edit import (  # noqa: E402
    counterfactual_edit,
    dilate_mask,
    edit_region,
    inpaint,
    jump_path,
    preservation_mae,
)

TINY = {"channels": [8, 16], "attention_levels": [False, False], "norm_num_groups": 8, "num_head_channels": 8,
        "sample_size": 16}  # fmt: skip
SCHED = make_schedule("linear", 1000)


class Zero(torch.nn.Module):
    """ε̂ = 0, counting calls."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.calls = 0

    def forward(self, x_t, t, cond=None):  # noqa: ANN001, ANN201
        self.calls += 1
        return torch.zeros_like(x_t)


def _data(n: int = 2, size: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand((n, 1, size, size), generator=g) * 1.6 - 0.8
    p = torch.zeros((n, 1, size, size))
    p[:, :, 6:9, 5:8] = 1
    b = torch.zeros_like(p)
    b[:, :, 2:14, 2:14] = 1
    return x, p, b


def test_dilation_is_opencvs_square_with_centre_anchor() -> None:
    from scipy import ndimage

    m = np.zeros((1, 1, 11, 11))
    m[0, 0, 5, 5] = m[0, 0, 1, 9] = 1
    for k in (3, 5, 25):
        want = ndimage.binary_dilation(m[0, 0] > 0, structure=np.ones((k, k)))
        assert np.array_equal(dilate_mask(torch.as_tensor(m), k)[0, 0].numpy() > 0, want)
    # even k: dst(x) = max src(x - 2 .. x + 1) (anchor 2), so the pixel at 5 lights 4..7
    four = dilate_mask(torch.as_tensor(m), 4)[0, 0].numpy()
    assert four[4:8, 4:8].all()
    assert four[3, 5] == 0
    assert four[8, 5] == 0
    assert four[5, 3] == 0
    assert four[5, 8] == 0
    assert torch.equal(dilate_mask(torch.as_tensor(m), 1), torch.as_tensor(m).float())
    b = torch.zeros((1, 1, 11, 11))
    b[..., :, :6] = 1
    assert torch.equal(edit_region(torch.as_tensor(m), b, dilate=3), dilate_mask(torch.as_tensor(m), 3) * b)


def test_jump_path_counts_resampling() -> None:
    assert jump_path(10, resample=1) == list(range(10, -1, -1))
    path = jump_path(10, resample=2, jump_length=5)
    assert path == [*range(10, -1, -1), *range(1, 6), *range(4, -1, -1)]
    downs = sum(b < a for a, b in zip(path, path[1:], strict=False))
    assert downs == 15
    model = Zero()
    x, p, _ = _data()
    res = counterfactual_edit(model, x, p, SCHED, method="repaint", steps=10, resample=2, jump_length=5, batch_size=2)
    assert res["nfe"] == 15
    assert model.calls == 15


def test_repaint_with_empty_mask_returns_the_known_image_exactly() -> None:
    x, p, _ = _data()
    model = build_unet(TINY, seed=0)
    res = counterfactual_edit(model, x, torch.zeros_like(p), SCHED, method="repaint", steps=6, resample=3,
                              jump_length=2)  # fmt: skip
    assert torch.equal(res["edited"], x)


def test_mededit_preserves_outside_the_region_bit_for_bit_and_edits_inside() -> None:
    x, p, b = _data()
    model = build_unet(TINY, seed=0)
    res = counterfactual_edit(model, x, p, SCHED, method="mededit", brain_masks=b, dilate=5, steps=5)
    region = res["region"] > 0
    assert torch.equal(region, (dilate_mask(p, 5) * b) > 0)
    keep = ~region.expand_as(x)
    assert torch.equal(res["edited"][keep], x[keep])
    assert np.array_equal(preservation_mae(res["edited"], x, res["region"]), [0.0, 0.0])
    assert not torch.equal(res["edited"][~keep], x[~keep])
    assert res["nfe"] == 5
    # SDEdit regenerates everything (no paste): preservation is not 0
    sd = counterfactual_edit(model, x, p, SCHED, method="sdedit", brain_masks=b, dilate=5, steps=5)
    assert sd["t_start"] == 100
    assert (preservation_mae(sd["edited"], x, sd["region"]) > 0).all()


def test_known_region_is_noised_to_the_level_of_the_step_being_taken() -> None:
    known = torch.full((1, 1, 128, 128), 0.5)
    region = torch.zeros_like(known)
    region[..., :, :8] = 1  # a thin inpainted strip; the rest is known
    seen = []
    inpaint(Zero(), known, region, SCHED, steps=10, eta=1.0, generator=torch.Generator().manual_seed(0),
            trace=lambda t, prev, x: seen.append((t, prev, x[..., :, 8:].clone())))  # fmt: skip
    assert [s[1] for s in seen][-1] == -1
    separated = 0
    for t, prev, part in seen:
        if prev < 0:
            assert torch.equal(part, known[..., :, 8:])
            continue
        bar, bar_t = float(SCHED.alpha_bar(prev)), float(SCHED.alpha_bar(t))
        mean, sd = float(part.mean()), float(part.std())
        assert abs(mean - 0.5 * bar**0.5) < 0.03, (t, prev)
        assert abs(sd - (1 - bar) ** 0.5) < 0.05 * (1 - bar) ** 0.5 + 1e-3, (t, prev)
        # the public code's level (t instead of prev) is measurably different at the late steps
        if abs((1 - bar_t) ** 0.5 - (1 - bar) ** 0.5) > 0.15 * (1 - bar) ** 0.5:
            assert abs(sd - (1 - bar_t) ** 0.5) > 0.1 * (1 - bar) ** 0.5
            separated += 1
    assert separated >= 2


def test_same_seed_same_edit_and_another_seed_another() -> None:
    x, p, b = _data()
    model = build_unet(TINY, seed=0)
    a = counterfactual_edit(model, x, p, SCHED, brain_masks=b, dilate=3, steps=4, seed=7)["edited"]
    again = counterfactual_edit(model, x, p, SCHED, brain_masks=b, dilate=3, steps=4, seed=7)["edited"]
    other = counterfactual_edit(model, x, p, SCHED, brain_masks=b, dilate=3, steps=4, seed=8)["edited"]
    assert torch.equal(a, again)
    assert not torch.equal(a, other)


class Spy(torch.nn.Module):
    """ε̂ = 0 from a Palette-kind model, recording every call's state and condition."""

    palette_conditioned = True

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.calls: list[tuple[torch.Tensor, int, torch.Tensor]] = []

    def forward(self, x_t, t, cond=None):  # noqa: ANN001, ANN201
        self.calls.append((x_t.clone(), int(t[0]), None if cond is None else cond.clone()))
        return torch.zeros_like(x_t)


def test_palette_conditions_on_the_noise_filled_input_and_starts_from_it_fully_noised() -> None:
    from medlens.diffusion import add_noise

    x, p, b = _data()
    spy = Spy()
    res = counterfactual_edit(spy, x, p, SCHED, method="palette", brain_masks=b, steps=4, seed=5)
    assert res["t_start"] == 999
    assert res["nfe"] == 4 == len(spy.calls)
    assert [t for _, t, _ in spy.calls] == [999, 666, 333, 0]
    # c is built once per image from the method's generator: its noise first, then the chain's start noise
    g = torch.Generator().manual_seed(5)
    z_c = torch.randn(x.shape, generator=g)
    z_0 = torch.randn(x.shape, generator=g)
    want_c = torch.where(p > 0, z_c, x)
    for _, _, c in spy.calls:
        assert torch.equal(c, want_c)
    outside = (p == 0).expand_as(x)
    assert torch.equal(spy.calls[0][2][outside], x[outside])
    assert torch.allclose(spy.calls[0][0], add_noise(SCHED, x, z_0, 999))  # x_h noised to t = 999, not pure noise
    # nothing is pasted: the whole image is regenerated
    assert not torch.equal(res["edited"][outside], x[outside])
    # a lower strength starts lower
    assert counterfactual_edit(Spy(), x, p, SCHED, method="palette", strength=0.5, steps=2)["t_start"] == 500


def test_palette_same_seed_same_edit_with_a_palette_unet() -> None:
    x, p, b = _data()
    model = build_unet({**TINY, "palette_conditioned": True}, seed=0)
    kw = dict(method="palette", brain_masks=b, steps=3)
    a = counterfactual_edit(model, x, p, SCHED, seed=7, **kw)
    assert a["nfe"] == 3
    assert a["edited"].shape == x.shape
    assert torch.equal(a["edited"], counterfactual_edit(model, x, p, SCHED, seed=7, **kw)["edited"])
    assert not torch.equal(a["edited"], counterfactual_edit(model, x, p, SCHED, seed=8, **kw)["edited"])


def test_palette_needs_a_palette_model_and_the_others_refuse_one() -> None:
    x, p, _ = _data()
    mask_model = build_unet({**TINY, "mask_conditioned": True}, seed=0)
    for model, kind in ((mask_model, "mask-conditioned"), (build_unet(TINY, seed=0), "unconditioned")):
        with pytest.raises(InputError, match="palette method needs a Palette-conditioned model") as err:
            counterfactual_edit(model, x, p, SCHED, method="palette", steps=3)
        assert kind in str(err.value)
        assert "`medlens anomaly train --conditioned palette`" in str(err.value)
        assert "\n" not in str(err.value)
    palette_model = build_unet({**TINY, "palette_conditioned": True}, seed=0)
    for method in ("mededit", "repaint", "sdedit"):
        with pytest.raises(InputError, match=f"the {method} method cannot use the model: it is a Palette model") as err:
            counterfactual_edit(palette_model, x, p, SCHED, method=method, steps=3)
        assert "`medlens anomaly train --conditioned mask`" in str(err.value)
        assert "\n" not in str(err.value)
    # MedEdit with the mask-conditioned model still pastes exactly
    med = counterfactual_edit(mask_model, x, p, SCHED, method="mededit", dilate=3, steps=3)
    keep = (med["region"] <= 0).expand_as(x)
    assert torch.equal(med["edited"][keep], x[keep])


def test_bad_inputs_are_clear() -> None:
    x, p, b = _data()
    model = Zero()
    with pytest.raises(InputError, match="one \\(1, H, W\\) mask per image"):
        counterfactual_edit(model, x, p[:, :, :8], SCHED)
    with pytest.raises(InputError, match="brain masks must have"):
        counterfactual_edit(model, x, p, SCHED, brain_masks=b[:1])
    with pytest.raises(InputError, match=r"scaled to \[-1, 1\]"):
        counterfactual_edit(model, x * 3, p, SCHED)
    with pytest.raises(InputError, match="'method' parameter must be one of"):
        counterfactual_edit(model, x, p, SCHED, method="bogus")


@pytest.mark.reference
@pytest.mark.parametrize(("n", "resample", "jump_length"), [(20, 2, 3), (25, 3, 5), (10, 10, 2), (7, 1, 10)])
def test_jump_path_equals_diffusers_repaint_schedule(n: int, resample: int, jump_length: int) -> None:
    diffusers = pytest.importorskip("diffusers")
    s = diffusers.RePaintScheduler(num_train_timesteps=n)
    s.set_timesteps(n, jump_length=jump_length, jump_n_sample=resample)
    # level k is timestep k − 1 without respacing; diffusers lists the timesteps after the start
    assert jump_path(n, resample=resample, jump_length=jump_length)[1:] == s.timesteps.tolist()
