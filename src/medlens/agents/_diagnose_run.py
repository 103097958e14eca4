"""The pipeline behind ``rag diagnose``: build the LLM client, the leakage guard and the agent configuration
from the command's options, diagnose one case or a cases file into a run folder, and return the stamped
document (the result, or the run summary)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from medlens._progress import progress_bar
from medlens._provenance import provenance, stamp
from medlens._validation import InputError
from medlens.agents._agent import AgentConfig, RadarAgent
from medlens.agents._runs import diagnose_cases, read_case, read_cases
from medlens.agents._task import AgentFactory
from medlens.io import atomic_write_json

__all__ = ["run_diagnose"]


def run_diagnose(
    *,
    index: str | os.PathLike | None = None,
    case: str | os.PathLike | None = None,
    cases: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    llm_url: str | None = None,
    model: str | None = None,
    model_path: str | os.PathLike | None = None,
    device: str = "cpu",
    allow_remote: bool = False,
    no_retrieval: bool = False,
    rounds: int = 1,
    top_k: int = 5,
    max_passages: int = 20,
    retriever: str = "auto",
    leakage: str = "auto",
    leakage_cosine: float | None = 0.95,
    block_urls: Sequence[str] | None = None,
    block_case_ids: Sequence[str] | None = None,
    seed: int = 0,
    max_tokens: int = 1024,
    constrained: bool = False,
    workers: int = 1,
    rate_limit: float | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Diagnose ``case`` (a JSON file) or ``cases`` (JSONL) with the RADAR agent, or the retrieval-only ranker
    when no LLM option is given (``llm_url`` + ``model``, or ``model_path``).

    ``case``: returns the result stamped with provenance, also written to ``out`` when given. ``cases``: ``out``
    is the run folder (results.jsonl appended and resumed, manifest.json; :func:`diagnose_cases`); returns the
    run summary with the agent's ``mode``, stamped. ``no_retrieval`` is the LLM baseline (no index needed).
    ``workers`` cases at once and ``rate_limit`` requests per second apply to ``llm_url`` runs of ``cases``.

    ``executor="ray"`` (``cases`` with a ``model_path`` model, or the retrieval-only ranker; ``ray_address`` the
    cluster) diagnoses the cases still to do in fixed blocks on ``workers`` Ray actors, each opening the index
    itself and loading its own copy of the model (:class:`~medlens.agents.AgentFactory`): the results equal an
    in-process run's and the same run folder resumes either way. Every option is checked, and a missing Ray
    reported, before the index or any model loads.
    """
    from medlens.executors import check_item_options, make_executor
    from medlens.llm import ClientFactory, client_from_options, closing_client
    from medlens.retrieval import index_provenance, leakage_guard, load_index

    if (case is None) == (cases is None):
        raise InputError("give exactly one of --case CASE.json or --cases CASES.jsonl.")
    if cases is not None and out is None:
        raise InputError("--cases needs --out DIR (a run folder: results.jsonl, one line per case, and manifest.json).")
    if no_retrieval and llm_url is None and model_path is None:
        raise InputError("--no-retrieval is the LLM baseline; give --llm-url URL --model NAME or --model-path DIR.")
    check_item_options(executor, ray_address, workers, rate_limit, endpoint=llm_url is not None)
    if executor == "ray" and case is not None:
        raise InputError("--executor ray diagnoses the cases of --cases on Ray actors; one --case runs here.")
    if workers > 1 and case is not None:
        raise InputError("--workers overlaps the requests of several --cases; one --case is one request at a time.")
    if constrained and llm_url is None and model_path is None:
        raise InputError(
            "--constrained shapes an LLM's replies; give --llm-url URL --model NAME or --model-path DIR (without an "
            "LLM the retrieval-only ranker runs, which decodes nothing)."
        )
    if index is None and not no_retrieval:
        raise InputError("--index IDX is required (only the --no-retrieval baseline runs without an index).")
    runner = (
        make_executor(executor, ray_address=ray_address, workers=workers, device=device) if executor == "ray" else None
    )
    items = [read_case(case)] if case is not None else read_cases(cases)  # type: ignore[arg-type]
    idx = load_index(index) if index is not None else None
    # the model last: a local one takes seconds to load, and every cheap check has passed by now (with Ray it loads
    # here too: the run's configuration names the model it describes)
    options = {
        "llm_url": llm_url,
        "model": model,
        "model_path": model_path,
        "allow_remote": allow_remote,
        "device": device,
        "rate_limit": rate_limit,
    }
    client = client_from_options(**options)
    with closing_client(client):
        guard = (
            leakage_guard(
                leakage,
                idx.manifest["corpus"]["name"],
                cosine=leakage_cosine,
                block_urls=block_urls,
                block_case_ids=block_case_ids,
            )
            if idx is not None
            else None
        )
        cfg = AgentConfig(
            rounds=rounds,
            top_k=top_k,
            max_passages=max_passages,
            retriever=retriever,
            seed=seed,
            max_tokens=max_tokens,
            constrained=constrained,
            retrieval=not no_retrieval,
            leakage=guard,
        ).check()
        agent = RadarAgent(idx, client, cfg)
        inputs = {"case": case} if case is not None else {"cases": cases}
        prov = provenance(
            command="rag diagnose",
            config=agent.describe(),
            seed=seed,
            inputs=inputs,  # type: ignore[arg-type]
            models={
                **({"embedder": idx.manifest["embedder"]["model_id"]} if idx is not None else {}),
                **({"llm": client.model} if client is not None else {}),
            },
            extra={"index": index_provenance(idx) if idx is not None else None},
        )
        if case is not None:
            doc = stamp(agent.diagnose(items[0]), prov)
            if out is not None:
                atomic_write_json(out, doc)
            return doc
        with progress_bar(len(items), progress, "diagnosing", transient=True) as advance:
            summary = diagnose_cases(
                agent,
                items,
                out,
                overwrite=overwrite,
                provenance=prov,
                on_result=lambda _res: advance(1),
                workers=1 if runner is not None else workers,
                executor=runner,
                agent_factory=AgentFactory(index, ClientFactory(**options) if client is not None else None, cfg)
                if runner is not None
                else None,
            )
        return stamp({**summary, "mode": agent.mode}, prov)
