"""Taxonomy-aware fine-tuning: radial embeddings, HXE, soft labels, BCE (needs the ``torch`` extra).

Training runs on the shared loop of :mod:`medlens.training`; a run folder holds ``model.safetensors`` and
``finetune.json`` (nothing is ever unpickled).

Importing this package imports torch; :mod:`medlens.hierarchy` itself never does.
"""

from medlens.hierarchy.finetune._data import read_training_table
from medlens.hierarchy.finetune._losses import (
    LOSSES,
    BCELoss,
    HXELoss,
    LossConfig,
    ModelOutput,
    RadialConfig,
    RadialTaxonomyLoss,
    SoftLabelLoss,
    make_loss,
    soft_labels,
)
from medlens.hierarchy.finetune._model import TaxonomyModel, node_probabilities
from medlens.hierarchy.finetune._run import run_finetune, run_score
from medlens.hierarchy.finetune._saved import FinetunedModel, load_finetuned
from medlens.hierarchy.finetune._setup import FinetuneConfig, node_texts
from medlens.hierarchy.finetune._structure import TaxonomyArrays
from medlens.hierarchy.finetune._train import FinetuneResult, finetune

__all__ = [
    "read_training_table",
    "LOSSES",
    "BCELoss",
    "FinetuneConfig",
    "FinetuneResult",
    "FinetunedModel",
    "HXELoss",
    "LossConfig",
    "ModelOutput",
    "RadialConfig",
    "RadialTaxonomyLoss",
    "SoftLabelLoss",
    "TaxonomyArrays",
    "TaxonomyModel",
    "finetune",
    "load_finetuned",
    "make_loss",
    "node_probabilities",
    "node_texts",
    "run_finetune",
    "run_score",
    "soft_labels",
]
