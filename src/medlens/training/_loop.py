"""The training loop every medlens trainer uses: seeded epochs, AdamW with clipping and a schedule, a
checkpoint after every epoch, exact resume, a progress bar and a history.

Determinism: every epoch reseeds torch with ``(seed, epoch)`` and draws its batch order from
``numpy.random.default_rng([seed, epoch])`` (:func:`epoch_rng`), and runs with deterministic kernels; a run
killed after any epoch and resumed from its checkpoint ends with the same weights, bit for bit, as an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._progress import progress_bar
from medlens._provenance import config_hash
from medlens._validation import InputError
from medlens.training._checkpoint import load_checkpoint, save_checkpoint
from medlens.training._run import TrainingRun

torch = require("torch", extra="torch", purpose="the training loop")

__all__ = ["Trainer", "adamw", "deterministic_algorithms", "epoch_rng", "seed_torch"]

log = logging.getLogger(__name__)


def seed_torch(seed: int) -> None:
    """Seed torch's generators on every device (initialisation); numpy draws take explicit generators."""
    torch.manual_seed(int(seed))


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """Reseed torch for ``epoch`` (dropout) and return the epoch's numpy generator (batch order)."""
    torch.manual_seed(int(seed) * 1_000_003 + int(epoch))
    return np.random.default_rng([int(seed), int(epoch)])


def adamw(param_groups: Sequence[dict[str, Any]], **defaults: Any) -> Any:
    """``torch.optim.AdamW`` over the groups that have parameters (each group sets its own ``lr``, ...)."""
    groups = [dict(g, params=list(g["params"])) for g in param_groups]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise InputError("nothing to train: every parameter is frozen.")
    return torch.optim.AdamW(groups, **defaults)


@contextlib.contextmanager
def deterministic_algorithms() -> Iterator[None]:
    """Deterministic kernels while active (with several CPU threads some backward passes sum in thread order)."""
    was = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=was_warn)


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Runs epochs of ``step`` over a plan of batches, checkpointing into a :class:`TrainingRun`.

    Parameters
    ----------
    model : torch.nn.Module
        The model whose tensors are checkpointed (``model_state()``) and restored on resume.
    optimizer, scheduler : torch optimizer and LR scheduler (stepped once per batch); ``scheduler`` may be None.
    epochs, seed : int
    max_grad_norm : float, optional
        Clip the gradient norm of all optimised parameters (``None`` or 0: no clipping).
    run : TrainingRun, optional
        Where the checkpoint and history go (``None`` trains in memory): an open run folder, locked while
        training. :meth:`fit` closes it when it ends (also on an error, as does a failed :meth:`resume`).
    close_run : bool
        ``False`` leaves the run open after :meth:`fit` for a caller that writes more into the folder (its
        final model) and closes it itself, in a ``finally``.
    model_state : callable, optional
        The tensors to checkpoint (default: the whole ``state_dict``); restoring loads them with
        ``strict=False``, so a trainer may store only what it trains.
    progress : bool
        A progress bar per epoch.
    """

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        scheduler: Any = None,
        *,
        epochs: int,
        seed: int,
        max_grad_norm: float | None = None,
        run: TrainingRun | None = None,
        model_state: Callable[[], dict[str, Any]] | None = None,
        progress: bool = False,
        close_run: bool = True,
    ) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.epochs, self.seed, self.max_grad_norm = int(epochs), int(seed), max_grad_norm
        self.run, self.progress, self.close_run = run, progress, close_run
        self.model_state = model_state or (lambda: {k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        self.start = 0
        self.history: list[dict[str, Any]] = []

    def _params(self) -> list[Any]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def resume(self) -> int:
        """Restore the run's checkpoint if it has one; returns the number of epochs already done (0 without)."""
        if self.run is None or not self.run.has_checkpoint():
            return 0
        try:
            return self._restore(self.run)
        except BaseException:
            self._close()
            raise

    def _close(self) -> None:
        if self.run is not None and self.close_run:
            self.run.close()

    def _restore(self, run: TrainingRun) -> int:
        path = run.checkpoint
        fix = "pass --overwrite to restart the run"
        state = load_checkpoint(path, fix=fix)
        try:
            if state["config_hash"] != config_hash(run.config):
                raise InputError(f"{path} belongs to another configuration than its run folder; {fix}.")
            tensors = state["model"]
            unknown = set(tensors) - set(self.model.state_dict())
            if unknown:
                raise InputError(f"{path} does not fit this model (unknown keys {sorted(unknown)[:3]}); {fix}.")
            self.model.load_state_dict(tensors, strict=False)
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            _set_rng_state(state["rng"])
            self.history, self.start = list(state["history"]), int(state["epoch"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            if isinstance(e, InputError):
                raise
            msg = " ".join(str(e).split())[:200]
            raise InputError(f"{path} does not fit this run ({type(e).__name__}: {msg}); {fix}.") from None
        log.info("resuming %s from epoch %d", run.dir, self.start)
        return self.start

    def save(self, epoch: int) -> None:
        """Write the checkpoint after ``epoch`` epochs, then the history (both atomically)."""
        if self.run is None:
            return
        state = {
            "epoch": epoch,
            "model": self.model_state(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": _rng_state(),
            "history": self.history,
            "config_hash": config_hash(self.run.config),
        }
        save_checkpoint(self.run.checkpoint, state)
        self.run.write_history(self.history)

    def fit(
        self,
        plan: Callable[[np.random.Generator], Sequence[tuple[Any, int]]],
        step: Callable[[Any], tuple[Any, dict[str, float]]],
        *,
        n_items: int,
        train_mode: Callable[[], None] | None = None,
        validate: Callable[[int], dict[str, Any]] | None = None,
        callback: Callable[[int, dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Train the remaining epochs; returns the history (one row per epoch, resumed rows included).

        ``plan(rng)`` gives an epoch's ``(batch, n_items_in_batch)`` pairs from that epoch's generator;
        ``step(batch)`` returns ``(loss, {name: float})`` (the parts are averaged into ``train_<name>``);
        ``train_mode()`` sets train/eval modes before each epoch (default ``model.train()``);
        ``validate(epoch)`` adds columns to the row; ``callback(epoch, row)`` runs after the checkpoint.
        """
        try:
            return self._fit(plan, step, n_items, train_mode, validate, callback)
        finally:
            self._close()

    def _fit(
        self,
        plan: Callable[[np.random.Generator], Sequence[tuple[Any, int]]],
        step: Callable[[Any], tuple[Any, dict[str, float]]],
        n_items: int,
        train_mode: Callable[[], None] | None,
        validate: Callable[[int], dict[str, Any]] | None,
        callback: Callable[[int, dict[str, Any]], None] | None,
    ) -> list[dict[str, Any]]:
        params = self._params()
        with deterministic_algorithms():
            for epoch in range(self.start, self.epochs):
                batches = plan(epoch_rng(self.seed, epoch))
                (train_mode or self.model.train)()
                sums: dict[str, float] = {}
                n_batches = 0
                t0 = time.perf_counter()
                with progress_bar(n_items, self.progress, f"epoch {epoch + 1}/{self.epochs}") as bar:
                    for batch, size in batches:
                        loss, parts = step(batch)
                        if not torch.isfinite(loss):
                            raise InputError(
                                f"loss became {float(loss)} at epoch {epoch + 1}; lower the learning rate."
                            )
                        self.optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        if self.max_grad_norm:
                            torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
                        self.optimizer.step()
                        if self.scheduler is not None:
                            self.scheduler.step()
                        for key, v in {"loss": float(loss.detach()), **parts}.items():
                            sums[key] = sums.get(key, 0.0) + v
                        n_batches += 1
                        bar(size)
                row: dict[str, Any] = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - t0, 2)}
                row |= {f"train_{k}": v / max(1, n_batches) for k, v in sums.items()}
                if validate is not None:
                    row |= validate(epoch + 1)
                self.history.append(row)
                shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}  # val AUROC may be None
                log.info("epoch %d/%d: %s", epoch + 1, self.epochs, shown)
                self.save(epoch + 1)
                if callback is not None:
                    callback(epoch + 1, row)
        return self.history
