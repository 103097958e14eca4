"""Run any registered benchmark by name, the demo as a list of names, and the report of a run folder.

Every command that runs benchmarks (``medlens bench run``, ``medlens demo``, ``medlens report``) is a thin shell
over these functions; they hold no per-benchmark code: what differs lives in each benchmark's
:class:`~medlens.benchmarks.BenchmarkSpec`.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import inspect
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medlens._doctor import EXTRAS
from medlens._provenance import provenance, stamp
from medlens._validation import InputError, did_you_mean
from medlens.benchmarks._spec import BENCHMARKS, BenchmarkSpec

__all__ = [
    "DEMO",
    "DEMO_FULL",
    "bench_list_document",
    "bench_run_document",
    "build_report",
    "list_benchmarks",
    "report_document",
    "run_benchmark",
    "run_demo",
]

DEMO: tuple[str, ...] = (
    "cxr-reports",
    "rare-hpo",
    "stitch-reports",
    "fair-reports",
    "grounding",
    "omni-phantoms",
    "brain-anomaly",
)
"""The sections of ``medlens demo`` (``make demo``), in order."""
DEMO_FULL: tuple[str, ...] = ("cxr-reports-finetune", "brain-edit")
"""What ``medlens demo --full`` adds after them (and every quick section with a ``full`` option runs its full mode:
omni-phantoms adds its view-count ablation, brain-anomaly trains its UNet from scratch and adds the guidance
methods, grounding trains tiny Florence-2 models)."""


def list_benchmarks() -> list[dict[str, Any]]:
    """Every registered benchmark with its description, extras (and whether they are installed) and demo role.

    Reads the registry's metadata only: no benchmark module is imported.
    """
    rows = []
    for name in BENCHMARKS.names():
        meta = BENCHMARKS.meta(name)
        extras = tuple(meta.get("extras", ()))
        missing = [e for e in extras if any(importlib.util.find_spec(m) is None for m in EXTRAS.get(e, [e]))]
        rows.append(
            {
                "name": name,
                "description": meta.get("description", ""),
                "extras": list(extras),
                "missing_extras": missing,
                "demo": "quick" if name in DEMO else "full" if name in DEMO_FULL else None,
            }
        )
    return rows


def _spec(name: str) -> BenchmarkSpec:
    if name not in BENCHMARKS:
        raise InputError(
            f"unknown benchmark {name!r}.{did_you_mean(name, BENCHMARKS.names())} See `medlens bench list`."
        )
    return BENCHMARKS.get(name)


def _accepted(spec: BenchmarkSpec) -> dict[str, inspect.Parameter]:
    """The benchmark's options: the keyword-only parameters of its ``run`` (a ``**kwargs`` takes none)."""
    params = dict(inspect.signature(spec.run).parameters)
    return {k: p for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def run_benchmark(
    name: str,
    out_dir: str | Path,
    *,
    options: Mapping[str, Any] | None = None,
    shared: Mapping[str, Any] | None = None,
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run benchmark ``name`` into ``out_dir``; returns ``{"name", "metrics", "summary", "lines", "doc"}``.

    ``options`` are the benchmark's own keyword options, checked against its ``run`` signature (an unknown or a
    missing required one is an :class:`InputError` naming the accepted ones); ``shared`` options (the demo's
    ``seed``, ``alpha``, ``branch_depth``) are passed only to benchmarks that accept them.
    """
    spec = _spec(name)
    accepted = _accepted(spec)
    kwargs: dict[str, Any] = {}
    for key, value in (shared or {}).items():
        if key in accepted:
            kwargs[key] = value
    for key, value in (options or {}).items():
        if key not in accepted:
            hint = ", ".join(sorted(k for k in accepted if k not in ("progress", "overwrite"))) or "none"
            raise InputError(
                f"benchmark {name!r} has no option {key!r}.{did_you_mean(key, accepted)} It takes: {hint}."
            )
        kwargs[key] = value
    required = [k for k, p in accepted.items() if p.default is inspect.Parameter.empty and k not in kwargs]
    if required:
        sets = " ".join(f"--set {k}=..." for k in required)
        raise InputError(f"benchmark {name!r} needs {', '.join(required)}: pass {sets}.")
    if "progress" in accepted:
        kwargs["progress"] = progress
    if "overwrite" in accepted:
        kwargs["overwrite"] = overwrite
    out = Path(out_dir)
    doc = spec.run(out, **kwargs)
    return {
        "name": name,
        "metrics": str(out / "metrics.json"),
        "summary": spec.summarize(doc),
        "readings": spec.explain(doc),
        "lines": spec.summary_lines(doc),
        "doc": doc,
    }


def _data_hashes(prov: Mapping[str, Any]) -> dict[str, str]:
    """The hashes of a run's data in its provenance: input files, the taxonomy, any ``*sha256`` extra, the
    ``sha256`` (or ``request_hash``) of a dict or list of dicts there (knowledge bases, a retrieval index), and
    the generator version of generated data (its identity: the same version and seed give the same data)."""
    out: dict[str, str] = {}
    for role, h in (prov.get("input_hashes") or {}).items():
        sha = h.get("sha256") if isinstance(h, Mapping) else h
        if sha:
            out[str(role)] = str(sha)
    tax = prov.get("taxonomy")
    if isinstance(tax, Mapping) and tax.get("sha256"):
        out[f"taxonomy {tax.get('name')} v{tax.get('version')}"] = str(tax["sha256"])
    for key, value in prov.items():
        if key in ("input_hashes", "taxonomy", "config_hash"):
            continue
        if key == "generator" and isinstance(value, str) and value:  # generated data: its seeded, versioned source
            out["generator"] = value
            continue
        if key.endswith("sha256") and isinstance(value, str) and value:
            out[key.removesuffix("_sha256").removesuffix("sha256") or key] = value
        items = value if isinstance(value, list) else [value]
        for item in items:  # e.g. knowledge bases {name, version, sha256}, an index {corpus, request_hash}
            if not isinstance(item, Mapping):
                continue
            name = " ".join(str(item[k]) for k in ("name", "corpus") if item.get(k)) or key
            version = f" v{item['version']}" if item.get("version") else ""
            if item.get("sha256"):
                out[f"{key} {name}{version}" if name != key else f"{key}{version}"] = str(item["sha256"])
            elif item.get("request_hash"):
                out[f"{key} {name} (cache key)" if name != key else f"{key} (cache key)"] = str(item["request_hash"])
    return out


def _provenance_row(name: str, metrics: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """One row of the report's provenance table, from a run's ``metrics.json`` (written = the file's mtime)."""
    prov = metrics.get("provenance") if isinstance(metrics.get("provenance"), Mapping) else {}
    written = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")
    return {
        "benchmark": name,
        "medlens_version": prov.get("medlens_version"),
        "config_hash": metrics.get("config_hash") or prov.get("config_hash"),
        "seed": prov.get("seed", metrics.get("seed")),
        "data_hashes": _data_hashes(prov),
        "models": dict(prov.get("model_ids") or {}),
        "date": written,
    }


def build_report(run_dir: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Render one HTML report with a section per ``<benchmark>/metrics.json`` under ``run_dir`` (and one for
    ``run_dir/metrics.json`` itself, the folder of a single ``medlens bench run``), in the demo's order.

    The report opens with the CAE definition, each benchmark's one-line readings (``spec.explain``) and a
    provenance table (version, config hash, seed, data hashes, models, date of each ``metrics.json``).
    Returns ``{"report": path, "sections": [names]}``; default output ``run_dir/report.html``.
    """
    from medlens.report import write_report

    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / "report.html"
    order = {name: i for i, name in enumerate(DEMO + DEMO_FULL)}  # the demo's order, then any other by name
    files = sorted(run_dir.glob("*/metrics.json"), key=lambda f: (order.get(f.parent.name, len(order)), f.parent.name))
    if (run_dir / "metrics.json").is_file():  # the folder of one `medlens bench run`
        files.insert(0, run_dir / "metrics.json")
    if not files:
        raise InputError(f"{run_dir} holds no */metrics.json; run `medlens demo --out {run_dir}` first.")
    sections, names, rows, notes = [], [], [], []
    for f in files:
        try:
            metrics = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"{f}: not a readable metrics.json ({exc}); rerun its benchmark.") from None
        name = metrics.get("benchmark") if isinstance(metrics, dict) else None
        if name not in BENCHMARKS:
            continue
        spec = BENCHMARKS.get(name)
        section = spec.report_section(metrics)
        section.name = section.name or name
        sections.append(section)
        names.append(name)
        rows.append(_provenance_row(name, metrics, f))
        notes.extend(spec.explain(metrics))
    write_report(
        out,
        "medlens report",
        sections,
        subtitle=f"run folder {run_dir}",
        provenance=rows,
        notes=notes,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    return {"report": str(out), "sections": names}


def run_demo(
    out_dir: str | Path,
    *,
    full: bool = False,
    names: Sequence[str] | None = None,
    shared: Mapping[str, Any] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run the demo's benchmarks (``DEMO``, plus ``DEMO_FULL`` with ``full``) into ``out_dir/<name>`` and the report.

    Returns the stamped summary: one entry per benchmark (``metrics`` path, headline numbers, the one-line
    ``readings`` of :attr:`BenchmarkSpec.explain`, console ``lines``) and ``report``. ``shared`` options go to
    every benchmark that accepts them; ``options`` maps a benchmark name to its own options.
    """
    out = Path(out_dir)
    names = tuple(names) if names is not None else DEMO + (DEMO_FULL if full else ())
    shared = {"full": full, **dict(shared or {})}  # benchmarks with a ``full`` option run their full mode
    sections: dict[str, Any] = {}
    for i, name in enumerate(names, 1):
        if progress:  # on a terminal: which section runs, before its own bars (none for steps of a few seconds)
            t = time.perf_counter()
            sys.stderr.write(f"medlens demo [{i}/{len(names)}] {name}: {_spec(name).description}\n")
            sys.stderr.flush()
        res = run_benchmark(
            name,
            out / name,
            options=(options or {}).get(name),
            shared=shared,
            progress=progress,
            overwrite=overwrite,
        )
        sections[name] = {
            "metrics": res["metrics"],
            **res["summary"],
            "readings": res["readings"],
            "lines": res["lines"],
        }
        if progress:
            sys.stderr.write(f"medlens demo [{i}/{len(names)}] {name}: done in {time.perf_counter() - t:.0f} s\n")
    info = build_report(out, out / "report.html")
    config = {"out": str(out), "benchmarks": list(names), "full": full, **shared}
    return stamp(
        {**sections, "report": info["report"]}, provenance(command="demo", config=config, seed=shared.get("seed"))
    )


def bench_list_document() -> dict[str, Any]:
    """``medlens bench list --json``: :func:`list_benchmarks`, stamped."""
    return stamp({"benchmarks": list_benchmarks()}, provenance(command="bench list"))


def bench_run_document(
    name: str,
    out_dir: str | Path,
    *,
    options: Mapping[str, Any] | None = None,
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """``medlens bench run NAME``: run one benchmark; return ``{NAME: {metrics, headline numbers, lines}}`` stamped
    with the run's options (``seed`` recorded as the seed)."""
    options = dict(options or {})
    res = run_benchmark(name, out_dir, options=options, progress=progress, overwrite=overwrite)
    config = {"name": name, "out": str(out_dir), **options}
    doc = {name: {"metrics": res["metrics"], **res["summary"], "readings": res["readings"], "lines": res["lines"]}}
    return stamp(doc, provenance(command="bench run", config=config, seed=options.get("seed")))


def report_document(run_dir: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """``medlens report``: :func:`build_report`, stamped."""
    return stamp(build_report(run_dir, out), provenance(command="report", config={"run": str(run_dir)}))
