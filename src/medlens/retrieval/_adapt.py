"""Ontology self-alignment of concept vectors: a linear map, trained on the indexed HPO renderings, that pulls the
names of one concept together and pushes its neighbours apart.

The idea is SapBERT's (Liu et al. 2021, "self-alignment pretraining"): the synonyms of one concept should embed
closer to each other than to any other concept's. Fine-tuning the whole MiniLM that way does not fit the index
budget on two CPU cores (encoding the ~24k labels alone takes minutes there, and every step of a full fine-tune
costs several such forward and backward passes), so the encoder stays frozen and what is trained is a
``dim × dim`` matrix ``W`` on top of it (started at the identity): a concept vector is ``normalise(v · W)``, for the
label table and for the text spans alike. The cosine it gives, ``v Wᵀ W u`` up to norms, is a learned metric.

Training MiniLM's top layers instead does fit when the lower layers' outputs are cached once per label, but it
did not pay: the top one or two layers trained on the span side only (the label vectors fixed, the map on top),
200 steps of the full softmax over labels, 150-260 s on 2 cores, gave a 2-fold cross-validated dev F1 of 0.687-0.696
with a refitted concept scorer against 0.683 for the map alone, and top-5 0.71-0.73 against 0.735; recall of lay
paraphrases with the cosine rule fell from 0.34 to 0.26. The extra capacity learns the label table, not paraphrase.

**Training data: only what the recogniser indexes.** :func:`training_anchors` reads the recogniser's label
table itself, ``(term, text)`` rows of the names and the *index half* of the synonyms and short definitions
(:func:`medlens.retrieval._concepts.concept_labels`); the held-out half of hp.obo, the lay paraphrase table of
``rare-hpo-v2`` and case texts are never seen (a test checks it). Every label of a term with at least two labels
is an *anchor*; its positives are the other labels of its term.

**Loss** (leave-one-out InfoNCE over labels, which is how the recogniser matches: a span takes the term of its
most similar label). For a batch of anchors, the candidates are the labels of the batch's terms, the
``hard_negatives`` labels of *other* terms most similar to each anchor under the frozen encoder (the siblings and
neighbours the error analysis of :mod:`medlens.retrieval._concepts` found: "oedema" → Pedal edema), and
``random_negatives`` random labels; with cosine ``c`` and scale ``s``::

    loss(anchor) = logsumexp_{candidates ≠ anchor} (s·c)  −  logsumexp_{positives} (s·c)

AdamW, ``steps`` steps, seeded (numpy for the batches, torch for nothing random: ``W`` starts at the identity),
so the same labels, vectors and settings give the same matrix on the same machine.

**Cache.** :func:`cached_concept_adapter` keys the matrix by SHA-256 of the adapter version, the embedder's
``cache_key``, the label table, the label vectors and the settings, and keeps it in
``$MEDLENS_CACHE/retrieval/adapters/<key>.npz`` (atomic write); a rebuild loads it. Its :meth:`ConceptAdapter.spec`
(base model, data hash, steps, seed, loss, seconds) is part of the recogniser's spec, which the ontology ranker's
provenance carries. Any embedder works (the packaged MiniLM, a user's local folder, the hashing embedder).

Chosen on ``rare-hpo-v2`` dev only (n=200; never the test split): see :mod:`medlens.retrieval._concepts`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from medlens._cache import cache_root
from medlens._validation import InputError

__all__ = [
    "ADAPTER_VERSION",
    "AdapterSettings",
    "ConceptAdapter",
    "cached_concept_adapter",
    "train_concept_adapter",
    "training_anchors",
]

log = logging.getLogger(__name__)

ADAPTER_VERSION = "medlens-concept-adapter-v1"


@dataclass(frozen=True)
class AdapterSettings:
    """How the map is trained (module docstring); the defaults were chosen on rare-hpo-v2 dev."""

    steps: int = 200
    batch: int = 256
    lr: float = 1e-3
    scale: float = 20.0
    hard_negatives: int = 16
    random_negatives: int = 2048
    seed: int = 0

    def check(self) -> AdapterSettings:
        if self.steps < 0 or self.batch < 1 or self.hard_negatives < 0 or self.random_negatives < 0:
            raise InputError(
                "adapter settings: steps must be >= 0, batch >= 1, hard_negatives and random_negatives >= 0; "
                f"got {self}."
            )
        if not (self.lr > 0 and self.scale > 0):
            raise InputError(f"adapter settings: lr and scale must be > 0; got lr={self.lr}, scale={self.scale}.")
        return self


def _normalise(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return (v / n).astype(np.float32)


class ConceptAdapter:
    """The trained map: ``transform(v) = normalise(v · W)``.

    >>> a = ConceptAdapter(np.eye(2, dtype=np.float32))
    >>> [round(float(x), 2) for x in a.transform(np.array([[3.0, 4.0]]))[0]]
    [0.6, 0.8]
    """

    def __init__(self, weight: np.ndarray, info: dict[str, Any] | None = None) -> None:
        weight = np.asarray(weight, dtype=np.float32)
        if weight.ndim != 2 or weight.shape[0] != weight.shape[1]:
            raise InputError(f"a concept adapter needs a square matrix; got shape {weight.shape}.")
        self.weight = weight
        self.info = dict(info or {})

    @property
    def dim(self) -> int:
        return int(self.weight.shape[0])

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise InputError(f"the concept adapter maps {self.dim}-d vectors; got shape {vectors.shape}.")
        return _normalise(vectors @ self.weight)

    def spec(self) -> dict[str, Any]:
        return {"version": ADAPTER_VERSION, **self.info}


def training_anchors(labels: Sequence[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """(term id of every label, indices of the anchors: labels whose term has at least one other label).

    >>> tid, anchors = training_anchors([("A", "x"), ("A", "y"), ("B", "z")])
    >>> tid.tolist(), anchors.tolist()
    ([0, 0, 1], [0, 1])
    """
    terms = [t for t, _ in labels]
    _, tid = np.unique(np.array(terms, dtype=object).astype(str), return_inverse=True)
    counts = np.bincount(tid) if len(tid) else np.zeros(0, dtype=np.int64)
    return tid.astype(np.int64), np.flatnonzero(counts[tid] >= 2) if len(tid) else np.zeros(0, dtype=np.int64)


def _hard_negatives(vectors: np.ndarray, tid: np.ndarray, anchors: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` labels of other terms most similar to each anchor under the frozen encoder."""
    k = min(k, len(vectors) - 1)
    out = np.zeros((len(anchors), max(k, 0)), dtype=np.int64)
    if k <= 0:
        return out
    for s in range(0, len(anchors), 1024):
        blk = anchors[s : s + 1024]
        sim = vectors[blk] @ vectors.T
        sim[tid[blk][:, None] == tid[None, :]] = -np.inf
        part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        out[s : s + len(blk)] = np.sort(part, axis=1)
    return out


def train_concept_adapter(
    labels: Sequence[tuple[str, str]],
    vectors: np.ndarray,
    settings: AdapterSettings | None = None,
    *,
    base: str | None = None,
    progress: bool = False,
) -> ConceptAdapter:
    """Train the map on the label table ``labels`` (``(term, text)`` rows) and their frozen, L2-normalised
    ``vectors`` (module docstring). ``base`` names the encoder, for provenance; ``progress`` shows a bar."""
    from medlens._optional import require
    from medlens._progress import progress_bar

    cfg = (settings or AdapterSettings()).check()
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(labels):
        raise InputError(f"got {len(vectors)} label vectors for {len(labels)} labels.")
    torch = require("torch", extra="torch", purpose="the concept adapter")
    t0 = time.perf_counter()
    tid, anchors = training_anchors(labels)
    dim = vectors.shape[1]
    info: dict[str, Any] = {
        "base": base,
        "data_sha256": labels_digest(labels),
        "n_labels": len(labels),
        "n_anchors": int(len(anchors)),
        "loss": "leave-one-out InfoNCE over labels, hard negatives from the frozen encoder",
        **asdict(cfg),
    }
    if len(anchors) == 0 or cfg.steps == 0:
        return ConceptAdapter(np.eye(dim, dtype=np.float32), {**info, "steps": 0, "final_loss": None, "seconds": 0.0})
    hard = _hard_negatives(vectors, tid, anchors, cfg.hard_negatives)
    members: list[list[int]] = [[] for _ in range(int(tid.max()) + 1)]
    for i, t in enumerate(tid):
        members[t].append(i)
    rng = np.random.default_rng([cfg.seed, 17])
    with torch.no_grad():
        x_all = torch.from_numpy(np.ascontiguousarray(vectors))
        t_all = torch.from_numpy(tid)
    weight = torch.nn.Parameter(torch.eye(dim, dtype=torch.float32))
    opt = torch.optim.AdamW([weight], lr=cfg.lr, weight_decay=0.0)
    batch = min(cfg.batch, len(anchors))
    loss_value = float("nan")
    with progress_bar(cfg.steps, progress, "HPO concept adapter: training steps") as bar:
        for _ in range(cfg.steps):
            loss_value = _step(cfg, rng, anchors, hard, members, tid, x_all, t_all, weight, opt, batch, torch)
            bar(1)
    info.update({"final_loss": round(loss_value, 4), "seconds": round(time.perf_counter() - t0, 2)})
    return ConceptAdapter(weight.detach().numpy().copy(), info)


def _step(cfg, rng, anchors, hard, members, tid, x_all, t_all, weight, opt, batch, torch) -> float:
    """One optimiser step on a batch of anchors (module docstring); returns the loss."""
    pick = np.sort(rng.choice(len(anchors), batch, replace=False))
    a = anchors[pick]
    cand = np.unique(
        np.concatenate(
            [
                a,
                hard[pick].ravel(),
                rng.integers(0, len(tid), cfg.random_negatives),
                *[np.asarray(members[t]) for t in tid[a]],
            ]
        )
    )
    where = torch.from_numpy(np.searchsorted(cand, a))
    c = torch.from_numpy(cand)
    z = torch.nn.functional.normalize(x_all[c] @ weight, dim=1)
    logits = cfg.scale * (z[where] @ z.T)
    rows = torch.arange(batch)
    logits[rows, where] = -1e4  # leave the anchor out
    pos = t_all[c][None, :] == t_all[torch.from_numpy(a)][:, None]
    pos[rows, where] = False
    loss = (torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~pos, -1e4), 1)).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach())


def labels_digest(labels: Sequence[tuple[str, str]]) -> str:
    return hashlib.sha256("\x1e".join(f"{t}\x1f{x}" for t, x in labels).encode()).hexdigest()


def adapter_cache_dir():
    return cache_root("retrieval", "adapters")


def cached_concept_adapter(
    labels: Sequence[tuple[str, str]],
    vectors: np.ndarray,
    embedder: Any,
    settings: AdapterSettings | None = None,
    *,
    use_cache: bool = True,
    progress: bool = False,
) -> tuple[ConceptAdapter, str]:
    """(the adapter, ``"hit" | "miss" | "off" | "unwritable"``): trained once per embedder, label table, label
    vectors and settings, then loaded from ``$MEDLENS_CACHE/retrieval/adapters``."""
    import json

    cfg = (settings or AdapterSettings()).check()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    h = hashlib.sha256()
    for part in (ADAPTER_VERSION, str(getattr(embedder, "cache_key", "")), labels_digest(labels)):
        h.update(part.encode() + b"\x1e")
    h.update(json.dumps(asdict(cfg), sort_keys=True).encode())
    h.update(vectors.tobytes())
    key = h.hexdigest()
    path = adapter_cache_dir() / f"{key[:32]}.npz"
    if use_cache and path.is_file():
        try:
            with np.load(path) as z:
                weight, info = z["weight"], json.loads(str(z["info"]))
        except (OSError, ValueError, KeyError) as exc:  # a damaged file is retrained, never trusted
            log.warning("ignoring unreadable concept adapter %s (%s)", path, exc)
        else:
            if weight.shape == (vectors.shape[1], vectors.shape[1]):
                return ConceptAdapter(weight, {**info, "cache_key": key[:32]}), "hit"
    adapter = train_concept_adapter(labels, vectors, cfg, base=getattr(embedder, "model_id", None), progress=progress)
    adapter.info["cache_key"] = key[:32]
    if not use_cache:
        return adapter, "off"
    from medlens.io import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as fh:
            np.savez(fh, weight=adapter.weight, info=np.array(json.dumps(adapter.info, sort_keys=True)))
    except OSError as exc:  # a read-only cache only costs the next build a retraining
        log.warning("could not write the concept adapter %s (%s)", path, exc)
        return adapter, "unwritable"
    return adapter, "miss"
