"""Shared helpers for CLI commands: JSON output, logging, human tables."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medlens.io import to_json

__all__ = [
    "emit_json",
    "emit_result",
    "console",
    "setup_logging",
    "human_float",
    "metric_table",
    "executor_option",
    "ray_address_option",
    "workers_option",
    "fan_out_workers_option",
    "rate_limit_option",
]

log = logging.getLogger("medlens")


def emit_json(obj: Any) -> None:
    """Print one strict JSON document on stdout."""
    sys.stdout.write(to_json(obj) + "\n")
    sys.stdout.flush()


def emit_result(payload: dict[str, Any], *, out: Path | None, as_json: bool, show: Callable[[dict], None]) -> None:
    """What a command does with its result document: also write it to ``out`` (``--out``), then print it as one
    JSON document (``--json``) or as ``show`` draws it for a person."""
    if out is not None:
        from medlens.io import atomic_write_json

        atomic_write_json(out, payload)
    if as_json:
        emit_json(payload)
        return
    show(payload)


def metric_table(title: str):
    """A rich table with a ``metric`` column and a right-aligned ``value`` column."""
    from rich.table import Table

    t = Table(title=title, show_header=True)
    t.add_column("metric")
    t.add_column("value", justify="right")
    return t


def console():
    from rich.console import Console

    return Console(stderr=False, highlight=False, soft_wrap=True)


_QUIET = [False]  # -q of the current invocation (set by the root callback through setup_logging)


def setup_logging(verbose: int, quiet: bool) -> None:
    _QUIET[0] = bool(quiet)
    level = (
        logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)


def human_float(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}" if x == x else "nan"
    return str(x)


def progress_enabled(json_mode: bool) -> bool:
    """Progress bars only on a terminal (stderr is a TTY), never with --json, never with -q."""
    return (not json_mode) and (not _QUIET[0]) and sys.stderr.isatty()


def print_sections(doc: dict[str, Any], as_json: bool, *, footer: str) -> None:
    """Print a run summary: the JSON document without its console lines, or each section's lines then ``footer``."""
    sections = {k: v for k, v in doc.items() if isinstance(v, dict) and "lines" in v}
    if as_json:
        emit_json(
            {k: ({kk: vv for kk, vv in v.items() if kk != "lines"} if k in sections else v) for k, v in doc.items()}
        )
        return
    c = console()
    for s in sections.values():
        for i, line in enumerate(s["lines"]):
            c.print(line, markup=False, style="bold" if i == 0 else None)
    c.print(footer, markup=False)


# ------------------------------------------------------------------ executors (``medlens.executors``)
def executor_option():
    import typer

    return typer.Option("local", "--executor", help="local (default, this process) | ray (Ray Data actors).")


def ray_address_option():
    import typer

    return typer.Option(
        None,
        "--ray-address",
        help="Ray cluster to join with --executor ray (auto, ray://HOST:10001); default: a local Ray.",
    )


def workers_option():
    import typer

    return typer.Option(None, "--workers", help="Ray actors, each holding one model (--executor ray; default 1).")


def fan_out_workers_option(*, ray: bool = False):
    """``--workers`` of a per-item command: threads with requests to ``--llm-url`` in flight, and with ``ray`` (the
    command takes ``--executor ray``) also the Ray actors that each load the ``--model-path`` model."""
    import typer

    on_ray = "; with --executor ray: Ray actors, each loading the --model-path model" if ray else ""
    return typer.Option(
        1,
        "--workers",
        help=f"Items answered at once, each with its requests to --llm-url in flight (threads){on_ray}. Results are "
        "the same, only the order of the lines changes.",
    )


def rate_limit_option():
    import typer

    return typer.Option(
        None,
        "--rate-limit",
        help="At most this many requests per second to --llm-url (retries count; cache hits do not).",
    )
