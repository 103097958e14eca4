"""BLEU (sacrebleu) and ROUGE-L (rouge-score): thin, exact wrappers that record their settings.

BLEU *is* sacrebleu: ``BLEU(tokenize="13a", smooth_method="exp", lowercase=False)`` by default (the settings
of the NOVA reproduction), on sacrebleu's 0–100 scale. The corpus score is sacrebleu's corpus BLEU
(n-gram statistics summed over the corpus, not a mean of sentence scores); the per-sample values are
sacrebleu's sentence BLEU with ``effective_order=True`` (its recommendation for single sentences). Both come
from the same per-sample sufficient statistics (``stats``: hypothesis length, closest reference length,
matches and totals per order), so the corpus BLEU of any subset (a group) is exact: sum its rows and call
:func:`bleu_from_stats`. Several references per sample are allowed (their count may vary).

ROUGE-L *is* rouge-score's ``RougeScorer(["rougeL"], use_stemmer=...)`` F-measure (LCS over rouge-score's
tokens: lower-cased, non-alphanumerics removed, Porter stemming when ``use_stemmer``), 0–1 scale; with several
references, ``score_multi`` keeps the best by F-measure. The corpus value is the mean over samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medlens._optional import package_version, require
from medlens._results import check_sample_weight, refuse_sample_weight, weighted_mean
from medlens._validation import InputError, check_option
from medlens.metrics._text import TextScore, check_captions

__all__ = ["BLEU_TOKENIZERS", "bleu", "bleu_from_stats", "rouge_l"]

#: sacrebleu tokenisers that run offline (its ``spm``/``flores*`` tokenisers download SentencePiece models).
BLEU_TOKENIZERS = ("13a", "intl", "char", "none", "zh")


def _sacrebleu():
    return require("sacrebleu", extra="text", purpose="BLEU")


def _bleu_objects(tokenize: str, smooth_method: str, smooth_value: float | None, lowercase: bool, order: int = 4):
    sb = _sacrebleu()
    check_option(tokenize, BLEU_TOKENIZERS, name="tokenize")
    check_option(smooth_method, tuple(sb.BLEU.SMOOTH_DEFAULTS), name="smooth_method")
    kw: dict[str, Any] = {
        "tokenize": tokenize,
        "smooth_method": smooth_method,
        "smooth_value": smooth_value,
        "lowercase": lowercase,
        "force": True,  # captions are plain text; silence the "tokenized period" heuristic
        "max_ngram_order": order,
    }
    return sb.BLEU(**kw), sb.BLEU(**kw, effective_order=True)


def _ref_streams(refs: list[list[str]]) -> list[list[str | None]]:
    """sacrebleu's layout: one stream per reference slot, ``None`` where a sample has fewer references."""
    width = max(len(r) for r in refs)
    return [[r[k] if k < len(r) else None for r in refs] for k in range(width)]


def bleu_from_stats(stats: np.ndarray, *, sentence: bool = False, order: int = 4, **settings: Any) -> float:
    """BLEU (0–100) from summed sacrebleu statistics (rows of ``bleu(...).components["stats"]``).

    ``settings`` are the :func:`bleu` options (``tokenize`` does not matter here); ``sentence=True`` uses
    ``effective_order`` as the per-sample values do. ``order`` < 4 gives BLEU-1..3 (sacrebleu's
    ``max_ngram_order``) from the same order-4 statistics (their first orders).
    """
    stats = np.asarray(stats, dtype=np.int64)
    total = stats.sum(axis=0) if stats.ndim == 2 else stats
    if order not in (1, 2, 3, 4):
        raise InputError(f"order must be 1, 2, 3 or 4; got {order!r}.")
    total = np.concatenate([total[:2], total[2 : 2 + order], total[6 : 6 + order]])
    corpus, single = _bleu_objects(
        "none",
        settings.get("smooth_method", "exp"),
        settings.get("smooth_value"),
        settings.get("lowercase", False),
        order,
    )
    obj = single if sentence else corpus
    return float(obj._compute_score_from_stats([int(v) for v in total]).score)


def bleu(
    references: Sequence[Any],
    candidates: Sequence[str],
    *,
    tokenize: str = "13a",
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    lowercase: bool = False,
    ids: Sequence[Any] | None = None,
    sample_weight: None = None,
) -> TextScore:
    """Corpus BLEU and per-sample sentence BLEU with sacrebleu (0–100 scale).

    Corpus BLEU pools n-gram statistics over all samples; it is not a mean of per-sample values, so it takes
    no ``sample_weight`` (passing one raises :class:`~medlens._validation.InputError`).

    Parameters
    ----------
    references : sequence of str or of sequences of str
        The reference caption(s) of each sample.
    candidates : sequence of str
        The generated captions.
    tokenize, smooth_method, smooth_value, lowercase
        sacrebleu's ``BLEU`` options (defaults: ``13a``, ``exp``, cased).
    ids : sequence, optional
        Sample ids, used in error messages.

    Returns
    -------
    TextScore
        ``score`` = sacrebleu corpus BLEU, ``per_sample`` = sentence BLEU (``effective_order=True``),
        ``components["stats"]`` = the (n, 2 + 2*4) sufficient statistics, ``settings["signature"]``.

    Examples
    --------
    >>> r = bleu(["a small lesion in the left frontal lobe"], ["a small lesion in the right frontal lobe"])
    >>> round(r.score, 2), r.settings["tokenize"]
    (59.46, '13a')
    """
    refs, cands = check_captions(references, candidates, ids)
    refuse_sample_weight(sample_weight, metric="BLEU", reason="corpus BLEU pools n-gram counts over all samples")
    corpus, single = _bleu_objects(tokenize, smooth_method, smooth_value, lowercase)
    stats = np.asarray(corpus._extract_corpus_statistics(cands, _ref_streams(refs)), dtype=np.int64)
    score = float(corpus._compute_score_from_stats([int(v) for v in stats.sum(axis=0)]).score)
    per = np.array([single._compute_score_from_stats([int(v) for v in row]).score for row in stats], dtype=np.float64)
    sb = _sacrebleu()
    return TextScore(
        metric="bleu",
        score=score,
        per_sample=per,
        settings={
            "library": f"sacrebleu {sb.__version__}",
            "tokenize": tokenize,
            "smooth_method": smooth_method,
            "smooth_value": smooth_value,
            "lowercase": lowercase,
            "signature": str(corpus.get_signature()),
            "per_sample": "sentence BLEU, effective_order=True",
            "scale": "0-100",
        },
        components={"stats": stats},
    )


def rouge_l(
    references: Sequence[Any],
    candidates: Sequence[str],
    *,
    use_stemmer: bool = False,
    ids: Sequence[Any] | None = None,
    sample_weight: Sequence[float] | None = None,
) -> TextScore:
    """ROUGE-L F-measure per sample (rouge-score) and its (weighted) mean (0–1 scale).

    Examples
    --------
    >>> r = rouge_l(["a small lesion in the left frontal lobe"], ["a small lesion in the right frontal lobe"])
    >>> round(r.score, 4)  # LCS 7 of 8 and 8 tokens
    0.875
    """
    if not isinstance(use_stemmer, bool):
        raise InputError(f"The 'use_stemmer' parameter must be True or False; got {use_stemmer!r}.")
    refs, cands = check_captions(references, candidates, ids)
    w = check_sample_weight(sample_weight, len(cands))
    rs = require("rouge_score.rouge_scorer", extra="text", purpose="ROUGE-L")
    scorer = rs.RougeScorer(["rougeL"], use_stemmer=use_stemmer)
    per = np.empty(len(cands))
    prec = np.empty(len(cands))
    rec = np.empty(len(cands))
    for i, (r, c) in enumerate(zip(refs, cands, strict=True)):
        s = scorer.score(r[0], c)["rougeL"] if len(r) == 1 else scorer.score_multi(r, c)["rougeL"]
        per[i], prec[i], rec[i] = s.fmeasure, s.precision, s.recall
    ver = package_version("rouge-score") or "unknown"
    return TextScore(
        metric="rouge_l",
        score=weighted_mean(per, w),
        per_sample=per,
        settings={
            "library": f"rouge-score {ver}",
            "rouge_type": "rougeL",
            "use_stemmer": use_stemmer,
            "multi_reference": "best F-measure (score_multi)",
            "scale": "0-1",
        },
        components={"precision": prec, "recall": rec},
    )
