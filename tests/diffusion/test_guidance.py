"""Guided healthy counterfactuals: classifier guidance (scale s) and classifier-free guidance (weight w).

Toy networks make the paths computable: a class-conditioned "oracle" whose x̂_0 is a fixed image per class
(healthy → ``ref``, ∅ → ``other``), and a linear classifier whose log-probability gradient is known.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from medlens._validation import InputError  # noqa: E402
from medlens.diffusion import make_schedule  # noqa: E402
from medlens.diffusion._guidance import cfg_reconstruct, classifier_reconstruct  # noqa: E402
from medlens.diffusion._reconstruct import partial_reconstruct, score_images  # noqa: E402

SCHED = make_schedule("linear", 100)


def _eps_to(x_t: torch.Tensor, t: int, target: torch.Tensor) -> torch.Tensor:
    bar = SCHED.alpha_bar(int(t))
    return (x_t - bar**0.5 * target) / (1 - bar) ** 0.5


class CondOracle(torch.nn.Module):
    """Class 0 (healthy) → x̂_0 = ref; class 1 → −ref; ∅ (2, or ``cond=None``) → ``other``."""

    null_class = 2

    def __init__(self, ref: torch.Tensor, other: torch.Tensor) -> None:
        super().__init__()
        self.ref, self.other, self.calls = ref, other, 0

    def forward(self, x_t: torch.Tensor, t: int, cond: object = None) -> torch.Tensor:
        n = len(x_t)
        self.calls += n
        c = torch.full((n,), 2) if cond is None else torch.as_tensor(cond).long().reshape(-1).expand(n)
        k = len(self.ref)
        ref, other = self.ref.repeat(n // k + 1, 1, 1, 1)[:n], self.other.repeat(n // k + 1, 1, 1, 1)[:n]
        target = torch.where(
            (c == 0)[:, None, None, None], ref, torch.where((c == 1)[:, None, None, None], -ref, other)
        )
        return _eps_to(x_t, t, target)


class Linear(torch.nn.Module):
    """logits = [a·Σx, 0]: ∇_x log p(0 | x) = a·(1 − p_0) everywhere."""

    config = {"num_classes": 2}

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = a

    def forward(self, x_t: torch.Tensor, t: int) -> torch.Tensor:
        s = self.a * x_t.flatten(1).sum(1)
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def _images(n: int = 3, size: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand((n, 1, size, size), generator=g) * 1.6 - 0.8
    ref = torch.rand((n, 1, size, size), generator=g) * 1.6 - 0.8
    other = torch.rand((n, 1, size, size), generator=g) * 1.6 - 0.8
    return x, ref, other


def test_cfg_with_w_zero_is_the_plain_healthy_path_and_w_minus_one_the_unconditional_one() -> None:
    x, ref, other = _images()
    m = CondOracle(ref, other)
    plain = partial_reconstruct(m, x, SCHED, t0=40, steps=5, cond=0, seed=3)["reconstruction"]
    w0 = cfg_reconstruct(m, x, SCHED, t0=40, steps=5, w=0.0, seed=3)
    assert torch.equal(w0["reconstruction"], plain)
    assert w0["nfe"] == 5
    uncond = partial_reconstruct(m, x, SCHED, t0=40, steps=5, cond=None, seed=3)["reconstruction"]
    wm1 = cfg_reconstruct(m, x, SCHED, t0=40, steps=5, w=-1.0, seed=3)
    torch.testing.assert_close(wm1["reconstruction"], uncond, atol=1e-5, rtol=0)
    assert wm1["nfe"] == 10  # two evaluations per guided step
    # DDIM with an exact denoiser lands on the guided x̂_0: (1+w)·ref − w·other, clipped to [−1, 1]
    w2 = cfg_reconstruct(m, x, SCHED, t0=40, steps=5, w=2.0, seed=3)["reconstruction"]
    torch.testing.assert_close(w2, (3 * ref - 2 * other).clamp(-1, 1), atol=1e-4, rtol=0)


def test_classifier_guidance_with_s_zero_is_plain_ddim() -> None:
    x, ref, other = _images()
    m = CondOracle(ref, other)
    plain = partial_reconstruct(m, x, SCHED, t0=30, steps=4, seed=1)["reconstruction"]
    out = classifier_reconstruct(m, Linear(0.5), x, SCHED, t0=30, steps=4, scale=0.0, seed=1)
    assert torch.equal(out["reconstruction"], plain)
    assert out["nfe"] == out["unet_nfe"] == 4


def test_one_classifier_guided_step_by_hand() -> None:
    x, ref, other = _images(n=2)
    m, clf, s, a = CondOracle(ref, other), Linear(0.01), 3.0, 0.01
    out = classifier_reconstruct(m, clf, x, SCHED, t0=20, steps=1, scale=s, seed=5)
    assert out["nfe"] == 2
    assert out["unet_nfe"] == 1
    t = 19
    eps0 = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    bar = SCHED.alpha_bar(t)
    x_t = bar**0.5 * x + (1 - bar) ** 0.5 * eps0
    p0 = torch.sigmoid(a * x_t.flatten(1).sum(1))[:, None, None, None]
    eps = _eps_to(x_t, t, other) - s * (1 - bar) ** 0.5 * a * (1 - p0)
    want = ((x_t - (1 - bar) ** 0.5 * eps) / bar**0.5).clamp(-1, 1)  # the last DDIM step returns x̂_0
    torch.testing.assert_close(out["reconstruction"], want, atol=1e-5, rtol=0)
    # the guidance pushes towards higher p(healthy): with a > 0 the pixels go up
    plain = classifier_reconstruct(m, clf, x, SCHED, t0=20, steps=1, scale=0.0, seed=5)["reconstruction"]
    assert (out["reconstruction"] >= plain).all()
    assert (out["reconstruction"] > plain).any()


def test_a_collapsed_classifier_is_reported_not_silently_unguided(caplog: pytest.LogCaptureFixture) -> None:
    """Constant logits (a dead classifier head, as the demo's classifier at lr 2e-3) give a zero gradient: the
    result is plain DDIM, which the result counts and a warning says (the --full table had two equal rows)."""
    x, ref, other = _images()
    m = CondOracle(ref, other)
    plain = partial_reconstruct(m, x, SCHED, t0=30, steps=4, seed=1)["reconstruction"]
    with caplog.at_level("WARNING", logger="medlens.diffusion._guidance"):
        dead = classifier_reconstruct(m, Linear(0.0), x, SCHED, t0=30, steps=4, scale=3.0, seed=1)
    assert torch.equal(dead["reconstruction"], plain)
    assert dead["zero_gradient_steps"] == dead["guided_steps"] == 4
    assert "classifier guidance had no effect" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="medlens.diffusion._guidance"):
        live = classifier_reconstruct(m, Linear(0.01), x, SCHED, t0=30, steps=4, scale=3.0, seed=1)
    assert live["zero_gradient_steps"] == 0
    assert "no effect" not in caplog.text


class Zero(torch.nn.Module):
    def forward(self, x_t: torch.Tensor, t: int, cond: object = None) -> torch.Tensor:
        return torch.zeros_like(x_t)


def test_ddim_inversion_round_trips_and_counts_its_evaluations() -> None:
    x, _, _ = _images()
    out = classifier_reconstruct(Zero(), Linear(0.0), x, SCHED, t0=50, steps=6, scale=0.0, encode="ddim")
    torch.testing.assert_close(out["reconstruction"], x, atol=1e-5, rtol=0)
    assert out["nfe"] == 12  # 6 to encode, 6 to decode


def test_guided_methods_through_score_images_and_bad_inputs() -> None:
    x, ref, other = _images()
    m = CondOracle(ref, other)
    for method, kw in (("classifier", {"classifier": Linear(0.01)}), ("cfg", {"weight": 1.0})):
        res = score_images(m, x, SCHED, method=method, t0=20, steps=3, **kw)
        assert res["maps"].shape == (3, 1, 16, 16)
        assert res["maps"].min() >= 0
        assert res["nfe"] == (6 if method == "classifier" else 6)
    assert np.allclose(score_images(m, x, SCHED, method="cfg", t0=0, weight=1.0)["maps"], 0)
    with pytest.raises(InputError, match="classifier"):
        score_images(m, x, SCHED, method="classifier", t0=20)
    with pytest.raises(InputError, match="class-conditioned"):
        cfg_reconstruct(Zero(), x, SCHED, t0=10)
    with pytest.raises(InputError, match="encode"):
        cfg_reconstruct(m, x, SCHED, t0=10, encode="bogus")


@pytest.mark.slow  # imports MONAI (~25 s on a loaded 2-core machine)
def test_noise_aware_classifier_trains_saves_and_loads(tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("monai", reason='monai not installed (pip install "medlens[diffusion]")')
    from medlens.diffusion._guidance import build_classifier, load_classifier, train_classifier

    g = np.random.default_rng(0)
    imgs = g.uniform(-1, -0.5, (16, 1, 16, 16)).astype(np.float32)
    labels = np.arange(16) % 2
    imgs[labels == 1, :, 4:12, 4:12] = 0.9  # the diseased class has a bright square
    cfg = {"channels": [8, 8], "attention_levels": [False, False], "sample_size": 16}
    clf = build_classifier(cfg, seed=0)
    res = train_classifier(clf, imgs, labels, epochs=2, steps_per_epoch=15, batch_size=8, lr=3e-3,
                           num_train_timesteps=100, max_t=20, out=tmp_path / "clf")  # fmt: skip
    hist = [h["train_loss"] for h in res["history"]]
    assert hist[-1] < hist[0]
    loaded, meta = load_classifier(res["classifier_path"])
    assert meta["num_train_timesteps"] == 100
    xs = torch.as_tensor(imgs)
    torch.testing.assert_close(loaded(xs, 3), clf.eval()(xs, 3))
