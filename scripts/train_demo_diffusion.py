"""Train the brain-anomaly demo denoiser that ships with medlens (the ARCHITECTURE.md demo-checkpoint exception).

A ~0.6 M-parameter MONAI UNet (channels 8/16/32/64, no attention) at 64², trained on the ``train`` split of the
brain-anomaly-v1 generator (256 healthy slices, seed 0) with ε-prediction L2, AdamW and the linear schedule
(T = 1000), on CPU with one torch thread. Writes ``demo_unet.safetensors`` and ``demo_unet.json`` into ``--out`` (default: the benchmark folder) (the command,
the config, the per-epoch loss curve and the file's sha256) next to the benchmark; ``tests/benchmarks`` checks
the sha256 and that the file loads (it never retrains).

    PYTHONPATH=src python scripts/train_demo_diffusion.py            # the shipped checkpoint (300 steps at batch 16:
                                                                     # 714 s on a busy shared 2-core machine)
    PYTHONPATH=src python scripts/train_demo_diffusion.py --steps 20 --out /tmp/demo   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "src" / "medlens" / "benchmarks"


def train_demo(
    argv: list[str] | None, *, script: str, doc: str, folder: str, stem: str, unet: dict, train: dict
) -> int:
    """Train ``unet`` with the ``run_anomaly_train`` keywords ``train`` (``--steps`` may override), one thread,
    deterministic algorithms; write ``<stem>.safetensors`` and ``<stem>.json`` (command, config, loss curve,
    sha256) into ``--out`` (default ``src/medlens/benchmarks/<folder>``). Shared by the demo-checkpoint scripts."""
    import torch

    from medlens._provenance import file_sha256
    from medlens.diffusion import run_anomaly_train

    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--steps", type=int, default=train["steps"])
    p.add_argument("--out", type=Path, default=BENCHMARKS / folder, help=f"folder for {stem}.safetensors/.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    cfg = {**train, "steps": args.steps}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = run_anomaly_train(Path(tmp) / "run", generator="brain-anomaly", unet=unet, progress=True, **cfg)
        history = [json.loads(line) for line in (Path(tmp) / "run" / "history.jsonl").read_text().splitlines()]
        args.out.mkdir(parents=True, exist_ok=True)
        target = args.out / f"{stem}.safetensors"
        shutil.copyfile(run["model_path"], target)
    record = {
        "file": target.name,
        "sha256": file_sha256(target),
        "bytes": target.stat().st_size,
        "command": " ".join([f"PYTHONPATH=src python scripts/{script}", *(argv or sys.argv[1:])]),
        "train": cfg,
        "unet": unet,
        "n_parameters": run["n_parameters"],
        "loss_curve": [round(float(h["train_loss"]), 5) for h in history],
        "seconds": round(time.perf_counter() - start, 1),
        "torch": torch.__version__,
    }
    (args.out / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: record[k] for k in ("sha256", "bytes", "n_parameters", "loss_curve", "seconds")}))
    return 0


def main(argv: list[str] | None = None) -> int:
    from medlens.benchmarks.brain_anomaly._demo import DEMO_TRAIN, DEMO_UNET

    return train_demo(argv, script="train_demo_diffusion.py", doc=__doc__, folder="brain_anomaly", stem="demo_unet",
                      unet=DEMO_UNET, train=DEMO_TRAIN)  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
