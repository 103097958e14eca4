"""Diagnosis metrics: top-k accuracy under a judge, judge agreement (Cohen's kappa), label coverage and entropy.

A sample has a ranked list of predicted diagnoses and one gold diagnosis. Sample ``i`` is a top-``k`` hit when
a judge (see :mod:`medlens.metrics._judges`) matches one of its first ``k`` predictions with the gold name;
top-``k`` accuracy is the mean over samples (a sample with no prediction is a miss), and the macro variant
averages per gold label first (NOVA has about 281 labels, most with 1-5 images, so one frequent label can move
the micro number).

Mode-collapse signals, on the top-1 predictions (names first mapped to a canonical label by the exact/synonym
normaliser, so "GBM" and "glioblastoma" count once):

- ``coverage`` = distinct predicted labels / distinct gold labels (3P NOVA reproduction's definition; it can
  exceed 1 when a model invents many labels);
- ``entropy_bits`` = Shannon entropy (base 2) of the predicted labels; compare with ``gold_entropy_bits``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
def cohen_kappa(labels_a: Sequence[Hashable], labels_b: Sequence[Hashable]) -> float:
    """Cohen's kappa between two raters' labels (equal to ``sklearn.metrics.cohen_kappa_score``).

    kappa = (p_o - p_e) / (1 - p_e), with p_o the observed agreement and p_e the agreement expected from the two
    marginal distributions; nan when p_e = 1 (both raters always give the same single label), as scikit-learn.

    >>> cohen_kappa([True, True, False, False], [True, False, False, False])
    0.5
    """
    n = check_same_length(labels_a, labels_b, names=("labels_a", "labels_b"))
    if n == 0:
        raise InputError("cohen_kappa needs at least one pair of labels; got none.")
    cats = list(dict.fromkeys([*labels_a, *labels_b]))
    pos = {c: i for i, c in enumerate(cats)}
    conf = np.zeros((len(cats), len(cats)))
    np.add.at(conf, ([pos[a] for a in labels_a], [pos[b] for b in labels_b]), 1.0)
    conf /= n
    p_o = float(np.trace(conf))
    p_e = float(conf.sum(axis=1) @ conf.sum(axis=0))
    return (p_o - p_e) / (1.0 - p_e) if p_e < 1.0 else float("nan")


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
def label_entropy(labels: Sequence[Hashable], *, base: float = 2.0) -> float:
    """Shannon entropy of the empirical label distribution (bits by default); nan for no labels.

    >>> label_entropy(["a", "a", "b", "b"]), label_entropy(["a", "a", "a", "a"])
    (1.0, 0.0)
    """
    counts = np.array(list(Counter(labels).values()), dtype=np.float64)
    if counts.size == 0:
        return float("nan")
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() / math.log(base)) + 0.0


def label_coverage(predicted: Sequence[Hashable], gold: Sequence[Hashable]) -> float:
    """Distinct predicted labels / distinct gold labels (nan without gold labels).

    >>> label_coverage(["a", "a", "a"], ["a", "b", "c", "c"])
    0.3333333333333333
    """
    n_gold = len(set(gold))
    return len(set(predicted)) / n_gold if n_gold else float("nan")


# =========================================================================================== the report
@dataclass(frozen=True)
class DiagnosisReport:
    """Top-k accuracy of ranked diagnosis lists under one judge, with the per-sample evidence.

    Attributes
    ----------
    scores : dict
        ``top{k}`` and ``top{k}_macro`` for each k, ``coverage``, ``entropy_bits``, ``gold_entropy_bits``.
    hits : numpy.ndarray
        ``(n, len(k))`` bool: sample i is a top-k hit.
    first_hit : list
        1-based rank of the first matching prediction per sample (``None`` when none of the first max(k) match).
    judgements : list of list of Judgement
        Per sample, the verdicts on its first max(k) predictions.
    """

    scores: dict[str, float]
    k: tuple[int, ...]
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
        out: dict[str, Any] = {**self.scores, "k": list(self.k), **self.judge, **self.counts, "judging": self.run}
        if per_sample:
            out["per_sample"] = [
                {
                    "id": sid,
                    "gold": g,
                    "predictions": p,
                    "first_hit": fh,
                    **{f"top{k}": bool(h[j]) for j, k in enumerate(self.k)},
                    "judgements": [jg.to_dict() for jg in js],
                }
                for sid, g, p, fh, h, js in zip(
                    self.ids, self.golds, self.predictions, self.first_hit, self.hits, self.judgements, strict=True
                )
            ]
        return out


def _check_predictions(predictions: Sequence[Any], golds: Sequence[Any], ids: Sequence[Any] | None) -> None:
    check_same_length(predictions, golds, names=("predictions", "golds"))
    if ids is not None:
        check_same_length(predictions, ids, names=("predictions", "ids"))
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
    predictions: Sequence[Sequence[str]],
    golds: Sequence[str],
    *,
    judge: str | Judge = "exact_synonym",
    k: Sequence[int] = (1, 5),
    ids: Sequence[Any] | None = None,
    cache: JudgeCache | None = None,
    labeler: ExactSynonymJudge | None = None,
    judge_options: Mapping[str, Any] | None = None,
) -> DiagnosisReport:
    """Top-k accuracy (micro and macro over gold labels), coverage and entropy of ranked diagnosis lists.

    Parameters
    ----------
    predictions : sequence of sequences of str
        Ranked predicted names per sample (may be empty: a miss).
    golds : sequence of str
        The gold diagnosis per sample.
    judge : str or Judge
        A registered judge name (``"exact_synonym"``, ``"embedding"``) or a judge object.
    k : sequence of int
        Cut-offs; only the first ``max(k)`` predictions of a sample are judged.
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
    ...     [["meningioma", "acoustic neuroma"], ["GBM"], []],
    ...     ["vestibular schwannoma", "glioblastoma", "arachnoid cyst"],
    ... )
    >>> rep.scores["top1"], rep.scores["top5"], rep.first_hit
    (0.3333333333333333, 0.6666666666666666, [2, 1, None])
    """
    ks = tuple(sorted({int(x) for x in k}))
    if not ks or ks[0] < 1:
        raise InputError(f"k must be positive integers; got {list(k)}.")
    _check_predictions(predictions, golds, ids)
    j = make_judge(judge, **dict(judge_options or {}))
    labeler = labeler or ExactSynonymJudge()
    kmax = ks[-1]
    preds = [list(p) for p in predictions]
    gold_list = list(golds)
    pairs = [(name, g) for p, g in zip(preds, gold_list, strict=True) for name in p[:kmax]]
    run = run_judge(j, pairs, cache=cache)
    it = iter(run.judgements)
    per_sample = [[next(it) for _ in p[:kmax]] for p in preds]
    n = len(preds)
    first_hit = [next((r + 1 for r, jg in enumerate(js) if jg.match), None) for js in per_sample]
    hits = np.array([[fh is not None and fh <= kk for kk in ks] for fh in first_hit], dtype=bool).reshape(n, len(ks))
    gold_labels = [labeler.canonical(g) for g in gold_list]
    top1_labels = [labeler.canonical(p[0]) for p in preds if p]
    scores: dict[str, float] = {}
    for col, kk in enumerate(ks):
        scores[f"top{kk}"] = float(hits[:, col].mean()) if n else float("nan")
        by_label: dict[str, list[bool]] = {}
        for lab, h in zip(gold_labels, hits[:, col], strict=True):
            by_label.setdefault(lab, []).append(bool(h))
        scores[f"top{kk}_macro"] = float(np.mean([np.mean(v) for v in by_label.values()])) if by_label else float("nan")
    scores["coverage"] = label_coverage(top1_labels, gold_labels)
    scores["entropy_bits"] = label_entropy(top1_labels)
    scores["gold_entropy_bits"] = label_entropy(gold_labels)
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
        k=ks,
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
