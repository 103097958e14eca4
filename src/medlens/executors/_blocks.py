"""Block plans (fixed item boundaries) and the assembly of block results back into one array."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from medlens._validation import InputError

__all__ = [
    "BLOCK_BATCHES",
    "ITEM_BLOCK",
    "block_size_for",
    "item_block_size",
    "plan_blocks",
    "run_blocks",
    "stream_records",
]

#: batches per block by default: large enough to amortise a remote call, small enough to balance a pool
BLOCK_BATCHES = 16
#: items per block of per-item work (an LLM answer each, seconds apiece): few, so that a pool stays balanced and a
#: killed job loses at most the blocks in flight; results do not depend on it (each item is answered on its own)
ITEM_BLOCK = 8


def block_size_for(batch_size: int, block_batches: int = BLOCK_BATCHES) -> int:
    """Items per block: a whole number of batches, so that a block's batches are the batches a single call makes.

    >>> block_size_for(32)
    512
    """
    if batch_size < 1 or block_batches < 1:
        raise InputError(f"batch size and batches per block must be >= 1; got {batch_size} and {block_batches}.")
    return int(batch_size) * int(block_batches)


def item_block_size(n: int, workers: int = 1, block_size: int | None = None) -> int:
    """Items per block of per-item work: ``block_size`` when given (checked), else enough blocks to keep each of
    ``workers`` busy with ``n`` items, at most :data:`ITEM_BLOCK` items a block.

    >>> item_block_size(5, 2), item_block_size(100, 4), item_block_size(0, 2), item_block_size(100, 4, 3)
    (3, 8, 1, 3)
    """
    if block_size is not None:
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise InputError(f"block_size must be an integer >= 1 (or None: automatic); got {block_size!r}.")
        return block_size
    return max(1, min(ITEM_BLOCK, -(-int(n) // max(1, int(workers)))))


def plan_blocks(n: int, *, block_size: int, order: Sequence[int] | np.ndarray | None = None) -> list[np.ndarray]:
    """Cut ``n`` items into consecutive blocks of ``block_size`` rows (the last may be shorter).

    ``order`` (a permutation of ``range(n)``, e.g. texts sorted by length) is cut instead of ``0..n-1``: block
    ``b`` then holds rows ``order[b*block_size:(b+1)*block_size]``. The plan depends on nothing but its inputs,
    so every executor runs the same blocks.
    """
    if block_size < 1:
        raise InputError(f"block size must be >= 1; got {block_size}.")
    rows = np.arange(n, dtype=np.int64) if order is None else np.asarray(order, dtype=np.int64)
    if rows.shape != (n,) or (n and not np.array_equal(np.sort(rows), np.arange(n))):
        raise InputError(f"order must be a permutation of range({n}); got {rows.shape[0]} rows.")
    return [rows[start : start + block_size] for start in range(0, n, block_size)]


def run_blocks(
    executor: Any,
    task: Callable[[], Callable[[list], Any]],
    items: Sequence[Any],
    blocks: list[np.ndarray],
    *,
    progress: bool = False,
    label: str = "blocks",
) -> np.ndarray:
    """Run ``task`` over ``blocks`` of ``items`` with ``executor`` and return the rows in item order (float32).

    A block's function returns one row per item. Results may arrive in any order; a block that comes back twice,
    a missing block, or a block with the wrong number of rows is an error, never silently patched.
    """
    from medlens._progress import progress_bar

    n = len(items)
    out: np.ndarray | None = None
    done = np.zeros(len(blocks), dtype=bool)
    with progress_bar(n, progress, label) as bar:
        for b, vecs in executor.map_blocks(task, items, blocks):
            vecs = np.asarray(vecs, dtype=np.float32)
            rows = blocks[b]
            if done[b]:
                raise RuntimeError(f"block {b} came back twice from the {executor.name} executor.")
            if vecs.ndim != 2 or vecs.shape[0] != len(rows):
                raise RuntimeError(f"block {b} returned shape {vecs.shape} for {len(rows)} items.")
            if out is None:
                out = np.empty((n, vecs.shape[1]), dtype=np.float32)
            out[rows] = vecs
            done[b] = True
            bar(len(rows))
    if not done.all():
        raise RuntimeError(f"the {executor.name} executor returned {int(done.sum())} of {len(blocks)} blocks.")
    if out is None:  # no items
        return np.zeros((0, 0), dtype=np.float32)
    return out


def stream_records(
    executor: Any,
    task: Callable[[], Callable[[list], list]],
    items: Sequence[Any],
    blocks: list[np.ndarray],
) -> Iterator[tuple[np.ndarray, list[Any]]]:
    """Run ``task`` over ``blocks`` of ``items`` with ``executor``; yield ``(rows, records)`` as each block finishes.

    For per-item work whose block returns one record per item (``nova run``, ``rag diagnose --cases``, ``fair run``
    on an executor): the caller appends each block's records to its run log as they arrive, so a killed job keeps every
    finished block. A block that comes back twice or with the wrong number of records raises at once; a missing
    block raises after the others have been yielded.

    >>> from medlens.executors import LocalExecutor
    >>> class Upper:
    ...     def __call__(self):
    ...         return lambda items: [{"id": x, "text": x.upper()} for x in items]
    >>> [r for _, recs in stream_records(LocalExecutor(), Upper(), ["a", "b", "c"], plan_blocks(3, block_size=2))
    ...  for r in recs]
    [{'id': 'a', 'text': 'A'}, {'id': 'b', 'text': 'B'}, {'id': 'c', 'text': 'C'}]
    """
    done = np.zeros(len(blocks), dtype=bool)
    for b, records in executor.map_blocks(task, items, blocks):
        rows = blocks[b]
        if done[b]:
            raise RuntimeError(f"block {b} came back twice from the {executor.name} executor.")
        if not isinstance(records, list) or len(records) != len(rows):
            got = len(records) if isinstance(records, list) else type(records).__name__
            raise RuntimeError(f"block {b} returned {got} record(s) for {len(rows)} items.")
        done[b] = True
        yield rows, records
    if not done.all():
        raise RuntimeError(f"the {executor.name} executor returned {int(done.sum())} of {len(blocks)} blocks.")
