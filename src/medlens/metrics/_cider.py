"""CIDEr-D (Vedantam et al. 2015), vectorised, value for value equal to pycocoevalcap's ``Cider``.

What pycocoevalcap ships
------------------------
``pycocoevalcap.cider.Cider`` (``cider/cider_scorer.py``, the coco-caption code) is reported as "CIDEr" but
computes **CIDEr-D**: the variant of the paper with clipped candidate n-gram weights, a Gaussian length
penalty and a ×10 factor (plain CIDEr has none of the three). Its exact rules, which this module reproduces:

- n-grams of order 1..``n`` (default 4) of whitespace tokens; each sentence is a vector of tf-idf weights
  ``g(w) = count(w) * (log N - log max(1, df(w)))`` where ``N`` is the number of samples (images) and
  ``df(w)`` the number of samples whose **reference set** contains ``w`` (dataset-level document frequency:
  the IDF depends on the whole set scored together, so score a dataset once and average subsets from the
  per-sample values). Candidate n-grams absent from every reference have ``df = 0`` → weight ``log N``.
- for each order ``k`` and each reference ``r`` of sample ``i``:
  ``s_k(c, r) = sum_w min(g_c(w), g_r(w)) * g_r(w) / (|g_c|_k |g_r|_k) * exp(-(l_c - l_r)^2 / (2 sigma^2))``
  (the ratio is left undivided when a norm is 0; the numerator is then 0 as well), ``sigma = 6``;
- the sample's score is ``10 * mean_k(sum_r s_k(c, r)) / n_refs``; the corpus score is the mean over samples.
- **Length quirk**: ``l`` is the number of *bigrams* of a sentence (``counts2vec`` adds the counts of the
  n-grams whose index is 1), i.e. ``words - 1`` for a non-empty sentence and 0 for an empty one (so an empty
  candidate against a one-word reference has no length penalty). We reproduce it for parity.
- **Order bug**: pycocoevalcap always extracts n-grams up to order 4 (``cook_refs``/``cook_test`` ignore the
  scorer's ``n``), so ``Cider(n=3)`` raises ``IndexError`` and ``Cider(n=5)`` averages in an empty fifth
  order (scores × 4/5). Parity therefore holds for ``n = 4``, the default and the only value used in
  practice; our ``n`` is honoured as documented for other values.

Tokenisation: pycocoevalcap's pipeline runs the Stanford PTBTokenizer (Java) and then splits on whitespace.
medlens does not run Java; it applies :func:`medlens.metrics.tokenize_caption` (PTB-like, see there) and
hands the same tokens to both implementations in the parity test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medlens._validation import InputError

__all__ = ["cider_d_scores"]


def _ngram_table(sentences: Sequence[Sequence[str]], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-sentence n-gram counts as flat arrays: (sentence, gram id, order index 0..n-1, count).

    Gram ids are dense over all orders; each distinct n-gram of the whole set has one id.
    """
    lens = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    total = int(lens.sum())
    vocab: dict[str, int] = {}
    tok = np.fromiter((vocab.setdefault(t, len(vocab)) for s in sentences for t in s), dtype=np.int64, count=total)
    sent_of = np.repeat(np.arange(len(sentences), dtype=np.int64), lens)
    starts = np.cumsum(lens) - lens
    remaining = lens[sent_of] - (np.arange(total, dtype=np.int64) - starts[sent_of])  # tokens from here to the end
    v = max(len(vocab), 1)
    sent_parts, gram_parts, order_parts, count_parts = [], [], [], []
    prev = tok.copy()  # id of the (k-1)-gram starting at each position (valid where remaining >= k-1)
    offset = 0
    for k in range(1, n + 1):
        valid = np.flatnonzero(remaining >= k)
        if valid.size == 0:
            break
        # a k-gram = its (k-1)-gram prefix and its last token; prefix id * |V| + token < total * |V| fits in int64
        key = tok[valid] if k == 1 else prev[valid] * v + tok[valid + k - 1]
        uniq, inv = np.unique(key, return_inverse=True)
        gram = np.full(total, -1, dtype=np.int64)
        gram[valid] = inv
        prev = gram
        pair, counts = np.unique(sent_of[valid] * len(uniq) + inv, return_counts=True)
        sent_parts.append(pair // len(uniq))
        gram_parts.append(pair % len(uniq) + offset)
        order_parts.append(np.full(len(pair), k - 1, dtype=np.int64))
        count_parts.append(counts.astype(np.float64))
        offset += len(uniq)
    if not sent_parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0)
    return (
        np.concatenate(sent_parts),
        np.concatenate(gram_parts),
        np.concatenate(order_parts),
        np.concatenate(count_parts),
    )


def cider_d_scores(
    references: Sequence[Sequence[Sequence[str]]],
    candidates: Sequence[Sequence[str]],
    *,
    n: int = 4,
    sigma: float = 6.0,
) -> np.ndarray:
    """Per-sample CIDEr-D of tokenised captions (pycocoevalcap's ``Cider``; see the module notes).

    Parameters
    ----------
    references : sequence of sequences of token lists
        ``references[i]`` holds the tokenised reference captions of sample ``i`` (at least one).
    candidates : sequence of token lists
        ``candidates[i]`` is the tokenised candidate of sample ``i``.
    n : int
        Largest n-gram order.
    sigma : float
        Standard deviation of the Gaussian length penalty.

    Returns
    -------
    ndarray of shape (n_samples,)
        The per-sample scores (×10 scale); their mean is the corpus CIDEr-D.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InputError(f"The 'n' parameter (largest n-gram order) must be an integer >= 1; got {n!r}.")
    if not np.isfinite(sigma) or sigma <= 0:
        raise InputError(f"The 'sigma' parameter (length penalty width) must be > 0; got {sigma!r}.")
    n_samples = len(candidates)
    if len(references) != n_samples:
        raise InputError(f"references and candidates must have the same length; got {len(references)} and {n_samples}.")
    if n_samples == 0:
        return np.zeros(0)
    n_refs = np.fromiter((len(r) for r in references), dtype=np.int64, count=n_samples)
    if (n_refs == 0).any():
        raise InputError(f"every sample needs at least one reference; sample {int(np.argmin(n_refs))} has none.")
    ref_owner = np.repeat(np.arange(n_samples, dtype=np.int64), n_refs)
    sentences = [*candidates, *(r for refs in references for r in refs)]
    sent, gram, order, count = _ngram_table(sentences, n)
    n_grams = int(gram.max()) + 1 if gram.size else 0
    is_ref = sent >= n_samples

    # dataset-level document frequency: the number of samples whose references contain the n-gram
    owner = ref_owner[sent[is_ref] - n_samples]
    owner_gram = np.sort(owner * max(n_grams, 1) + gram[is_ref])
    owner_gram = owner_gram[np.r_[True, owner_gram[1:] != owner_gram[:-1]]] if owner_gram.size else owner_gram
    df = np.bincount(owner_gram % max(n_grams, 1), minlength=n_grams).astype(np.float64)
    weight = np.log(float(n_samples)) - np.log(np.maximum(1.0, df))  # >= 0 since df <= N
    value = count * weight[gram]

    # norms per sentence and order
    n_sent = len(sentences)
    norm = np.sqrt(np.bincount(sent * n + order, weights=value**2, minlength=n_sent * n)).reshape(n_sent, n)
    words = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=n_sent)
    length = np.maximum(words - 1, 0)  # the bigram-count quirk: words - 1

    # clipped dot products: for each reference n-gram, the candidate's weight of the same n-gram
    cand_mask = ~is_ref
    cand_key = sent[cand_mask] * max(n_grams, 1) + gram[cand_mask]  # sorted: rows come out of np.unique per order
    order_of_cand = np.argsort(cand_key, kind="stable")
    cand_key, cand_val = cand_key[order_of_cand], value[cand_mask][order_of_cand]
    r_sent, r_gram, r_order, r_val = sent[is_ref], gram[is_ref], order[is_ref], value[is_ref]
    look = ref_owner[r_sent - n_samples] * max(n_grams, 1) + r_gram
    pos = np.searchsorted(cand_key, look)
    pos_c = np.minimum(pos, max(len(cand_key) - 1, 0))
    hit = (pos < len(cand_key)) & (cand_key[pos_c] == look) if len(cand_key) else np.zeros(len(look), dtype=bool)
    c_val = np.where(hit, cand_val[pos_c] if len(cand_key) else 0.0, 0.0)
    contrib = np.minimum(c_val, r_val) * r_val
    n_ref_sent = n_sent - n_samples
    dot = np.bincount((r_sent - n_samples) * n + r_order, weights=contrib, minlength=n_ref_sent * n).reshape(
        n_ref_sent, n
    )

    denom = norm[ref_owner] * norm[n_samples:]
    sim = np.divide(dot, denom, out=dot.copy(), where=denom != 0)
    delta = (length[ref_owner] - length[n_samples:]).astype(np.float64)
    sim *= np.exp(-(delta**2) / (2.0 * float(sigma) ** 2))[:, None]
    per_order = np.add.reduceat(sim, np.cumsum(n_refs) - n_refs, axis=0)  # refs of a sample are contiguous
    return per_order.mean(axis=1) / n_refs * 10.0
