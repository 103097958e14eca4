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

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent / "src" / "medlens" / "benchmarks" / "brain_edit"


def main(argv: list[str] | None = None) -> int:
    import torch

    from medlens._provenance import file_sha256
    from medlens.benchmarks.brain_edit._demo import DEMO_EDIT_TRAIN, DEMO_EDIT_UNET
    from medlens.diffusion import run_anomaly_train

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=DEMO_EDIT_TRAIN["steps"])
    p.add_argument("--out", type=Path, default=HERE, help="folder for demo_edit_unet.safetensors/.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    cfg = {**DEMO_EDIT_TRAIN, "steps": args.steps}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        doc = run_anomaly_train(Path(tmp) / "run", generator="brain-anomaly", unet=DEMO_EDIT_UNET, progress=True, **cfg)
        history = [json.loads(line) for line in (Path(tmp) / "run" / "history.jsonl").read_text().splitlines()]
        args.out.mkdir(parents=True, exist_ok=True)
        target = args.out / "demo_edit_unet.safetensors"
        shutil.copyfile(doc["model_path"], target)
    record = {
        "file": target.name,
        "sha256": file_sha256(target),
        "bytes": target.stat().st_size,
        "command": " ".join(["PYTHONPATH=src python scripts/train_demo_edit.py", *(argv or sys.argv[1:])]),
        "train": cfg,
        "unet": DEMO_EDIT_UNET,
        "n_parameters": doc["n_parameters"],
        "loss_curve": [round(float(h["train_loss"]), 5) for h in history],
        "seconds": round(time.perf_counter() - start, 1),
        "torch": torch.__version__,
    }
    (args.out / "demo_edit_unet.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: record[k] for k in ("sha256", "bytes", "n_parameters", "loss_curve", "seconds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
