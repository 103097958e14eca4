"""``medlens rag diagnose`` and ``medlens rag benchmark nova``: the RADAR agent on cases and on NOVA.

Registered on the ``rag`` group by :mod:`medlens.cli`. Without an LLM option both run the retrieval-only
ranker (offline); ``--llm-url URL --model NAME`` (an OpenAI-compatible server, loopback unless
``--allow-remote``) or ``--model-path DIR`` (a local transformers model) run the agent. The commands call
:func:`medlens.agents.run_diagnose` and :func:`medlens.benchmarks.radar.run_radar_nova_benchmark`, which build
the client (:func:`medlens.llm.client_from_options`), the leakage guard and the agent configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from medlens.cli._common import (
    console,
    emit_json,
    executor_option,
    fan_out_workers_option,
    human_float,
    progress_enabled,
    rate_limit_option,
    ray_address_option,
)
from medlens.cli._rag import RETRIEVER_HELP, print_phenotypes

LLM_URL_HELP = "OpenAI-compatible server (llama.cpp, Ollama, vLLM), e.g. http://127.0.0.1:8080/v1; needs --model."
MODEL_HELP = "Model name the --llm-url server expects."
MODEL_PATH_HELP = (
    "Local causal LM: a transformers folder, a GGUF file or a registered name (smollm2-135m; medlens llm list); "
    "nothing is downloaded."
)
DEVICE_HELP = "Device of the --model-path model: cpu (default), cuda, cuda:N, mps or auto."
REMOTE_HELP = "Allow an --llm-url that is not this machine (case text is sent there)."
LEAKAGE_HELP = "Leakage guard: auto (on unless the corpus is hpo), on or off."


def _print_result(res: dict[str, Any]) -> None:
    c = console()
    conf = res.get("confidence")
    c.print(
        f"{res['id']}: {res['mode']}; primary {res['primary']!r}"
        + (f" (confidence {human_float(conf, 2)})" if conf is not None else ""),
        markup=False,
    )
    for i, name in enumerate([res["primary"], *res["differentials"]], 1):
        if name:
            cites = ", ".join(res["citations"].get(name, [])) or "-"
            c.print(f"  {i}. {name}  [{cites}]", markup=False)
    if res.get("fallback"):
        c.print(f"  fallback: {res['fallback']}", markup=False)
    t = res.get("trace", {})
    notes = []
    if t.get("n_invalid_citations"):
        notes.append(f"{t['n_invalid_citations']} invalid citation(s) removed")
    if t.get("n_parse_failures"):
        notes.append(f"{t['n_parse_failures']} unusable LLM answer(s)")
    if res.get("leakage"):
        notes.append(f"{len(res['leakage'])} retrieved document(s) dropped by the leakage guard")
    if notes:
        c.print("  note: " + "; ".join(notes), markup=False)
    if "phenotypes" in res:
        print_phenotypes(res["phenotypes"], "the case")


def diagnose(
    index: Path = typer.Option(
        None, "--index", help="Index folder written by 'medlens rag index' (not needed with --no-retrieval)."
    ),
    case: Path = typer.Option(None, "--case", help="One case: a JSON object {id?, clinical_history, caption}."),
    cases: Path = typer.Option(None, "--cases", help="Many cases: JSONL, one {id, clinical_history, caption} a line."),
    out: Path = typer.Option(
        None,
        "--out",
        help="--cases: run folder (results.jsonl appended and resumed, manifest.json); --case: also write the JSON "
        "to this file.",
    ),
    llm_url: str = typer.Option(None, "--llm-url", help=LLM_URL_HELP),
    model: str = typer.Option(None, "--model", help=MODEL_HELP),
    model_path: Path = typer.Option(None, "--model-path", help=MODEL_PATH_HELP),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    allow_remote: bool = typer.Option(False, "--allow-remote", help=REMOTE_HELP),
    no_retrieval: bool = typer.Option(
        False, "--no-retrieval", help="The no-retrieval baseline: the agent's prompts with retrieval off."
    ),
    rounds: int = typer.Option(1, "--rounds", help="Retrieval + evidence rounds (1 to 3)."),
    top_k: int = typer.Option(5, "--top-k", help="Passages retrieved per query."),
    max_passages: int = typer.Option(20, "--max-passages", help="Passages kept after fusing all queries."),
    retriever: str = typer.Option("auto", "--retriever", help=RETRIEVER_HELP),
    leakage: str = typer.Option("auto", "--leakage", help=LEAKAGE_HELP),
    leakage_cosine: float = typer.Option(
        0.95, "--leakage-cosine", help="Embedding cosine above which a hit is a copy."
    ),
    block_url: list[str] = typer.Option(None, "--block-url", help="A URL never to retrieve (repeatable)."),
    block_case_id: list[str] = typer.Option(None, "--block-case-id", help="A case id never to retrieve (repeatable)."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Seed passed to the LLM (temperature is 0)."),
    max_tokens: int = typer.Option(1024, "--max-tokens", help="Reply length limit of each LLM step."),
    constrained: bool = typer.Option(
        False,
        "--constrained",
        help="Constrained decoding: send each step's JSON Schema as response_format (a --model-path model decodes "
        "under its grammar; needs xgrammar from medlens\\[llm]; servers apply it if they support it).",
    ),
    workers: int = fan_out_workers_option(ray=True),
    rate_limit: float = rate_limit_option(),
    executor: str = executor_option(),
    ray_address: str = ray_address_option(),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="--cases: discard the run in --out and start again (needed for another configuration).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document (the result, or the run summary)."),
) -> None:
    """Diagnose a case (clinical history + caption) with the RADAR agent, or the retrieval-only ranker without an LLM.

    Output per case: primary, differentials (4), citations {name: \\[doc ids]}, retrieved [{id, title, score}], confidence, mode (agent | no-retrieval | retrieval-only), fallback, leakage, trace; on an hpo index (or --retriever ontology/hybrid) also phenotypes: the HPO terms read from the case, each present, negated, uncertain or a relative's. --cases writes the run folder --out: one line per case appended to OUT/results.jsonl (ids already there are skipped) and OUT/manifest.json; a folder made with another configuration is refused unless --overwrite.

    Examples:

      medlens rag diagnose --index runs/notes-index --case case.json --json

      medlens rag diagnose --index runs/notes-index --cases cases.jsonl --out runs/dx --llm-url http://127.0.0.1:8080/v1 --model qwen2.5-7b-instruct

      medlens rag diagnose --cases cases.jsonl --out runs/dx-base --model-path ~/models/llm --no-retrieval

      medlens rag diagnose --index runs/notes-index --cases cases.jsonl --out runs/dx --model-path smollm2-135m --executor ray --workers 4

    With --executor ray the cases run on --workers Ray actors, each opening the index and loading the --model-path model itself: the same results, appended to the same run folder (a run started here resumes on Ray and back).
    """
    from medlens.agents import run_diagnose

    doc = run_diagnose(
        index=index,
        case=case,
        cases=cases,
        out=out,
        llm_url=llm_url,
        model=model,
        model_path=model_path,
        device=device,
        allow_remote=allow_remote,
        no_retrieval=no_retrieval,
        rounds=rounds,
        top_k=top_k,
        max_passages=max_passages,
        retriever=retriever,
        leakage=leakage,
        leakage_cosine=leakage_cosine,
        block_urls=block_url,
        block_case_ids=block_case_id,
        seed=seed,
        max_tokens=max_tokens,
        constrained=constrained,
        workers=workers,
        rate_limit=rate_limit,
        executor=executor,
        ray_address=ray_address,
        overwrite=overwrite,
        progress=progress_enabled(as_json),
    )
    if as_json:
        emit_json(doc)
    elif case is not None:
        _print_result(doc)
    else:
        console().print(
            f"{doc['results']}: {doc['n_done']} case(s) diagnosed ({doc['mode']}), {doc['n_skipped']} already "
            f"there; {doc['n_fallback']} fallback(s), {doc['n_parse_failures']} unusable LLM answer(s), "
            f"{doc['n_invalid_citations']} invalid citation(s) removed, {doc['leakage_dropped']} document(s) "
            "dropped by the leakage guard.",
            markup=False,
        )


def nova_bench(
    index: Path = typer.Option(..., "--index", help="Index folder over your corpus (e.g. case reports, articles)."),
    data: str = typer.Option(..., "--data", help="Your NOVA copy (a folder, a .parquet file or a cached HF id)."),
    llm_url: str = typer.Option(None, "--llm-url", help=LLM_URL_HELP),
    model: str = typer.Option(None, "--model", help=MODEL_HELP),
    model_path: Path = typer.Option(None, "--model-path", help=MODEL_PATH_HELP),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    allow_remote: bool = typer.Option(False, "--allow-remote", help=REMOTE_HELP),
    judge: str = typer.Option("exact_synonym", "--judge", help="Diagnosis judge: exact_synonym (default) | embedding."),
    synonyms: Path = typer.Option(None, "--synonyms", help="exact_synonym: a synonym table (JSON)."),
    embedding_threshold: float = typer.Option(None, "--embedding-threshold", help="embedding: threshold (0.8)."),
    rounds: int = typer.Option(1, "--rounds", help="Retrieval + evidence rounds (1 to 3)."),
    top_k: int = typer.Option(5, "--top-k", help="Passages retrieved per query."),
    max_passages: int = typer.Option(20, "--max-passages", help="Passages kept after fusing all queries."),
    retriever: str = typer.Option("auto", "--retriever", help=RETRIEVER_HELP),
    leakage: str = typer.Option("on", "--leakage", help="Leakage guard: on (default) or off."),
    leakage_cosine: float = typer.Option(
        0.95, "--leakage-cosine", help="Embedding cosine above which a hit is a copy."
    ),
    block_url: list[str] = typer.Option(None, "--block-url", help="A URL never to retrieve (repeatable)."),
    block_case_id: list[str] = typer.Option(None, "--block-case-id", help="A case id never to retrieve (repeatable)."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Seed passed to the LLM (temperature is 0)."),
    allow_problems: bool = typer.Option(
        False, "--allow-problems", help="Run even when `nova validate` finds problems."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write $MEDLENS_CACHE/judgements."),
    details: bool = typer.Option(False, "--details", help="Add per-case rows (predictions, judgements)."),
    cases_out: Path = typer.Option(
        None, "--cases-out", help="Also write every case's result (each mode; citations, leakage, trace) to this JSONL."
    ),
    out: Path = typer.Option(None, "--out", help="Also write the JSON result to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """RADAR on NOVA's text setting: one case per NOVA case (clinical history + its images' captions), top-1/top-5 under a NOVA diagnosis judge.

    Rows: retrieval-only (always), and with an LLM the agent and the no-retrieval baseline (same prompts, retrieval off) with Δ = agent − baseline. The leakage guard is on by default.

    Examples:

      medlens rag benchmark nova --index runs/notes-index --data ~/data/Nova --json

      medlens rag benchmark nova --index runs/notes-index --data ~/data/Nova --llm-url http://127.0.0.1:8080/v1 --model qwen2.5-7b-instruct
    """
    from medlens.benchmarks.radar import run_radar_nova_benchmark

    res = run_radar_nova_benchmark(
        index,
        data,
        llm_url=llm_url,
        model=model,
        model_path=model_path,
        device=device,
        allow_remote=allow_remote,
        judge=judge,
        synonyms=synonyms,
        embedding_threshold=embedding_threshold,
        rounds=rounds,
        top_k=top_k,
        max_passages=max_passages,
        retriever=retriever,
        leakage=leakage,
        leakage_cosine=leakage_cosine,
        block_urls=block_url,
        block_case_ids=block_case_id,
        seed=seed,
        allow_problems=allow_problems,
        no_cache=no_cache,
        details=details,
        cases_out=cases_out,
        out=out,
        progress=progress_enabled(as_json),
    )
    if as_json:
        emit_json(res)
        return
    c = console()
    judge_id = res["provenance"]["model_ids"]["diagnosis_judge"]
    c.print(f"NOVA text setting: {res['n_cases']} cases, judge {judge_id}", markup=False)
    for mode, row in res["rows"].items():
        extra = f", {row['n_fallback']} fallback(s)" if mode != "retrieval-only" else ""
        c.print(
            f"  {mode:<15} top-1 {human_float(row['top1'], 3)}  top-5 {human_float(row['top5'], 3)}"
            f"  (leakage dropped {row['leakage_dropped']}{extra})",
            markup=False,
        )
    if "delta" in res:
        d = res["delta"]
        c.print(f"  Δ agent − no-retrieval: top-1 {d['top1']:+.3f}, top-5 {d['top5']:+.3f}", markup=False)
