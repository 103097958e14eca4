"""METEOR through NLTK, with WordNet found locally (never downloaded) or the metric skipped.

Where WordNet is looked for, in order
-------------------------------------
1. NLTK's data paths (``nltk.data.path``, which includes ``$NLTK_DATA``): ``corpora/wordnet/`` or
   ``corpora/wordnet.zip``, the layout ``nltk.download("wordnet")`` writes.
2. The folder named by ``$MEDLENS_WORDNET`` (or its ``dict/`` subfolder, the Princeton tarball layout), e.g.
   ``/usr/share/wordnet`` where Debian's ``wordnet-base`` package puts WordNet 3.0.

NLTK's WordNet reader needs, in one folder: ``index.{noun,verb,adj,adv}``, ``data.{noun,verb,adj,adv}``,
``{noun,verb,adj,adv}.exc`` and ``lexnames`` (``index.sense`` and ``cntlist.rev`` are read only by
functions METEOR does not call). Debian's ``wordnet-base`` ships all but ``lexnames`` (its README.Debian:
the WordNet C library has the list compiled in); medlens then serves the WordNet 3.0 table from
``data/wordnet_lexnames.json``. NLTK ≥ 3.9 opens corpus files only under its data paths, so medlens adds
the ``$MEDLENS_WORDNET`` folder itself (only that folder) to ``nltk.data.path``.

When no WordNet is found, :func:`meteor` returns ``None`` and logs one line once per reason; the reason is
also in :func:`find_wordnet`'s result (and in ``caption_report``'s settings).

What is computed: NLTK's ``meteor_score`` (exact, Porter-stem and WordNet-synonym matching stages; no
paraphrase table; ``alpha=0.9, beta=3, gamma=0.5``) on :func:`medlens.metrics.tokenize_caption` tokens, the
best over references per sample, averaged over samples. It is not METEOR 1.5 (the Java jar pycocoevalcap
runs), whose values differ.
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._results import check_sample_weight, weighted_mean
from medlens._validation import InputError, check_interval
from medlens.metrics._text import TextScore, check_captions, tokenize_caption

__all__ = ["WORDNET_ENV", "WORDNET_FILES", "WordNetSource", "find_wordnet", "meteor", "wordnet_status"]

log = logging.getLogger(__name__)

WORDNET_ENV = "MEDLENS_WORDNET"
#: The files NLTK's WordNet reader opens for METEOR (``lexnames`` is supplied by medlens when missing).
WORDNET_FILES = tuple(f"{kind}.{pos}" for kind in ("index", "data") for pos in ("noun", "verb", "adj", "adv")) + tuple(
    f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")
)
_DEBIAN_WORDNET = Path("/usr/share/wordnet")
_LOGGED: set[str] = set()


@dataclass(frozen=True)
class WordNetSource:
    """Where WordNet was found (``path``, ``origin``), or why METEOR is skipped (``skip_reason``)."""

    path: str | None
    origin: str | None = None  # "nltk_data" | "MEDLENS_WORDNET" | "argument"
    lexnames: str | None = None  # "folder" | "medlens (WordNet 3.0 table)"
    skip_reason: str | None = None

    @property
    def available(self) -> bool:
        return self.path is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _missing(folder: Path) -> list[str]:
    return [f for f in WORDNET_FILES if not (folder / f).is_file()]


def _folder_source(folder: Path, origin: str) -> WordNetSource:
    for cand in (folder, folder / "dict"):
        if cand.is_dir() and not _missing(cand):
            lex = "folder" if (cand / "lexnames").is_file() else "medlens (WordNet 3.0 table)"
            return WordNetSource(path=str(cand.resolve()), origin=origin, lexnames=lex)
    why = f"{folder} lacks {', '.join(_missing(folder))}" if folder.is_dir() else f"{folder} is not a folder"
    return WordNetSource(path=None, origin=origin, skip_reason=why)


def find_wordnet() -> WordNetSource:
    """Look for WordNet in NLTK's data paths, then in ``$MEDLENS_WORDNET`` (see the module notes)."""
    nltk = require("nltk", extra="text", purpose="METEOR")
    try:
        ptr = nltk.data.find("corpora/wordnet")
    except LookupError:
        ptr = None
    if ptr is not None:
        return WordNetSource(path=str(getattr(ptr, "path", ptr)), origin="nltk_data", lexnames="folder")
    env = os.environ.get(WORDNET_ENV, "").strip()
    if env:
        src = _folder_source(Path(env).expanduser(), WORDNET_ENV)
        if src.available:
            return src
        reason = f"METEOR skipped: ${WORDNET_ENV} does not name a usable WordNet folder ({src.skip_reason})."
        return WordNetSource(path=None, origin=WORDNET_ENV, skip_reason=reason)
    hint = (
        f" {_DEBIAN_WORDNET} exists: set {WORDNET_ENV}={_DEBIAN_WORDNET}."
        if not _missing(_DEBIAN_WORDNET)
        else f" Install Debian's wordnet-base and set {WORDNET_ENV}=/usr/share/wordnet, or put NLTK's wordnet corpus under one of them."
    )
    return WordNetSource(
        path=None,
        skip_reason=(
            f"METEOR skipped: WordNet not found in NLTK's data paths (corpora/wordnet) nor via ${WORDNET_ENV}; "
            f"medlens never downloads it.{hint}"
        ),
    )


def wordnet_status() -> dict[str, Any]:
    """:func:`find_wordnet` as a dict (``path``, ``origin``, ``lexnames``, ``skip_reason``), also without nltk
    (then ``skip_reason`` names the extra): what ``medlens doctor`` reports."""
    try:
        return find_wordnet().to_dict()
    except ImportError as exc:
        return WordNetSource(path=None, skip_reason=f"METEOR skipped: {exc}").to_dict()


@lru_cache(maxsize=1)
def _lexnames_text() -> str:
    rows = json.loads(
        resources.files("medlens.metrics").joinpath("data", "wordnet_lexnames.json").read_text(encoding="utf-8")
    )["lexnames"]
    return "".join(f"{num}\t{name}\t{cat}\n" for num, name, cat in rows)


@lru_cache(maxsize=4)
def _reader(path: str, origin: str):
    """An NLTK WordNet reader on ``path`` (cached: loading the indexes takes a few seconds)."""
    nltk = require("nltk", extra="text", purpose="METEOR")
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class _Reader(WordNetCorpusReader):
        """Serves ``lexnames`` from medlens' WordNet 3.0 table when the folder has none (Debian)."""

        def open(self, file):  # noqa: A003 - NLTK's method name
            if file == "lexnames":
                try:
                    return super().open(file)
                except OSError:
                    return io.StringIO(_lexnames_text())
            return super().open(file)

        def map_wn(self, version="wordnet"):
            # NLTK 3.10 maps the loaded WordNet onto NLTK's own "wordnet" corpus (for multilingual OMW data) by
            # loading that corpus' index.sense; METEOR is English-only and the folder may be the only WordNet
            # on the machine, so no mapping (= identity, as NLTK does when the versions agree).
            return None

    if origin == "nltk_data":
        root = nltk.data.find("corpora/wordnet")
    else:
        root = path
        if not any(str(p) == path for p in nltk.data.path):
            nltk.data.path.append(path)  # NLTK >= 3.9 reads corpus files only under its data paths
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": METEOR is English-only
        return _Reader(root, None)


def _resolve(wordnet: str | os.PathLike | None) -> WordNetSource:
    if wordnet is None:
        return find_wordnet()
    src = _folder_source(Path(wordnet).expanduser(), "argument")
    if not src.available:
        raise InputError(
            f"wordnet={str(wordnet)!r} is not a WordNet folder: {src.skip_reason}. It needs "
            f"{', '.join(WORDNET_FILES)} (Debian: /usr/share/wordnet from wordnet-base)."
        )
    return src


def meteor(
    references: Sequence[Any],
    candidates: Sequence[str],
    *,
    wordnet: str | os.PathLike | None = None,
    alpha: float = 0.9,
    beta: float = 3.0,
    gamma: float = 0.5,
    ids: Sequence[Any] | None = None,
    sample_weight: Sequence[float] | None = None,
) -> TextScore | None:
    """Per-sample METEOR (NLTK) and its (weighted) mean (0–1 scale), or ``None`` when WordNet is not available.

    Parameters
    ----------
    references, candidates
        Captions (several references per sample allowed: NLTK keeps the best).
    wordnet : path, optional
        A WordNet folder to use (an error if it is not one). Default: :func:`find_wordnet`.
    alpha, beta, gamma
        NLTK's METEOR parameters (precision/recall weight, fragmentation exponent and weight).
    """
    refs, cands = check_captions(references, candidates, ids)
    w = check_sample_weight(sample_weight, len(cands))
    check_interval(alpha, name="alpha", low=0, high=1)
    check_interval(beta, name="beta", low=0)
    check_interval(gamma, name="gamma", low=0, high=1)
    src = _resolve(wordnet)
    if not src.available:
        reason = str(src.skip_reason)
        if reason not in _LOGGED:
            _LOGGED.add(reason)
            log.warning(reason)
        return None
    nltk = require("nltk", extra="text", purpose="METEOR")
    from nltk.translate.meteor_score import meteor_score

    reader = _reader(str(src.path), str(src.origin))
    per = np.array(
        [
            meteor_score(
                [tokenize_caption(r) for r in rs],
                tokenize_caption(c),
                wordnet=reader,
                alpha=alpha,
                beta=beta,
                gamma=gamma,
            )
            for rs, c in zip(refs, cands, strict=True)
        ],
        dtype=np.float64,
    )
    return TextScore(
        metric="meteor",
        score=weighted_mean(per, w),
        per_sample=per,
        settings={
            "library": f"nltk {nltk.__version__} meteor_score (exact, Porter stem, WordNet synonyms)",
            "wordnet": {**src.to_dict(), "version": reader.get_version()},
            "tokenizer": "medlens tokenize_caption (PTB-like, lower-cased, punctuation dropped)",
            "alpha": alpha,
            "beta": beta,
            "gamma": gamma,
            "multi_reference": "best over references (NLTK)",
            "scale": "0-1",
            "note": "NLTK METEOR, not METEOR 1.5 (Java): values are not interchangeable",
        },
    )
