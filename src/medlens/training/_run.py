"""The run folder of a training loop: manifest, checkpoint, history; the one place that decides what a
re-run into the same folder does (refuse, resume or restart).

:func:`open_training_run` is the only function here that touches the folder's layout rules; it uses
:func:`medlens.io.prepare_run_dir` for the manifest and can be swapped for a shared run-folder object
without changing the loop.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medlens._provenance import stamp
from medlens._validation import InputError
from medlens.io import atomic_write_text, prepare_run_dir, to_json

__all__ = ["CHECKPOINT", "HISTORY", "TrainingRun", "open_training_run"]

CHECKPOINT = "checkpoint.safetensors"
HISTORY = "history.jsonl"


@dataclass
class TrainingRun:
    """A training run folder: ``manifest.json``, ``checkpoint.safetensors`` and ``history.jsonl``."""

    dir: Path
    config: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def checkpoint(self) -> Path:
        return self.dir / CHECKPOINT

    @property
    def history(self) -> Path:
        return self.dir / HISTORY

    def has_checkpoint(self) -> bool:
        return self.checkpoint.is_file()

    def write_history(self, rows: Sequence[dict[str, Any]]) -> Path:
        """Rewrite ``history.jsonl`` atomically: one stamped row (schema version, provenance) per epoch."""
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
    """Create or reopen the run folder ``out_dir`` for ``config``.

    - another configuration's run is refused, or discarded with ``overwrite`` (the manifest);
    - with ``overwrite`` and no ``resume`` the run restarts: the checkpoint, history and ``outputs`` (the
      files of a finished run) are deleted;
    - otherwise a checkpoint is refused unless ``resume`` (the loop then continues from it);
    - ``legacy`` names files of older versions that are never read (pickles, which can run code when
      loaded): ``overwrite`` deletes them, otherwise their presence is refused with a message saying so.
    """
    out = Path(out_dir)
    discarded = prepare_run_dir(out, config, overwrite=overwrite, provenance=provenance)
    run = TrainingRun(out, config, dict(provenance or {}))
    stale = [out / name for name in legacy if (out / name).exists()]
    if stale and not overwrite:
        raise InputError(
            f"{stale[0]} was written by an older medlens as a pickle, which is never loaded (unpickling a file "
            "can run code); pass --overwrite to train this run again (it now writes safetensors files)."
        )
    if discarded or overwrite:
        doomed = [*stale] + (
            [run.checkpoint, run.history, *(out / n for n in outputs)] if discarded or not resume else []
        )
        for p in doomed:
            p.unlink(missing_ok=True)
    elif run.has_checkpoint() and not resume:
        raise InputError(
            f"{out} already holds a checkpoint of this run; pass --resume to continue it or --overwrite to restart."
        )
    return run
