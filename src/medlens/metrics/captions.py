"""Caption metrics for NOVA and report generation: BLEU, ROUGE-L, CIDEr-D, METEOR, BERTScore, keyword F1.

Each metric takes ``(references, candidates, *, sample_weight=None)`` — the ``(y_true, y_pred)`` of captioning:
``references[i]`` one caption or a list of captions, ``candidates[i]`` one caption — and returns a
:class:`TextScore` (corpus value, per-sample values, settings):

=====================  ===================================================  =====  =====================
key                    implementation (``mode="sacrebleu"``)                scale  corpus value
=====================  ===================================================  =====  =====================
``bleu1`` … ``bleu4``  sacrebleu ``BLEU`` (13a, exp smoothing, max order k)  0–100  corpus BLEU (pooled n-gram stats)
``rouge_l``            rouge-score ``rougeL`` F-measure, exact               0–1    mean
``cider``              CIDEr-D = pycocoevalcap's ``Cider`` (see below)       0–10   mean
``meteor``             NLTK ``meteor_score`` with local WordNet, or None     0–1    mean
``bertscore_f1``       BERTScore F1, local model (MiniLM by default)         0–1    mean
``keyword_f1_*``       keyword F1 over NOVA's modality / finding terms      0–1    mean over scored samples
=====================  ===================================================  =====  =====================

Modes. :func:`caption_report` has two modes, named in every output under ``mode``: ``"sacrebleu"`` (the table
above; its default) and ``"coco-caption"``, the pycocoevalcap pipeline that caption papers (NOVA, FMBench) report:
PTB tokenisation, BLEU-1..4 (0–1), ROUGE-L with β = 1.2, CIDEr-D and METEOR 1.5 (Java), equal to pycocoevalcap
(see :mod:`medlens.metrics._coco_caption`); BERTScore and keyword F1 are the same in both modes.

Each metric stays on its reference library's scale so numbers match what those libraries print. With
``sample_weight`` the mean-type metrics (ROUGE-L, METEOR, BERTScore, keyword F1) are weighted means; corpus BLEU
(pooled n-gram counts) and CIDEr-D (dataset-level IDF) have no standard per-sample weighting and raise when
weights are passed, and so does :func:`caption_report`, which always computes them.
:func:`caption_report` computes all of them once on the whole set (CIDEr-D's IDF is dataset-level, so
scores of a subset must come from the per-sample values of the full run, never from a re-run on the
subset) and gives group values from the same per-sample values (corpus BLEU of a group from its summed
statistics).

CIDEr-D: pycocoevalcap's ``Cider`` class (what COCO-caption papers report as "CIDEr") implements CIDEr-D —
clipped candidate n-gram weights, a Gaussian length penalty (sigma 6) and a ×10 factor; plain CIDEr has none of
these. :func:`cider_d` reproduces it value for value (details and its quirks in :mod:`medlens.metrics._cider`),
on :func:`tokenize_caption` tokens (pycocoevalcap's Java PTBTokenizer is not used).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from medlens._results import MetricResult, refuse_sample_weight
from medlens._validation import InputError, check_option
from medlens.metrics._bertscore import MINILM_NAME, bertscore
from medlens.metrics._cider import cider_d_scores
from medlens.metrics._coco_caption import coco_bleu_from_stats, coco_caption_metrics
from medlens.metrics._keywords import (
    TERM_SETS,
    KeywordMentions,
    TermSet,
    keyword_f1,
    keyword_mentions,
    keyword_tokens,
    load_term_set,
)
from medlens.metrics._lexical import BLEU_TOKENIZERS, bleu, bleu_from_stats, rouge_l
from medlens.metrics._meteor import WORDNET_ENV, WORDNET_FILES, WordNetSource, find_wordnet, meteor, wordnet_status
from medlens.metrics._ptb import ptb_tokenize, ptb_tokenize_many
from medlens.metrics._text import TextScore, check_captions, mean_or_none, nan_to_none, tokenize_caption
from medlens.text import NegationRules, load_negation_rules

__all__ = [
    "BLEU_TOKENIZERS",
    "CAPTION_KEYS",
    "CAPTION_MODES",
    "MINILM_NAME",
    "BertScoreOptions",
    "BleuOptions",
    "CaptionOptions",
    "CiderOptions",
    "KeywordOptions",
    "MeteorOptions",
    "RougeOptions",
    "TERM_SETS",
    "WORDNET_ENV",
    "WORDNET_FILES",
    "CaptionReport",
    "KeywordMentions",
    "NegationRules",
    "TermSet",
    "TextScore",
    "WordNetSource",
    "bertscore",
    "bleu",
    "bleu_from_stats",
    "caption_report",
    "cider_d",
    "find_wordnet",
    "keyword_f1",
    "keyword_mentions",
    "keyword_tokens",
    "load_negation_rules",
    "load_term_set",
    "meteor",
    "ptb_tokenize",
    "ptb_tokenize_many",
    "rouge_l",
    "tokenize_caption",
    "wordnet_status",
]

log = logging.getLogger(__name__)

#: The stable keys of :func:`caption_report` (and of ``medlens nova evaluate``'s ``caption`` object).
CAPTION_KEYS = (
    "bleu1",
    "bleu2",
    "bleu3",
    "bleu4",
    "rouge_l",
    "cider",
    "meteor",
    "bertscore_f1",
    "keyword_f1_modality",
    "keyword_f1_findings",
)
#: :func:`caption_report`'s modes: the pycocoevalcap pipeline papers report, and sacrebleu/rouge-score/NLTK.
CAPTION_MODES = ("coco-caption", "sacrebleu")
_BLEU_KEYS = ("bleu1", "bleu2", "bleu3", "bleu4")


def cider_d(
    references: Sequence[Any],
    candidates: Sequence[str],
    *,
    n: int = 4,
    sigma: float = 6.0,
    ids: Sequence[Any] | None = None,
    sample_weight: None = None,
) -> TextScore:
    """CIDEr-D per sample and its mean, with document frequencies from this set's references (×10 scale).

    Equal to pycocoevalcap's ``Cider().compute_score`` on the same tokens (to ~1e-15). The IDF depends on
    every sample scored together: average a subset from ``per_sample``, do not re-run on it. For the same
    reason it takes no ``sample_weight`` (passing one raises :class:`~medlens._validation.InputError`).

    Examples
    --------
    >>> r = cider_d(["a lesion in the left frontal lobe", "a cyst in the cerebellum"],
    ...             ["a lesion in the left frontal lobe", "a tumour in the pons"])
    >>> r.per_sample.round(4).tolist()  # n-grams shared by every sample ("a", "in the") weigh 0
    [10.0, 0.0]
    """
    refs, cands = check_captions(references, candidates, ids)
    refuse_sample_weight(sample_weight, metric="CIDEr-D", reason="its IDF is computed over the whole set's references")
    per = cider_d_scores(
        [[tokenize_caption(r) for r in rs] for rs in refs], [tokenize_caption(c) for c in cands], n=n, sigma=sigma
    )
    return TextScore(
        metric="cider",
        score=float(per.mean()),
        per_sample=per,
        settings={
            "variant": "CIDEr-D (pycocoevalcap Cider: clipping, Gaussian length penalty, x10)",
            "n": n,
            "sigma": sigma,
            "idf": f"dataset-level: document frequency over the references of these {len(cands)} samples",
            "tokenizer": "medlens tokenize_caption (PTB-like, lower-cased, punctuation dropped)",
            "scale": "0-10",
        },
    )


# ============================================================================================== options
@dataclass(frozen=True)
class BleuOptions:
    """sacrebleu's ``BLEU`` tokeniser and smoothing (see :func:`bleu`)."""

    tokenize: str = "13a"
    smooth_method: str = "exp"


@dataclass(frozen=True)
class RougeOptions:
    """rouge-score's Porter stemming (see :func:`rouge_l`)."""

    use_stemmer: bool = False


@dataclass(frozen=True)
class CiderOptions:
    """CIDEr-D's n-gram order and length-penalty width (see :func:`cider_d`)."""

    n: int = 4
    sigma: float = 6.0


@dataclass(frozen=True)
class MeteorOptions:
    """Where METEOR's WordNet is: ``None`` searches NLTK's data paths, then ``$MEDLENS_WORDNET``, and skips
    METEOR when there is none; a path uses that folder (see :func:`meteor`)."""

    wordnet: str | os.PathLike | None = None


@dataclass(frozen=True)
class BertScoreOptions:
    """BERTScore's model (``"minilm"`` or a local transformers folder), layer, IDF, baseline and device."""

    model: str = "minilm"
    layer: int | None = None
    idf: bool = False
    baseline: tuple[float, float, float] | None = None
    device: str = "cpu"


@dataclass(frozen=True)
class KeywordOptions:
    """Term sets of ``keyword_f1_modality`` / ``keyword_f1_findings`` and the keyword F1 rules (:func:`keyword_f1`)."""

    modality_terms: str | os.PathLike | TermSet = "nova-modality"
    finding_terms: str | os.PathLike | TermSet = "nova-findings"
    negation: bool | NegationRules | None = True
    both_empty: Literal["skip", "one", "zero"] = "skip"


@dataclass(frozen=True)
class CaptionOptions:
    """Settings of every metric of :func:`caption_report`, one group per metric; ``None`` skips a metric.

    >>> CaptionOptions()  # the defaults: every metric, BERTScore on MiniLM, METEOR when WordNet is found
    ... # doctest: +ELLIPSIS
    CaptionOptions(bleu=BleuOptions(tokenize='13a', smooth_method='exp'), ...)
    >>> lexical = CaptionOptions(meteor=None, bertscore=None)  # no WordNet, no model
    """

    bleu: BleuOptions = BleuOptions()
    rouge_l: RougeOptions = RougeOptions()
    cider: CiderOptions = CiderOptions()
    meteor: MeteorOptions | None = MeteorOptions()
    bertscore: BertScoreOptions | None = BertScoreOptions()
    keywords: KeywordOptions = KeywordOptions()

    def __post_init__(self) -> None:
        groups = {
            "bleu": BleuOptions,
            "rouge_l": RougeOptions,
            "cider": CiderOptions,
            "meteor": MeteorOptions,
            "bertscore": BertScoreOptions,
            "keywords": KeywordOptions,
        }
        for name, cls in groups.items():
            value = getattr(self, name)
            if value is None and name in ("meteor", "bertscore"):
                continue
            if not isinstance(value, cls):
                raise InputError(
                    f"CaptionOptions.{name} must be a {cls.__name__}"
                    + (" or None (skip the metric)" if name in ("meteor", "bertscore") else "")
                    + f"; got {type(value).__name__} {value!r}."
                )


# =============================================================================================== report
@dataclass(frozen=True)
class CaptionReport(MetricResult):
    """Caption metrics of one set: corpus values, per-sample values, group values and settings.

    Attributes
    ----------
    scores : dict
        ``CAPTION_KEYS`` → corpus value (``None`` for a skipped metric or nothing to score).
    per_sample : dict
        ``CAPTION_KEYS`` → (n,) float array (``nan`` where not scored; all ``nan`` for a skipped metric).
    ids : list
        Sample ids (``0..n-1`` when not given).
    groups : dict
        group → {key: value, ``"n"``: count}: means of the per-sample values of the group, except ``bleu``,
        the corpus BLEU of the group's pooled statistics.
    settings : dict
        Per metric: library, tokeniser, model, WordNet source; ``skipped`` → {key: reason}.
    components : dict
        Per metric, the extra per-sample arrays (BLEU statistics, BERTScore precision/recall, keyword terms).
    mode : str
        ``"sacrebleu"`` or ``"coco-caption"`` (see the module notes).
    """

    scores: dict[str, float | None]
    per_sample: dict[str, np.ndarray]
    ids: list[Any]
    groups: dict[Any, dict[str, Any]] = field(default_factory=dict)
    group_of: list[Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    mode: str = "sacrebleu"

    @property
    def skipped(self) -> dict[str, str]:
        """Metrics that were not computed, with the reason."""
        return dict(self.settings.get("skipped", {}))

    def to_dict(self, *, per_sample: bool = False) -> dict[str, Any]:
        """JSON-friendly: ``scores``, ``groups``, ``settings`` and, on request, the per-sample rows."""
        out: dict[str, Any] = {
            "mode": self.mode,
            "scores": dict(self.scores),
            "n": len(self.ids),
            "settings": self.settings,
        }
        if self.groups:
            out["groups"] = {str(g): v for g, v in self.groups.items()}
        if per_sample:
            rows = []
            values = {k: nan_to_none(v) for k, v in self.per_sample.items()}
            for i, sid in enumerate(self.ids):
                row: dict[str, Any] = {"id": sid}
                if self.group_of is not None:
                    row["group"] = self.group_of[i]
                row.update({k: values[k][i] for k in CAPTION_KEYS})
                rows.append(row)
            out["per_sample"] = rows
        return out

    def to_frame(self):
        """Per-sample values as a pandas DataFrame indexed by id (with a ``group`` column when grouped)."""
        import pandas as pd

        data: dict[str, Any] = {}
        if self.group_of is not None:
            data["group"] = self.group_of
        data.update({k: self.per_sample[k] for k in CAPTION_KEYS})
        return pd.DataFrame(data, index=pd.Index(self.ids, name="id"))


def caption_report(
    references: Sequence[Any],
    candidates: Sequence[str],
    *,
    sample_weight: None = None,
    ids: Sequence[Any] | None = None,
    groups: Sequence[Any] | None = None,
    options: CaptionOptions | None = None,
    mode: str = "sacrebleu",
) -> CaptionReport:
    """Every caption metric on the whole set at once, with per-sample values and group values.

    Parameters
    ----------
    references : sequence of str or of sequences of str
        Reference caption(s) per sample.
    candidates : sequence of str
        Generated captions.
    sample_weight : None
        Not supported: the report includes corpus BLEU and CIDEr-D (see the module notes). Weight the
        per-sample values (``per_sample``) instead, or call the mean-type metrics with ``sample_weight``.
    ids : sequence, optional
        Sample ids (error messages, per-sample rows).
    groups : sequence, optional
        A group label per sample (e.g. a diagnosis family or a site); group values are computed from the
        per-sample values of the full run.
    options : CaptionOptions, optional
        Per-metric settings (default ``CaptionOptions()``); ``CaptionOptions(meteor=None, bertscore=None)``
        skips the metrics that need WordNet or a model. In ``coco-caption`` mode the BLEU, ROUGE-L and METEOR
        options do not apply (pycocoevalcap's settings are fixed); ``meteor=None`` still skips METEOR.
    mode : {"sacrebleu", "coco-caption"}
        ``sacrebleu``: sacrebleu BLEU-1..4 (0–100), rouge-score ROUGE-L, CIDEr-D on :func:`tokenize_caption`
        tokens, NLTK METEOR. ``coco-caption``: pycocoevalcap's pipeline (PTB tokens, BLEU-1..4 on 0–1, ROUGE-L
        β = 1.2, CIDEr-D, METEOR 1.5 when Java is on ``PATH``), the numbers caption papers report.

    Returns
    -------
    CaptionReport

    Examples
    --------
    >>> rep = caption_report(["axial FLAIR: large tumour with oedema", "sagittal T1: cyst"],
    ...                      ["axial flair image shows a tumor and edema", "coronal T2: no cyst"],
    ...                      options=CaptionOptions(meteor=None, bertscore=None))
    >>> rep.scores["keyword_f1_findings"], rep.per_sample["keyword_f1_findings"].tolist()
    (0.5, [1.0, 0.0])
    >>> sorted(rep.skipped)
    ['bertscore_f1', 'meteor']
    >>> coco = caption_report(["a small lesion in the left frontal lobe"], ["a small lesion in the right frontal lobe"],
    ...                       options=CaptionOptions(meteor=None, bertscore=None), mode="coco-caption")
    >>> coco.mode, round(coco.scores["bleu1"], 4), round(coco.scores["rouge_l"], 4)
    ('coco-caption', 0.875, 0.875)
    """
    refuse_sample_weight(
        sample_weight,
        metric="caption_report",
        reason="it computes corpus BLEU (pooled n-gram counts) and CIDEr-D (dataset-level IDF)",
    )
    opts = CaptionOptions() if options is None else options
    if not isinstance(opts, CaptionOptions):
        raise InputError(f"options must be a CaptionOptions; got {type(opts).__name__}.")
    check_option(mode, CAPTION_MODES, name="mode")
    refs, cands = check_captions(references, candidates, ids)
    n = len(cands)
    id_list = list(ids) if ids is not None else list(range(n))
    if groups is not None and len(groups) != n:
        raise InputError(f"groups must have one label per sample; got {len(groups)} labels for {n} samples.")

    results: dict[str, TextScore | None] = {}
    skipped: dict[str, str] = {}
    if mode == "coco-caption":
        results.update(_coco_results(refs, cands, opts, skipped))
    else:
        results.update(_sacrebleu_results(refs, cands, opts, skipped))
    if opts.bertscore is None:
        results["bertscore_f1"] = None
        skipped["bertscore_f1"] = "BERTScore disabled (CaptionOptions.bertscore=None)."
    else:
        bs = opts.bertscore
        results["bertscore_f1"] = bertscore(
            refs, cands, model=bs.model, layer=bs.layer, idf=bs.idf, baseline=bs.baseline, device=bs.device
        )
    kwo = opts.keywords
    kw = {"negation": kwo.negation, "both_empty": kwo.both_empty}
    results["keyword_f1_modality"] = keyword_f1(refs, cands, terms=kwo.modality_terms, **kw)
    results["keyword_f1_findings"] = keyword_f1(refs, cands, terms=kwo.finding_terms, **kw)

    scores = {k: (results[k].score if results[k] is not None else None) for k in CAPTION_KEYS}
    per = {k: (results[k].per_sample if results[k] is not None else np.full(n, np.nan)) for k in CAPTION_KEYS}
    settings: dict[str, Any] = {k: (results[k].settings if results[k] is not None else None) for k in CAPTION_KEYS}
    settings["skipped"] = skipped
    components = {k: dict(results[k].components) for k in CAPTION_KEYS if results[k] is not None}

    group_values: dict[Any, dict[str, Any]] = {}
    group_list = list(groups) if groups is not None else None
    if group_list is not None:
        stats = components["bleu4"]["stats"]
        for g in dict.fromkeys(group_list):
            mask = np.fromiter((x == g for x in group_list), dtype=bool, count=n)
            vals: dict[str, Any] = {"n": int(mask.sum())}
            if mode == "coco-caption":
                vals.update(zip(_BLEU_KEYS, coco_bleu_from_stats(stats[mask]), strict=True))
            else:
                for k, key in enumerate(_BLEU_KEYS, 1):
                    vals[key] = bleu_from_stats(stats[mask], order=k, smooth_method=opts.bleu.smooth_method)
            for k in CAPTION_KEYS:
                if k in _BLEU_KEYS:
                    continue
                vals[k] = None if results[k] is None else mean_or_none(per[k][mask])
            group_values[g] = vals
    return CaptionReport(
        scores=scores,
        per_sample=per,
        ids=id_list,
        groups=group_values,
        group_of=group_list,
        settings=settings,
        components=components,
        mode=mode,
    )


def _sacrebleu_results(refs: list[list[str]], cands: list[str], opts: CaptionOptions, skipped: dict[str, str]):
    """BLEU-1..4 (sacrebleu), ROUGE-L (rouge-score), CIDEr-D, METEOR (NLTK): the ``sacrebleu`` mode."""
    out: dict[str, TextScore | None] = {}
    b4 = bleu(refs, cands, tokenize=opts.bleu.tokenize, smooth_method=opts.bleu.smooth_method)
    stats = b4.components["stats"]
    for k, key in enumerate(_BLEU_KEYS, 1):
        if k == 4:
            out[key] = replace(b4, metric=key, settings={**b4.settings, "max_ngram_order": 4})
            continue
        kw = {"order": k, "smooth_method": opts.bleu.smooth_method}
        out[key] = TextScore(
            metric=key,
            score=bleu_from_stats(stats, **kw),
            per_sample=np.array([bleu_from_stats(row, sentence=True, **kw) for row in stats]),
            settings={**b4.settings, "max_ngram_order": k, "signature": "sacrebleu statistics of BLEU-4, first orders"},
            components={"stats": stats},
        )
    out["rouge_l"] = rouge_l(refs, cands, use_stemmer=opts.rouge_l.use_stemmer)
    out["cider"] = cider_d(refs, cands, n=opts.cider.n, sigma=opts.cider.sigma)
    if opts.meteor is None:
        out["meteor"] = None
        skipped["meteor"] = "METEOR disabled (CaptionOptions.meteor=None)."
    else:
        out["meteor"] = meteor(refs, cands, wordnet=opts.meteor.wordnet)
        if out["meteor"] is None:
            skipped["meteor"] = str(find_wordnet().skip_reason)
    return out


def _coco_results(refs: list[list[str]], cands: list[str], opts: CaptionOptions, skipped: dict[str, str]):
    """pycocoevalcap's BLEU-1..4, ROUGE-L, CIDEr-D and METEOR 1.5: the ``coco-caption`` mode."""
    m = coco_caption_metrics(
        refs, cands, cider_n=opts.cider.n, cider_sigma=opts.cider.sigma, meteor=opts.meteor is not None
    )
    skipped.update(m["skipped"])
    out: dict[str, TextScore | None] = {}
    for key in (*_BLEU_KEYS, "rouge_l", "cider", "meteor"):
        group = "bleu" if key in _BLEU_KEYS else key
        if m["scores"][key] is None:
            out[key] = None
            continue
        out[key] = TextScore(
            metric=key,
            score=m["scores"][key],
            per_sample=m["per_sample"][key],
            settings=m["settings"][group],
            components={"stats": m["stats"]} if group == "bleu" else {},
        )
    return out
