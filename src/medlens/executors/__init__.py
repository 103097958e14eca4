"""Executors: where a bulk command's model work runs — in this process (``local``) or on a Ray cluster (``ray``).

A bulk command (``medlens encode``, ``hier zeroshot``, ``rag index``) cuts its items into fixed *blocks* with
:func:`plan_blocks` and hands a picklable *task* (a factory that loads one model and returns a function of one
block) to an executor:

- :class:`LocalExecutor` (the default) loads the model once and runs the blocks in order; it imports no Ray.
- :class:`RayExecutor` runs the same blocks through Ray Data ``map_batches`` on a pool of actors, each holding
  one model (CPU or GPU actors), one block per call, and streams the results back as they finish.

Both run the very same blocks, so the batches a model sees (and their padding) are fixed by the plan, not by
the executor: the results are equal whatever the executor and the order blocks finish in. :func:`run_blocks`
puts each block's rows back in place and checks that every row came back exactly once.

Per-item work that waits on an endpoint (``rag diagnose --cases``, ``nova run``, ``fair run``) is fanned out instead:
:func:`fan_out` keeps ``--workers`` requests in flight and :class:`RateLimiter` spaces them to ``--rate-limit``
requests per second (see :mod:`medlens.executors._fanout`). The same commands with a local ``--model-path``
model run on an executor too: the items still to do are cut into fixed blocks, each actor loads one model, and
:func:`stream_records` hands each block's result records back as it finishes, for the caller alone to append to
its run log (:func:`check_item_options` checks the two sets of options together).

>>> import numpy as np
>>> blocks = plan_blocks(5, block_size=2)
>>> [b.tolist() for b in blocks]
[[0, 1], [2, 3], [4]]
>>> class Double:
...     def __call__(self):
...         return lambda items: np.array([[2.0 * x] for x in items])
>>> run_blocks(LocalExecutor(), Double(), [1, 2, 3, 4, 5], blocks).ravel().tolist()
[2.0, 4.0, 6.0, 8.0, 10.0]
"""

from medlens.executors._blocks import (
    ITEM_BLOCK,
    block_size_for,
    item_block_size,
    plan_blocks,
    run_blocks,
    stream_records,
)
from medlens.executors._executors import (
    EXECUTORS,
    LocalExecutor,
    RayExecutor,
    check_executor_options,
    make_executor,
)
from medlens.executors._fanout import RateLimiter, check_fan_out_options, check_item_options, fan_out

__all__ = [
    "EXECUTORS",
    "ITEM_BLOCK",
    "LocalExecutor",
    "RateLimiter",
    "RayExecutor",
    "block_size_for",
    "check_executor_options",
    "check_fan_out_options",
    "check_item_options",
    "fan_out",
    "item_block_size",
    "make_executor",
    "plan_blocks",
    "run_blocks",
    "stream_records",
]
