"""Fan-out of per-item work that waits on an endpoint (LLM requests), with a shared request rate limit.

Bulk model work (embedding, scoring) runs in blocks on an executor; per-item work whose time goes into waiting for
an OpenAI-compatible server (``rag diagnose --cases``, ``nova run``, ``fair run``) instead needs several requests in
flight.
:func:`fan_out` runs a function over items on ``workers`` threads and hands each result back to the calling
thread as it finishes, so the caller alone appends to the run's JSONL (resume and locking unchanged: a killed run
loses only the requests in flight, never a written line). With ``workers=1`` it is a plain loop in input
order. Each item's answer depends on that item only (temperature 0, seeded, the same response cache), so the
results are the same whatever the number of workers; only the order of the lines changes.

:class:`RateLimiter` spaces requests at least ``1 / per_second`` seconds apart across all threads (a server's
requests-per-second quota); the OpenAI client waits on it before every HTTP attempt, retries included, and never
for answers served from the cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from medlens._validation import InputError
from medlens.executors._executors import check_executor_options

__all__ = ["RateLimiter", "check_fan_out_options", "check_item_options", "fan_out"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 256


def check_fan_out_options(
    workers: int = 1, rate_limit: float | None = None, *, endpoint: bool | None = None, ray: bool = False
) -> None:
    """Refuse a ``--workers`` below 1 (or absurdly high), a ``--rate-limit`` that is not a positive number, and
    (``endpoint=False``: the run has no ``--llm-url``) several workers or a rate limit with nothing to overlap or
    limit: a local model answers one item at a time in this process. ``ray``: the command also takes
    ``--executor ray`` (the refusal then names it)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise InputError(f"--workers must be an integer in [1, {MAX_WORKERS}]; got {workers!r}.")
    if rate_limit is not None and (
        isinstance(rate_limit, bool) or not isinstance(rate_limit, int | float) or not 0 < rate_limit < float("inf")
    ):
        raise InputError(f"--rate-limit must be a positive number of requests per second; got {rate_limit!r}.")
    if workers > 1 and endpoint is False:
        on_ray = "add --executor ray to load one model per Ray actor, " if ray else ""
        raise InputError(
            "--workers overlaps requests to --llm-url; a --model-path model (or a run without an LLM) answers one "
            f"item at a time in this process (drop --workers, {on_ray}or serve the model and give --llm-url URL "
            "--model NAME)."
        )
    if rate_limit is not None and endpoint is False:
        raise InputError(
            "--rate-limit spaces the requests sent to --llm-url; a --model-path model runs in this process (drop "
            "--rate-limit, or serve the model and give --llm-url URL --model NAME)."
        )


def check_item_options(
    executor: str = "local",
    ray_address: str | None = None,
    workers: int = 1,
    rate_limit: float | None = None,
    *,
    endpoint: bool,
) -> None:
    """The executor and fan-out options of a per-item command (``nova run``, ``rag diagnose --cases``,
    ``fair run``), checked before any data or model loads.

    ``--executor ray`` runs a ``--model-path`` model (or no model) on Ray actors, ``--workers`` of them, each
    loading its own copy; an ``--llm-url`` endpoint (``endpoint=True``) is fanned out on threads instead
    (``--workers`` requests in flight, ``--rate-limit`` per second), so it refuses ``--executor ray``, as a Ray run
    refuses ``--rate-limit``. Otherwise :func:`check_executor_options` and :func:`check_fan_out_options` apply.

    >>> check_item_options("ray", workers=2, endpoint=False)  # two actors, each with its own model
    >>> check_item_options("local", workers=8, rate_limit=4.0, endpoint=True)  # 8 requests in flight, 4 per second
    """
    if executor == "ray":
        if endpoint:
            raise InputError(
                "--executor ray runs a --model-path model on Ray actors, one copy each; requests to --llm-url are "
                "fanned out on threads instead: drop --executor ray and give --workers N (requests in flight) and "
                "--rate-limit R."
            )
        if rate_limit is not None:
            raise InputError(
                "--rate-limit spaces the requests sent to --llm-url; --executor ray runs a --model-path model on Ray "
                "actors, which sends none (drop --rate-limit)."
            )
        check_executor_options(executor, ray_address, workers)
        return
    check_executor_options(executor, ray_address)
    check_fan_out_options(workers, rate_limit, endpoint=endpoint, ray=True)


class RateLimiter:
    """At most ``per_second`` requests per second across threads: each :meth:`wait` takes the next free slot.

    >>> limiter = RateLimiter(1000.0)
    >>> t = time.perf_counter(); [limiter.wait() for _ in range(5)]; round(time.perf_counter() - t, 3) >= 0.004
    [None, None, None, None, None]
    True
    """

    def __init__(self, per_second: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        check_fan_out_options(rate_limit=per_second)
        self.per_second = float(per_second)
        self.interval = 1.0 / self.per_second
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RateLimiter({self.per_second:g}/s)"

    def reserve(self) -> float:
        """Take the next slot; returns how long the caller must wait for it (seconds, >= 0)."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
            return slot - now

    def wait(self) -> None:
        """Block until this caller's slot comes."""
        delay = self.reserve()
        if delay > 0:
            time.sleep(delay)


def fan_out(items: Iterable[T], fn: Callable[[T], R], *, workers: int = 1) -> Iterator[tuple[T, R]]:
    """Yield ``(item, fn(item))`` for every item, computed on ``workers`` threads, as each finishes.

    The caller consumes results in its own thread (write them there). If ``fn`` raises, no new item starts, the
    items already running finish and are yielded, and then the first error is raised; closing the generator early
    (``break``, Ctrl-C) cancels the items not yet started.

    >>> sorted(r for _, r in fan_out(range(5), lambda x: x * x, workers=3))
    [0, 1, 4, 9, 16]
    """
    check_fan_out_options(workers)
    if workers == 1:
        for item in items:
            yield item, fn(item)
        return
    pending = iter(items)
    running: dict[Future[R], T] = {}
    error: BaseException | None = None
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medlens-fan-out")
    try:

        def submit_next() -> bool:
            for item in pending:
                running[pool.submit(fn, item)] = item
                return True
            return False

        for _ in range(workers):
            if not submit_next():
                break
        while running:
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                item = running.pop(fut)
                exc = fut.exception()
                if exc is not None:
                    if error is None:
                        error = exc
                        log.debug("fan-out: an item failed; finishing the %d in flight, starting no more", len(running))
                    continue
                yield item, fut.result()
                if error is None:
                    submit_next()
        if error is not None:
            raise error
    finally:
        pool.shutdown(wait=error is not None or not running, cancel_futures=True)
