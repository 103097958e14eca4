"""The shared training loop (needs the ``torch`` extra): seeding, AdamW, a cosine-with-warmup schedule,
checkpoints that cannot run code (safetensors + JSON), exact resume, progress and a history with provenance.

Taxonomy-aware fine-tuning (:mod:`medlens.hierarchy.finetune`) uses it; diffusion and grounding training
build on the same pieces. It imports only the shared core and :mod:`medlens.io`.

Importing this package imports torch.
"""

from medlens.training._checkpoint import load_checkpoint, read_safetensors, save_checkpoint, write_safetensors
from medlens.training._loop import Trainer, adamw, deterministic_algorithms, epoch_rng, seed_torch
from medlens.training._run import CHECKPOINT, HISTORY, TrainingRun, open_training_run
from medlens.training._schedule import cosine_warmup_factor, cosine_with_warmup, warmup_steps

__all__ = [
    "CHECKPOINT",
    "HISTORY",
    "Trainer",
    "TrainingRun",
    "adamw",
    "cosine_warmup_factor",
    "cosine_with_warmup",
    "deterministic_algorithms",
    "epoch_rng",
    "load_checkpoint",
    "open_training_run",
    "read_safetensors",
    "save_checkpoint",
    "seed_torch",
    "warmup_steps",
    "write_safetensors",
]
