"""Benchmarks: one module per benchmark (a loader plus a runner), registered lazily by name.

No module imports the others; ``BENCHMARKS.get(name)`` imports one benchmark on first use. Any registered
benchmark runs by its name (:func:`run_benchmark`, ``medlens bench run NAME``); the demo is a list of names over
the same path (:func:`run_demo`, :data:`DEMO`); :func:`build_report` renders a run folder.
"""

from medlens.benchmarks._runner import (
    DEMO,
    DEMO_FULL,
    bench_list_document,
    bench_run_document,
    build_report,
    list_benchmarks,
    report_document,
    run_benchmark,
    run_demo,
)
from medlens.benchmarks._spec import BENCHMARKS, BenchmarkSpec

__all__ = [
    "BENCHMARKS",
    "DEMO",
    "DEMO_FULL",
    "BenchmarkSpec",
    "bench_list_document",
    "bench_run_document",
    "build_report",
    "report_document",
    "list_benchmarks",
    "run_benchmark",
    "run_demo",
]
