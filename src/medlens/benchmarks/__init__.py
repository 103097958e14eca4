"""Benchmarks: one module per benchmark (a loader plus a runner), registered lazily by name.

No module imports the others; ``BENCHMARKS.get(name)`` imports one benchmark on first use.
"""

from medlens.benchmarks._spec import BENCHMARKS, BenchmarkSpec

__all__ = ["BENCHMARKS", "BenchmarkSpec"]
