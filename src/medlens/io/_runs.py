"""Run folders: one manifest, one lock, append-only JSONL logs; the same rules for every command that writes a run.

A run folder holds ``manifest.json`` (the configuration, its hash and provenance, rewritten atomically), the
run's outputs (JSONL logs such as ``results.jsonl`` or ``history.jsonl``, files, a ``checkpoints/`` folder) and
``.lock``, which the open run holds with an exclusive ``flock``. The rules, the same for ``nova run``, ``rag
diagnose --cases``, ``rag index`` and training loops:

- a folder whose manifest was written with another configuration is refused (:class:`RunManifestMismatch`,
  exit 2) unless ``overwrite=True`` (``--overwrite``), which deletes the run's declared outputs and starts
  again (``--overwrite`` starts again even when the configuration is the same);
- with the same configuration the run resumes: the items already in its logs are skipped. A run that must
  be resumed on purpose (training with ``--resume``) passes ``resume=False`` and is refused while the folder
  already holds its outputs;
- a run that continues from one file (a training checkpoint) names it ``resume_from``: then only that file
  makes ``resume=False`` refuse the folder, and ``overwrite`` with ``resume=True`` discards only a run of
  another configuration (``--overwrite --resume`` continues this configuration's run);
- ``legacy`` names files an older version wrote that are never read (pickles): their presence is refused
  unless ``overwrite``, which deletes them;
- a second process opening the same folder while a run holds it is refused (:class:`RunFolderLocked`, exit
  2, naming the holder's PID). The lock dies with its process, so a killed run never blocks its resume;
- a JSONL log drops the half-written last line a killed process left, and refuses to append an id it
  already holds (each log declares its id field).

Example (a training loop)::

    with RunFolder(out, config, outputs=("history.jsonl", "checkpoints"), resume=resume) as run:
        run.write_manifest(status="running")
        history = run.log("history.jsonl", key="epoch")
        start = len(history)
        ckpt_dir = run.subdir("checkpoints")
        ...
        history.append({"epoch": epoch, "loss": loss})
        run.write_manifest(status="complete")
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import IO, Any

from medlens._provenance import SCHEMA_VERSION, config_hash
from medlens._validation import InputError
from medlens.io._atomic import atomic_write_json, to_json
from medlens.io._jsonl import drop_partial_line, read_jsonl

__all__ = ["RunFolder", "RunFolderLocked", "RunLog", "RunManifestMismatch", "prepare_run_dir"]

MANIFEST = "manifest.json"
LOCK = ".lock"
LEGACY_MESSAGE = "{path} was written by an older version and is never read; pass --overwrite to start this run again."


class RunManifestMismatch(InputError):
    """The output folder holds a run made with a different configuration."""


class RunFolderLocked(InputError):
    """Another process holds the run folder."""


def _check_out(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise InputError(f"--out {path} exists and is not a folder; give a folder path for this run.")


def _previous_hash(path: Path) -> str | None:
    """The config hash in ``path/manifest.json``; ``"?"`` for an unreadable manifest, ``None`` when there is none."""
    manifest = path / MANIFEST
    if not manifest.exists():
        return None
    try:
        old = json.loads(manifest.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "?"
    value = old.get("config_hash") if isinstance(old, dict) else None
    return str(value) if value else "?"


def _mismatch(path: Path, old: str, new: str) -> RunManifestMismatch:
    """The one refusal message for a folder that holds a run of another configuration."""
    return RunManifestMismatch(
        f"{path} holds a run made with a different configuration (config hash {old[:12]} vs {new[:12]}); use "
        "another --out folder, or pass --overwrite to discard it and start again."
    )


# =================================================================================================== the lock
def _holder(lock: Path) -> str:
    """The PID written in a lock file (retried briefly: the holder writes it just after taking the lock)."""
    for _ in range(50):
        try:
            text = lock.read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        if text:
            return text
        time.sleep(0.01)
    return "unknown"


def _acquire(folder: Path) -> IO[str]:
    """Take the exclusive lock of ``folder`` (non-blocking) and write this process's PID into it."""
    import fcntl

    path = folder / LOCK
    fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held until _release
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        fh.close()
        if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        raise RunFolderLocked(
            f"{folder} is in use by another run (PID {_holder(path)}); wait for it to finish, or use another --out "
            "folder."
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


def _release(fh: IO[str]) -> None:
    import fcntl

    try:
        fh.seek(0)
        fh.truncate()
        fh.flush()
    except OSError:  # the folder was replaced under the lock (an index swapped into place): nothing to tidy
        pass
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


# ============================================================================================= JSONL logs
class RunLog:
    """An append-only JSONL log of a run: one object per finished item, flushed and synced as it is written.

    Opening it drops a half-written last line (a process killed mid-write) and reads the ids already there;
    :meth:`append` refuses a record without the id field or with an id the log already holds.

    Parameters
    ----------
    path : path
        The JSONL file (created on the first append).
    key : str
        The field that identifies an item (``"id"``, ``"filename"``, ``"epoch"``, ...).
    """

    def __init__(self, path: str | os.PathLike, *, key: str = "id") -> None:
        self.path = Path(path)
        self.key = key
        self._fh: IO[str] | None = None
        self._ids: dict[Hashable, int] = {}
        self._n = 0  # records in the file
        drop_partial_line(self.path)
        if self.path.exists():
            for n, rec in enumerate(read_jsonl(self.path), 1):
                self._n = n
                if key not in rec:
                    continue
                item = self._id_of(rec)
                if item in self._ids:
                    raise InputError(
                        f"{self.path}: record {n} repeats {key} {item!r} of record {self._ids[item]} (two runs "
                        "wrote into this folder at once?); pass --overwrite to start the run again."
                    )
                self._ids[item] = n

    def _id_of(self, record: dict[str, Any]) -> Hashable:
        item = record[self.key]
        if isinstance(item, (dict, list)):
            raise InputError(f"{self.path}: the {self.key!r} of a record must be a string or a number; got {item!r}.")
        return item

    def records(self) -> list[dict[str, Any]]:
        """Every record in file order."""
        return list(read_jsonl(self.path)) if self.path.exists() else []

    def ids(self) -> set[Hashable]:
        """The ids of the records written so far."""
        return set(self._ids)

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def append(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to disk; a missing or repeated id raises :class:`InputError`."""
        if self.key not in record:
            raise InputError(f"a run record needs the key field {self.key!r}; got fields {sorted(record)}.")
        item = self._id_of(record)
        if item in self._ids:
            raise InputError(
                f"{self.path} already holds {self.key} {item!r} (record {self._ids[item]}); a run writes each item once."
            )
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._fh.write(to_json(record, indent=None) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._n += 1
        self._ids[item] = self._n

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ============================================================================================= run folders
class RunFolder:
    """The output folder of one run (see the module notes for the rules).

    Parameters
    ----------
    path : path
        The folder (created if missing).
    config : dict
        Everything that determines the results; its hash is stored in ``manifest.json``.
    overwrite : bool
        Delete the run's ``outputs`` and start again instead of refusing a folder made with another config
        (``--overwrite``; also restarts a run of the same config).
    resume : bool
        Continue a run of the same configuration (default). ``False`` refuses a folder that already holds one
        of ``outputs`` (a training loop resumes only with ``--resume``).
    provenance : dict, optional
        Stored in the manifest next to the config.
    outputs : names
        The files and folders the run writes (JSONL logs, checkpoints): what ``overwrite`` deletes. Nothing
        else in the folder is ever deleted.
    resume_from : str, optional
        The output a stopped run continues from (a checkpoint, also listed in ``outputs``). With it,
        ``resume=False`` refuses only a folder that holds this file, and ``overwrite`` with ``resume=True``
        discards only a run of another configuration: a run of this configuration is continued.
    legacy : names
        Files of older versions that are never read: refused while present (``legacy_message``, formatted
        with ``path``) unless ``overwrite``, which deletes them.
    legacy_message : str
        The refusal for a ``legacy`` file; ``{path}`` is the file.

    Attributes
    ----------
    previous_hash : str or None
        The config hash the folder's manifest held when it was opened (``None``: no manifest).
    discarded : bool
        Whether opening deleted an earlier run's outputs (``overwrite``).

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with RunFolder(d, {"model": "m"}, outputs=["results.jsonl"]) as run:
    ...     _ = run.write_manifest(status="running")
    ...     run.log("results.jsonl").append({"id": "a", "score": 1})
    >>> with RunFolder(d, {"model": "m"}, outputs=["results.jsonl"]) as run:
    ...     sorted(run.log("results.jsonl").ids())
    ['a']
    """

    manifest_name = MANIFEST
    lock_name = LOCK

    def __init__(
        self,
        path: str | os.PathLike,
        config: dict[str, Any],
        *,
        overwrite: bool = False,
        resume: bool = True,
        provenance: dict[str, Any] | None = None,
        outputs: Iterable[str] = (),
        resume_from: str | None = None,
        legacy: Iterable[str] = (),
        legacy_message: str = LEGACY_MESSAGE,
    ) -> None:
        self.path = Path(path)
        self.config = config
        self.config_hash = config_hash(config)
        self.overwrite = overwrite
        self.resume = resume
        self.provenance = provenance or {}
        self.outputs = tuple(outputs)
        self.resume_from = resume_from
        self.legacy = tuple(legacy)
        self.legacy_message = legacy_message
        self.previous_hash: str | None = None
        self.discarded = False
        self._lock: IO[str] | None = None
        self._logs: list[RunLog] = []

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        state = "open" if self._lock is not None else "closed"
        return f"RunFolder({str(self.path)!r}, config_hash={self.config_hash[:12]!r}, {state})"

    # -- opening and closing ------------------------------------------------------------------------------------
    def open(self) -> RunFolder:
        """Lock the folder, then check its manifest: refuse another config, or discard it with ``overwrite``."""
        if self._lock is not None:
            return self
        _check_out(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = _acquire(self.path)
        try:
            self._check()
        except BaseException:
            self.close()
            raise
        return self

    def _existing_outputs(self) -> list[str]:
        return [name for name in self.outputs if (self.path / name).exists()]

    def _check(self) -> None:
        old = self.previous_hash = _previous_hash(self.path)
        existing = self._existing_outputs()
        stale = [name for name in self.legacy if (self.path / name).exists()]
        if old is None and not existing and not stale:
            return  # a new run (or a folder holding only other files)
        if (old is not None or existing) and old != self.config_hash and not self.overwrite:
            raise _mismatch(self.path, old or "none", self.config_hash)
        if stale and not self.overwrite:
            raise InputError(self.legacy_message.format(path=self.path / stale[0]))
        if self.overwrite:
            keep = self.resume_from is not None and self.resume and old == self.config_hash
            for name in stale if keep else [*stale, *existing]:
                target = self.path / name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                else:
                    target.unlink()
            self.discarded = not keep and (old is not None or bool(existing))
        elif not self.resume and self.resume_from is not None:
            if (self.path / self.resume_from).exists():
                raise InputError(
                    f"{self.path} already holds a checkpoint of this run; pass --resume to continue it or "
                    "--overwrite to restart."
                )
        elif not self.resume and existing:
            raise InputError(
                f"{self.path} already holds this run ({', '.join(existing)}); pass --resume to continue it, or "
                "--overwrite to start again."
            )

    def close(self) -> None:
        """Close the logs and release the lock."""
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self._lock is not None:
            lock, self._lock = self._lock, None
            _release(lock)

    def __enter__(self) -> RunFolder:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_open(self) -> None:
        if self._lock is None:
            raise RuntimeError("open the RunFolder first (use it in a `with` block).")

    # -- contents -----------------------------------------------------------------------------------------------
    def write_manifest(self, **fields: Any) -> Path:
        """Rewrite ``manifest.json`` atomically: schema version, config hash, config, provenance, then ``fields``."""
        self._require_open()
        doc = {
            "schema_version": SCHEMA_VERSION,
            "config_hash": self.config_hash,
            "config": self.config,
            "provenance": self.provenance,
            **fields,
        }
        return atomic_write_json(self.manifest_path, doc)

    def log(self, name: str = "results.jsonl", *, key: str = "id") -> RunLog:
        """The append-only JSONL log ``name`` of this run, its items identified by ``key`` (closed with the run)."""
        self._require_open()
        log = RunLog(self.path / name, key=key)
        self._logs.append(log)
        return log

    def subdir(self, name: str) -> Path:
        """A folder inside the run (``checkpoints``), created if missing."""
        self._require_open()
        d = self.path / name
        d.mkdir(parents=True, exist_ok=True)
        return d


def prepare_run_dir(
    out_dir: str | os.PathLike,
    config: dict[str, Any],
    *,
    overwrite: bool = False,
    provenance: dict[str, Any] | None = None,
) -> bool:
    """Create a run folder and write its ``manifest.json`` under the :class:`RunFolder` rules, then release it.

    For runs whose outputs are rewritten whole (a ``metrics.json``) rather than appended item by item. Returns
    ``True`` when an existing run with a *different* config was discarded (``overwrite=True``), so the caller can
    delete its old results. Raises :class:`RunManifestMismatch` when the configs differ and ``overwrite`` is
    false, and :class:`RunFolderLocked` while another run holds the folder.
    """
    with RunFolder(out_dir, config, overwrite=overwrite, provenance=provenance) as run:
        run.write_manifest()
    return run.previous_hash is not None and run.previous_hash != run.config_hash
