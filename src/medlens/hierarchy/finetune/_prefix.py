"""Batches of a fine-tuning epoch, and the replay of a frozen prefix of transformer blocks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._progress import progress_bar

torch = require("torch", extra="torch", purpose="taxonomy-aware fine-tuning")

__all__ = ["PrefixCache", "fixed_batches"]


def fixed_batches(inputs: list[Any], batch_size: int) -> list[np.ndarray]:
    """Fixed batches; texts are grouped by length (less padding), images keep their order."""
    n = len(inputs)
    order = np.argsort([len(x) for x in inputs], kind="stable") if all(isinstance(x, str) for x in inputs) else None
    order = np.arange(n) if order is None else order
    return [order[s : s + batch_size] for s in range(0, n, batch_size)]


class PrefixCache:
    """Outputs of the frozen blocks, computed once, replayed while the last block trains.

    In ``last-block`` mode everything before ``blocks[-1]`` is frozen: its output for a fixed batch never
    changes, so it is computed once (in eval mode, i.e. without dropout in the frozen layers) and, during
    training, ``blocks[-2]`` returns the cached tensor while the earlier blocks pass their input through. The
    embedding layer still runs (cheaply) so the model's own masks and position handling stay untouched.
    """

    def __init__(self, tower: Any, batches: list[list[Any]], progress: bool) -> None:
        self.tower = tower
        self.blocks = list(tower.blocks)
        self.states: list[Any] = []
        self.tuple_out = False
        captured: list[Any] = []

        def hook(_module, _args, output):
            self.tuple_out = isinstance(output, tuple)
            captured.append((output[0] if self.tuple_out else output).detach())

        handle = self.blocks[-2].register_forward_hook(hook)
        was = tower.module.training
        tower.module.eval()
        try:
            with torch.no_grad(), progress_bar(sum(map(len, batches)), progress, "frozen layers") as bar:
                for raw in batches:
                    tower.forward(tower.prepare(raw))
                    self.states.append(captured.pop().clone())
                    bar(len(raw))
        finally:
            handle.remove()
            tower.module.train(was)

    @contextlib.contextmanager
    def replay(self, batch_id: int) -> Iterator[None]:
        """While active, the tower's forward skips the frozen blocks and resumes from the cached batch output."""
        cached = self.states[batch_id]
        wrap = (lambda h: (h,)) if self.tuple_out else (lambda h: h)

        def passthrough(hidden_states, *args, **kwargs):
            return wrap(hidden_states)

        def lookup(hidden_states, *args, **kwargs):
            return wrap(cached)

        for b in self.blocks[:-2]:
            b.forward = passthrough
        self.blocks[-2].forward = lookup
        try:
            yield
        finally:
            for b in self.blocks[:-1]:
                del b.forward  # back to the class method
