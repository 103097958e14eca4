"""An executor that does to a task what Ray does, without Ray: for fast tests of the code that runs on actors.

The task is pickled and unpickled (so it must rebuild its model from its recipe), the items travel as JSON the way
:class:`~medlens.executors.RayExecutor` sends them, each block's result comes back through ``encode_result`` /
``decode_result``, and the blocks finish in a scrambled (seeded) order. ``fail_at`` raises at that block (a
worker that dies part-way); the blocks before it have been handed back.
"""

from __future__ import annotations

import json
import pickle

import numpy as np

from medlens.executors._executors import _jsonable, decode_result, encode_result


class PickledExecutor:
    name = "fake-ray"

    def __init__(self, seed: int = 0, *, fail_at: int | None = None, workers: int = 2) -> None:
        self.seed, self.fail_at, self.workers = seed, fail_at, workers
        self.loads = 0

    def info(self) -> dict:
        return {"name": self.name, "workers": self.workers}

    def map_blocks(self, task, items, blocks):
        fn = pickle.loads(pickle.dumps(task))()  # what an actor holds: the task's own rebuild
        self.loads += 1
        order = np.random.default_rng(self.seed).permutation(len(blocks)).tolist()
        for n, b in enumerate(order):
            if n == self.fail_at:
                raise RuntimeError(f"worker died running block {b}")
            payload = json.loads(json.dumps([_jsonable(items[int(i)]) for i in blocks[b]]))
            head, body = encode_result(fn(payload))
            yield b, decode_result(json.loads(json.dumps(head)), body)
