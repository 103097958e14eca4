"""The ``rare-hpo`` benchmark: simulated rare-disease patients from HPO annotations (generator ``rare-hpo-v1``),
retrieval-only rankers with bootstrap CIs, the cached hpo index and the registered run.
"""

from medlens.benchmarks.rare_hpo._cases import (
    GENERATOR_VERSION,
    GeneratorConfig,
    evaluate_rankings,
    generate_cases,
    run_rare_hpo,
)
from medlens.benchmarks.rare_hpo._cases_v2 import (
    GENERATOR_V2,
    GeneratorConfigV2,
    evaluate_recognition,
    generate_cases_v2,
)
from medlens.benchmarks.rare_hpo._command import run_rare_hpo_benchmark
from medlens.benchmarks.rare_hpo._run import (
    DEFAULT_RETRIEVERS,
    cached_hpo_index,
    summary_lines,
)

__all__ = [
    "summary_lines",
    "GENERATOR_VERSION",
    "GeneratorConfig",
    "GENERATOR_V2",
    "GeneratorConfigV2",
    "generate_cases_v2",
    "evaluate_recognition",
    "evaluate_rankings",
    "generate_cases",
    "run_rare_hpo",
    "run_rare_hpo_benchmark",
    "DEFAULT_RETRIEVERS",
    "cached_hpo_index",
]
