"""On-disk cache of chat responses under ``$MEDLENS_CACHE/llm/``.

One JSON file per request key (``<root>/<key[:2]>/<key>.json``), written to a temporary file and renamed,
so a reader sees either nothing or a whole entry and concurrent writers of the same key cannot corrupt it
(the last rename wins; both wrote the same request). A file that cannot be read back is a miss and is
rewritten. A cache folder medlens creates is readable by its owner only (mode 0700). Entries hold the
response and the request's kind, model and parameters, never the prompt and never an API key.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medlens._cache import cache_root
from medlens._validation import InputError
from medlens.io import atomic_write_json

if TYPE_CHECKING:  # pragma: no cover
    from medlens.llm._base import ChatResponse

__all__ = ["ResponseCache", "default_cache_root"]

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def default_cache_root() -> Path:
    """``$MEDLENS_CACHE/llm`` (``$MEDLENS_CACHE`` defaults to ``~/.cache/medlens``), read at call time."""
    return cache_root("llm")


class ResponseCache:
    """A folder of cached chat responses, keyed by :func:`~medlens.llm.request_key`.

    Parameters
    ----------
    root : path, optional
        The cache folder; default ``$MEDLENS_CACHE/llm``.

    Examples
    --------
    >>> import tempfile
    >>> from medlens.llm import ChatResponse
    >>> cache = ResponseCache(tempfile.mkdtemp())
    >>> key = "ab" * 32
    >>> cache.get(key) is None
    True
    >>> _ = cache.put(key, ChatResponse(text="yes", model="m"))
    >>> cache.get(key).text, cache.get(key).cached
    ('yes', True)
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_root()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The file that holds (or would hold) ``key``."""
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise InputError(f"a cache key must be a 64-character lowercase SHA-256 hex digest; got {key!r:.80}.")
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> ChatResponse | None:
        """The cached response (with ``cached=True``) or ``None``."""
        from medlens.llm._base import ChatResponse

        path = self.path(key)
        t0 = time.perf_counter()
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            resp = entry["response"]
            if entry.get("key") != key or not isinstance(resp, dict) or not isinstance(resp.get("text"), str):
                raise ValueError("entry does not match its key")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable LLM cache entry %s (%s); it will be rewritten", path, type(exc).__name__)
            return None
        return ChatResponse.from_dict(resp, cached=True, latency_s=time.perf_counter() - t0)

    def put(self, key: str, response: ChatResponse, *, meta: dict[str, Any] | None = None) -> Path:
        """Store ``response`` under ``key`` atomically; ``meta`` (kind, model, params) is kept for inspection."""
        path = self.path(key)
        if not self.root.is_dir():  # responses hold patient-derived text: only the owner may read the folder
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        entry = {
            "format": CACHE_FORMAT,
            "key": key,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **({"request": meta} if meta else {}),
            "response": response.to_dict(),
        }
        atomic_write_json(path, entry, indent=None)
        return path

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def clear(self) -> int:
        """Delete every entry; returns how many were removed."""
        n = 0
        if self.root.is_dir():
            for p in self.root.glob("??/*.json"):
                p.unlink(missing_ok=True)
                n += 1
        return n


def resolve_cache(cache: ResponseCache | bool | str | os.PathLike | None) -> ResponseCache | None:
    """``True`` → the default cache, ``False``/``None`` → no cache, a path → a cache there."""
    if cache is True:
        return ResponseCache()
    if cache is False or cache is None:
        return None
    if isinstance(cache, ResponseCache):
        return cache
    if isinstance(cache, str | os.PathLike):
        return ResponseCache(cache)
    raise TypeError(f"cache must be True, False, a folder path or a ResponseCache; got {type(cache).__name__}.")
