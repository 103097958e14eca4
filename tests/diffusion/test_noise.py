"""Gaussian and standardised simplex noise: unit variance, determinism per seed, shapes and bad input."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from medlens._validation import InputError  # noqa: E402
from medlens.diffusion import noise_like, simplex_noise  # noqa: E402


@pytest.mark.parametrize("shape", [(64, 64), (48, 32), (8, 24, 24)])
def test_standardised_simplex_noise_has_zero_mean_and_unit_variance(shape: tuple[int, ...]) -> None:
    n = simplex_noise(shape, t=123, seed=4)
    assert n.shape == shape
    assert abs(n.mean()) < 1e-12
    assert n.var() == pytest.approx(1.0, abs=1e-12)


def test_simplex_noise_is_smooth_unlike_white_noise() -> None:
    # neighbouring pixels of a 64-pixel-period field are strongly correlated; white noise's are not
    n = simplex_noise((64, 64), seed=0)
    lag1 = np.corrcoef(n[:, :-1].ravel(), n[:, 1:].ravel())[0, 1]
    assert lag1 > 0.5


def test_simplex_noise_depends_on_seed_and_t_only() -> None:
    a = simplex_noise((32, 32), t=5, seed=1)
    assert np.array_equal(a, simplex_noise((32, 32), t=5, seed=1))
    assert not np.allclose(a, simplex_noise((32, 32), t=5, seed=2))
    assert not np.allclose(a, simplex_noise((32, 32), t=300, seed=1))


def test_unstandardised_octaves_add_up() -> None:
    # one octave at period f is the raw OpenSimplex field; two add the second at half the period, amplitude p
    one = simplex_noise((16, 16), octaves=1, frequency=8, seed=3, standardize=False)
    two = simplex_noise((16, 16), octaves=2, frequency=8, persistence=0.5, seed=3, standardize=False)
    half = simplex_noise((16, 16), octaves=1, frequency=4, seed=3, standardize=False)
    np.testing.assert_allclose(two, one + 0.5 * half, atol=1e-12)


def test_noise_like_is_reproducible_with_a_generator() -> None:
    x = torch.zeros(2, 3, 16, 16)
    a = noise_like(x, "simplex", generator=torch.Generator().manual_seed(0), t=[10, 20])
    b = noise_like(x, "simplex", generator=torch.Generator().manual_seed(0), t=[10, 20])
    assert a.shape == x.shape
    assert a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a[0, 0], a[0, 1])  # each (item, channel) has its own field
    flat = a.reshape(6, -1)
    torch.testing.assert_close(flat.var(dim=1, unbiased=False), torch.ones(6), atol=1e-5, rtol=0)
    g = noise_like(x, "gaussian", generator=torch.Generator().manual_seed(0))
    assert torch.equal(g, torch.randn(x.shape, generator=torch.Generator().manual_seed(0)))


def test_bad_noise_requests_are_clear() -> None:
    with pytest.raises(InputError, match="shape"):
        simplex_noise((64,))
    with pytest.raises(InputError, match="octaves"):
        simplex_noise((8, 8), octaves=0)
    with pytest.raises(InputError, match="constant"):
        simplex_noise((1, 1))
    with pytest.raises(InputError, match="'noise' parameter"):
        noise_like(torch.zeros(1, 1, 4, 4), "pink")
    with pytest.raises(InputError, match="batch"):
        noise_like(torch.zeros(4, 4), "simplex")
