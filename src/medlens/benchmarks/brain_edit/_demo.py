"""The shipped brain-edit demo denoiser: a mask-conditioned UNet (``ε_θ([x_t, x⊙(1−P), P], t)``) trained on
brain-anomaly-v1 slices with lesions and their masks. ``scripts/train_demo_edit.py`` trains it and writes
``demo_edit_unet.json`` (command, config, loss curve, sha256), which the tests check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medlens.benchmarks.brain_anomaly._demo import DEMO_TRAIN, DEMO_UNET

__all__ = ["DEMO_EDIT_FILE", "DEMO_EDIT_RECORD", "DEMO_EDIT_TRAIN", "DEMO_EDIT_UNET", "demo_edit_record"]

HERE = Path(__file__).resolve().parent
DEMO_EDIT_FILE = HERE / "demo_edit_unet.safetensors"
DEMO_EDIT_RECORD = HERE / "demo_edit_unet.json"

#: The brain-anomaly demo UNet (~0.6 M parameters at 64², no attention) with the mask conditioning.
DEMO_EDIT_UNET: dict[str, Any] = {**DEMO_UNET, "mask_conditioned": True}
#: ``run_anomaly_train`` keywords of the shipped checkpoint (``conditioned="mask"``: lesion slices and masks).
DEMO_EDIT_TRAIN: dict[str, Any] = {**DEMO_TRAIN, "conditioned": "mask"}


def demo_edit_record() -> dict[str, Any]:
    """``demo_edit_unet.json``: command, config, loss curve and sha256 of the shipped checkpoint."""
    return json.loads(DEMO_EDIT_RECORD.read_text())
