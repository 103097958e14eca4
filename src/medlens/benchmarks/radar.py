"""Benchmarks of the RADAR agent: rows next to the retrieval-only ranker on rare-hpo, and RADAR on NOVA.

- :func:`agent_rows` runs the agent and the no-retrieval baseline (the same prompts with retrieval off) on
  the same cases and scores each with a caller's scoring function; Δ = agent − baseline.
- :func:`run_radar_nova` is RADAR's own evaluation on NOVA's text setting: one case per NOVA case (its
  clinical history and the captions of its images, in data order), ranked names (primary + differentials)
  scored with a NOVA diagnosis judge by :func:`medlens.metrics.diagnosis_report` (the scorer of
  ``medlens nova evaluate``'s diagnosis task) as top-1/top-5. The leakage guard is on by default.
- :func:`run_radar_nova_benchmark` is ``rag benchmark nova``: the same from the command's options, stamped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from medlens._validation import InputError
from medlens.agents import AgentConfig, RadarAgent, summarize_results
from medlens.io import atomic_write, atomic_write_json, to_json
from medlens.retrieval import LeakageGuard

__all__ = [
    "agent_rows",
    "nova_text_cases",
    "rare_hpo_agent_rows",
    "run_radar_nova",
    "run_radar_nova_benchmark",
]

log = logging.getLogger(__name__)

LLM_MODES = ("agent", "no-retrieval")
SCORES = ("top1", "top5", "mrr")


def _names(result: Mapping[str, Any]) -> list[str]:
    return [n for n in [result.get("primary"), *result.get("differentials", [])] if n]


def agent_rows(
    index: Any,
    cases: Sequence[Mapping[str, Any]],
    client: Any,
    score: Callable[[list[dict[str, Any]]], dict[str, Any]],
    *,
    config: AgentConfig | None = None,
    modes: Sequence[str] = LLM_MODES,
    on_result: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run each LLM mode on ``cases`` and score it: ``{"rows": {mode: {**score(results), **counts}}, "delta"}``.

    ``delta`` (agent − no-retrieval) holds each score both rows have as a number.
    """
    cfg = config or AgentConfig()
    rows: dict[str, dict[str, Any]] = {}
    for mode in modes:
        if mode not in LLM_MODES:
            raise InputError(f"agent_rows runs the LLM modes {LLM_MODES}; got {mode!r}.")
        agent = RadarAgent(index, client, replace(cfg, retrieval=mode == "agent"))
        results = []
        for c in cases:
            res = agent.diagnose({k: c[k] for k in ("id", "clinical_history", "caption", "url") if k in c})
            results.append(res)
            if on_result is not None:
                on_result(mode, res)
        rows[mode] = {**score(results), **summarize_results(results), "config_hash": agent.config_hash()}
    out: dict[str, Any] = {"rows": rows}
    if "agent" in rows and "no-retrieval" in rows:
        a, b = rows["agent"], rows["no-retrieval"]
        out["delta"] = {
            k: a[k] - b[k]
            for k in a
            if isinstance(a.get(k), float)
            and isinstance(b.get(k), float)
            and k in (*SCORES, "top1_macro", "top5_macro")
        }
        out["delta"]["definition"] = "agent minus no-retrieval baseline (same prompts, retrieval off), same cases"
    return out


def rare_hpo_agent_rows(
    index: Any,
    cases: Sequence[Mapping[str, Any]],
    client: Any,
    *,
    config: AgentConfig | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    on_result: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The agent and the no-retrieval baseline on rare-hpo cases, scored like the retrieval-only row.

    ``on_result(mode, result)`` sees every result record as it is made (traces included).

    A name is correct when it equals the disease name (normalised); an answer that fell back to the
    retrieval-only ranking is scored as the ranker is (its cited documents may be the disease). The leakage
    guard is off (rare-hpo documents describe diseases, not cases).
    """
    from medlens.benchmarks.rare_hpo import evaluate_rankings
    from medlens.retrieval import Candidate

    cfg = replace(config or AgentConfig(), leakage=None)

    def candidates(res: Mapping[str, Any]) -> list[Candidate]:
        out = []
        for rank, name in enumerate(_names(res), 1):
            ids = tuple(res["citations"].get(name, ()))
            parents = ()
            if res["mode"] == "retrieval-only":
                parents = tuple(dict.fromkeys(index.units[i].parent_id for i in ids))
            out.append(Candidate(name, 0.0, rank, ids, parents))
        return out

    def score(results: list[dict[str, Any]]) -> dict[str, Any]:
        rankings = [candidates(r) for r in results]
        return evaluate_rankings(cases, rankings, n_bootstrap=n_bootstrap, seed=seed)

    return agent_rows(index, cases, client, score, config=cfg, on_result=on_result)


def nova_text_cases(dataset: Any) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """NOVA's text setting, one case per NOVA case: ``{id, clinical_history, caption, final_diagnosis, filenames}``.

    ``caption`` joins the captions of the case's images in data order. Cases without any text or without a
    final diagnosis are left out and counted (``n_no_text``, ``n_no_reference``).
    """
    cases, counts = [], {"n_no_text": 0, "n_no_reference": 0}
    for cid, c in dataset.cases.items():
        caps = [dataset.image(f).caption.strip() for f in c.filenames]
        caption = " ".join(x for x in caps if x)
        history = (c.clinical_history or "").strip()
        if not c.final_diagnosis.strip():
            counts["n_no_reference"] += 1
            continue
        if not (history or caption):
            counts["n_no_text"] += 1
            continue
        cases.append(
            {
                "id": cid,
                "clinical_history": history,
                "caption": caption,
                "final_diagnosis": c.final_diagnosis,
                "filenames": list(c.filenames),
            }
        )
    return cases, counts


def run_radar_nova(
    dataset: Any,
    index: Any,
    *,
    client: Any = None,
    config: AgentConfig | None = None,
    judge: Any = "exact_synonym",
    judge_options: Mapping[str, Any] | None = None,
    judge_cache: Any = None,
    details: bool = False,
    on_result: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """RADAR on NOVA's text setting: the retrieval-only row, and with ``client`` the agent and baseline rows.

    Parameters
    ----------
    dataset : NovaDataset
        From :func:`medlens.benchmarks.nova.load_nova` (images are not needed).
    index : RetrievalIndex
        Over the user's corpus (e.g. case reports and articles).
    client : ChatClient, optional
        Without one only the retrieval-only ranker is scored.
    config : AgentConfig, optional
        Default: :class:`AgentConfig` with the leakage guard on (``leakage=LeakageGuard()``).
    judge, judge_options, judge_cache
        As for :func:`medlens.metrics.diagnosis_report` (``"exact_synonym"`` by default).
    details : bool
        Add per-case rows (predictions, judgements) to each mode.

    Returns
    -------
    dict
        ``{"setting", "unit", "n_cases", "counts", "rows": {mode: {top1, top5, ..., judge, n_fallback, ...}},
        "delta"}`` (``delta`` only with a client).
    """
    from medlens.metrics import diagnosis_report

    cfg = config or AgentConfig(leakage=LeakageGuard())
    cases, counts = nova_text_cases(dataset)
    if not cases:
        raise InputError(f"NOVA data at {dataset.source} has no case with text and a final diagnosis to score.")
    golds = [c["final_diagnosis"] for c in cases]
    ids = [c["id"] for c in cases]

    def score(results: list[dict[str, Any]]) -> dict[str, Any]:
        rep = diagnosis_report(
            golds, [_names(r) for r in results], judge=judge, judge_options=judge_options, ids=ids, cache=judge_cache
        )
        return rep.to_dict(per_sample=details)

    ranker = RadarAgent(index, None, cfg)
    ro = []
    for c in cases:
        res = ranker.diagnose({k: c[k] for k in ("id", "clinical_history", "caption")})
        ro.append(res)
        if on_result is not None:
            on_result("retrieval-only", res)
    rows = {"retrieval-only": {**score(ro), **summarize_results(ro), "config_hash": ranker.config_hash()}}
    out: dict[str, Any] = {
        "setting": "text (clinical history + captions of the case's images)",
        "unit": "case",
        "n_cases": len(cases),
        "counts": {**counts, "n_images": len(dataset), "n_dataset_cases": len(dataset.cases)},
        "leakage_guard": ranker.guard.to_dict() if ranker.guard is not None else None,
    }
    if client is not None:
        llm = agent_rows(index, cases, client, score, config=cfg, on_result=on_result)
        rows.update(llm["rows"])
        out["delta"] = llm["delta"]
    out["rows"] = rows
    return out


def run_radar_nova_benchmark(
    index: str | os.PathLike,
    data: str,
    *,
    llm_url: str | None = None,
    model: str | None = None,
    model_path: str | os.PathLike | None = None,
    device: str = "cpu",
    allow_remote: bool = False,
    judge: str = "exact_synonym",
    synonyms: str | os.PathLike | None = None,
    embedding_threshold: float | None = None,
    rounds: int = 1,
    top_k: int = 5,
    max_passages: int = 20,
    retriever: str = "auto",
    leakage: str = "on",
    leakage_cosine: float | None = 0.95,
    block_urls: Sequence[str] | None = None,
    block_case_ids: Sequence[str] | None = None,
    seed: int = 0,
    allow_problems: bool = False,
    no_cache: bool = False,
    details: bool = False,
    cases_out: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """The pipeline behind ``rag benchmark nova``: load the index and the NOVA copy, build the LLM client (none:
    retrieval-only), the judge and the leakage guard from the command's options, run :func:`run_radar_nova`,
    and return its result stamped with provenance, also written to ``out``; ``cases_out`` receives every
    case's result (each mode) as JSONL."""
    from medlens._progress import progress_bar
    from medlens._provenance import provenance, stamp
    from medlens._validation import check_option
    from medlens.benchmarks.nova import load_nova, nova_data_inputs, nova_judge
    from medlens.llm import client_from_options
    from medlens.retrieval import index_provenance, leakage_guard, load_index

    check_option(leakage, ("on", "off"), name="leakage")
    client = client_from_options(
        llm_url=llm_url, model=model, model_path=model_path, allow_remote=allow_remote, device=device
    )
    j = nova_judge(judge, synonyms, embedding_threshold)
    ds = load_nova(data, layout="auto", image_root=None, require_images=False, strict=not allow_problems)
    idx = load_index(index)
    guard = leakage_guard(
        leakage,
        idx.manifest["corpus"]["name"],
        cosine=leakage_cosine,
        block_urls=block_urls,
        block_case_ids=block_case_ids,
    )
    cfg = AgentConfig(
        rounds=rounds, top_k=top_k, max_passages=max_passages, retriever=retriever, seed=seed, leakage=guard
    ).check()
    cache = None
    if not no_cache:
        from medlens.metrics import JudgeCache

        cache = JudgeCache()
    n_modes = 3 if client is not None else 1
    per_case: list[dict[str, Any]] = []
    with progress_bar(n_modes * len(ds.cases), progress, "diagnosing NOVA cases", transient=True) as advance:

        def on_result(mode: str, result: dict[str, Any]) -> None:
            advance(1)
            if cases_out is not None:
                per_case.append(result)

        res = run_radar_nova(
            ds, idx, client=client, config=cfg, judge=j, judge_cache=cache, details=details, on_result=on_result
        )
    if cases_out is not None:
        with atomic_write(cases_out, "w") as fh:
            for r in per_case:
                fh.write(to_json(r, indent=None) + "\n")
    llm_models = {"llm": client.model} if client is not None else {}
    prov = provenance(
        command="rag benchmark nova",
        config={"agent": cfg.to_dict(), "judge": j.judge_id, "client": (client.kind, client.model) if client else None},
        seed=seed,
        inputs=nova_data_inputs(ds),
        models={"embedder": idx.manifest["embedder"]["model_id"], "diagnosis_judge": j.judge_id, **llm_models},
        extra={"index": index_provenance(idx)},
    )
    doc = stamp(res, prov)
    if out is not None:
        atomic_write_json(out, doc)
    return doc
