"""Anomaly localisation by reconstruction: AnoDDPM, patched, THOR; maps and post-processing.

An "oracle" denoiser that always predicts the ε leading back to a fixed healthy image makes every
reconstruction computable by hand: DDIM (eta 0) lands exactly on that image, so the map is the lesion.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from medlens._validation import InputError  # noqa: E402
from medlens.diffusion import make_schedule  # noqa: E402
from medlens.diffusion._maps import (  # noqa: E402
    FeatureDistance,
    drop_small_components,
    harmonic_mean,
    normalize_maps,
    postprocess_maps,
    temporal_map,
    thor_harmonize,
)
from medlens.diffusion._reconstruct import (  # noqa: E402
    chain,
    partial_reconstruct,
    patched_reconstruct,
    score_images,
    thor_reconstruct,
)

SCHED = make_schedule("linear", 100)


class Oracle:
    """ε̂(x_t, t) = (x_t − √ᾱ_t·ref)/√(1−ᾱ_t): x̂_0 is always ``ref``; counts images evaluated."""

    def __init__(self, ref: torch.Tensor) -> None:
        self.ref, self.calls = ref, 0

    def __call__(self, x_t: torch.Tensor, t: int, cond: object = None) -> torch.Tensor:
        self.calls += len(x_t)
        bar = SCHED.alpha_bar(int(t))
        return (x_t - bar**0.5 * self.ref[: len(x_t)]) / (1 - bar) ** 0.5


def _pair(n: int = 3, size: int = 16) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    yy, xx = np.mgrid[:size, :size]
    ref = np.where((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 2.5) ** 2, 0.2, -1.0)
    lesion = np.zeros((size, size), bool)
    lesion[6:9, 7:10] = True
    x = np.where(lesion, 0.9, ref)
    r = torch.tensor(np.repeat(ref[None, None], n, 0), dtype=torch.float32)
    a = torch.tensor(np.repeat(x[None, None], n, 0), dtype=torch.float32)
    return a, r, lesion


def test_t0_zero_returns_the_input_without_network_calls() -> None:
    x, ref, _ = _pair()
    model = Oracle(ref)
    for res in (
        partial_reconstruct(model, x, SCHED, t0=0),
        patched_reconstruct(model, x, SCHED, t0=0, patch=8),
        thor_reconstruct(model, x, SCHED, t0=0),
    ):
        assert torch.equal(res["reconstruction"], x)
        assert res["nfe"] == 0
    assert model.calls == 0


def test_thor_step_with_an_all_zero_map_returns_the_input() -> None:
    x, ref, _ = _pair()
    out = thor_harmonize(x, ref, torch.zeros((3, 1, 16, 16)))
    assert torch.equal(out, x)


def test_thor_step_with_an_all_one_map_returns_the_prediction() -> None:
    x, ref, _ = _pair()
    assert torch.allclose(thor_harmonize(x, ref, torch.ones((3, 1, 16, 16))), ref)


def test_chain_respacing_and_nfe_count_real_calls() -> None:
    assert chain(100, None, 100)[0] == (99, 98)
    assert len(chain(100, None, 100)) == 100
    assert chain(10, 3, 100) == [(9, 4), (4, 0), (0, -1)]
    x, ref, _ = _pair(n=5)
    model = Oracle(ref)
    res = partial_reconstruct(model, x, SCHED, t0=40, steps=7, batch_size=2)
    assert res["nfe"] == 7
    assert model.calls == 7 * 5  # every image evaluated once per step, across 3 batches


def test_ddim_with_an_exact_denoiser_reconstructs_the_healthy_image() -> None:
    x, ref, lesion = _pair()
    res = partial_reconstruct(Oracle(ref), x, SCHED, t0=60, steps=6)
    assert torch.allclose(res["reconstruction"], ref, atol=1e-5)
    # the map is the lesion: |0.9 − 0.2| / 2 inside, 0 outside
    out = score_images(Oracle(ref), x, SCHED, method="anoddpm", t0=60, steps=6)
    expected = np.where(lesion, 0.35, 0.0)
    np.testing.assert_allclose(out["maps"][0, 0], expected, atol=1e-5)
    assert out["nfe"] == 6
    assert out["maps"].dtype == np.float32


def test_patched_reconstruction_averages_exact_patches() -> None:
    x, ref, _ = _pair(n=2)
    model = Oracle(ref)
    res = patched_reconstruct(model, x, SCHED, t0=30, patch=8, stride=4)
    assert res["n_patches"] == 9  # starts 0, 4, 8 on each axis
    assert res["nfe"] == 9
    assert model.calls == 9 * 2
    assert torch.allclose(res["reconstruction"], ref, atol=1e-5)


def test_thor_with_an_exact_denoiser_maps_the_lesion_and_keeps_healthy_pixels() -> None:
    x, ref, lesion = _pair()
    res = thor_reconstruct(Oracle(ref), x, SCHED, t0=50, steps=10, harmonize_at=(40, 20, 5), keep_intermediates=True)
    assert res["nfe"] == 10
    assert len(res["intermediates"]["maps"][0]) == 3  # every harmonisation point is passed once
    np.testing.assert_allclose(res["map"][0, 0].numpy(), lesion.astype(float), atol=1e-5)
    rec = res["reconstruction"][0, 0].numpy()
    far = np.ones_like(lesion)
    far[:15, :16] = False  # the bottom row lies beyond the closing/dilation reach of the lesion
    np.testing.assert_allclose(rec[far], x[0, 0].numpy()[far], atol=1e-5)
    np.testing.assert_allclose(rec[lesion], ref[0, 0].numpy()[lesion], atol=1e-5)


def test_simplex_and_ddpm_sampling_are_seeded() -> None:
    x, ref, _ = _pair(n=2)
    a = partial_reconstruct(Oracle(ref), x, SCHED, t0=20, steps=4, noise="simplex", sampler="ddpm", seed=3)
    b = partial_reconstruct(Oracle(ref), x, SCHED, t0=20, steps=4, noise="simplex", sampler="ddpm", seed=3)
    assert torch.equal(a["reconstruction"], b["reconstruction"])


def test_harmonic_mean_equals_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    maps = rng.uniform(0.01, 1, (4, 2, 1, 5, 5))
    ours = harmonic_mean([torch.tensor(m) for m in maps]).numpy()
    np.testing.assert_allclose(ours, stats.hmean(maps, axis=0), rtol=1e-10)
    maps[1, 0, 0, 2, 2] = 0.0
    assert harmonic_mean([torch.tensor(m) for m in maps])[0, 0, 2, 2] == 0


def test_feature_distance_is_zero_for_equal_images_and_positive_otherwise() -> None:
    x, ref, lesion = _pair(n=2)
    d = FeatureDistance()
    assert torch.allclose(d(x, x), torch.zeros(2, 1, 16, 16))
    dist = d(ref, x)
    assert dist.shape == (2, 1, 16, 16)
    assert float(dist[0, 0][torch.tensor(lesion)].mean()) > float(dist[0, 0, 0:2, 0:2].mean())
    m = temporal_map(x, ref, perceptual=d)
    assert float(m.amax()) == pytest.approx(1.0)


def test_postprocessing_erodes_filters_and_drops_small_components() -> None:
    maps = np.zeros((1, 1, 25, 25), np.float32)
    maps[0, 0, 0, :] = 1.0  # on the brain's border
    maps[0, 0, 12, 12] = 1.0  # an isolated spike
    maps[0, 0, 5:10, 5:10] = 0.5
    brain = np.ones_like(maps, bool)
    out = postprocess_maps(maps, brain=brain, erode=1, median=3)
    assert out[0, 0, 0].max() == 0  # the eroded mask removes the border
    assert out[0, 0, 12, 12] == 0  # the median filter removes the spike
    assert out[0, 0, 7, 7] == 0.5
    b = np.zeros((1, 1, 8, 8), bool)
    b[0, 0, 0, 0] = True
    b[0, 0, 4:7, 4:7] = True
    kept = drop_small_components(b, 2)
    assert not kept[0, 0, 0, 0]
    assert kept[0, 0, 4:7, 4:7].all()
    np.testing.assert_allclose(normalize_maps(maps * 2)[0].max(), 1.0)


def test_bad_inputs_are_input_errors() -> None:
    x, ref, _ = _pair()
    with pytest.raises(InputError, match="t0"):
        partial_reconstruct(Oracle(ref), x, SCHED, t0=101)
    with pytest.raises(InputError, match="steps"):
        partial_reconstruct(Oracle(ref), x, SCHED, t0=5, steps=6)
    with pytest.raises(InputError, match=r"\[-1, 1\]"):
        partial_reconstruct(Oracle(ref), (x + 1) * 100, SCHED, t0=5)
    with pytest.raises(InputError, match="harmonisation"):
        thor_reconstruct(Oracle(ref), x, SCHED, t0=5, harmonize_at=(7,))
    with pytest.raises(InputError, match="method"):
        score_images(Oracle(ref), x, SCHED, method="bogus")


@pytest.mark.slow  # importing MONAI alone takes ~25 s on a loaded 2-core machine
@pytest.mark.parametrize("method", ["anoddpm", "simplex", "patched", "thor"])
def test_every_method_runs_on_a_real_unet(method: str) -> None:
    pytest.importorskip("monai", reason='monai not installed (pip install "medlens[diffusion]")')
    from medlens.diffusion import build_unet

    tiny = {"channels": [8, 16], "attention_levels": [False, False], "norm_num_groups": 8,
            "num_head_channels": 8, "sample_size": 16}  # fmt: skip
    model = build_unet(tiny, seed=0).eval()
    x, _, _ = _pair(n=3)
    out = score_images(model, x, SCHED, method=method, t0=10, steps=2, batch_size=2, perceptual=FeatureDistance())
    assert out["maps"].shape == (3, 1, 16, 16)
    assert np.isfinite(out["maps"]).all()
    assert out["maps"].min() >= 0
    assert out["nfe"] == (9 if method == "patched" else 2)  # patched: 9 patches of 8 px, one x̂0 step each
    assert out["seconds_per_image"] > 0
