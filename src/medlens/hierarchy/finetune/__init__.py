"""Taxonomy-aware fine-tuning: radial embeddings, HXE, soft labels, BCE (needs the ``torch`` extra).

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
from medlens.hierarchy.finetune._structure import TaxonomyArrays
from medlens.hierarchy.finetune._train import (
    FinetuneConfig,
    FinetunedModel,
    FinetuneResult,
    finetune,
    load_finetuned,
    node_texts,
)

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
    "soft_labels",
]
