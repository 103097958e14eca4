"""The cosine-with-warmup schedule: hand-computed factors, and transformers' schedule step for step."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from medlens._validation import InputError  # noqa: E402
from medlens.training import cosine_warmup_factor, cosine_with_warmup, warmup_steps  # noqa: E402

PAIRS = [(0, 1), (0, 10), (1, 1), (1, 7), (3, 10), (10, 10), (5, 100), (25, 250), (7, 13)]


def _lrs(sched_factory, warmup: int, total: int, base: float = 0.1) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    sched = sched_factory(opt, warmup, total)
    out = []
    for _ in range(total + 1):  # the rate of every update, and the one after the last
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_factors_by_hand():
    # warmup 2 of 6 steps: 0, 1/2, then a half cosine over 4 steps
    f = [cosine_warmup_factor(s, warmup_steps=2, total_steps=6) for s in range(8)]
    expected = [0.0, 0.5, 1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4)), 0, 0]
    assert f == pytest.approx(expected, abs=1e-15)
    assert f[6:] == [0.0, 0.0]  # stays at 0 past the end
    # shifted warmup: the first update already at lr / warmup, full rate on the last warmup step
    g = [cosine_warmup_factor(s, warmup_steps=4, total_steps=8, warmup_from_zero=False) for s in range(5)]
    assert g == [0.25, 0.5, 0.75, 1.0, 1.0]


@pytest.mark.reference
@pytest.mark.parametrize(("warmup", "total"), PAIRS, ids=[f"w{w}-t{t}" for w, t in PAIRS])
def test_equals_transformers_cosine_with_warmup(warmup, total):
    tr = pytest.importorskip("transformers")
    ours = _lrs(lambda o, w, t: cosine_with_warmup(o, warmup_steps=w, total_steps=t), warmup, total)
    theirs = _lrs(
        lambda o, w, t: tr.get_cosine_schedule_with_warmup(o, num_warmup_steps=w, num_training_steps=t),
        warmup,
        total,
    )
    assert ours == theirs  # equal floats at every step, not approximately


def test_warmup_steps_from_a_fraction():
    assert [warmup_steps(100, f) for f in (0.0, 0.1, 0.25)] == [0, 10, 25]
    assert warmup_steps(3, 0.1) == 1  # never rounds a requested warmup away
    with pytest.raises(InputError, match=r"warmup is a fraction of the steps in \[0, 1\), got 1.5"):
        warmup_steps(10, 1.5)


def test_bad_step_counts_are_clear_errors():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(InputError, match="total_steps must be >= 1, got 0"):
        cosine_with_warmup(opt, warmup_steps=0, total_steps=0)
    with pytest.raises(InputError, match=r"warmup_steps must be in \[0, total_steps = 5\], got 6"):
        cosine_with_warmup(opt, warmup_steps=6, total_steps=5)


def test_the_scheduler_state_is_plain_data():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = cosine_with_warmup(opt, warmup_steps=2, total_steps=5)
    assert sched.state_dict()["lr_lambdas"] == [None]  # a plain function: nothing of it is stored
