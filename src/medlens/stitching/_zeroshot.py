"""Zero-shot classification for an encoder without a text tower, through a translation into a text space.

An image (or any unimodal) encoder ``V`` has no prompts to compare with. Fit a :class:`Translator` on anchor
pairs ``(V(item), E_t(description of item))`` and ``T(V(x))`` lives in the text encoder ``E_t``'s space, where
:class:`medlens.hierarchy.ZeroShotScorer` compares it with every node's prompt ensemble (method ``contrast``:
positive vs negative prompts, CheXzero's rule; or ``softmax``/``sigmoid``).

:func:`zero_shot_metrics` scores the result: per-class and macro AUROC for multi-label truth, accuracy for
multi-class truth (one label per row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medlens._validation import InputError
from medlens.stitching._translate import Translator

__all__ = ["translated_zero_shot", "zero_shot_metrics"]


def translated_zero_shot(
    features: Any,
    *,
    translator: Translator,
    scorer: Any,
) -> np.ndarray:
    """Node probabilities ``(n, len(taxonomy))`` of source ``features`` translated into ``scorer``'s text space.

    ``scorer`` is a :class:`medlens.hierarchy.ZeroShotScorer` built on the target text encoder; its
    ``similarity_embeddings`` compares the translated rows with the prompt ensembles.
    """
    z = translator.transform(features)
    dim = scorer.prompt_embeddings().shape[1]
    if z.shape[1] != dim:
        raise InputError(
            f"the translator maps into {z.shape[1]} dimensions but the text encoder embeds prompts in {dim}; fit the "
            "translator with that encoder's embeddings as the target."
        )
    return scorer.probabilities(scorer.similarity_embeddings(z))


def zero_shot_metrics(scores: Any, truth: Any, *, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """AUROC per class and macro (multi-label 0/1 truth ``(n, C)``) or accuracy (integer class per row ``(n,)``).

    Classes with a single truth value are left out of the macro AUROC and listed under ``skipped``.

    >>> zero_shot_metrics(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 1]))["accuracy"]
    1.0
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(truth)
    if s.ndim != 2 or len(s) != len(y):
        raise InputError(f"scores must be (n, classes) with one row per truth row; got {s.shape} for {len(y)} rows.")
    names = list(classes) if classes is not None else [str(i) for i in range(s.shape[1])]
    if len(names) != s.shape[1]:
        raise InputError(f"{len(names)} class names for {s.shape[1]} score columns.")
    if y.ndim == 1:
        if not np.issubdtype(y.dtype, np.integer) or y.min(initial=0) < 0 or y.max(initial=0) >= s.shape[1]:
            raise InputError(f"multi-class truth must be class indices in 0..{s.shape[1] - 1}.")
        return {"kind": "multiclass", "n": int(len(y)), "accuracy": float((s.argmax(1) == y).mean())}
    if y.shape != s.shape:
        raise InputError(f"multi-label truth must have the scores' shape {s.shape}; got {y.shape}.")
    from medlens.metrics import auroc_columns

    auc = auroc_columns(y.astype(int), s)
    per = {name: float(auc[j]) for j, name in enumerate(names) if np.isfinite(auc[j])}
    skipped = [name for j, name in enumerate(names) if not np.isfinite(auc[j])]
    return {
        "kind": "multilabel",
        "n": int(len(y)),
        "macro_auroc": float(np.mean(list(per.values()))) if per else None,
        "auroc": per,
        "skipped": skipped,
    }
