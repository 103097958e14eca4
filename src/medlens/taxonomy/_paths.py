"""hiclass-compatible label paths of a :class:`~medlens.taxonomy.Taxonomy` (``Taxonomy.to_paths``,
``Taxonomy.to_paths_pair``).

hiclass reads single labels as ``(n, height)`` arrays of root→node paths (root excluded, right-padded with
``""``) and label sets as ``(n, width, height)``. Its metrics pair the path slots of truth and predictions with
``zip``, so arrays of two widths silently lose the slots of the wider one: both sides must share one width.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from medlens._validation import InputError, check_same_length

if TYPE_CHECKING:
    from medlens.taxonomy._taxonomy import Taxonomy

Labels = Sequence[str] | Sequence[Iterable[str]]


def _is_single(labels: Labels) -> bool:
    return len(labels) == 0 or isinstance(labels[0], str)


def label_paths(tax: Taxonomy, labels: Labels, width: int | None = None) -> np.ndarray:
    """2-D paths for single labels (``width`` None), else 3-D with ``width`` slots (default: the largest set)."""
    single = _is_single(labels)
    if width is None and single:
        out = np.full((len(labels), tax.height), "", dtype=object)
        for i, lab in enumerate(labels):
            p = tax.path(lab)
            out[i, : len(p)] = p
        return out
    sets = [[lab] for lab in labels] if single else [list(s) for s in labels]
    widest = max((len(s) for s in sets), default=0)
    if width is None:
        width = max(1, widest)
    elif isinstance(width, bool) or not isinstance(width, int | np.integer) or width < 1:
        raise InputError(f"width must be a positive integer (path slots per sample); got {width!r}.")
    elif widest > width:
        r = next(i for i, s in enumerate(sets) if len(s) == widest)
        raise InputError(
            f"width={width} is smaller than the label set of row {r} ({widest} labels); use width >= {widest}."
        )
    out = np.full((len(sets), int(width), tax.height), "", dtype=object)
    for i, s in enumerate(sets):
        for j, lab in enumerate(s):
            p = tax.path(lab)
            out[i, j, : len(p)] = p
    return out


def label_paths_pair(tax: Taxonomy, y_true: Labels, y_pred: Labels) -> tuple[np.ndarray, np.ndarray]:
    """Both sides 2-D when both hold single labels, else both 3-D with the widest label set of either side."""
    check_same_length(y_true, y_pred)
    sides = [y if _is_single(y) else [list(s) for s in y] for y in (y_true, y_pred)]
    if all(_is_single(y) for y in sides):
        return label_paths(tax, sides[0]), label_paths(tax, sides[1])
    width = max(1, max((len(s) for y in sides if not _is_single(y) for s in y), default=1))
    return label_paths(tax, sides[0], width), label_paths(tax, sides[1], width)
