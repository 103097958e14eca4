"""Schedules and steps on hand-checkable cases (library parity is in tests/reference/test_diffusion_parity.py)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from medlens._validation import InputError  # noqa: E402
from medlens.diffusion import (  # noqa: E402
    add_noise,
    ddim_step,
    ddpm_step,
    make_schedule,
    predict_x0,
    timestep_pairs,
    timesteps,
)


def test_linear_schedule_by_hand() -> None:
    s = make_schedule("linear", 3, beta_start=0.1, beta_end=0.3)
    torch.testing.assert_close(s.betas, torch.tensor([0.1, 0.2, 0.3]))
    torch.testing.assert_close(s.alphas_cumprod, torch.tensor([0.9, 0.72, 0.504]))


def test_add_noise_then_predict_x0_round_trips() -> None:
    s = make_schedule("cosine", 100)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(3, 1, 4, 4, generator=g) * 2 - 1, torch.randn(3, 1, 4, 4, generator=g)
    t = torch.tensor([0, 50, 99])
    x_t = add_noise(s, x0, eps, t)
    torch.testing.assert_close(predict_x0(s, x_t, eps, t), x0, atol=2e-4, rtol=0)
    # one timestep for all items broadcasts
    torch.testing.assert_close(add_noise(s, x0, eps, 50), add_noise(s, x0, eps, torch.tensor([50, 50, 50])))


def test_deterministic_ddim_with_the_true_noise_recovers_x0() -> None:
    # with ε̂ = the ε that made x_t, a DDIM step (eta 0) to any earlier t lands on the noised x_0 exactly
    s = make_schedule("linear", 1000)
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.rand(1, 1, 8, 8, generator=g) * 2 - 1, torch.randn(1, 1, 8, 8, generator=g)
    x_prev, x0_hat = ddim_step(s, eps, 600, add_noise(s, x0, eps, 600), prev_t=300)
    torch.testing.assert_close(x0_hat, x0, atol=1e-5, rtol=0)
    torch.testing.assert_close(x_prev, add_noise(s, x0, eps, 300), atol=1e-5, rtol=0)
    final, _ = ddim_step(s, eps, 300, x_prev, prev_t=-1)
    torch.testing.assert_close(final, x0, atol=1e-5, rtol=0)


def test_ddpm_step_uses_the_given_noise() -> None:
    s = make_schedule("linear", 10)
    eps, x = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    z = torch.ones_like(x)
    a, _ = ddpm_step(s, eps, 5, x, noise=z, clip=None)
    b, _ = ddpm_step(s, eps, 5, x, noise=-z, clip=None)
    bar = s.alphas_cumprod
    sigma = ((1 - bar[4]) / (1 - bar[5]) * s.betas[5]) ** 0.5
    torch.testing.assert_close((a - b) / 2, sigma * z)


def test_timesteps_and_pairs() -> None:
    assert timesteps(10, 10, spacing="linspace").tolist() == list(range(9, -1, -1))
    assert timesteps(1000, 4, spacing="leading", steps_offset=1).tolist() == [751, 501, 251, 1]
    assert timestep_pairs(timesteps(100, 2, spacing="trailing")) == [(99, 49), (49, -1)]


def test_bad_schedule_input_is_clear() -> None:
    with pytest.raises(InputError, match="'schedule' parameter must be one of"):
        make_schedule("cosin")
    with pytest.raises(InputError, match="integer timestep in \\[0, 9\\]"):
        ddpm_step(make_schedule("linear", 10), torch.zeros(1), 10, torch.zeros(1))
    with pytest.raises(InputError, match="prev_t"):
        ddim_step(make_schedule("linear", 10), torch.zeros(1), 3, torch.zeros(1), prev_t=5)
    with pytest.raises(InputError, match="strictly descending"):
        timestep_pairs([1, 2])
    with pytest.raises(InputError, match="num_steps"):
        timesteps(10, 11)
    with pytest.raises(InputError, match="shape"):
        add_noise(make_schedule("linear", 10), torch.zeros(1, 2), torch.zeros(2, 1), 0)
