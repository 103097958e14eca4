"""Train the brain-edit demo denoiser that ships with medlens (the ARCHITECTURE.md demo-checkpoint exception).

The brain-anomaly demo UNet (~0.6 M parameters, MONAI, channels 8/16/32/64, no attention, 64²) made
mask-conditioned (``ε_θ([x_t, x⊙(1−P), P], t)``) and trained on 256 brain-anomaly-v1 ``train`` slices *with*
lesions and their lesion masks (seed 0): ε-prediction L2, AdamW, linear schedule T = 1000, CPU, one torch
thread, deterministic algorithms. Writes ``demo_edit_unet.safetensors`` and ``demo_edit_unet.json`` (command,
config, loss curve, sha256) into ``--out`` (default: the brain_edit benchmark folder); the tests check the
sha256 and that the file loads (they never retrain).

    PYTHONPATH=src python scripts/train_demo_edit.py                      # the shipped checkpoint
    PYTHONPATH=src python scripts/train_demo_edit.py --steps 20 --out /tmp/edit-demo   # a smoke run
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared trainer beside this script
from train_demo_diffusion import train_demo  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from medlens.benchmarks.brain_edit._demo import DEMO_EDIT_TRAIN, DEMO_EDIT_UNET

    return train_demo(argv, script="train_demo_edit.py", doc=__doc__, folder="brain_edit", stem="demo_edit_unet",
                      unet=DEMO_EDIT_UNET, train=DEMO_EDIT_TRAIN)  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
