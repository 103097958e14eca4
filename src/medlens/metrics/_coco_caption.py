"""The COCO-caption metric pipeline (pycocoevalcap), reimplemented: what caption papers report.

pycocoevalcap's ``COCOEvalCap`` tokenises references and candidates with the Stanford PTBTokenizer (here
:mod:`medlens.metrics._ptb`, pure Python) and scores the token strings. The formulas, as its code computes them:

BLEU-1..4 (``bleu/bleu_scorer.py``, 0–1 scale)
    Per sample: ``testlen`` candidate words, the "closest" reference length (the one with the smallest
    ``|len - testlen|``, the shorter on a tie), ``guess_k = max(0, testlen - k + 1)`` and ``correct_k`` = candidate
    k-gram counts clipped by their largest count in any one reference. Corpus BLEU-n sums these over samples:
    ``prod_{k<=n} ((correct_k + 1e-15) / (guess_k + 1e-9)) ** (1/n)``, times ``exp(1 - 1/ratio)`` when
    ``ratio = (testlen + 1e-15) / (reflen + 1e-9) < 1``. The per-sample values use the same formula on one
    sample's counts. Words are ``str.split()`` tokens.
ROUGE-L (``rouge/rouge.py``)
    Per sample, over ``str.split(" ")`` tokens: for each reference the longest common subsequence ``lcs``,
    ``P = lcs / len(candidate)``, ``R = lcs / len(reference)``; the best P and the best R over references (each
    maximised separately) give ``F = (1 + b^2) P R / (R + b^2 P)`` with ``b = 1.2`` (0 when P or R is 0). The
    corpus value is the mean over samples.
CIDEr-D (``cider/cider_scorer.py``)
    :func:`medlens.metrics._cider.cider_d_scores` on ``str.split()`` tokens (document frequencies from the
    references of the set scored, sigma 6, clipping, ×10).
METEOR 1.5 (``meteor/meteor.py``)
    pycocoevalcap's bundled ``meteor-1.5.jar`` run by Java (``-l en -norm``; exact, stem, synonym and paraphrase
    matching): one ``SCORE`` line per sample, then one ``EVAL`` line whose answer is the per-sample scores and the
    corpus score (the jar's aggregate, not the mean). Needs ``java`` on ``PATH`` and pycocoevalcap installed (the
    ``reference`` extra) for the jar; otherwise the metric is skipped with the reason.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from medlens.metrics._cider import cider_d_scores
from medlens.metrics._ptb import ptb_tokenize_many

__all__ = [
    "BLEU_STATS_COLUMNS",
    "coco_bleu",
    "coco_bleu_from_stats",
    "coco_rouge_l",
    "coco_tokenize",
    "find_meteor_jar",
    "meteor_jar_scores",
]

_TINY, _SMALL = 1e-15, 1e-9
ROUGE_BETA = 1.2
#: Columns of the per-sample BLEU statistics: testlen, closest reflen, guess_1..4, correct_1..4.
BLEU_STATS_COLUMNS = (
    "testlen",
    "reflen",
    "guess1",
    "guess2",
    "guess3",
    "guess4",
    "correct1",
    "correct2",
    "correct3",
    "correct4",
)


def coco_tokenize(references: Sequence[Sequence[str]], candidates: Sequence[str]) -> tuple[list[list[str]], list[str]]:
    """PTB-tokenised references and candidates, batched as pycocoevalcap batches them (all references of all
    samples in sample order in one run, the candidates in another)."""
    flat = ptb_tokenize_many([r for rs in references for r in rs])
    refs, k = [], 0
    for rs in references:
        refs.append(flat[k : k + len(rs)])
        k += len(rs)
    return refs, ptb_tokenize_many(candidates)


def _ngrams(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i : i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


def coco_bleu(references: Sequence[Sequence[str]], candidates: Sequence[str]) -> np.ndarray:
    """Per-sample BLEU statistics (rows: :data:`BLEU_STATS_COLUMNS`) of tokenised strings."""
    rows = np.zeros((len(candidates), len(BLEU_STATS_COLUMNS)), dtype=np.int64)
    for i, (rs, c) in enumerate(zip(references, candidates, strict=True)):
        words = c.split()
        testlen = len(words)
        maxref: dict[tuple[str, ...], int] = {}
        lens = []
        for r in rs:
            rw = r.split()
            lens.append(len(rw))
            for g, cnt in _ngrams(rw, 4).items():
                if cnt > maxref.get(g, 0):
                    maxref[g] = cnt
        reflen = min((abs(ln - testlen), ln) for ln in lens)[1]
        correct = [0, 0, 0, 0]
        for g, cnt in _ngrams(words, 4).items():
            correct[len(g) - 1] += min(maxref.get(g, 0), cnt)
        rows[i] = [testlen, reflen, *(max(0, testlen - k) for k in range(4)), *correct]
    return rows


def coco_bleu_from_stats(stats: np.ndarray) -> list[float]:
    """BLEU-1..4 (0–1) of summed statistics (one row, or several rows summed), as pycocoevalcap computes them."""
    s = np.asarray(stats, dtype=np.int64)
    s = s.sum(axis=0) if s.ndim == 2 else s
    testlen, reflen, guess, correct = int(s[0]), int(s[1]), s[2:6], s[6:10]
    out, prod = [], 1.0
    for k in range(4):
        prod *= (float(correct[k]) + _TINY) / (float(guess[k]) + _SMALL)
        out.append(prod ** (1.0 / (k + 1)))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    if ratio < 1:
        out = [b * math.exp(1 - 1 / ratio) for b in out]
    return out


def _lcs(a: list[str], b: list[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def coco_rouge_l(
    references: Sequence[Sequence[str]], candidates: Sequence[str], beta: float = ROUGE_BETA
) -> np.ndarray:
    """Per-sample ROUGE-L (pycocoevalcap's ``Rouge``) of tokenised strings."""
    out = np.zeros(len(candidates))
    for i, (rs, c) in enumerate(zip(references, candidates, strict=True)):
        tc = c.split(" ")
        best_p = best_r = 0.0
        for r in rs:
            tr = r.split(" ")
            lcs = _lcs(tr, tc)
            best_p = max(best_p, lcs / len(tc))
            best_r = max(best_r, lcs / len(tr))
        if best_p != 0 and best_r != 0:
            out[i] = (1 + beta**2) * best_p * best_r / (best_r + beta**2 * best_p)
    return out


def coco_cider(references: Sequence[Sequence[str]], candidates: Sequence[str], *, n: int = 4, sigma: float = 6.0):
    """Per-sample CIDEr-D of tokenised strings (whitespace-split, as pycocoevalcap splits them)."""
    return cider_d_scores(
        [[r.split() for r in rs] for rs in references], [c.split() for c in candidates], n=n, sigma=sigma
    )


# ================================================================================================= METEOR
def find_meteor_jar() -> tuple[Path | None, str | None, str | None]:
    """(jar, java, None) when METEOR 1.5 can run, else (None, None, reason)."""
    java = shutil.which("java")
    try:
        dist = metadata.distribution("pycocoevalcap")
    except metadata.PackageNotFoundError:
        return (
            None,
            None,
            (
                "METEOR 1.5 skipped: it runs pycocoevalcap's meteor-1.5.jar, and pycocoevalcap is not installed "
                '(pip install "medlens[reference]").'
            ),
        )
    jar = Path(str(dist.locate_file("pycocoevalcap/meteor/meteor-1.5.jar")))
    if not jar.is_file():
        return None, None, f"METEOR 1.5 skipped: {jar} is missing from the pycocoevalcap installation."
    if java is None:
        return (
            None,
            None,
            (
                "METEOR 1.5 skipped: no 'java' on PATH (it runs pycocoevalcap's meteor-1.5.jar; Debian: "
                "apt-get install default-jre-headless)."
            ),
        )
    return jar, java, None


def meteor_jar_scores(
    references: Sequence[Sequence[str]], candidates: Sequence[str], *, jar: Path, java: str
) -> tuple[float, np.ndarray]:
    """(corpus score, per-sample scores) of METEOR 1.5 on tokenised strings, through the jar's stdio protocol."""
    cmd = [java, "-jar", "-Xmx2G", jar.name, "-", "-", "-stdio", "-l", "en", "-norm"]
    proc = subprocess.Popen(
        cmd, cwd=str(jar.parent), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    stdin, stdout = proc.stdin, proc.stdout
    if stdin is None or stdout is None:  # pragma: no cover - PIPE always gives both
        raise RuntimeError("could not open pipes to the METEOR jar")
    try:
        stats = []
        for rs, c in zip(references, candidates, strict=True):
            hyp = c.replace("|||", "").replace("  ", " ")
            stdin.write(("SCORE ||| " + " ||| ".join(rs) + " ||| " + hyp + "\n").encode())
            stdin.flush()
            stats.append(stdout.readline().decode().strip())
        stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode())
        stdin.flush()
        per = np.array([float(stdout.readline().strip()) for _ in candidates])
        total = float(stdout.readline().strip())
    except (ValueError, BrokenPipeError) as exc:
        raise RuntimeError(f"METEOR 1.5 ({jar}) did not answer as expected: {exc}") from exc
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.kill()
        proc.wait()
    return total, per


def coco_caption_metrics(
    references: Sequence[Sequence[str]],
    candidates: Sequence[str],
    *,
    cider_n: int = 4,
    cider_sigma: float = 6.0,
    meteor: bool = True,
) -> dict[str, Any]:
    """Every COCO-caption metric of checked captions: ``{"scores", "per_sample", "stats", "tokens", "settings",
    "skipped"}`` with keys ``bleu1..bleu4, rouge_l, cider, meteor``."""
    refs, cands = coco_tokenize(references, candidates)
    stats = coco_bleu(refs, cands)
    per_bleu = np.array([coco_bleu_from_stats(row) for row in stats]).reshape(len(cands), 4)
    corpus_bleu = coco_bleu_from_stats(stats)
    scores: dict[str, float | None] = {f"bleu{k + 1}": corpus_bleu[k] for k in range(4)}
    per: dict[str, np.ndarray] = {f"bleu{k + 1}": per_bleu[:, k] for k in range(4)}
    per["rouge_l"] = coco_rouge_l(refs, cands)
    per["cider"] = coco_cider(refs, cands, n=cider_n, sigma=cider_sigma)
    scores["rouge_l"] = float(per["rouge_l"].mean())
    scores["cider"] = float(per["cider"].mean())
    skipped: dict[str, str] = {}
    jar, java, reason = find_meteor_jar() if meteor else (None, None, "METEOR disabled (CaptionOptions.meteor=None).")
    if jar is not None and java is not None:
        scores["meteor"], per["meteor"] = meteor_jar_scores(refs, cands, jar=jar, java=java)
    else:
        scores["meteor"], per["meteor"] = None, np.full(len(cands), np.nan)
        skipped["meteor"] = str(reason)
    tok = "PTB (medlens pure-Python reimplementation of pycocoevalcap's Stanford CoreNLP 3.4.1 PTBTokenizer)"
    settings = {
        "bleu": {
            "implementation": "pycocoevalcap Bleu(4): closest reference length, +1e-15/+1e-9 smoothing",
            "tokenizer": tok,
            "corpus": "pooled statistics over samples",
            "scale": "0-1",
        },
        "rouge_l": {"implementation": "pycocoevalcap Rouge", "beta": ROUGE_BETA, "tokenizer": tok, "scale": "0-1"},
        "cider": {
            "variant": "CIDEr-D (pycocoevalcap Cider: clipping, Gaussian length penalty, x10)",
            "n": cider_n,
            "sigma": cider_sigma,
            "idf": f"dataset-level: document frequency over the references of these {len(cands)} samples",
            "tokenizer": tok,
            "scale": "0-10",
        },
        "meteor": None
        if jar is None
        else {
            "implementation": "METEOR 1.5 (pycocoevalcap meteor-1.5.jar, -l en -norm)",
            "jar": str(jar),
            "java": java,
            "corpus": "the jar's aggregate score",
            "tokenizer": tok,
            "scale": "0-1",
        },
    }
    return {
        "scores": scores,
        "per_sample": per,
        "stats": stats,
        "tokens": {"references": refs, "candidates": cands},
        "settings": settings,
        "skipped": skipped,
    }
