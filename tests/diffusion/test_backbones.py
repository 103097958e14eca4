"""UNet factories, the uniform call, safetensors round trips and MONAI Generative checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai", reason='monai not installed (pip install "medlens[diffusion]")')
pytest.importorskip("diffusers", reason='diffusers not installed (pip install "medlens[diffusion]")')

from medlens._validation import InputError  # noqa: E402
from medlens.diffusion import DEFAULT_UNET, build_unet, load_monai_generative, load_unet, save_unet  # noqa: E402

TINY = {"channels": [16, 32], "attention_levels": [False, True], "norm_num_groups": 8, "num_head_channels": 16}


def _old_generative_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename MONAI-core UNet keys to MONAI Generative's (the inverse of MONAI's ``load_old_state_dict``)."""
    old = {}
    for k, v in state.items():
        k = k.replace(".attn.to_q.", ".to_q.").replace(".attn.to_k.", ".to_k.").replace(".attn.to_v.", ".to_v.")
        k = k.replace(".attn.out_proj.", ".proj_attn.").replace(".postconv.", ".conv.")
        old[k] = v
    return old


@pytest.mark.parametrize("backbone", ["monai", "diffusers"])
def test_both_backbones_predict_noise_of_the_input_shape(backbone: str) -> None:
    model = build_unet({**TINY, "backbone": backbone, "sample_size": 16}, seed=0)
    x = torch.randn(3, 1, 16, 16)
    eps = model(x, 5)
    assert eps.shape == x.shape
    torch.testing.assert_close(model(x, torch.tensor([5, 5, 5])), eps)  # an int t broadcasts


def test_seeded_builds_are_identical_and_leave_the_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a, b = build_unet(TINY, seed=3), build_unet(TINY, seed=3)
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_default_demo_unet_is_under_two_million_parameters() -> None:
    n = sum(p.numel() for p in build_unet(seed=0).parameters())
    assert DEFAULT_UNET["sample_size"] == 64
    assert 0.5e6 < n <= 2e6


@pytest.mark.parametrize("backbone", ["monai", "diffusers"])
def test_class_conditioned_model_uses_the_null_class_without_cond(backbone: str) -> None:
    model = build_unet({**TINY, "backbone": backbone, "sample_size": 16, "num_classes": 2}, seed=1).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # MONAI zero-initialises its output convolution: give it weights to see the class
        for p in model.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    x = torch.randn(2, 1, 16, 16)
    assert model.null_class == 2
    with torch.no_grad():
        torch.testing.assert_close(model(x, 7), model(x, 7, cond=torch.tensor([2, 2])))
        assert not torch.allclose(model(x, 7, cond=0), model(x, 7, cond=1))


def test_safetensors_round_trip(tmp_path: Path) -> None:
    model = build_unet({**TINY, "num_classes": 3}, seed=2)
    save_unet(tmp_path / "m.safetensors", model, metadata={"schedule": "linear"})
    back, meta = load_unet(tmp_path / "m.safetensors")
    assert meta["schedule"] == "linear"
    assert back.config == model.config
    for (k, v), (k2, v2) in zip(model.state_dict().items(), back.state_dict().items(), strict=True):
        assert k == k2
        assert torch.equal(v, v2)


def test_monai_generative_state_dict_loads(tmp_path: Path) -> None:
    source = build_unet(TINY, seed=4)
    old = _old_generative_keys(source.net.state_dict())
    assert any(".proj_attn." in k for k in old)
    assert any("upsampler.conv.conv" in k for k in old)
    torch.save({"model": old}, tmp_path / "generative.pt")  # as training scripts wrap it
    target = load_monai_generative(build_unet(TINY, seed=5), tmp_path / "generative.pt").eval()
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(target(x, 9), source.eval()(x, 9), rtol=0, atol=0)
    # a dict works too, and a config that does not fit is a clear error
    load_monai_generative(build_unet(TINY, seed=6), old)
    with pytest.raises(InputError, match="does not fit"):
        load_monai_generative(build_unet({**TINY, "channels": [16, 48], "norm_num_groups": 8}), dict(old))


def test_a_pickle_with_code_is_refused(tmp_path: Path) -> None:
    torch.save({"model": {"w": torch.zeros(1)}, "hook": Path("x")}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="weights-only"):
        load_monai_generative(build_unet(TINY), tmp_path / "evil.pt")


def test_bad_configs_are_clear(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown UNet config keys"):
        build_unet({"chanels": [32]})
    with pytest.raises(InputError, match="multiple of norm_num_groups"):
        build_unet({"channels": [24, 48], "attention_levels": [False, True], "norm_num_groups": 16})
    with pytest.raises(InputError, match="one flag per level"):
        build_unet({"channels": [16, 32], "attention_levels": [True], "norm_num_groups": 8})
    with pytest.raises(InputError, match="not class-conditioned"):
        build_unet(TINY)(torch.zeros(1, 1, 16, 16), 0, cond=1)
    with pytest.raises(InputError, match="no diffusion model file"):
        load_unet(tmp_path / "missing.safetensors")
