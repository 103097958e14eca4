"""``medlens rag index | search | benchmark rare-hpo``: retrieval over a corpus (no LLM needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from medlens.cli._common import (
    console,
    emit_json,
    executor_option,
    human_float,
    progress_enabled,
    ray_address_option,
    workers_option,
)

app = typer.Typer(
    help="Retrieval-augmented diagnosis: build and search BM25 + dense indexes, benchmark the retrieval-only ranker.",
    no_args_is_help=True,
)
bench = typer.Typer(help="Benchmarks of the retrieval-only diagnosis ranker.", no_args_is_help=True)
app.add_typer(bench, name="benchmark")

RETRIEVER_HELP = (
    "auto (default: ontology on an hpo index, else fused), fused (BM25 + dense by reciprocal rank fusion, k=60), "
    "bm25, dense; for hpo indexes also ontology (HPO terms recognised in the text by name, synonym or embedding, "
    "diseases by IC-weighted overlap) or hybrid (BM25 + dense + ontology)."
)


def _parse_params(items: list[str]) -> dict[str, Any]:
    from medlens._validation import InputError

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"--faiss-param expects KEY=VALUE (e.g. efSearch=128 or nprobe=16); got {item!r}.")
        try:
            out[key.strip()] = int(value)
        except ValueError:
            try:
                out[key.strip()] = float(value)
            except ValueError:
                raise InputError(f"--faiss-param {key}: value {value!r} is not a number.") from None
    return out


@app.command("index")
def index_cmd(
    corpus: str = typer.Option(
        ..., "--corpus", help="A JSONL file of {id, title, text, source?, url?, diagnosis?} objects, or 'hpo'."
    ),
    out: Path = typer.Option(..., "--out", help="Index folder to write (created atomically)."),
    dense: str = typer.Option("numpy", "--dense", help="numpy (exact) or faiss:FACTORY, e.g. faiss:HNSW32,Flat."),
    dense_mode: str = typer.Option(
        "auto",
        "--dense-mode",
        help="document (one vector per document), clauses (late interaction over unique clauses), or auto: "
        "clauses for the hpo corpus, document otherwise.",
    ),
    metric: str = typer.Option(None, "--metric", help="cosine (needs normalised vectors; default) or ip."),
    embedder: str = typer.Option(
        "minilm",
        "--encoder",
        help="minilm (packaged all-MiniLM-L6-v2), a local sentence-transformers folder, or hashing:DIM.",
    ),
    max_length: int = typer.Option(
        None, "--max-length", help="Word pieces the embedder reads per document (default: the model's limit, 256)."
    ),
    chunk_size: int = typer.Option(0, "--chunk-size", help="Split documents into windows of this many units (0: off)."),
    chunk_overlap: int = typer.Option(0, "--chunk-overlap", help="Units shared by consecutive windows."),
    chunk_unit: str = typer.Option("words", "--chunk-unit", help="words, or tokens (the embedder's word pieces)."),
    faiss_param: list[str] = typer.Option(None, "--faiss-param", help="FAISS search parameter KEY=VALUE (repeatable)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, max=65536, help="Texts per embedding batch."),
    shard_size: int = typer.Option(
        0,
        "--shard-size",
        min=0,
        help="Embed into resumable Parquet shards of N texts and build the dense index from them (0: off; "
        "document mode). A killed build resumes with the shards it wrote.",
    ),
    train_size: int = typer.Option(
        None,
        "--train-size",
        min=1,
        help="With --shard-size: rows sampled to train an IVF/PQ index (default 64 per list, at least 10,000, "
        "at most 1,000,000).",
    ),
    seed: int = typer.Option(
        None, "--seed", min=0, max=2**32 - 1, help="With --shard-size: seed of the training sample (default 0)."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the embedding cache."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Rebuild and replace the index in --out (needed for another corpus or options)."
    ),
    executor: str = executor_option(),
    ray_address: str = ray_address_option(),
    workers: int = workers_option(),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Build a BM25 + dense index over a corpus and save it as a folder.

    Re-running with the same corpus and options reuses the folder (reported as cached); a folder holding an index of another corpus or options is refused unless --overwrite, which rebuilds it (the old index stays until the new one is complete). Corpus embeddings are cached under $MEDLENS_CACHE, so a rebuild elsewhere skips the encoder. An hpo index also gets concepts.npz: the ontology ranker's HPO label vectors and map, made now so that no search has to wait for them and read from the folder wherever it is copied.

    Examples:

      medlens rag index --corpus hpo --out runs/hpo-index

      medlens rag index --corpus notes.jsonl --out runs/notes --dense faiss:HNSW32,Flat --chunk-size 200 --chunk-overlap 40

      medlens rag index --corpus pubmed.jsonl --out runs/pubmed --dense faiss:IVF4096,PQ48 --shard-size 100000 --executor ray
    """
    from medlens.retrieval import run_index

    doc = run_index(
        corpus,
        out,
        dense=dense,
        dense_mode=dense_mode,
        metric=metric,
        embedder=embedder,
        max_length=max_length,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        chunk_unit=chunk_unit,
        search_params=_parse_params(faiss_param),
        batch_size=batch_size,
        use_cache=not no_cache,
        overwrite=overwrite,
        progress=progress_enabled(as_json),
        executor=executor,
        ray_address=ray_address,
        workers=workers,
        shard_size=shard_size,
        train_size=train_size,
        seed=seed,
    )
    if as_json:
        emit_json(doc)
        return
    payload = m = doc
    c = console()
    state = "reused (cached)" if doc["cached"] else f"built in {m['build']['seconds']:.1f} s"
    c.print(
        f"{out}: {payload['n_units']} units from {payload['n_documents']} documents of corpus '{doc['corpus']['name']}', "
        f"{state}; dense {m['dense'].get('factory', m['dense']['kind'])} ({m['dense']['metric']}, "
        f"{m['embedding']['mode']} mode, {m['embedding']['n_texts']} texts embedded) with "
        f"{m['embedder']['model_id']}, BM25, fused by RRF k={m['fusion']['k']}.",
        markup=False,
    )
    if doc.get("concept_store"):
        c.print(f"HPO concept vectors and map for the ontology ranker: {doc['concept_store']}", markup=False)
    sh = m["build"].get("shards")
    if sh and not doc["cached"]:
        d = sh["dense"]
        c.print(
            f"shards: {sh['n_shards']} of {sh['size']} texts ({sh['reused']} reused, {sh['written']} embedded in "
            f"{sh['seconds']:.1f} s) in {sh['folder'] or 'a temporary folder'}; dense trained on {d['train_rows']} "
            f"rows in {d['train_seconds']:.1f} s, filled ({d['fill']}) in {d['fill_seconds']:.1f} s, "
            f"{d['bytes'] / 2**20:.1f} MiB.",
            markup=False,
        )
    if m["embedding"].get("truncated"):
        c.print(
            f"note: {m['embedding']['truncated']} embedded texts exceed {m['embedder']['max_length']} word pieces; "
            "their dense vectors read only the start (use --chunk-size or --dense-mode clauses to embed all).",
            markup=False,
        )


@app.command("search")
def search_cmd(
    index: Path = typer.Option(..., "--index", help="Index folder written by 'medlens rag index'."),
    query: str = typer.Option(..., "--query", help="Text to search for."),
    top_k: int = typer.Option(5, "--top-k", help="Number of hits."),
    retriever: str = typer.Option("auto", "--retriever", help=RETRIEVER_HELP),
    as_json: bool = typer.Option(
        False,
        "--json",
        help='Print {"hits": [{"id", "score", "title", ...}]} as JSON, with "phenotypes" (the HPO mentions read from '
        "the query and their status) when the ontology ranks.",
    ),
) -> None:
    """Search an index and print the best --top-k hits (and, when the ontology ranks, the HPO phenotypes read
    from the query: present, negated, uncertain or a relative's).

    Examples:

      medlens rag search --index runs/hpo-index --query "cerebellar vermis hypoplasia, molar tooth sign" --top-k 5

      medlens rag search --index runs/hpo-index --query "hypotonia and seizures" --retriever bm25 --json
    """
    from medlens.retrieval import run_search

    doc = run_search(index, query, top_k=top_k, retriever=retriever)
    if as_json:
        emit_json(doc)
        return
    from rich.markup import escape
    from rich.table import Table

    t = Table("rank", "id", "score", "title")
    for h in doc["hits"]:
        t.add_row(str(h["rank"]), h["id"], human_float(h["score"]), escape(h["title"]))
    c = console()
    c.print(t)
    if not doc["hits"]:
        present = any(m["status"] == "present" for m in doc.get("phenotypes", ()))
        why = "no phenotype of the query is present" if "phenotypes" in doc and not present else "no shared term"
        c.print(f"no hits ({why})", markup=False)
    if "phenotypes" in doc:
        print_phenotypes(doc["phenotypes"], "the query")


def print_phenotypes(mentions: list[dict[str, Any]], source: str) -> None:
    """The HPO mentions an ontology ranker read from ``source`` (``rag search``, ``rag diagnose``) as a table."""
    from rich.markup import escape
    from rich.table import Table

    c = console()
    if not mentions:
        c.print(f"no HPO phenotype recognised in {source}", markup=False)
        return
    p = Table("HPO term", "name", "status", "text", "by", title=f"phenotypes read from {source}")
    for m in mentions:
        p.add_row(m["term"], escape(m["name"]), m["status"], escape(m["text"]), m["by"])
    c.print(p)


@bench.command("rare-hpo")
def rare_hpo_cmd(
    index: Path = typer.Option(..., "--index", help="Index folder (built with --corpus hpo)."),
    n: int = typer.Option(200, "--n", help="Number of simulated patients."),
    seed: int = typer.Option(
        0, "--seed", min=0, max=2**32 - 1, help="Generator seed (the same seed gives the same cases)."
    ),
    retriever: str = typer.Option("auto", "--retriever", help=RETRIEVER_HELP),
    generator: str = typer.Option(
        "rare-hpo-v1",
        "--generator",
        help="rare-hpo-v1 (findings written as HPO names) or rare-hpo-v2 (the same patients in paraphrase).",
    ),
    split: str = typer.Option(
        "test", "--split", help="rare-hpo-v2 only: dev (choose thresholds here) or test (report), disjoint diseases."
    ),
    cases_out: Path = typer.Option(None, "--cases-out", help="Also write each case and its top-5 to this JSONL."),
    llm_url: str = typer.Option(None, "--llm-url", help="Also run the RADAR agent (and no-retrieval baseline) here."),
    model: str = typer.Option(None, "--model", help="Model name the --llm-url server expects."),
    model_path: Path = typer.Option(
        None,
        "--model-path",
        help="Also run the agent with this local model: a transformers folder, a GGUF file or a registered name.",
    ),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow an --llm-url that is not this machine."),
    as_json: bool = typer.Option(False, "--json", help="Print top1, top5, mrr, n, generator (+ CIs) as JSON."),
) -> None:
    """Score the retrieval-only diagnosis ranker on simulated rare-disease patients (rare-hpo-v1 or -v2).

    Cases are generated from HPO annotations (phenotypes sampled by frequency, omissions, imprecision through ancestors, noise terms) for diseases with brain-morphology phenotypes, written as clinical history + MRI caption. A candidate is correct when one of its documents is the case's disease or its name equals the disease name.

    Examples:

      medlens rag benchmark rare-hpo --index runs/hpo-index --json

      medlens rag benchmark rare-hpo --index runs/hpo-index --retriever bm25 --n 500 --seed 1

      medlens rag benchmark rare-hpo --index runs/hpo-index --generator rare-hpo-v2 --split dev
    """
    from medlens.benchmarks.rare_hpo import run_rare_hpo_benchmark

    res = run_rare_hpo_benchmark(
        index,
        n=n,
        seed=seed,
        retriever=retriever,
        generator=generator,
        split=split,
        cases_out=cases_out,
        llm_url=llm_url,
        model=model,
        model_path=model_path,
        allow_remote=allow_remote,
    )
    if as_json:
        emit_json(res)
        return
    ci = res.get("ci95", {})

    def fmt(name: str) -> str:
        lo_hi = ci.get(name)
        return human_float(res[name], 3) + (f" [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" if lo_hi else "")

    gen = res["generator"]
    console().print(
        f"rare-hpo ({gen['version']}{', ' + gen['split'] + ' split' if 'split' in gen else ''}, n={res['n']}, "
        f"seed={seed}, retriever={retriever}): top-1 {fmt('top1')}, top-5 {fmt('top5')}, MRR {fmt('mrr')}",
        markup=False,
    )
    if "recognition" in res:
        rec = res["recognition"]
        console().print(
            f"  HPO recognition against the terms the generator wrote: precision {rec['precision']:.3f}, "
            f"recall {rec['recall']:.3f}",
            markup=False,
        )
    for mode, row in res.get("llm", {}).get("rows", {}).items():
        console().print(
            f"  {mode} ({res['provenance']['model_ids']['llm']}): top-1 {human_float(row['top1'], 3)}, top-5 {human_float(row['top5'], 3)}, "
            f"MRR {human_float(row['mrr'], 3)}; {row['n_fallback']} fallback(s)",
            markup=False,
        )
