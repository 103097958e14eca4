"""Reading case files and diagnosing many cases into an append-only, resumable JSONL file.

A cases file is JSONL, one case per line: ``{"id", "clinical_history", "caption", ...}`` (ids unique). The
output gets one line per case as soon as it is diagnosed (flushed and synced), each carrying the run's
``config_hash``; re-running with the same output skips the ids already there. An output written by another
configuration (mode, model, agent settings, index) is refused unless ``overwrite`` is set, and a partial last
line left by a killed run is dropped before appending.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from medlens._validation import InputError
from medlens.agents._agent import RadarAgent, check_case
from medlens.io import drop_partial_line, read_jsonl, to_json

__all__ = ["diagnose_cases", "read_case", "read_cases", "summarize_results"]


def read_case(path: str | os.PathLike) -> dict[str, Any]:
    """One case from a JSON file (``id`` defaults to the file name without extension)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such case file; give a JSON object with clinical_history and caption.")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
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
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{p} line {lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where}: not valid JSON ({exc.msg}).") from None
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


def diagnose_cases(
    agent: RadarAgent,
    cases: Iterable[Mapping[str, Any]],
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Diagnose ``cases`` with ``agent``, appending one JSON line per case to ``out`` and skipping done ids.

    Returns ``{"out", "n_cases", "n_done", "n_skipped", "config_hash", **summarize_results(new results)}``.
    """
    path = Path(out)
    if path.exists() and not path.is_file():
        raise InputError(f"--out {path} is not a file; give a JSONL file path.")
    chash = agent.config_hash()
    done: set[str] = set()
    if path.exists() and overwrite:
        path.unlink()
    if path.exists():
        drop_partial_line(path)
        for i, rec in enumerate(read_jsonl(path), 1):
            if rec.get("config_hash") != chash:
                raise InputError(
                    f"{path} holds results of another configuration (line {i}: config hash "
                    f"{str(rec.get('config_hash'))[:12]} vs {chash[:12]}: mode, model, agent settings or index "
                    "differ); use another --out, or pass --overwrite to start it again."
                )
            done.add(str(rec.get("id")))
    path.parent.mkdir(parents=True, exist_ok=True)
    cases = list(cases)
    results, skipped = [], 0
    with open(path, "a", encoding="utf-8") as fh:
        for case in cases:
            if str(case.get("id")) in done:
                skipped += 1
                continue
            res = agent.diagnose(case)
            fh.write(to_json({**res, "config_hash": chash}, indent=None) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            results.append(res)
            if on_result is not None:
                on_result(res)
    return {
        "out": str(path),
        "n_cases": len(cases),
        "n_done": len(results),
        "n_skipped": skipped,
        "config_hash": chash,
        **summarize_results(results),
    }


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
