"""fan_out (per-item work on threads, results handed back to the caller) and RateLimiter (request spacing)."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlens._validation import InputError
from medlens.executors import RateLimiter, check_fan_out_options, fan_out


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-50, 50), max_size=30), st.integers(1, 6))
def test_fan_out_returns_every_item_once_whatever_the_concurrency(items, workers):
    got = list(fan_out(items, lambda x: x * x, workers=workers))
    assert sorted(got) == sorted((x, x * x) for x in items)
    if workers == 1:
        assert got == [(x, x * x) for x in items]  # a plain loop, in input order


def test_fan_out_keeps_concurrency_requests_in_flight_and_no_more():
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def slow(x):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.03)
        with lock:
            state["now"] -= 1
        return x

    seen_in = []
    for item, _ in fan_out(range(12), slow, workers=3):
        seen_in.append(threading.current_thread() is threading.main_thread())
        assert item in range(12)
    assert state["peak"] == 3
    assert all(seen_in)  # results are handed back in the caller's thread (where the run log is written)


def test_an_error_stops_new_items_yields_those_in_flight_then_raises():
    started = []
    lock = threading.Lock()

    def work(x):
        with lock:
            started.append(x)
        if x == 1:
            raise RuntimeError("boom on 1")
        time.sleep(0.05)
        return x

    done = []

    def consume():
        for item, _ in fan_out(range(50), work, workers=3):
            done.append(item)

    with pytest.raises(RuntimeError, match="boom on 1"):
        consume()
    assert set(done) == set(started) - {1}  # everything that started (but the failure) was handed back
    assert len(started) <= 3 + 2  # no new item once the error was seen (a slot may refill before it surfaced)


def test_rate_limiter_spaces_slots_across_threads():
    clock = [100.0]
    limiter = RateLimiter(4.0, clock=lambda: clock[0])
    assert [limiter.reserve() for _ in range(4)] == [0.0, 0.25, 0.5, 0.75]
    clock[0] = 102.0  # idle time is not banked: the next slot is now, then spaced again
    assert [limiter.reserve() for _ in range(2)] == [0.0, 0.25]

    real = RateLimiter(50.0)
    stamps = []
    lock = threading.Lock()

    def hit(_):
        real.wait()
        with lock:
            stamps.append(time.monotonic())

    list(fan_out(range(6), hit, workers=6))
    stamps.sort()
    assert stamps[-1] - stamps[0] >= 5 * 0.02 - 0.005


@pytest.mark.parametrize(
    ("workers", "rate", "words"),
    [(0, None, "--workers must be an integer in [1, 256]"), (True, None, "--workers"),
     (1, 0, "--rate-limit must be a positive number"), (1, float("nan"), "--rate-limit"), (1, "3", "--rate-limit")],
)  # fmt: skip
def test_options_are_checked(workers, rate, words):
    with pytest.raises(InputError, match=words.replace("[", r"\[").replace("]", r"\]")):
        check_fan_out_options(workers, rate)


@pytest.mark.parametrize(
    ("args", "endpoint", "words"),
    [
        (("ray",), True, "--executor ray runs a --model-path model on Ray actors"),
        (("ray", None, 1, 2.0), False, "--rate-limit spaces the requests sent to --llm-url; --executor ray"),
        (("ray", None, 0), False, "--workers must be an integer >= 1"),
        (("local", "auto"), False, "--ray-address applies to --executor ray only"),
        (("local", "auto"), True, "--ray-address applies to --executor ray only"),
        (("spark",), False, "--executor"),
        (("local", None, 2), False, "--workers overlaps requests to --llm-url.*add --executor ray"),
        (("local", None, 1, 2.0), False, "--rate-limit spaces the requests sent to --llm-url"),
        (("local", None, 0), True, "--workers must be an integer in"),
    ],
)
def test_item_options_refuse_each_bad_combination(args, endpoint, words):
    from medlens.executors import check_item_options

    with pytest.raises(InputError, match=words.replace("[", r"\[")):
        check_item_options(*args, endpoint=endpoint)


def test_item_options_accept_the_good_ones():
    from medlens.executors import check_item_options

    check_item_options("ray", "auto", 4, endpoint=False)  # 4 actors with a --model-path model (or no model)
    check_item_options("local", None, 8, 3.0, endpoint=True)  # 8 requests in flight to --llm-url, 3 per second
    check_item_options("local", endpoint=False)
