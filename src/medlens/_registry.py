"""A typed registry with lazy ``"module:attr"`` entries and did-you-mean errors.

Used for taxonomies, benchmarks, encoders and retrieval backends. Registering a string placeholder
imports nothing; the object is imported on first :meth:`Registry.get`.
"""

from __future__ import annotations

import fnmatch
import importlib
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from medlens._validation import did_you_mean

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Name → object map with lazy placeholders, aliases and helpful errors.

    Examples
    --------
    >>> r = Registry("metric")
    >>> r.register("sqrt", "math:sqrt")
    >>> r.get("sqrt")(9.0)
    3.0
    >>> r.get("sqtr")
    Traceback (most recent call last):
    ...
    KeyError: "Unknown metric 'sqtr'. Did you mean: 'sqrt'? Available: sqrt"
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._meta: dict[str, dict] = {}
        self._aliases: dict[str, str] = {}
        self._frozen = False
        self._lock = threading.Lock()

    def register(self, name: str, obj: T | str, *, aliases: tuple[str, ...] = (), **meta) -> None:
        """Register ``obj`` (or a ``"module:attr"`` placeholder) under ``name``."""
        if self._frozen:
            raise RuntimeError(f"The {self.kind} registry is frozen; cannot register {name!r}.")
        with self._lock:
            if name in self._entries or name in self._aliases:
                raise ValueError(f"{self.kind} {name!r} is already registered.")
            self._entries[name] = obj
            self._meta[name] = dict(meta)
            for a in aliases:
                self._aliases[a] = name

    def decorator(self, name: str, **meta) -> Callable[[T], T]:
        """Use as ``@registry.decorator("name")``."""

        def wrap(obj: T) -> T:
            self.register(name, obj, **meta)
            return obj

        return wrap

    def resolve_name(self, name: str) -> str:
        """Map an alias to its canonical name; raise a did-you-mean ``KeyError`` if unknown."""
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        names = sorted(self._entries) + sorted(self._aliases)
        shown = ", ".join(sorted(self._entries)[:20])
        raise KeyError(f"Unknown {self.kind} {name!r}.{did_you_mean(name, names)} Available: {shown}")

    def get(self, name: str) -> T:
        """Return the object registered as ``name``, importing a lazy placeholder on first use."""
        key = self.resolve_name(name)
        obj = self._entries[key]
        if isinstance(obj, str) and ":" in obj:
            module, _, attr = obj.partition(":")
            with self._lock:
                loaded = getattr(importlib.import_module(module), attr)
                self._entries[key] = loaded
            return loaded
        return obj  # type: ignore[return-value]

    def meta(self, name: str) -> dict:
        """Metadata given at registration (description, extra, ...)."""
        return dict(self._meta[self.resolve_name(name)])

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted canonical names, optionally filtered with an fnmatch ``pattern``."""
        names = sorted(self._entries)
        return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names

    def freeze(self) -> None:
        """Refuse further registrations."""
        self._frozen = True

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
