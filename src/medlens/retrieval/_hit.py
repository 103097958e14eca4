"""A retrieved unit (:class:`Hit`) and the directory fsync that index folders are saved with."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Hit", "fsync_dir"]


@dataclass(frozen=True)
class Hit:
    """One retrieved unit: its id, score under the retriever used, rank (1-based) and where it comes from."""

    id: str
    score: float
    title: str
    rank: int
    parent: str
    diagnosis: str | None = None
    source: str | None = None
    url: str | None = None
    ranks: dict[str, int | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "score": float(self.score), "title": self.title, "rank": self.rank}
        if self.parent != self.id:
            out["parent"] = self.parent
        for key in ("diagnosis", "source", "url"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.ranks:
            out["ranks"] = dict(self.ranks)
        return out


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
