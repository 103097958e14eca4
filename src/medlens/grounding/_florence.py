"""Florence-2 box codec and output parser: pixel boxes ↔ ``<loc_k>`` tokens, targets, parsing and scores.

Florence-2 writes a coordinate as one of 1000 bins per axis. For an image of width ``W`` and height ``H``:

- encode: ``k = floor(x / W * 1000)`` clamped to ``0..999`` (x coordinates use ``W``, y coordinates ``H``). The
  clamp matters at the border: ``x = W`` gives bin 999, never ``<loc_1000>`` (a token outside the vocabulary that
  the AG-KD training targets produce);
- decode: the bin centre ``(k + 0.5) * W / 1000``, so ``|x - decode(encode(x))| <= W / 2000``.

Image sizes are always ``(width, height)``: passing ``(H, W)`` (as the public AG-KD code does) is harmless only
for square images; here a box that does not fit the given size is an error, which catches the swap on any
non-square image.

Parsing follows the phrase-grounding output ``"<phrase><loc_x1><loc_y1><loc_x2><loc_y2>[<loc_…>×4]…"``: each phrase
is mapped to a knowledge-base finding (exact name or synonym, else the closest by :func:`difflib.get_close_matches`
with a configurable cutoff); phrases that map to nothing are dropped and counted, as are malformed coordinate runs
(not a multiple of 4, or a bin outside ``0..999``). With per-token log-probabilities (a generation's transition
scores), each box gets a score: the exponential of the mean log-probability of its phrase tokens and its four
coordinate tokens; the sequence score is ``exp(sum(logp) / n_tokens ** length_penalty)`` over the generated tokens.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medlens._validation import InputError, check_interval

__all__ = [
    "N_BINS",
    "ParsedGrounding",
    "build_target",
    "decode_boxes",
    "encode_boxes",
    "loc_tokens",
    "map_phrase",
    "parse_grounding",
]

N_BINS = 1000
_LOC = re.compile(r"<loc_(\d+)>")
_TOKENS = re.compile(r"<loc_\d+>|<[^<>]*>|[^<]+|<")
_PUNCT = re.compile(r"[^\w\s/]+")


def _check_size(image_size: Sequence[float]) -> tuple[float, float]:
    try:
        w, h = (float(v) for v in image_size)
    except (TypeError, ValueError):
        raise InputError(f"image_size must be (width, height); got {image_size!r}.") from None
    if not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
        raise InputError(f"image_size must be two positive numbers (width, height); got {image_size!r}.")
    return w, h


def encode_boxes(boxes: Any, image_size: Sequence[float]) -> np.ndarray:
    """``xyxy`` pixel boxes → ``(n, 4)`` integer bins ``floor(x / W * 1000)`` clamped to 0..999.

    ``image_size`` is ``(width, height)``. A box outside the image (any coordinate below 0 or beyond the size),
    non-finite, or with ``x2 < x1``/``y2 < y1`` is an :class:`InputError` naming the box and the size.

    >>> encode_boxes([[0, 0, 640, 480]], (640, 480)).tolist()
    [[0, 0, 999, 999]]
    >>> encode_boxes([[10, 10, 20, 20]], (2000, 1000)).tolist()
    [[5, 10, 10, 20]]
    """
    w, h = _check_size(image_size)
    try:
        arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if len(boxes) else np.zeros((0, 4))
    except (TypeError, ValueError):
        raise InputError(f"boxes must be a list of [x1, y1, x2, y2]; got {boxes!r}.") from None
    for i, (x1, y1, x2, y2) in enumerate(arr):
        if not np.isfinite([x1, y1, x2, y2]).all() or x2 < x1 or y2 < y1:
            raise InputError(f"box {i} {[x1, y1, x2, y2]} must be finite xyxy with x1 <= x2 and y1 <= y2.")
        if min(x1, y1) < 0 or x2 > w or y2 > h:
            raise InputError(
                f"box {i} {[x1, y1, x2, y2]} lies outside the image of (width, height) = ({w:g}, {h:g}); "
                "check the box frame and that the size is given as (width, height), not (height, width)."
            )
    scale = np.array([w, h, w, h]) / N_BINS
    return np.clip(np.floor(arr / scale), 0, N_BINS - 1).astype(np.int64)


def decode_boxes(bins: Any, image_size: Sequence[float]) -> np.ndarray:
    """``(n, 4)`` bins → pixel boxes at the bin centres ``(k + 0.5) * size / 1000``.

    >>> decode_boxes([[0, 0, 999, 999]], (1000, 500)).tolist()
    [[0.5, 0.25, 999.5, 499.75]]
    """
    w, h = _check_size(image_size)
    arr = np.asarray(bins, dtype=np.int64).reshape(-1, 4)
    if arr.size and (arr.min() < 0 or arr.max() >= N_BINS):
        raise InputError(f"location bins must lie in 0..{N_BINS - 1}; got {arr.min()}..{arr.max()}.")
    return (arr + 0.5) * (np.array([w, h, w, h]) / N_BINS)


def loc_tokens(bins: Any) -> str:
    """``"<loc_x1><loc_y1><loc_x2><loc_y2>"`` for each row of bins, concatenated."""
    return "".join(f"<loc_{int(k)}>" for k in np.asarray(bins, dtype=np.int64).reshape(-1))


def build_target(labels: Sequence[str], boxes: Any, image_size: Sequence[float], *, negative_text: str = "") -> str:
    """Training target: ``"{label}<loc…>×4"`` per box in the given order (the label repeated per box).

    No box (a negative query: the finding is absent) gives ``negative_text`` (default: the empty string, so the
    model learns to stop at once).

    >>> build_target(["nodule", "nodule"], [[0, 0, 10, 10], [50, 50, 100, 100]], (100, 100))
    'nodule<loc_0><loc_0><loc_100><loc_100>nodule<loc_500><loc_500><loc_999><loc_999>'
    """
    bins = encode_boxes(boxes, image_size)
    if len(labels) != len(bins):
        raise InputError(f"build_target needs one label per box; got {len(labels)} labels for {len(bins)} boxes.")
    if not len(bins):
        return negative_text
    return "".join(f"{lab}{loc_tokens(b)}" for lab, b in zip(labels, bins, strict=True))


def _norm(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def map_phrase(phrase: str, vocabulary: Mapping[str, str], *, cutoff: float = 0.6) -> str | None:
    """The finding a generated phrase names: exact (normalised) name or synonym, else the closest by
    ``difflib.get_close_matches`` at ``cutoff``; ``None`` when nothing is close enough.

    >>> vocab = {"pleural effusion": "pleural effusion", "effusion": "pleural effusion"}
    >>> map_phrase("Pleural effusions.", vocab), map_phrase("the image", vocab)
    ('pleural effusion', None)
    """
    key = _norm(phrase)
    if not key:
        return None
    if key in vocabulary:
        return vocabulary[key]
    close = difflib.get_close_matches(key, list(vocabulary), n=1, cutoff=cutoff)
    return vocabulary[close[0]] if close else None


@dataclass(frozen=True)
class ParsedGrounding:
    """Boxes (pixels, ``xyxy``) with their finding labels, generated phrases and scores (``None`` without logprobs)."""

    boxes: np.ndarray
    labels: list[str]
    phrases: list[str]
    box_scores: np.ndarray | None
    sequence_score: float | None
    n_unknown: int = 0
    unknown_phrases: list[str] = field(default_factory=list)
    n_malformed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "boxes": self.boxes.tolist(),
            "labels": self.labels,
            "phrases": self.phrases,
            "scores": None if self.box_scores is None else self.box_scores.tolist(),
            "sequence_score": self.sequence_score,
            "n_unknown": self.n_unknown,
            "unknown_phrases": self.unknown_phrases,
            "n_malformed": self.n_malformed,
        }


_SKIP = {"<s>", "</s>", "<pad>", "<unk>"}


def parse_grounding(
    output: str | Sequence[str],
    vocabulary: Mapping[str, str] | Any,
    image_size: Sequence[float],
    *,
    logprobs: Sequence[float] | None = None,
    cutoff: float = 0.6,
    length_penalty: float = 1.0,
) -> ParsedGrounding:
    """Parse a phrase-grounding generation into boxes, finding labels and (with ``logprobs``) scores.

    Parameters
    ----------
    output : str or sequence of str
        The decoded text (special tokens kept or not), or the generated tokens one by one (needed with
        ``logprobs``, which gives one log-probability per token, e.g. from ``compute_transition_scores``).
    vocabulary : mapping or KnowledgeBase
        Normalised name/synonym → finding name (a :class:`~medlens.grounding.KnowledgeBase` gives its own).
    image_size : (width, height)
        Of the image the boxes are decoded onto.
    cutoff : float
        ``difflib`` similarity cutoff for mapping phrases to findings (0..1; 1 = exact matches only).

    >>> from medlens.grounding import load_knowledge
    >>> p = parse_grounding("Effusion<loc_0><loc_500><loc_499><loc_999>it<loc_1><loc_1><loc_2><loc_2></s>",
    ...                     load_knowledge("vindr"), (1000, 2000))
    >>> p.labels, p.boxes.tolist(), p.unknown_phrases
    (['pleural effusion'], [[0.5, 1001.0, 499.5, 1999.0]], ['it'])
    """
    check_interval(cutoff, name="cutoff", low=0, high=1)
    vocab = vocabulary.vocabulary() if hasattr(vocabulary, "vocabulary") else dict(vocabulary)
    tokens = _TOKENS.findall(output) if isinstance(output, str) else [str(t) for t in output]
    if logprobs is not None:
        lps = [float(x) for x in logprobs]
        if len(lps) != len(tokens):
            raise InputError(
                f"logprobs must have one value per generated token; got {len(lps)} for {len(tokens)} tokens."
            )
    else:
        lps = [0.0] * len(tokens)
    w, h = _check_size(image_size)
    phrase_parts: list[str] = []
    phrase_lp: list[float] = []
    current, current_lp = "", []  # the phrase the next boxes belong to
    locs: list[int] = []
    loc_lp: list[float] = []
    raw: list[tuple[str, list[int], list[float]]] = []
    malformed = 0
    seq_lp: list[float] = []
    for tok, lp in zip(tokens, lps, strict=True):
        if tok == "<pad>":
            continue
        seq_lp.append(lp)
        m = _LOC.fullmatch(tok)
        if m:
            if phrase_parts:
                current, current_lp = "".join(phrase_parts).strip(), phrase_lp
                phrase_parts, phrase_lp = [], []
            locs.append(int(m.group(1)))
            loc_lp.append(lp)
            if len(locs) == 4:
                raw.append((current, locs, current_lp + loc_lp))
                locs, loc_lp = [], []
            continue
        if tok in _SKIP or (tok.startswith("<") and tok.endswith(">") and len(tok) > 1):
            continue
        if locs:  # text interrupts an incomplete coordinate run
            malformed += 1
            locs, loc_lp = [], []
        phrase_parts.append(tok)
        phrase_lp.append(lp)
    if locs:
        malformed += 1
    boxes, labels, phrases, scores, unknown = [], [], [], [], []
    for phrase, bins, box_lp in raw:
        if max(bins) >= N_BINS or bins[2] < bins[0] or bins[3] < bins[1]:
            malformed += 1
            continue
        label = map_phrase(phrase, vocab, cutoff=cutoff)
        if label is None:
            unknown.append(phrase)
            continue
        boxes.append(bins)
        labels.append(label)
        phrases.append(phrase)
        scores.append(math.exp(float(np.mean(box_lp))))
    decoded = decode_boxes(boxes, (w, h)) if boxes else np.zeros((0, 4))
    seq = None
    if logprobs is not None and seq_lp:
        seq = math.exp(sum(seq_lp) / len(seq_lp) ** length_penalty)
    return ParsedGrounding(
        boxes=decoded,
        labels=labels,
        phrases=phrases,
        box_scores=np.array(scores) if logprobs is not None else None,
        sequence_score=seq,
        n_unknown=len(unknown),
        unknown_phrases=unknown,
        n_malformed=malformed,
    )
