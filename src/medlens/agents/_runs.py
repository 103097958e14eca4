"""Reading case files and diagnosing many cases into a resumable run folder.

A cases file is JSONL, one case per line: ``{"id", "clinical_history", "caption", ...}`` (ids unique). The
output is a :class:`~medlens.io.RunFolder`: ``results.jsonl`` gets one line per case as soon as it is diagnosed
(flushed and synced; each line also carries the run's ``config_hash``) and ``manifest.json`` holds the agent's
configuration and its hash. Re-running into the same folder skips the ids already there; a folder written by
another configuration (mode, model, agent settings, index) is refused unless ``overwrite`` is set (which starts
it again), a second run into a folder that a running one holds is refused, and a partial last line left by a
killed run is dropped before appending.

The cases still to do run in this process (``workers`` at a time, for an endpoint) or, with an executor
(``--executor ray``), as fixed blocks on workers that each build their own agent (:mod:`medlens.agents._task`);
either way this thread alone appends the results, so resume, locking and the results are the same.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from medlens._validation import InputError, read_text_file
from medlens.agents._agent import RadarAgent, check_case
from medlens.agents._task import DiagnoseTask
from medlens.executors import fan_out, item_block_size, plan_blocks, stream_records
from medlens.io import RunFolder, iter_jsonl

__all__ = ["diagnose_cases", "read_case", "read_cases", "summarize_results"]


def read_case(path: str | os.PathLike) -> dict[str, Any]:
    """One case from a JSON file (``id`` defaults to the file name without extension)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such case file; give a JSON object with clinical_history and caption.")
    try:
        obj = json.loads(read_text_file(p, what="case file"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    if isinstance(obj, Mapping) and obj.get("id") in (None, ""):
        obj = {**obj, "id": p.stem}
    return check_case(obj, where=str(p))


def read_cases(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The cases of a JSONL file, validated; every case needs a unique ``id``."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such cases file; give a JSONL file with one case object per line.")
    cases: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for lineno, obj in iter_jsonl(p, what="cases file"):
        where = f"{p} line {lineno}"
        case = check_case(obj, where=where)
        if case["id"] is None:
            raise InputError(f"{where}: field 'id' is missing; every case of a cases file needs a unique id.")
        if case["id"] in seen:
            raise InputError(f"{where}: id {case['id']!r} repeats line {seen[case['id']]}; ids must be unique.")
        seen[case["id"]] = lineno
        cases.append(case)
    if not cases:
        raise InputError(f"{p}: no cases (the file is empty).")
    return cases


RESULTS = "results.jsonl"


def diagnose_cases(
    agent: RadarAgent,
    cases: Iterable[Mapping[str, Any]],
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    provenance: Mapping[str, Any] | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    workers: int = 1,
    executor: Any = None,
    agent_factory: Callable[[], RadarAgent] | None = None,
    block_size: int | None = None,
) -> dict[str, Any]:
    """Diagnose ``cases`` with ``agent`` into the run folder ``out``, appending one line per case, skipping done ids.

    ``workers`` cases are diagnosed at once (:func:`~medlens.executors.fan_out`: LLM requests overlap, retrieval
    takes turns); each line is appended by this thread as its case finishes, so lines follow completion order and
    a resumed run skips exactly the ids written. The workers is not part of the configuration.

    ``executor`` (:func:`~medlens.executors.make_executor`) runs the cases still to do as fixed blocks of
    ``block_size`` (default: enough blocks for every worker, at most :data:`~medlens.executors.ITEM_BLOCK` cases
    each) instead: the local executor with ``agent``, a Ray one on actors that each build their own agent
    with ``agent_factory`` (:class:`~medlens.agents.AgentFactory`: the index opened from its folder, one copy of
    the model). Each block's results are appended here as it finishes (lines follow block completion); they equal
    an in-process run's. The executor is not part of the configuration (a run may be resumed on another); it is
    reported as ``executor`` in the summary and the manifest.

    Returns ``{"out", "results", "manifest", "n_cases", "n_done", "n_skipped", "config_hash", "executor",
    **summarize_results(new results)}``.
    """
    cases = list(cases)
    if executor is not None:
        if workers != 1:
            raise InputError(f"workers (threads in this process) and an executor exclude each other; got {workers}.")
        if executor.name != "local" and agent_factory is None:
            raise InputError(
                f"the {executor.name} executor builds the agent in each worker; give agent_factory "
                "(medlens.agents.AgentFactory)."
            )
        item_block_size(0, 1, block_size)  # checked now
    info = executor.info() if executor is not None else {"name": "local"}
    config = agent.describe()
    folder = RunFolder(out, config, overwrite=overwrite, provenance=dict(provenance or {}), outputs=(RESULTS,))
    chash = folder.config_hash
    results, skipped = [], 0
    with folder:
        log = folder.log(RESULTS, key="id")
        folder.write_manifest(results=RESULTS, n_cases=len(cases), executor=info)
        todo = []
        for case in cases:
            if check_case(case)["id"] in log:
                skipped += 1
            else:
                todo.append(case)
        finished = _results(agent, todo, workers, executor, agent_factory, block_size)
        with contextlib.closing(finished):
            for res in finished:
                log.append({**res, "config_hash": chash})
                results.append(res)
                if on_result is not None:
                    on_result(res)
    return {
        "out": str(folder.path),
        "results": str(log.path),
        "manifest": str(folder.manifest_path),
        "n_cases": len(cases),
        "n_done": len(results),
        "n_skipped": skipped,
        "config_hash": chash,
        "executor": info,
        **summarize_results(results),
    }


def _results(
    agent: RadarAgent,
    todo: list[Mapping[str, Any]],
    workers: int,
    executor: Any,
    agent_factory: Callable[[], RadarAgent] | None,
    block_size: int | None,
) -> Iterator[dict[str, Any]]:
    """Each finished case's result: from threads in this process, or block by block from the executor."""
    if executor is None:
        for _case, res in fan_out(todo, agent.diagnose, workers=workers):
            yield res
        return
    task = DiagnoseTask(agent_factory, agent=agent if executor.name == "local" else None)
    ids = [check_case(c)["id"] for c in todo]
    size = item_block_size(len(todo), executor.info().get("workers", 1), block_size)
    for rows, records in stream_records(executor, task, todo, plan_blocks(len(todo), block_size=size)):
        for i, res in zip(rows, records, strict=True):
            if not isinstance(res, dict) or res.get("id") != ids[int(i)]:
                raise RuntimeError(
                    f"the {executor.name} executor returned a result for another case than {ids[int(i)]!r}."
                )
            yield res


def summarize_results(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts over result records: modes, fallbacks, parse failures, repairs, removed citations, leakage drops."""
    results = list(results)
    modes = Counter(r["mode"] for r in results)
    traces = [r.get("trace") or {} for r in results]
    leak = Counter(d["reason"] for r in results for d in r.get("leakage", []))
    return {
        "modes": dict(modes),
        "n_fallback": sum(1 for r in results if r.get("fallback")),
        "n_parse_failures": sum(int(t.get("n_parse_failures", 0)) for t in traces),
        "n_repaired": sum(int(t.get("n_repaired", 0)) for t in traces),
        "n_invalid_citations": sum(int(t.get("n_invalid_citations", 0)) for t in traces),
        "n_llm_calls": sum(int(t.get("n_calls", 0)) for t in traces),
        "leakage_dropped": sum(leak.values()),
        "leakage_by_reason": dict(leak),
    }
