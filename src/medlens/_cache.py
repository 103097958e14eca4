"""The one cache root of medlens: ``$MEDLENS_CACHE``, or ``~/.cache/medlens`` when it is unset or empty."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root(*parts: str) -> Path:
    """The cache folder (``$MEDLENS_CACHE``, default ``~/.cache/medlens``) joined with ``parts``.

    Read at call time, so a test or a user may change the variable between calls. An empty or blank value
    means "unset", never the current folder. Nothing is created here: writers create what they write.

    >>> import os
    >>> os.environ["MEDLENS_CACHE"] = "/tmp/mc"
    >>> str(cache_root("llm"))
    '/tmp/mc/llm'
    >>> os.environ["MEDLENS_CACHE"] = ""
    >>> cache_root() == Path.home() / ".cache" / "medlens"
    True
    >>> del os.environ["MEDLENS_CACHE"]
    """
    value = os.environ.get("MEDLENS_CACHE", "").strip()
    root = Path(value).expanduser() if value else Path.home() / ".cache" / "medlens"
    return root.joinpath(*parts)
