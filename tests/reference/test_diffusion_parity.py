"""Our schedules, noising and DDPM/DDIM steps equal diffusers' and MONAI's schedulers; our vectorised
OpenSimplex noise equals the ``opensimplex`` package's arrays for the same seed.

Each step comparison feeds both sides the same random ε̂ and x_t (fixed generator) and the same noise draw
(the same generator state), and compares ``prev_sample`` and ``pred_original_sample`` to 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers", reason='diffusers not installed (pip install "medlens[diffusion]")')
monai_sched = pytest.importorskip(
    "monai.networks.schedulers", reason='monai not installed (pip install "medlens[diffusion]")'
)
opensimplex = pytest.importorskip("opensimplex", reason='opensimplex not installed (pip install "medlens[diffusion]")')

from medlens.diffusion import (  # noqa: E402
    add_noise,
    ddim_step,
    ddpm_step,
    make_schedule,
    opensimplex_noise2,
    opensimplex_noise3,
    predict_x0,
    timestep_pairs,
    timesteps,
)

pytestmark = pytest.mark.reference

TOL = dict(rtol=0, atol=1e-6)
DIFFUSERS_NAMES = {"linear": "linear", "scaled_linear": "scaled_linear", "squaredcos_cap_v2": "squaredcos_cap_v2"}
MONAI_NAMES = {"linear": "linear_beta", "scaled_linear": "scaled_linear_beta", "cosine": "cosine"}


def _tensors(seed: int, shape: tuple[int, ...] = (2, 1, 8, 8)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


@pytest.mark.parametrize("name", sorted(DIFFUSERS_NAMES))
@pytest.mark.parametrize("n", [1000, 250])
def test_schedules_equal_diffusers(name: str, n: int) -> None:
    ref = diffusers.DDPMScheduler(num_train_timesteps=n, beta_schedule=DIFFUSERS_NAMES[name])
    ours = make_schedule(name, n)
    assert torch.equal(ours.betas, ref.betas)
    assert torch.equal(ours.alphas_cumprod, ref.alphas_cumprod)


@pytest.mark.parametrize("name", sorted(MONAI_NAMES))
@pytest.mark.parametrize("n", [1000, 100])
def test_schedules_equal_monai(name: str, n: int) -> None:
    ref = monai_sched.DDPMScheduler(num_train_timesteps=n, schedule=MONAI_NAMES[name])
    ours = make_schedule(name, n)
    assert torch.equal(ours.betas, ref.betas)
    assert torch.equal(ours.alphas_cumprod, ref.alphas_cumprod)


def test_add_noise_equals_both_libraries() -> None:
    x0, noise = _tensors(0, (4, 1, 8, 8))
    t = torch.tensor([0, 10, 500, 999])
    ours = add_noise(make_schedule("linear"), x0, noise, t)
    torch.testing.assert_close(ours, diffusers.DDPMScheduler().add_noise(x0, noise, t), **TOL)
    torch.testing.assert_close(ours, monai_sched.DDPMScheduler().add_noise(x0, noise, t), **TOL)


@pytest.mark.parametrize("t", [999, 500, 37, 1, 0])
@pytest.mark.parametrize("clip", [True, False])
def test_ddpm_step_equals_diffusers_and_monai(t: int, clip: bool) -> None:
    eps, x_t = _tensors(t)
    sched, c = make_schedule("linear"), 1.0 if clip else None

    def ours(unit_step: str) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(7)
        return ddpm_step(sched, eps, t, x_t, generator=g, clip=c, unit_step=unit_step)

    ref = diffusers.DDPMScheduler(clip_sample=clip).step(eps, t, x_t, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(ours("ratio")[0], ref.prev_sample, **TOL)
    torch.testing.assert_close(ours("ratio")[1], ref.pred_original_sample, **TOL)
    mref = monai_sched.DDPMScheduler(clip_sample=clip).step(eps, t, x_t, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(ours("stored")[0], mref[0], **TOL)
    torch.testing.assert_close(ours("stored")[1], mref[1], **TOL)
    if not clip:
        torch.testing.assert_close(predict_x0(sched, x_t, eps, t), ref.pred_original_sample, **TOL)


@pytest.mark.parametrize("name", ["linear", "squaredcos_cap_v2", "cosine"])
def test_last_ddpm_step_returns_the_predicted_clean_image(name: str) -> None:
    eps, x_t = _tensors(2)
    x_prev, x0 = ddpm_step(make_schedule(name), eps, 0, x_t, clip=None)
    assert torch.equal(x_prev, x0)


@pytest.mark.parametrize("spacing", ["leading", "linspace", "trailing"])
def test_respaced_ddpm_steps_equal_diffusers(spacing: str) -> None:
    ref = diffusers.DDPMScheduler(beta_schedule="squaredcos_cap_v2", timestep_spacing=spacing)
    ref.set_timesteps(10)
    ours_ts = timesteps(1000, 10, spacing=spacing)
    assert ours_ts.tolist() == ref.timesteps.tolist()
    sched = make_schedule("squaredcos_cap_v2")
    for t, prev in timestep_pairs(ours_ts):
        eps, x_t = _tensors(t)
        ours = ddpm_step(sched, eps, t, x_t, prev_t=prev, generator=torch.Generator().manual_seed(t))
        theirs = ref.step(eps, t, x_t, generator=torch.Generator().manual_seed(t))
        torch.testing.assert_close(ours[0], theirs.prev_sample, **TOL)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("spacing", ["leading", "linspace", "trailing"])
def test_ddim_steps_equal_diffusers(eta: float, spacing: str) -> None:
    ref = diffusers.DDIMScheduler(timestep_spacing=spacing)
    ref.set_timesteps(20)
    assert timesteps(1000, 20, spacing=spacing).tolist() == ref.timesteps.tolist()
    sched = make_schedule("linear")
    for t in ref.timesteps.tolist()[::4]:
        eps, x_t = _tensors(t)
        prev = t - 1000 // 20  # diffusers' DDIM always steps by T // n
        ours = ddim_step(sched, eps, t, x_t, prev_t=max(prev, -1), eta=eta, generator=torch.Generator().manual_seed(3))
        theirs = ref.step(eps, t, x_t, eta=eta, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(ours[0], theirs.prev_sample, **TOL)
        torch.testing.assert_close(ours[1], theirs.pred_original_sample, **TOL)


@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddim_steps_equal_monai(eta: float, schedule: str) -> None:
    n_train = 1000 if schedule == "linear" else 200
    ref = monai_sched.DDIMScheduler(num_train_timesteps=n_train, schedule=MONAI_NAMES[schedule])
    ref.set_timesteps(50)
    sched = make_schedule(schedule, n_train)
    for t in ref.timesteps.tolist()[::7]:
        eps, x_t = _tensors(t)
        prev = t - n_train // 50
        ours = ddim_step(sched, eps, t, x_t, prev_t=max(prev, -1), eta=eta, generator=torch.Generator().manual_seed(5))
        theirs = ref.step(eps, t, x_t, eta=eta, generator=torch.Generator().manual_seed(5))
        torch.testing.assert_close(ours[0], theirs[0], **TOL)
        torch.testing.assert_close(ours[1], theirs[1], **TOL)


@pytest.mark.parametrize("seed", [0, 3, 12345, -7, 2**40 + 3])
def test_opensimplex_arrays_equal_the_package(seed: int) -> None:
    rng = np.random.default_rng(abs(seed) % 1000)
    x, y, z = rng.uniform(-40, 40, 24), rng.uniform(-40, 40, 20), rng.uniform(-40, 40, 6)
    ref = opensimplex.OpenSimplex(seed)
    np.testing.assert_allclose(opensimplex_noise3(x, y, z, seed), ref.noise3array(x, y, z), rtol=0, atol=1e-12)
    np.testing.assert_allclose(opensimplex_noise2(x, y, seed), ref.noise2array(x, y), rtol=0, atol=1e-12)


def test_opensimplex_dense_grid_covers_every_region() -> None:
    # a dense regular grid visits all three regions of the 3-D cell and every branch that picks the extras
    g = np.linspace(0, 3, 31)
    np.testing.assert_allclose(opensimplex_noise3(g, g, g, 11), opensimplex.OpenSimplex(11).noise3array(g, g, g),
                               rtol=0, atol=1e-12)  # fmt: skip
    assert opensimplex_noise3(g[:1], g[:1], g[:1], 11)[0, 0, 0] == pytest.approx(
        opensimplex.OpenSimplex(11).noise3(0, 0, 0)
    )
