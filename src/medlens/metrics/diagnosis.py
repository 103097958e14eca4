"""Diagnosis metrics: top-k accuracy under a judge, judge agreement (Cohen's kappa), label coverage and entropy.

A sample has one gold diagnosis (``y_true``) and a ranked list of predicted diagnoses (``y_pred``). Sample ``i``
is a top-k hit when a judge (see :mod:`medlens.metrics._judges`) matches one of its first k predictions with the
gold name (k one of ``top_k``); top-k accuracy is the (weighted) mean over samples (a sample with no prediction is
a miss), and the macro variant averages per gold label first (NOVA has about 281 labels, most with 1-5 images, so
one frequent label can move the micro number).

Mode-collapse signals, on the top-1 predictions (names first mapped to a canonical label by the exact/synonym
normaliser, so "GBM" and "glioblastoma" count once):

- ``coverage`` = distinct predicted labels / distinct gold labels (3P NOVA reproduction's definition; it can
  exceed 1 when a model invents many labels);
- ``entropy_bits`` = Shannon entropy (base 2) of the predicted labels; compare with ``gold_entropy_bits``.

With ``sample_weight`` a sample counts with its weight everywhere: in the top-k means, in each label's mean for
the macro variant, in the label distributions of the entropies, and (weight > 0) in the coverage's label sets.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medlens._results import MetricResult, check_sample_weight, weighted_mean
from medlens._validation import InputError, check_same_length
from medlens.metrics._judges import (
    JUDGES,
    BaseJudge,
    EmbeddingJudge,
    ExactSynonymJudge,
    Judge,
    JudgeCache,
    Judgement,
    JudgeRun,
    SynonymTable,
    load_synonym_table,
    make_judge,
    normalize_diagnosis,
    run_judge,
)
from medlens.metrics._llm_judge import LLMJudge

__all__ = [
    "JUDGES",
    "BaseJudge",
    "DiagnosisReport",
    "EmbeddingJudge",
    "ExactSynonymJudge",
    "Judge",
    "JudgeCache",
    "JudgeRun",
    "Judgement",
    "LLMJudge",
    "SynonymTable",
    "cohen_kappa",
    "diagnosis_report",
    "judge_agreement",
    "label_coverage",
    "label_entropy",
    "load_synonym_table",
    "make_judge",
    "normalize_diagnosis",
    "run_judge",
]


# ========================================================================================== agreement
def _check_labels(labels: Sequence[Hashable], name: str) -> None:
    """Refuse a missing label (``None`` or nan) with its position."""
    for i, x in enumerate(labels):
        if x is None or (isinstance(x, float | np.floating) and math.isnan(x)):
            raise InputError(f"{name}[{i}] is missing ({x!r}); give every sample a label or drop the sample.")


def cohen_kappa(
    labels_a: Sequence[Hashable], labels_b: Sequence[Hashable], *, sample_weight: Sequence[float] | None = None
) -> float:
    """Cohen's kappa between two raters' labels: ``sklearn.metrics.cohen_kappa_score``.

    kappa = (p_o - p_e) / (1 - p_e), with p_o the observed agreement and p_e the agreement expected from the two
    marginal distributions; nan when p_e = 1 (both raters always give the same single label), as scikit-learn
    (without its warning). Kappa is symmetric, so the two raters play the roles of ``y_true`` and ``y_pred``.
    Labels may be any hashable values (booleans, strings, :class:`Judgement` verdicts as ``match``); a missing
    label (``None``, nan) is refused.

    >>> cohen_kappa([True, True, False, False], [True, False, False, False])
    0.5
    """
    from sklearn.metrics import cohen_kappa_score

    n = check_same_length(labels_a, labels_b, names=("labels_a", "labels_b"))
    if n == 0:
        raise InputError("cohen_kappa needs at least one pair of labels; got none.")
    w = check_sample_weight(sample_weight, n)
    _check_labels(labels_a, "labels_a")
    _check_labels(labels_b, "labels_b")
    # scikit-learn needs one comparable label type: code the labels as integers in order of appearance
    codes = {c: i for i, c in enumerate(dict.fromkeys([*labels_a, *labels_b]))}
    a = np.array([codes[x] for x in labels_a])
    b = np.array([codes[x] for x in labels_b])
    if len(codes) == 1:  # p_e = 1: scikit-learn would warn and divide 0 by 0
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(cohen_kappa_score(a, b, sample_weight=w))


def judge_agreement(a: Sequence[Judgement | bool], b: Sequence[Judgement | bool]) -> dict[str, Any]:
    """Agreement of two judges on the same pairs: Cohen's kappa of their match verdicts and the 2x2 counts.

    >>> judge_agreement([True, True, False, False], [True, False, False, False])["kappa"]
    0.5
    """
    ma = [x.match if isinstance(x, Judgement) else bool(x) for x in a]
    mb = [x.match if isinstance(x, Judgement) else bool(x) for x in b]
    n = check_same_length(ma, mb, names=("judgements_a", "judgements_b"))
    both = sum(x and y for x, y in zip(ma, mb, strict=True))
    only_a = sum(x and not y for x, y in zip(ma, mb, strict=True))
    only_b = sum(y and not x for x, y in zip(ma, mb, strict=True))
    return {
        "kappa": cohen_kappa(ma, mb) if n else float("nan"),
        "n_pairs": n,
        "observed_agreement": (n - only_a - only_b) / n if n else float("nan"),
        "both_match": both,
        "only_a": only_a,
        "only_b": only_b,
        "neither": n - both - only_a - only_b,
    }


# ================================================================================= coverage and entropy
def label_entropy(
    labels: Sequence[Hashable], *, sample_weight: Sequence[float] | None = None, base: float = 2.0
) -> float:
    """Shannon entropy of the empirical (weighted) label distribution (bits by default); nan for no labels.

    >>> label_entropy(["a", "a", "b", "b"]), label_entropy(["a", "a", "a", "a"])
    (1.0, 0.0)
    """
    w = check_sample_weight(sample_weight, len(labels))
    if w is None:
        counts = np.array(list(Counter(labels).values()), dtype=np.float64)
    else:
        mass: dict[Hashable, float] = {}
        for lab, wi in zip(labels, w, strict=True):
            mass[lab] = mass.get(lab, 0.0) + float(wi)
        counts = np.array([m for m in mass.values() if m > 0], dtype=np.float64)
    if counts.size == 0:
        return float("nan")
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() / math.log(base)) + 0.0


def label_coverage(
    y_true: Sequence[Hashable], y_pred: Sequence[Hashable], *, sample_weight: Sequence[float] | None = None
) -> float:
    """Distinct predicted labels / distinct gold labels (an empty ``y_true`` or a missing label is refused).

    ``y_true`` and ``y_pred`` are label lists that need not be paired (a sample without a prediction adds a gold
    label only). With ``sample_weight`` (paired lists only) a label counts when a sample of positive weight has it.

    >>> label_coverage(["a", "b", "c", "c"], ["a", "a", "a"])
    0.3333333333333333
    """
    if len(y_true) == 0:
        raise InputError("label_coverage needs gold labels; y_true is empty.")
    _check_labels(y_true, "y_true")
    _check_labels(y_pred, "y_pred")
    if sample_weight is not None:
        n = check_same_length(y_true, y_pred)
        w = check_sample_weight(sample_weight, n)
        y_true = [x for x, wi in zip(y_true, w, strict=True) if wi > 0]
        y_pred = [x for x, wi in zip(y_pred, w, strict=True) if wi > 0]
    return len(set(y_pred)) / len(set(y_true))


# =========================================================================================== the report
@dataclass(frozen=True)
class DiagnosisReport(MetricResult):
    """Top-k accuracy of ranked diagnosis lists under one judge, with the per-sample evidence.

    Attributes
    ----------
    scores : dict
        ``top{k}`` and ``top{k}_macro`` for each k in ``top_k``, ``coverage``, ``entropy_bits``,
        ``gold_entropy_bits``.
    top_k : tuple of int
        The cut-offs, ascending.
    hits : numpy.ndarray
        ``(n, len(top_k))`` bool: sample i is a hit at the j-th cut-off.
    first_hit : list
        1-based rank of the first matching prediction per sample (``None`` when none of the first max(top_k)
        match).
    judgements : list of list of Judgement
        Per sample, the verdicts on its first max(top_k) predictions.
    """

    scores: dict[str, float]
    top_k: tuple[int, ...]
    hits: np.ndarray
    first_hit: list[int | None]
    ids: list[Any]
    predictions: list[list[str]]
    golds: list[str]
    judgements: list[list[Judgement]]
    judge: dict[str, Any]
    counts: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, *, per_sample: bool = False) -> dict[str, Any]:
        """The scores, ``top_k``, the judge's description, the counts and, on request, the per-sample rows."""
        out: dict[str, Any] = {
            **self.scores,
            "top_k": list(self.top_k),
            **self.judge,
            **self.counts,
            "judging": self.run,
        }
        if per_sample:
            out["per_sample"] = [
                {
                    "id": sid,
                    "gold": g,
                    "predictions": p,
                    "first_hit": fh,
                    **{f"top{k}": bool(h[j]) for j, k in enumerate(self.top_k)},
                    "judgements": [jg.to_dict() for jg in js],
                }
                for sid, g, p, fh, h, js in zip(
                    self.ids, self.golds, self.predictions, self.first_hit, self.hits, self.judgements, strict=True
                )
            ]
        return out


def _check_predictions(golds: Sequence[Any], predictions: Sequence[Any], ids: Sequence[Any] | None) -> None:
    n = check_same_length(golds, predictions, names=("y_true (gold diagnoses)", "y_pred (ranked predictions)"))
    if n == 0:
        raise InputError("no diagnosis to score: y_true and y_pred are empty.")
    if ids is not None:
        check_same_length(predictions, ids, names=("y_pred", "ids"))
    for i, (p, g) in enumerate(zip(predictions, golds, strict=True)):
        where = f"sample {ids[i]!r}" if ids is not None else f"sample {i}"
        if not isinstance(g, str) or not g.strip():
            raise InputError(f"gold diagnosis of {where} must be a non-empty string; got {g!r}.")
        if isinstance(p, str) or not isinstance(p, Sequence):
            raise InputError(f"predictions of {where} must be a ranked list of names; got {type(p).__name__} {p!r}.")
        for j, name in enumerate(p):
            if not isinstance(name, str) or not name.strip():
                raise InputError(f"prediction {j} of {where} must be a non-empty string; got {name!r}.")


def diagnosis_report(
    y_true: Sequence[str],
    y_pred: Sequence[Sequence[str]],
    *,
    sample_weight: Sequence[float] | None = None,
    judge: str | Judge = "exact_synonym",
    top_k: Sequence[int] = (1, 5),
    ids: Sequence[Any] | None = None,
    cache: JudgeCache | None = None,
    labeler: ExactSynonymJudge | None = None,
    judge_options: Mapping[str, Any] | None = None,
) -> DiagnosisReport:
    """Top-k accuracy (micro and macro over gold labels), coverage and entropy of ranked diagnosis lists.

    Parameters
    ----------
    y_true : sequence of str
        The gold diagnosis per sample.
    y_pred : sequence of sequences of str
        Ranked predicted names per sample (may be empty: a miss).
    sample_weight : sequence of float, optional
        Per-sample weights (see the module notes); the judge still sees every pair once.
    judge : str or Judge
        A registered judge name (``"exact_synonym"``, ``"embedding"``) or a judge object.
    top_k : sequence of int
        Cut-offs; only the first ``max(top_k)`` predictions of a sample are judged.
    ids : sequence, optional
        Sample ids (errors, per-sample rows).
    cache : JudgeCache, optional
        Where verdicts are read from and written to.
    labeler : ExactSynonymJudge, optional
        Maps names to canonical labels for coverage, entropy and the macro average (default: the built-in table).
    judge_options : mapping, optional
        Constructor options when ``judge`` is a name (``{"threshold": 0.85}``).

    Examples
    --------
    >>> rep = diagnosis_report(
    ...     ["vestibular schwannoma", "glioblastoma", "arachnoid cyst"],
    ...     [["meningioma", "acoustic neuroma"], ["GBM"], []],
    ... )
    >>> rep.scores["top1"], rep.scores["top5"], rep.first_hit
    (0.3333333333333333, 0.6666666666666666, [2, 1, None])
    """
    try:
        ks = tuple(sorted({int(x) for x in top_k}))
    except (TypeError, ValueError):
        raise InputError(f"top_k must be positive integers; got {top_k!r}.") from None
    if not ks or ks[0] < 1:
        raise InputError(f"top_k must be positive integers; got {list(top_k)}.")
    _check_predictions(y_true, y_pred, ids)
    w = check_sample_weight(sample_weight, len(y_true))
    j = make_judge(judge, **dict(judge_options or {}))
    labeler = labeler or ExactSynonymJudge()
    kmax = ks[-1]
    preds = [list(p) for p in y_pred]
    gold_list = list(y_true)
    pairs = [(name, g) for p, g in zip(preds, gold_list, strict=True) for name in p[:kmax]]
    run = run_judge(j, pairs, cache=cache)
    it = iter(run.judgements)
    per_sample = [[next(it) for _ in p[:kmax]] for p in preds]
    n = len(preds)
    first_hit = [next((r + 1 for r, jg in enumerate(js) if jg.match), None) for js in per_sample]
    hits = np.array([[fh is not None and fh <= kk for kk in ks] for fh in first_hit], dtype=bool).reshape(n, len(ks))
    gold_labels = [labeler.canonical(g) for g in gold_list]
    has_pred = [i for i, p in enumerate(preds) if p]
    top1_labels = [labeler.canonical(preds[i][0]) for i in has_pred]
    top1_w = None if w is None else w[has_pred]
    scores: dict[str, float] = {}
    for col, kk in enumerate(ks):
        scores[f"top{kk}"] = weighted_mean(hits[:, col], w)
        by_label: dict[str, list[int]] = {}
        for i, lab in enumerate(gold_labels):
            by_label.setdefault(lab, []).append(i)
        per_label = [weighted_mean(hits[rows, col], None if w is None else w[rows]) for rows in by_label.values()]
        per_label = [v for v in per_label if not math.isnan(v)]  # a label whose samples all weigh 0
        scores[f"top{kk}_macro"] = float(np.mean(per_label)) if per_label else float("nan")
    if w is None:
        scores["coverage"] = label_coverage(gold_labels, top1_labels)
    else:
        scores["coverage"] = label_coverage(
            [g for g, wi in zip(gold_labels, w, strict=True) if wi > 0],
            [t for t, wi in zip(top1_labels, top1_w, strict=True) if wi > 0],
        )
    no_top1 = not top1_labels or (top1_w is not None and not top1_w.sum() > 0)
    scores["entropy_bits"] = float("nan") if no_top1 else label_entropy(top1_labels, sample_weight=top1_w)
    scores["gold_entropy_bits"] = label_entropy(gold_labels, sample_weight=w)
    counts = {
        "n": n,
        "n_empty": sum(1 for p in preds if not p),
        "n_truncated": sum(1 for p in preds if len(p) > kmax),
        "n_unique_predicted": len(set(top1_labels)),
        "n_unique_gold": len(set(gold_labels)),
        "labels": f"canonical labels of {labeler.judge_id}",
    }
    return DiagnosisReport(
        scores=scores,
        top_k=ks,
        hits=hits,
        first_hit=first_hit,
        ids=list(ids) if ids is not None else list(range(n)),
        predictions=preds,
        golds=gold_list,
        judgements=per_sample,
        judge=j.describe(),
        counts=counts,
        run=run.stats(),
    )
