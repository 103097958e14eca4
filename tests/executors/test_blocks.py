"""Block plans and their assembly, the executor options, and a missing Ray (no Ray is started here)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from medlens._validation import InputError
from medlens.executors import (
    LocalExecutor,
    block_size_for,
    check_executor_options,
    make_executor,
    plan_blocks,
    run_blocks,
)


class Square:
    """A task: ``task()`` 'loads a model' (counted) and returns a function of one block."""

    loads = 0

    def __call__(self):
        Square.loads += 1
        return lambda items: np.array([[x, x * x] for x in items], dtype=np.float32)


class Shuffled:
    """An executor that returns the blocks in a scrambled order (as a pool of actors may)."""

    name = "shuffled"

    def __init__(self, seed: int, repeat: int | None = None, drop: int | None = None) -> None:
        self.seed, self.repeat, self.drop = seed, repeat, drop

    def map_blocks(self, task, items, blocks):
        fn = task()
        order = np.random.default_rng(self.seed).permutation(len(blocks)).tolist()
        if self.repeat is not None:
            order.append(self.repeat)
        for b in order:
            if b != self.drop:
                yield b, fn([items[i] for i in blocks[b]])


def test_plan_cuts_consecutive_blocks_of_whole_batches():
    assert block_size_for(4, 3) == 12
    assert [b.tolist() for b in plan_blocks(7, block_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in plan_blocks(4, block_size=2, order=[3, 1, 0, 2])] == [[3, 1], [0, 2]]
    assert plan_blocks(0, block_size=5) == []
    with pytest.raises(InputError, match="permutation"):
        plan_blocks(3, block_size=2, order=[0, 0, 1])
    with pytest.raises(InputError, match=">= 1"):
        plan_blocks(3, block_size=0)


def test_local_executor_loads_the_model_once_and_keeps_item_order():
    Square.loads = 0
    items = [1.0, 2.0, 3.0, 4.0, 5.0]
    out = run_blocks(LocalExecutor(), Square(), items, plan_blocks(5, block_size=2))
    assert Square.loads == 1
    np.testing.assert_array_equal(out, [[x, x * x] for x in items])
    assert out.dtype == np.float32


@given(n=st.integers(0, 40), size=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_results_do_not_depend_on_the_order_blocks_finish_in(n, size, seed):
    items = [float(i) for i in range(n)]
    order = np.random.default_rng(seed).permutation(n)
    blocks = plan_blocks(n, block_size=size, order=order)
    local = run_blocks(LocalExecutor(), Square(), items, blocks)
    shuffled = run_blocks(Shuffled(seed), Square(), items, blocks)
    np.testing.assert_array_equal(local, shuffled)
    if n:
        np.testing.assert_array_equal(local[:, 0], items)


def test_a_block_twice_or_a_missing_block_is_an_error():
    blocks = plan_blocks(6, block_size=2)
    with pytest.raises(RuntimeError, match="block 1 came back twice"):
        run_blocks(Shuffled(0, repeat=1), Square(), list(range(6)), blocks)
    with pytest.raises(RuntimeError, match="returned 2 of 3 blocks"):
        run_blocks(Shuffled(0, drop=2), Square(), list(range(6)), blocks)


def test_executor_options_are_checked_before_anything_loads():
    check_executor_options("local")
    check_executor_options("ray", "auto", 2)
    with pytest.raises(InputError, match="--executor.*'spark'"):
        check_executor_options("spark")
    with pytest.raises(InputError, match="--ray-address applies to --executor ray only"):
        check_executor_options("local", "auto")
    with pytest.raises(InputError, match="--workers applies to --executor ray only"):
        check_executor_options("local", None, 2)
    with pytest.raises(InputError, match="--workers must be an integer >= 1"):
        check_executor_options("ray", None, 0)
    assert isinstance(make_executor("local"), LocalExecutor)


def test_the_local_executor_imports_no_ray():
    import subprocess

    code = (
        "import sys, medlens.executors, medlens.encoders\n"
        "medlens.executors.make_executor('local')\n"
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_missing_ray_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ImportError, match=r'pip install "medlens\[ray\]"'):
        make_executor("ray")


# ------------------------------------------------------------------ per-item records (nova run, rag diagnose)
class Records:
    """A task whose block returns one record per item."""

    def __call__(self):
        return lambda items: [{"id": x["id"], "n": len(x["text"])} for x in items]


def test_stream_records_yields_each_block_once_as_it_finishes():
    from tests.executors._fake_ray import PickledExecutor

    from medlens.executors import stream_records

    items = [{"id": f"c{i}", "text": "x" * i} for i in range(7)]
    blocks = plan_blocks(7, block_size=3)
    got = {}
    for rows, recs in stream_records(PickledExecutor(seed=3), Records(), items, blocks):
        for i, rec in zip(rows, recs, strict=True):
            got[int(i)] = rec
    assert got == {i: {"id": f"c{i}", "n": i} for i in range(7)}
    local = [r for _, recs in stream_records(LocalExecutor(), Records(), items, blocks) for r in recs]
    assert local == [got[i] for i in range(7)]  # the local executor keeps the plan's order


def test_stream_records_refuses_a_repeated_short_or_missing_block():
    from medlens.executors import stream_records

    blocks = plan_blocks(6, block_size=2)
    items = [{"id": i, "text": ""} for i in range(6)]
    with pytest.raises(RuntimeError, match="block 1 came back twice"):
        list(stream_records(Shuffled(0, repeat=1), Records(), items, blocks))
    with pytest.raises(RuntimeError, match="returned 2 of 3 blocks"):
        list(stream_records(Shuffled(0, drop=2), Records(), items, blocks))
    with pytest.raises(RuntimeError, match="returned ndarray record"):  # records are a list, one per item
        list(stream_records(LocalExecutor(), Square(), [1.0, 2.0], blocks[:1]))

    class Short:
        def __call__(self):
            return lambda items: [{"id": 0}]

    with pytest.raises(RuntimeError, match=r"block 0 returned 1 record\(s\) for 2 items"):
        list(stream_records(LocalExecutor(), Short(), [1, 2], plan_blocks(2, block_size=2)))


def test_items_travel_to_actors_as_json_records():
    from pathlib import Path

    from medlens.executors._executors import _jsonable

    case = {"id": "c1", "tags": ("a", "b"), "path": Path("x/y.png"), "n": 3, "extra": {"k": [1.5, None]}}
    assert _jsonable(case) == {"id": "c1", "tags": ["a", "b"], "path": "x/y.png", "n": 3, "extra": {"k": [1.5, None]}}
    with pytest.raises(TypeError, match="lists or dicts of them"):
        _jsonable({"blob": b"bytes"})
    with pytest.raises(TypeError, match="got a dict"):
        _jsonable({1: "an int key"})
