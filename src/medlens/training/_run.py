"""The run folder of a training loop: a :class:`medlens.io.RunFolder` holding ``manifest.json``,
``checkpoint.safetensors`` and ``history.jsonl``, locked for the whole run; :func:`open_training_run` is the
one place that decides what a re-run into the same folder does (refuse, resume or restart).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medlens._provenance import stamp
from medlens.io import RunFolder, atomic_write_text, to_json

__all__ = ["CHECKPOINT", "HISTORY", "TrainingRun", "open_training_run"]

CHECKPOINT = "checkpoint.safetensors"
HISTORY = "history.jsonl"
PICKLE_MESSAGE = (
    "{path} was written by an older medlens as a pickle, which is never loaded (unpickling a file can run code); "
    "pass --overwrite to train this run again (it now writes safetensors files)."
)


class TrainingRun(RunFolder):
    """A training run folder (a :class:`~medlens.io.RunFolder`): ``manifest.json``, ``checkpoint.safetensors``
    and ``history.jsonl``. Open (and locked) from :func:`open_training_run` until :meth:`close`."""

    @property
    def dir(self) -> Path:
        return self.path

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def history(self) -> Path:
        return self.path / HISTORY

    def has_checkpoint(self) -> bool:
        return self.checkpoint.is_file()

    def write_history(self, rows: Sequence[dict[str, Any]]) -> Path:
        """Rewrite ``history.jsonl`` atomically: one stamped row (schema version, provenance) per epoch."""
        self._require_open()
        text = "".join(to_json(stamp(dict(r), self.provenance), indent=None) + "\n" for r in rows)
        return atomic_write_text(self.history, text)


def open_training_run(
    out_dir: str | os.PathLike,
    config: dict[str, Any],
    *,
    resume: bool = False,
    overwrite: bool = False,
    outputs: Sequence[str] = (),
    legacy: Sequence[str] = (),
    provenance: dict[str, Any] | None = None,
) -> TrainingRun:
    """Open (lock) the run folder ``out_dir`` for ``config`` and write its manifest; close it when training ends.

    - a folder that another process holds is refused (:class:`medlens.io.RunFolderLocked`, naming its PID);
    - another configuration's run is refused, or discarded with ``overwrite`` (the manifest);
    - with ``overwrite`` and no ``resume`` the run restarts: the checkpoint, history and ``outputs`` (the
      files of a finished run) are deleted;
    - otherwise a checkpoint is refused unless ``resume`` (the loop then continues from it);
    - ``legacy`` names files of older versions that are never read (pickles, which can run code when
      loaded): ``overwrite`` deletes them, otherwise their presence is refused with a message saying so.
    """
    run = TrainingRun(
        Path(out_dir),
        config,
        overwrite=overwrite,
        resume=resume,
        provenance=dict(provenance or {}),
        outputs=(CHECKPOINT, HISTORY, *outputs),
        resume_from=CHECKPOINT,
        legacy=legacy,
        legacy_message=PICKLE_MESSAGE,
    )
    run.open()
    try:
        run.write_manifest()
    except BaseException:
        run.close()
        raise
    return run
