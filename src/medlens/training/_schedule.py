"""Learning-rate schedules as torch ``LambdaLR`` factors (no transformers import).

``cosine_with_warmup`` gives the learning rates of ``transformers.get_cosine_schedule_with_warmup`` (one half
cosine, linear warmup from zero) at every step up to ``total_steps``; past the end it stays at zero instead
of rising again. ``warmup_from_zero=False`` shifts the warmup by one step, so the first update already uses
``lr / warmup_steps`` and the warmup reaches the full rate on its last step (the taxonomy fine-tuning's
schedule since its first release).
"""

from __future__ import annotations

import math
from typing import Any

from medlens._optional import require
from medlens._validation import InputError

__all__ = ["cosine_warmup_factor", "cosine_with_warmup", "warmup_steps"]


def warmup_steps(total_steps: int, fraction: float) -> int:
    """Warmup steps for a warmup given as a fraction of the run: ``max(1, round(total · fraction))``, 0 for 0.

    >>> warmup_steps(100, 0.1), warmup_steps(3, 0.1), warmup_steps(100, 0.0)
    (10, 1, 0)
    """
    if not 0 <= fraction < 1:
        raise InputError(f"warmup is a fraction of the steps in [0, 1), got {fraction}.")
    return max(1, int(round(total_steps * fraction))) if fraction > 0 else 0


def _check(warmup: int, total: int) -> None:
    if int(total) < 1:
        raise InputError(f"total_steps must be >= 1, got {total}.")
    if not 0 <= int(warmup) <= int(total):
        raise InputError(f"warmup_steps must be in [0, total_steps = {total}], got {warmup}.")


def cosine_warmup_factor(step: int, *, warmup_steps: int, total_steps: int, warmup_from_zero: bool = True) -> float:
    """The factor on the base learning rate at ``step`` (0-based): linear warmup, then one half cosine to 0.

    >>> [round(cosine_warmup_factor(s, warmup_steps=2, total_steps=6), 3) for s in range(7)]
    [0.0, 0.5, 1.0, 0.854, 0.5, 0.146, 0.0]
    """
    if warmup_steps and step < warmup_steps:
        return (step if warmup_from_zero else step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(1.0, t))))


def cosine_with_warmup(optimizer: Any, *, warmup_steps: int, total_steps: int, warmup_from_zero: bool = True) -> Any:
    """A ``torch.optim.lr_scheduler.LambdaLR`` with :func:`cosine_warmup_factor`; call ``step()`` per update.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    warmup_steps : int
        Steps of linear warmup (0 for none); at most ``total_steps``.
    total_steps : int
        Optimizer steps of the whole run (the cosine reaches 0 there).
    warmup_from_zero : bool
        ``True`` (transformers' schedule): the factor is ``step / warmup_steps`` during warmup, so the first
        update has learning rate 0. ``False``: ``(step + 1) / warmup_steps``.
    """
    torch = require("torch", extra="torch", purpose="the training loop")
    _check(warmup_steps, total_steps)
    warm, total, from_zero = int(warmup_steps), int(total_steps), bool(warmup_from_zero)

    def factor(step: int) -> float:  # a plain function: LambdaLR's state_dict then stores nothing for it
        return cosine_warmup_factor(step, warmup_steps=warm, total_steps=total, warmup_from_zero=from_zero)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
