"""The shipped brain-anomaly demo denoiser: its UNet config, training recipe and file (see
``scripts/train_demo_diffusion.py``, which trains it, and ``demo_unet.json``, which records it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["DEMO_FILE", "DEMO_RECORD", "DEMO_TRAIN", "DEMO_UNET", "demo_record"]

HERE = Path(__file__).resolve().parent
DEMO_FILE = HERE / "demo_unet.safetensors"
DEMO_RECORD = HERE / "demo_unet.json"

#: A ~0.6 M-parameter MONAI UNet at 64² without attention (cheap enough for two CPU cores).
DEMO_UNET: dict[str, Any] = {
    "backbone": "monai",
    "channels": [8, 16, 32, 64],
    "attention_levels": [False, False, False, False],
    "num_res_blocks": 1,
    "norm_num_groups": 8,
    "sample_size": 64,
}
#: ``run_anomaly_train`` keywords of the shipped checkpoint.
DEMO_TRAIN: dict[str, Any] = {
    "n_images": 256,
    "size": 64,
    "steps": 300,
    "batch_size": 16,
    "lr": 2e-3,
    "num_train_timesteps": 1000,
    "noise": "gaussian",
    "seed": 0,
}


def demo_record() -> dict[str, Any]:
    """``demo_unet.json``: command, config, loss curve and sha256 of the shipped checkpoint."""
    return json.loads(DEMO_RECORD.read_text())
