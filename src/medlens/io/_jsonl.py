"""Reading JSONL files, and repairing the half-written last line a killed writer leaves behind."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medlens._validation import InputError, iter_text_lines

__all__ = ["drop_partial_line", "iter_jsonl", "read_jsonl"]


def iter_jsonl(path: str | os.PathLike, *, what: str = "JSONL file") -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for every non-blank line of a JSONL file, streamed. Undecodable bytes and a line
    that is not JSON raise an :class:`InputError` naming the file and the line; checking each value is the
    caller's."""
    for lineno, line in iter_text_lines(path, what=what):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}: line {lineno} is not valid JSON ({exc.msg} at column {exc.colno}). Fix or delete that line."
            ) from None


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Yield the objects of a JSONL file; a malformed line raises naming its line number."""
    for lineno, obj in iter_jsonl(path):
        if not isinstance(obj, dict):
            raise InputError(f"{path}: line {lineno} must be a JSON object; got {type(obj).__name__}.")
        yield obj


def drop_partial_line(path: str | os.PathLike) -> None:
    """Drop a partial last line (no newline) left in a JSONL file by a process killed mid-write; no-op if absent."""
    path = Path(path)
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)
