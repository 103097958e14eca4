"""The pipeline behind ``rag benchmark rare-hpo``: the retrieval-only ranker of a user's hpo index on simulated
patients, with an LLM also the RADAR agent and its no-retrieval baseline on the same cases, stamped."""

from __future__ import annotations

import os
from typing import Any

from medlens._provenance import provenance, stamp
from medlens._validation import InputError, check_option
from medlens.benchmarks.rare_hpo._cases import run_rare_hpo
from medlens.io import atomic_write, to_json

__all__ = ["run_rare_hpo_benchmark"]


def run_rare_hpo_benchmark(
    index: str | os.PathLike,
    *,
    n: int = 200,
    seed: int = 0,
    retriever: str = "auto",
    cases_out: str | os.PathLike | None = None,
    llm_url: str | None = None,
    model: str | None = None,
    model_path: str | os.PathLike | None = None,
    allow_remote: bool = False,
    generator: str = "rare-hpo-v1",
    split: str = "test",
) -> dict[str, Any]:
    """Score the retrieval-only ranker of the index folder ``index`` (built over the ``hpo`` corpus) on ``n``
    rare-hpo cases (``generator`` ``rare-hpo-v1``, or ``rare-hpo-v2`` on its ``split``); with an LLM (``llm_url`` + ``model``, or ``model_path``) add ``llm``: the agent and
    no-retrieval rows (:func:`medlens.benchmarks.radar.rare_hpo_agent_rows`). ``cases_out`` receives each case
    and its top-5 as JSONL. Returns the result stamped with provenance (what ``--json`` prints)."""
    from medlens.benchmarks.rare_hpo._cases import GENERATOR_VERSION
    from medlens.benchmarks.rare_hpo._cases_v2 import GENERATOR_V2, SPLITS
    from medlens.llm import client_from_options
    from medlens.retrieval import RETRIEVERS, index_provenance, load_index

    check_option(retriever, RETRIEVERS, name="retriever")
    check_option(generator, (GENERATOR_VERSION, GENERATOR_V2), name="generator")
    check_option(split, SPLITS, name="split")
    if n < 1:
        raise InputError(f"--n must be >= 1; got {n}.")
    client = client_from_options(llm_url=llm_url, model=model, model_path=model_path, allow_remote=allow_remote)
    idx = load_index(index)
    if idx.manifest["corpus"]["name"] != "hpo":
        raise InputError(
            f"{index} indexes corpus {idx.manifest['corpus']['name']!r}; rare-hpo cases are HPO diseases, build the "
            "index with --corpus hpo."
        )
    retriever = idx.resolve_retriever(retriever)
    res = run_rare_hpo(
        idx,
        n=n,
        seed=seed,
        retriever=retriever,
        return_cases=cases_out is not None or client is not None,
        generator=generator,
        split=split,
    )
    if client is not None:  # the agent and its no-retrieval baseline on the same cases
        from medlens.agents import AgentConfig
        from medlens.benchmarks.radar import rare_hpo_agent_rows

        res["llm"] = rare_hpo_agent_rows(idx, res["cases"], client, config=AgentConfig(retriever=retriever), seed=seed)
    if cases_out is None:
        res.pop("cases", None)
    else:
        with atomic_write(cases_out, "w") as fh:
            for c in res.pop("cases"):
                fh.write(to_json(c, indent=None) + "\n")
    prov = provenance(
        command="rag benchmark rare-hpo",
        config={"n": n, "seed": seed, "retriever": retriever, "generator": res["generator"], "ranker": res["ranker"]},
        seed=seed,
        models={
            **({"embedder": idx.manifest["embedder"]["model_id"]} if retriever not in ("bm25", "ontology") else {}),
            **({"llm": client.model} if client is not None else {}),
        },
        extra={"index": index_provenance(idx)},
    )
    return stamp(res, prov)
