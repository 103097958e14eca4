"""Shared helpers for CLI commands: JSON output, logging, human tables."""

from __future__ import annotations

import logging
import sys
from typing import Any

from medlens.io import to_json

__all__ = ["emit_json", "console", "setup_logging", "human_float"]

log = logging.getLogger("medlens")


def emit_json(obj: Any) -> None:
    """Print one strict JSON document on stdout."""
    sys.stdout.write(to_json(obj) + "\n")
    sys.stdout.flush()


def console():
    from rich.console import Console

    return Console(stderr=False, highlight=False, soft_wrap=True)


def setup_logging(verbose: int, quiet: bool) -> None:
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
    """Progress bars only on a terminal and never with --json."""
    return (not json_mode) and sys.stderr.isatty()
