"""Throughput of ``medlens encode`` with the local executor and with Ray (1 and 2 actors), as ratios.

    PYTHONPATH=src python perf/scale_ray.py [--n 2000] [--batch-size 32]

Texts are short synthetic findings encoded with the packaged MiniLM. The local run is timed after a warm-up
(torch imported, model read once); Ray's time includes starting each actor pool (each actor imports torch and
loads its own model) but not ``ray.init``, which is timed apart. On a machine with few cores Ray is expected to
be slower than ``local``: the gain comes from more nodes or GPUs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    import ray

    from medlens.encoders import run_encode

    words = ["effusion", "cardiomegaly", "pneumothorax", "clear lungs", "edema", "atelectasis", "nodule"]
    texts = [f"{i}: " + " with ".join(words[(i + j) % 7] for j in range(i % 6 + 1)) for i in range(args.n)]
    tmp = Path(tempfile.mkdtemp())
    src = tmp / "texts.txt"
    src.write_text("\n".join(texts) + "\n")

    def timed(name: str, **kw) -> tuple[float, np.ndarray]:
        t = time.perf_counter()
        run_encode("minilm", tmp / f"{name}.npy", texts=src, batch_size=args.batch_size, **kw)
        return time.perf_counter() - t, np.load(tmp / f"{name}.npy")

    import os

    os.environ["MEDLENS_CACHE"] = str(tmp / "cache-warm")
    warm = tmp / "warm.txt"
    warm.write_text("warm up\n")
    run_encode("minilm", tmp / "warm.npy", texts=warm)  # imports torch and reads the model once, untimed
    os.environ["MEDLENS_CACHE"] = str(tmp / "cache-local")
    t_local, ref = timed("local")
    os.environ["MEDLENS_CACHE"] = str(tmp / "cache-ray")  # actors compute, never read the local run's cache
    t0 = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False)
    t_init = time.perf_counter() - t0
    print(f"n={args.n} texts, batch {args.batch_size}, {os.cpu_count()} CPUs; ray.init {t_init:.1f} s")
    print(f"{'executor':<14}{'wall s':>8}{'texts/s':>9}{'vs local':>9}{'max |diff|':>12}")
    print(f"{'local':<14}{t_local:8.1f}{args.n / t_local:9.0f}{1.0:9.2f}{0.0:12.1e}")
    for workers in (1, 2):
        t, got = timed(f"ray{workers}", executor="ray", workers=workers)
        diff = float(np.abs(got - ref).max())
        print(f"{f'ray x{workers}':<14}{t:8.1f}{args.n / t:9.0f}{t_local / t:9.2f}{diff:12.1e}")
    ray.shutdown()


if __name__ == "__main__":
    main()
