"""Shared input checks with one error style: what was expected, what came in, what to do.

Bad values raise :class:`InputError` (a ``ValueError``); bad types raise ``TypeError``. The CLI turns
both into one line on stderr and exit code 2.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Iterable, Iterator, Sequence, Sized
from difflib import get_close_matches
from typing import Any

import numpy as np

__all__ = [
    "InputError",
    "check_option",
    "check_interval",
    "check_same_length",
    "check_finite",
    "check_probabilities",
    "did_you_mean",
    "is_real",
    "is_real_type",
    "iter_text_lines",
    "read_text_file",
    "shorten",
]


class InputError(ValueError):
    """A user input is invalid. The message says what was expected, what came in and how to fix it."""


def shorten(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters with the full length said: user values in messages stay short.

    >>> shorten("x" * 10)
    "'xxxxxxxxxx'"
    >>> shorten("x" * 1000, limit=12)
    "'xxxxxxxxxx… (1,000 characters)"
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    n = len(value) if isinstance(value, str | bytes) else len(text)
    return f"{text[: limit - 1]}… ({n:,} characters)"


def read_text_file(path: Any, *, what: str = "file") -> str:
    """The UTF-8 text of ``path``, or an :class:`InputError` that names the file and says what is wrong
    (missing, a folder, unreadable, or not UTF-8 text)."""
    from pathlib import Path

    p = Path(path)
    _check_readable(p, what)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} {p} does not exist.") from None
    except OSError as exc:
        raise InputError(f"{what} {p} could not be read ({exc.strerror or exc}).") from None
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = bom + exc.start
        raise InputError(
            f"{what} {p} is not UTF-8 text (byte 0x{data[at]:02x} at offset {at}); "
            "save it as UTF-8 or give the right file."
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as text-mode reading gives


def _check_readable(p: Any, what: str) -> None:
    if p.is_dir():
        raise InputError(f"{what} {p} is a folder; give a file.")
    if not p.exists():
        raise InputError(f"{what} {p} does not exist.")


def iter_text_lines(path: Any, *, what: str = "file") -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file, streamed; a missing file, a folder or bytes that are not
    UTF-8 raise an :class:`InputError` naming the file and the line of the bad byte."""
    from pathlib import Path

    p = Path(path)
    _check_readable(p, what)
    try:
        with open(p, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(
                        f"{what} {p}, line {lineno}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8 "
                        "or give the right file."
                    ) from None
                yield lineno, line.replace("\r\n", "\n").replace("\r", "\n")
    except OSError as exc:
        raise InputError(f"{what} {p} could not be read ({exc.strerror or exc}).") from None


def is_real_type(t: type) -> bool:
    """Whether ``t`` is a real-number type, Python's or NumPy's (``np.float32``, ``np.int64``, ...), but not a
    boolean: a ``True`` where a coordinate, score or id belongs is a bug, not the number 1."""
    return issubclass(t, numbers.Real) and not issubclass(t, bool | np.bool_)


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number of any Python or NumPy type, not a boolean (finite or not).

    >>> is_real(np.float32(0.5)), is_real(np.int64(3)), is_real(True), is_real("1")
    (True, True, False, False)
    """
    return is_real_type(type(value))


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ``" Did you mean: a, b?"`` for close matches of ``name`` in ``choices`` (or ``""``)."""
    if len(str(name)) > 200:  # nothing is close to a value that long, and difflib would take seconds
        return ""
    matches = get_close_matches(str(name), [str(c) for c in choices], n=n, cutoff=0.6)
    return f" Did you mean: {', '.join(repr(m) for m in matches)}?" if matches else ""


def check_option(value: Any, options: Collection[Any], *, name: str, where: str | None = None) -> Any:
    """Check that ``value`` is one of ``options``.

    >>> check_option("micro", ("micro", "macro"), name="average")
    'micro'
    >>> check_option("mikro", ("micro", "macro"), name="average")
    Traceback (most recent call last):
    ...
    medlens._validation.InputError: The 'average' parameter must be one of {'micro', 'macro'}; got 'mikro'. Did you mean: 'micro', 'macro'?
    """
    if value not in options:
        opts = "{" + ", ".join(repr(o) for o in options) + "}"
        loc = f" of {where}" if where else ""
        hint = did_you_mean(value, [str(o) for o in options]) if isinstance(value, str) else ""
        raise InputError(f"The '{name}' parameter{loc} must be one of {opts}; got {value!r}.{hint}")
    return value


def check_interval(
    value: float,
    *,
    name: str,
    low: float | None = None,
    high: float | None = None,
    closed: str = "both",
) -> float:
    """Check ``low <= value <= high`` (``closed`` in ``both|left|right|neither``) and that it is a real number."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"The '{name}' parameter must be a number; got {type(value).__name__} {value!r}.")
    if not math.isfinite(float(value)):
        raise InputError(f"The '{name}' parameter must be finite; got {value!r}.")
    lo_ok = low is None or (value >= low if closed in ("both", "left") else value > low)
    hi_ok = high is None or (value <= high if closed in ("both", "right") else value < high)
    if not (lo_ok and hi_ok):
        lb = "[" if closed in ("both", "left") else "("
        rb = "]" if closed in ("both", "right") else ")"
        rng = f"{lb}{'-inf' if low is None else low}, {'inf' if high is None else high}{rb}"
        raise InputError(f"The '{name}' parameter must be in the range {rng}; got {value!r}.")
    return value


def check_same_length(a: Sized, b: Sized, *, names: tuple[str, str] = ("y_true", "y_pred")) -> int:
    """Check two inputs have the same number of samples and return it."""
    na, nb = len(a), len(b)
    if na != nb:
        raise InputError(f"{names[0]} and {names[1]} must have the same number of samples; got {na} and {nb}.")
    return na


def check_finite(x: np.ndarray, *, name: str, columns: Sequence[str] | None = None, ids: Sequence[Any] | None = None):
    """Raise naming the first non-finite entry (row id and column when known)."""
    bad = ~np.isfinite(x)
    if bad.any():
        r, c = (int(v[0]) for v in np.nonzero(bad)) if x.ndim == 2 else (int(np.nonzero(bad)[0][0]), None)
        row = f"id {ids[r]!r}" if ids is not None else f"row {r}"
        col = f", column {columns[c]!r}" if (columns is not None and c is not None) else ""
        raise InputError(
            f"{name} must contain finite numbers; found {x[bad][0]} at {row}{col} "
            f"({int(bad.sum())} non-finite value(s) in all). Remove or impute them."
        )
    return x


def check_probabilities(
    x: np.ndarray, *, name: str, columns: Sequence[str] | None = None, ids: Sequence[Any] | None = None
) -> np.ndarray:
    """Check a score array is finite and within [0, 1]."""
    check_finite(x, name=name, columns=columns, ids=ids)
    bad = (x < 0) | (x > 1)
    if bad.any():
        idx = np.argwhere(bad)[0]
        r = int(idx[0])
        row = f"id {ids[r]!r}" if ids is not None else f"row {r}"
        col = f", column {columns[int(idx[1])]!r}" if (columns is not None and x.ndim == 2) else ""
        raise InputError(
            f"{name} must be probabilities in [0, 1]; found {x[tuple(idx)]} at {row}{col}. "
            "Apply a sigmoid/softmax (or calibrate) before passing scores."
        )
    return x
