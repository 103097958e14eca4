"""The NOVA benchmark (rare brain-MRI findings): loader and schema of a local copy, evaluation of prediction
rows, prompt templates and ``nova run`` for any VLM, and the pipelines behind the ``nova`` commands, and the registered benchmark.

See :mod:`medlens.benchmarks.nova._schema` for the data, the licence and the schema's sources; the loader is
``_loader`` (records in ``_records``, the three on-disk layouts in ``_layouts``).
"""

from medlens.benchmarks.nova._commands import (
    nova_data_inputs,
    nova_judge,
    run_nova_evaluate,
    run_nova_run,
    run_nova_validate,
)
from medlens.benchmarks.nova._eval import (
    AP_MODES,
    MISSING_RULES,
    PREDICTION_TASKS,
    NovaPredictions,
    PredictionRow,
    nova_evaluate,
    read_nova_predictions,
)
from medlens.benchmarks.nova._keys import SUMMARY_KEYS
from medlens.benchmarks.nova._loader import load_nova
from medlens.benchmarks.nova._prompts import (
    PROMPTS_VERSION,
    REQUEST_BOX_FORMATS,
    RUN_SETTINGS,
    RUN_TASKS,
    PromptTemplate,
    builtin_template,
    load_template,
)
from medlens.benchmarks.nova._records import NovaCase, NovaDataset, NovaImage, NovaProblem
from medlens.benchmarks.nova._run import (
    BOX_SCHEMA,
    DIAGNOSIS_SCHEMA,
    nova_run,
    parse_caption,
    parse_diagnosis,
    parse_localization,
)
from medlens.benchmarks.nova._schema import HF_DATASET_ID, LAYOUTS, NOVA_SCHEMA, NovaSchema, TableSchema

__all__ = [
    "SUMMARY_KEYS",
    "HF_DATASET_ID",
    "LAYOUTS",
    "NOVA_SCHEMA",
    "NovaCase",
    "NovaDataset",
    "NovaImage",
    "NovaPredictions",
    "NovaProblem",
    "PREDICTION_TASKS",
    "NovaSchema",
    "TableSchema",
    "load_nova",
    "nova_data_inputs",
    "nova_judge",
    "run_nova_evaluate",
    "run_nova_run",
    "run_nova_validate",
    "nova_evaluate",
    "read_nova_predictions",
    "AP_MODES",
    "MISSING_RULES",
    "PredictionRow",
    "PROMPTS_VERSION",
    "REQUEST_BOX_FORMATS",
    "RUN_SETTINGS",
    "RUN_TASKS",
    "PromptTemplate",
    "builtin_template",
    "load_template",
    "BOX_SCHEMA",
    "DIAGNOSIS_SCHEMA",
    "nova_run",
    "parse_caption",
    "parse_diagnosis",
    "parse_localization",
]
