"""The ``local`` and ``ray`` executors: the same blocks, run in this process or on a pool of Ray actors."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from medlens._validation import InputError, check_option

__all__ = ["EXECUTORS", "LocalExecutor", "RayExecutor", "check_executor_options", "make_executor"]

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")

Task = Callable[[], Callable[[list], Any]]


def check_executor_options(executor: str, ray_address: str | None = None, workers: int | None = None) -> None:
    """The cheap checks of ``--executor``, ``--ray-address`` and ``--workers`` (before any model is loaded)."""
    check_option(executor, EXECUTORS, name="--executor")
    if executor != "ray" and ray_address is not None:
        raise InputError(f"--ray-address applies to --executor ray only; got --executor {executor}.")
    if executor != "ray" and workers is not None:
        raise InputError(f"--workers applies to --executor ray only; got --executor {executor}.")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"--workers must be an integer >= 1; got {workers!r}.")
    if ray_address is not None and not str(ray_address).strip():
        raise InputError("--ray-address is empty; give auto, ray://HOST:PORT or HOST:PORT.")


class LocalExecutor:
    """Runs every block in this process, in plan order, with one model loaded once. Imports no Ray."""

    name = "local"

    def __repr__(self) -> str:
        return "LocalExecutor()"

    def info(self) -> dict[str, Any]:
        return {"name": self.name}

    def map_blocks(self, task: Task, items: Sequence[Any], blocks: list[np.ndarray]) -> Iterator[tuple[int, Any]]:
        """Yield ``(block index, task result)`` for each block, in order."""
        fn = task()
        for b, rows in enumerate(blocks):
            yield b, fn([items[int(i)] for i in rows])


class _BlockActor:
    """A Ray Data actor: loads the model once (``task()``), then runs one block per call.

    A block's result travels back as bytes: an array keeps its dtype and shape exactly (no rounding on the way),
    anything else (a list of records, a dict) goes as JSON. An :class:`~medlens._validation.InputError` raised
    by the task comes back as one too (the driver raises it: bad input, not a crashed worker).
    """

    def __init__(self, task: Task) -> None:
        self.fn = task()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        blocks, meta, data = [], [], []
        for b, payload in zip(batch["block"], batch["items"], strict=True):
            try:
                head, body = encode_result(self.fn(json.loads(str(payload))))
            except InputError as exc:  # bad input: comes back as such (the CLI's exit 2), not a Ray traceback
                head, body = {"kind": "input_error", "message": str(exc)}, b""
            blocks.append(int(b))
            meta.append(json.dumps(head))
            data.append(body)
        return {
            "block": np.array(blocks, dtype=np.int64),
            "meta": np.array(meta, dtype=object),
            "data": np.array(data, dtype=object),
        }


def encode_result(result: Any) -> tuple[dict[str, Any], bytes]:
    """A block result as ``(header, bytes)``: an array bit for bit (dtype and shape in the header), a dict holding
    arrays as ``.npz`` bytes (its other values in the header), anything else as JSON.

    >>> out = decode_result(*encode_result({"x": np.arange(3, dtype=np.int16), "key": "k"}))
    >>> out["x"].dtype.name, out["x"].tolist(), out["key"]
    ('int16', [0, 1, 2], 'k')
    """
    if isinstance(result, np.ndarray):
        if result.dtype == object:
            raise TypeError("a block returned an object array; return a numeric array or JSON-able records.")
        arr = np.ascontiguousarray(result)
        return {"kind": "array", "dtype": arr.dtype.str, "shape": list(arr.shape)}, arr.tobytes()
    if isinstance(result, dict) and any(isinstance(v, np.ndarray) for v in result.values()):
        import io

        arrays = {k: v for k, v in result.items() if isinstance(v, np.ndarray)}
        rest = {k: v for k, v in result.items() if not isinstance(v, np.ndarray)}
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # no pickles: numeric arrays only (an object array fails here)
        return {"kind": "arrays", "rest": rest}, buf.getvalue()
    return {"kind": "json"}, json.dumps(result).encode()


def decode_result(head: dict[str, Any], body: bytes) -> Any:
    """The inverse of :func:`encode_result`."""
    if head["kind"] == "input_error":
        raise InputError(head["message"])
    if head["kind"] == "array":
        return np.frombuffer(body, dtype=np.dtype(head["dtype"])).reshape(head["shape"]).copy()
    if head["kind"] == "arrays":
        import io

        with np.load(io.BytesIO(bytes(body)), allow_pickle=False) as z:
            return {**{k: z[k] for k in z.files}, **head["rest"]}
    return json.loads(bytes(body).decode())


def keep_stdout_for_results() -> None:
    """Send what Ray's driver prints about its workers to stderr: stdout carries the result (``--json``).

    Ray's driver prints raylet messages ("A worker died or was killed …") to ``sys.stdout`` from a background
    thread, even with ``log_to_driver=False``; one landing mid-run made the JSON on stdout unreadable. This wraps
    Ray's printer so every such line goes to stderr. It is idempotent, and a no-op where Ray's internals differ.
    """
    try:
        import ray._private.worker as ray_worker
    except ImportError:  # pragma: no cover - Ray without this module: nothing to redirect
        return
    printer = getattr(ray_worker, "print_to_stdstream", None)
    if printer is None or getattr(printer, "medlens_to_stderr", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        printer({**data, "is_err": True}, ignore_prefix)

    to_stderr.medlens_to_stderr = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_stderr


class RayExecutor:
    """Runs the blocks with Ray Data ``map_batches`` on a pool of actors, each holding one model.

    Parameters
    ----------
    address : str, optional
        The cluster to join (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); default: a Ray already
        initialised in this process, else a local Ray instance started (and shut down) for the job.
    workers : int
        Actors in the pool (each loads one model).
    num_cpus, num_gpus : float
        Resources per actor (``num_gpus=1`` gives each actor one GPU).

    Items travel to the actors as JSON (texts, file paths, numbers, and lists and dicts of them), one block per
    actor call; a block's result comes back as bytes (arrays keep dtype and shape, records go as JSON), so no
    value is rounded on the way. Block results arrive in any order.
    """

    name = "ray"

    def __init__(
        self, address: str | None = None, *, workers: int = 1, num_cpus: float = 1.0, num_gpus: float = 0.0
    ) -> None:
        check_executor_options("ray", address, workers)
        self.address = address
        self.workers = int(workers)
        self.num_cpus = float(num_cpus)
        self.num_gpus = float(num_gpus)

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, workers={self.workers}, num_gpus={self.num_gpus})"

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "workers": self.workers,
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
        }

    def _ray(self) -> tuple[Any, bool]:
        """The ``ray`` module, initialised; and whether this call started it."""
        from medlens._optional import require

        ray = require("ray", extra="ray", purpose="--executor ray")
        require("ray.data", extra="ray", purpose="--executor ray")
        keep_stdout_for_results()
        if ray.is_initialized():
            return ray, False
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
        if self.address is not None:
            kwargs["address"] = self.address
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise InputError(
                f"--ray-address {self.address}: could not connect to a Ray cluster ({exc}); start one with `ray "
                "start --head`, or leave --ray-address out to run a local Ray."
            ) from None
        return ray, True

    def map_blocks(self, task: Task, items: Sequence[Any], blocks: list[np.ndarray]) -> Iterator[tuple[int, Any]]:
        """Yield ``(block index, task result)`` for each block, in the order the actors finish them."""
        ray, started = self._ray()
        try:
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            ctx.enable_rich_progress_bars = False
            rows = [
                {"block": b, "items": json.dumps([_jsonable(items[int(i)]) for i in r])} for b, r in enumerate(blocks)
            ]
            if not rows:
                return
            ds = ray.data.from_items(rows, override_num_blocks=len(rows))
            res = ds.map_batches(
                _BlockActor,
                fn_constructor_kwargs={"task": task},
                batch_size=1,
                batch_format="numpy",
                concurrency=self.workers,
                num_cpus=self.num_cpus,
                num_gpus=self.num_gpus,
            )
            for row in res.iter_rows():
                yield int(row["block"]), decode_result(json.loads(str(row["meta"])), row["data"])
        finally:
            if started:
                ray.shutdown()


def _jsonable(item: Any) -> Any:
    """An item as JSON travels: texts, numbers, paths (as text), and lists and string-keyed dicts of them (a case
    record, an image's prompt fields)."""
    if isinstance(item, str | int | float | bool) or item is None:
        return item
    import os

    if isinstance(item, os.PathLike):
        return os.fspath(item)
    if isinstance(item, list | tuple):
        return [_jsonable(v) for v in item]
    if isinstance(item, dict) and all(isinstance(k, str) for k in item):
        return {k: _jsonable(v) for k, v in item.items()}
    raise TypeError(
        "the ray executor sends texts, paths, numbers and lists or dicts of them to its actors; got a "
        f"{type(item).__name__}."
    )


def make_executor(
    executor: str = "local",
    *,
    ray_address: str | None = None,
    workers: int | None = None,
    device: str = "cpu",
) -> LocalExecutor | RayExecutor:
    """``"local"`` or ``"ray"`` (checked); a Ray pool of ``workers`` actors, each with one GPU when ``device`` is
    CUDA. A missing Ray raises ``ImportError`` naming ``pip install "medlens[ray]"``."""
    check_executor_options(executor, ray_address, workers)
    if executor == "local":
        return LocalExecutor()
    from medlens._optional import require

    require("ray.data", extra="ray", purpose="--executor ray")  # fail before any model is loaded
    gpus = 1.0 if str(device).startswith("cuda") else 0.0
    return RayExecutor(ray_address, workers=workers or 1, num_gpus=gpus)
