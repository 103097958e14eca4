"""Append-and-resume JSONL runs with a manifest.

A run folder holds ``manifest.json`` (the config and its hash) and ``results.jsonl`` (one JSON object
per finished item, flushed as soon as it is written). Re-running into the same folder skips the items
already there; a folder whose manifest was written with a different config is refused unless
``overwrite=True`` (the CLI's ``--overwrite``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medlens._provenance import SCHEMA_VERSION, config_hash
from medlens._validation import InputError
from medlens.io._atomic import atomic_write_json, to_json

__all__ = ["JsonlRun", "RunManifestMismatch", "drop_partial_line", "prepare_run_dir", "read_jsonl"]


class RunManifestMismatch(InputError):
    """The output folder holds a run made with a different configuration."""


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Yield the objects of a JSONL file; a malformed line raises naming its line number."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{path}: line {lineno} is not valid JSON ({exc.msg}). Fix or delete that line."
                ) from None
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


def prepare_run_dir(
    out_dir: str | os.PathLike,
    config: dict[str, Any],
    *,
    overwrite: bool = False,
    provenance: dict[str, Any] | None = None,
) -> bool:
    """Create a run folder and write its ``manifest.json``; refuse a folder made with another config.

    Returns ``True`` when an existing run with a different config was discarded (``overwrite=True``), so the
    caller can delete its old results. Raises :class:`RunManifestMismatch` when the configs differ and
    ``overwrite`` is false.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder; give a folder path for this run.")
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / JsonlRun.manifest_name
    digest = config_hash(config)
    discarded = False
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = {}
        if old.get("config_hash") != digest:
            if not overwrite:
                raise RunManifestMismatch(
                    f"{out} holds a run with a different configuration (config hash "
                    f"{str(old.get('config_hash', '?'))[:12]} vs {digest[:12]}). Use another --out folder, "
                    "or pass --overwrite to discard it."
                )
            discarded = True
    atomic_write_json(
        manifest,
        {"schema_version": SCHEMA_VERSION, "config_hash": digest, "config": config, "provenance": provenance or {}},
    )
    return discarded


class JsonlRun:
    """A resumable run folder.

    Parameters
    ----------
    out_dir : path
        The run folder (created if missing).
    config : dict
        Everything that determines the results; its hash is stored in ``manifest.json``.
    key : str
        The field that identifies an item (``"id"`` by default).
    overwrite : bool
        Discard an existing run with a different config instead of refusing.
    provenance : dict, optional
        Stored in the manifest next to the config.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with JsonlRun(d, config={"model": "m"}) as run:
    ...     run.append({"id": "a", "score": 1})
    >>> sorted(JsonlRun(d, config={"model": "m"}).done_ids())
    ['a']
    """

    manifest_name = "manifest.json"
    results_name = "results.jsonl"

    def __init__(
        self,
        out_dir: str | os.PathLike,
        *,
        config: dict[str, Any],
        key: str = "id",
        overwrite: bool = False,
        provenance: dict[str, Any] | None = None,
    ) -> None:
        self.dir = Path(out_dir)
        self.key = key
        self.config = config
        self.config_hash = config_hash(config)
        self.manifest_path = self.dir / self.manifest_name
        self.results_path = self.dir / self.results_name
        self._fh = None
        if prepare_run_dir(self.dir, config, overwrite=overwrite, provenance=provenance):
            self.results_path.unlink(missing_ok=True)
        self._repair_tail()

    def _repair_tail(self) -> None:
        drop_partial_line(self.results_path)

    def records(self) -> list[dict]:
        """All finished records, in file order."""
        return list(read_jsonl(self.results_path)) if self.results_path.exists() else []

    def done_ids(self) -> set:
        """Keys of finished items."""
        return {r[self.key] for r in self.records() if self.key in r}

    def append(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to disk."""
        if self.key not in record:
            raise InputError(f"a run record needs the key field {self.key!r}; got fields {sorted(record)}.")
        if self._fh is None:
            self._fh = open(self.results_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._fh.write(to_json(record, indent=None) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> JsonlRun:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
