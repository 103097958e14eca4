"""Shared pieces of the caption metrics: input checks, the caption tokeniser, the result type.

Inputs
------
``references[i]`` is one reference caption (``str``) or several (a sequence of ``str``) for sample ``i``;
``candidates[i]`` is the generated caption (``str``). Every caption must be a non-empty string: ``None``,
numbers and blank strings raise :class:`~medlens._validation.InputError` naming the sample (its id when
``ids`` is given, else its index). A failed generation is a fact to count, not an empty caption to score.

Tokeniser
---------
:func:`tokenize_caption` is the tokeniser of CIDEr-D and METEOR (BLEU, ROUGE-L and BERTScore use their own
libraries' tokenisers; keyword F1 has its own hyphen-splitting one). It is PTB-like but not the Stanford
PTBTokenizer that pycocoevalcap runs through Java: NFKC, lower-case, punctuation dropped, and a token is a
run of letters/digits that may be joined by ``- ' ’ / .`` (``t2-weighted``, ``t2/flair``, ``3.5``,
``patient's`` stay one token) or, between digits, by ``,`` (``1,000``). A trailing full stop is dropped
(``"mm."`` → ``mm``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medlens._results import MetricResult
from medlens._validation import InputError

__all__ = ["TextScore", "check_captions", "tokenize_caption"]

_TOKEN = re.compile(r"\d+(?:,\d+)+(?:\.\d+)?|[^\W_]+(?:['’/.\-][^\W_]+)*")


def tokenize_caption(text: str) -> list[str]:
    """Lower-cased, PTB-like word tokens of ``text`` with punctuation removed (see the module notes).

    >>> tokenize_caption("Axial T2-weighted image: a 3.5 cm lesion (left), no oedema.")
    ['axial', 't2-weighted', 'image', 'a', '3.5', 'cm', 'lesion', 'left', 'no', 'oedema']
    """
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).lower())


def _where(i: int, ids: Sequence[Any] | None) -> str:
    return f"index {i} (id {ids[i]!r})" if ids is not None else f"index {i}"


def _check_text(value: Any, what: str, i: int, ids: Sequence[Any] | None) -> str:
    if not isinstance(value, str):
        raise InputError(
            f"{what} at {_where(i, ids)} must be a string; got {type(value).__name__} {value!r}. "
            "Convert captions to text first (a missing caption is not a caption: drop the sample)."
        )
    if not value.strip():
        raise InputError(
            f"{what} at {_where(i, ids)} is empty ({value!r}); every caption must contain text. "
            "Drop the sample, or count a failed generation separately rather than scoring an empty string."
        )
    return value


def check_captions(
    references: Sequence[Any], candidates: Sequence[Any], ids: Sequence[Any] | None = None
) -> tuple[list[list[str]], list[str]]:
    """Validate caption inputs → (references as lists of strings, candidates).

    >>> check_captions(["a lesion", ["a mass", "a tumour"]], ["lesion", "mass"])
    ([['a lesion'], ['a mass', 'a tumour']], ['lesion', 'mass'])
    >>> check_captions(["a lesion"], ["  "], ids=["case-7"])
    Traceback (most recent call last):
    ...
    medlens._validation.InputError: candidate caption at index 0 (id 'case-7') is empty ('  '); every caption must contain text. Drop the sample, or count a failed generation separately rather than scoring an empty string.
    """
    references, candidates = (
        x.tolist() if hasattr(x, "tolist") else x for x in (references, candidates)
    )  # numpy, pandas
    ids = list(ids) if ids is not None and not isinstance(ids, str) else ids
    for name, seq in (("references", references), ("candidates", candidates)):
        if isinstance(seq, str) or not isinstance(seq, Sequence):
            raise InputError(f"{name} must be a sequence with one entry per sample; got {type(seq).__name__}.")
    if len(references) != len(candidates):
        raise InputError(
            f"references and candidates must have one entry per sample; got {len(references)} references "
            f"and {len(candidates)} candidates."
        )
    if ids is not None and len(ids) != len(candidates):
        raise InputError(f"ids must have one entry per sample; got {len(ids)} ids for {len(candidates)} samples.")
    if len(candidates) == 0:
        raise InputError("no captions to score: references and candidates are empty.")
    cands = [_check_text(c, "candidate caption", i, ids) for i, c in enumerate(candidates)]
    refs: list[list[str]] = []
    for i, r in enumerate(references):
        if isinstance(r, str) or r is None or not isinstance(r, Sequence | np.ndarray):
            refs.append([_check_text(r, "reference caption", i, ids)])
            continue
        if len(r) == 0:
            raise InputError(f"references at {_where(i, ids)} is an empty list; give at least one reference caption.")
        refs.append([_check_text(x, f"reference caption {k}", i, ids) for k, x in enumerate(r)])
    return refs, cands


@dataclass(frozen=True)
class TextScore(MetricResult):
    """One caption metric over a set of samples.

    Attributes
    ----------
    metric : str
        The stable key (``"bleu"``, ``"rouge_l"``, ``"cider"``, ``"meteor"``, ``"bertscore_f1"``, ...).
    score : float or None
        The corpus-level value (``None`` when no sample is defined, e.g. keyword F1 with nothing to score).
    per_sample : ndarray of shape (n_samples,)
        The per-sample values (``nan`` where a sample is not scored).
    settings : dict
        Everything needed to reproduce the number: library versions, tokeniser, model, scale.
    components : dict
        Extra per-sample arrays (BERTScore precision/recall, keyword precision/recall/mentions, BLEU statistics).
    """

    metric: str
    score: float | None
    per_sample: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)
    components: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, *, per_sample: bool = False) -> dict[str, Any]:
        """JSON-friendly view (``nan`` → ``None``)."""
        out: dict[str, Any] = {"metric": self.metric, "score": self.score, "settings": self.settings}
        if per_sample:
            out["per_sample"] = nan_to_none(self.per_sample)
        return out


def nan_to_none(values: np.ndarray) -> list[float | None]:
    """A float array as a list with ``None`` in place of ``nan``."""
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, dtype=np.float64)]


def mean_or_none(values: np.ndarray, weights: np.ndarray | None = None) -> float | None:
    """(Weighted) mean over the finite entries, or ``None`` when there are none (or they all weigh 0)."""
    v = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(v)
    if weights is None:
        v = v[keep]
        return float(v.mean()) if v.size else None
    w = np.asarray(weights, dtype=np.float64)[keep]
    return float((w * v[keep]).sum() / w.sum()) if w.sum() > 0 else None
