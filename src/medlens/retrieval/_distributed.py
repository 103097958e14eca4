"""Corpus embedding on an executor (:mod:`medlens.executors`): ``rag index --executor ray``.

:class:`ExecutorEmbedder` wraps an :class:`~medlens.retrieval._embed.Embedder` and runs its ``embed`` as fixed
blocks on an executor. The blocks are the ones the embedder cuts itself — texts sorted by length (longest
first, stable), cut every ``block`` texts, a whole number of batches — so a block's batches, and therefore its
padding, are exactly those of a local ``embed`` call: the vectors are equal whichever executor runs them, and
the embedding cache, the index request and the manifest do not change (the wrapper has the inner embedder's
name, model id, length limit and cache key).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medlens._validation import InputError

__all__ = ["EmbedTask", "ExecutorEmbedder", "embedder_kwargs"]


def embedder_kwargs(name: str, max_length: int | None) -> dict[str, Any]:
    """The keyword arguments :func:`~medlens.retrieval._embed.load_embedder` takes for ``name`` (hashing
    embedders have no length limit)."""
    return {} if str(name).startswith("hashing") or max_length is None else {"max_length": int(max_length)}


class EmbedTask:
    """A picklable recipe: ``task()`` loads the embedder once and returns ``fn(texts) -> (n, dim)``.

    Made with ``embedder=`` it reuses that one in this process; pickled to a Ray actor it travels without it and
    the actor loads its own from ``name`` and ``kwargs``.
    """

    def __init__(self, name: str, kwargs: dict[str, Any], *, batch_size: int, embedder: Any = None) -> None:
        self.name, self.kwargs, self.batch_size = str(name), dict(kwargs), int(batch_size)
        self._embedder = embedder

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_embedder"] = None  # an actor loads its own copy
        return state

    def __call__(self):
        emb = self._embedder
        if emb is None:
            from medlens.retrieval._embed import load_embedder

            emb = load_embedder(self.name, **self.kwargs)
        bs = self.batch_size
        # a block arrives sorted longest first, so the embedder's own stable sort keeps its order and batches
        return lambda texts: emb.embed([str(t) for t in texts], batch_size=bs, progress=False)


class ExecutorEmbedder:
    """``inner`` with its ``embed`` run as fixed blocks on ``executor`` (module docstring)."""

    def __init__(self, inner: Any, executor: Any, *, kwargs: dict[str, Any] | None = None) -> None:
        self.inner, self.executor = inner, executor
        self.kwargs = dict(kwargs or {})
        #: the length limit as the user asked for it (None: the model's own), so that the index request, and
        #: with it the folder's reuse key, is the one a local build of the same options records
        self.request_max_length = self.kwargs.get("max_length")
        for attr in ("name", "model_id", "dim", "normalized", "max_length"):
            setattr(self, attr, getattr(inner, attr))

    @property
    def cache_key(self) -> str:
        return self.inner.cache_key

    def __getattr__(self, attr: str) -> Any:  # tokenizer, count_tokens, ...: the inner embedder's
        if attr in ("inner", "executor", "kwargs", "request_max_length"):
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def embed(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` → float32 (n, dim), in input order, equal to ``inner.embed``."""
        from medlens.executors import plan_blocks, run_blocks

        texts = [str(t) for t in texts]
        if batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {batch_size}.")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        block = int(getattr(self.inner, "block", 256))
        step = max(batch_size, (block // batch_size) * batch_size)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        task = EmbedTask(
            self.name,
            self.kwargs,
            batch_size=batch_size,
            embedder=self.inner if self.executor.name == "local" else None,
        )
        blocks = plan_blocks(len(texts), block_size=step, order=order)
        return run_blocks(self.executor, task, texts, blocks, progress=progress, label="embedding")
