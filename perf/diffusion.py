"""Diffusion anomaly localisation: network evaluations (NFE) and seconds per 64² image for each method, ours vs
the same method written the way the public THOR/AnoDDPM code runs it.

* ours: :func:`medlens.diffusion.score_images`, all images in one batch, DDIM respaced to ``--steps``
  (patched: one x̂_0 per patch), simplex noise vectorised.
* public style (THOR_DDPM ``get_anomaly``/``sample_from_image_interpol`` and AnoDDPM's loop): one image at a
  time, a Python loop over every DDPM timestep ``t0 − 1 … 0`` through MONAI's ``DDPMScheduler.step`` (NFE = t0),
  simplex noise drawn per step with the ``opensimplex`` package's ``noise3array`` (as AnoDDPM), THOR
  harmonising with the same maps as ours, patched one patch at a time. Its seconds/image are measured on
  ``--ref-images`` images.
* ratio = public s/image ÷ ours: it combines batching, DDIM respacing (t0 → steps evaluations) and, for
  simplex, the vectorised noise (the package's per-call fields cost seconds each on 2 busy cores).
  Measured on a loaded shared 2-core machine, so single numbers are noisy (±2×).

The network is the demo UNet (``benchmarks/brain_anomaly/demo_unet.safetensors``, ~0.6 M parameters; random
weights of the same config if the file is absent): the timing does not depend on the weights.
Usage: python perf/diffusion.py [--n 16] [--t0 100] [--steps 10] [--ref-images 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def _public_noise(method: str, x0):  # noqa: ANN001, ANN202
    """AnoDDPM's noise: fractal simplex from the ``opensimplex`` package per call (6 octaves, p 0.8, f 64)."""
    import torch

    if method != "simplex":
        return lambda t: torch.randn_like(x0)
    import opensimplex

    h, w = x0.shape[-2:]

    def draw(t: int) -> torch.Tensor:
        opensimplex.seed(int(torch.randint(0, 2**31 - 1, (1,))))
        field = np.zeros((h, w))
        for k in range(6):
            f = 64 / 2**k
            field += 0.8**k * opensimplex.noise3array(np.arange(w) / f, np.arange(h) / f, np.array([t / f]))[0]
        return torch.as_tensor(field, dtype=x0.dtype).expand_as(x0)

    return draw


def public_style(model, x, method: str, t0: int, sched, harmonize_at=()) -> float:  # noqa: ANN001
    """Seconds per image for one image at a time, every DDPM step, as the public code loops."""
    import torch
    from monai.networks.schedulers import DDPMScheduler

    from medlens.diffusion import temporal_map, thor_harmonize

    ms = DDPMScheduler(num_train_timesteps=1000, schedule="linear_beta")
    start = time.perf_counter()
    h = x.shape[-1]
    for img in x:
        x0 = img[None]
        noise = _public_noise(method, x0)
        boxes = (
            [(i, j) for i in range(0, h - 32 + 1, 16) for j in range(0, h - 32 + 1, 16)]
            if method == "patched"
            else [None]
        )
        for box in boxes:
            eps0 = noise(t0 - 1)
            x_t = ms.add_noise(x0, eps0, torch.tensor([t0 - 1]))
            if box is not None:  # one x̂_0 for one patch
                m = torch.zeros_like(x0)
                m[..., box[0] : box[0] + 32, box[1] : box[1] + 32] = 1
                with torch.no_grad():
                    eps = model(m * x_t + (1 - m) * x0, t0 - 1)
                continue
            for t in range(t0 - 1, -1, -1):
                with torch.no_grad():
                    eps = model(x_t, t)
                x_t, x0_hat = ms.step(eps, t, x_t)
                if method == "simplex" and t > 0:  # AnoDDPM draws a fresh simplex field for each step's z
                    noise(t)
                if t in harmonize_at:
                    mp = temporal_map(x0, x0_hat)
                    x_t = ms.add_noise(thor_harmonize(x0, x0_hat, mp), eps0, torch.tensor([max(t - 1, 0)]))
    return (time.perf_counter() - start) / len(x)


def main() -> None:
    import torch

    from medlens.diffusion import build_unet, load_unet, make_schedule, score_images

    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--t0", type=int, default=100)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--ref-images", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--methods", default="anoddpm,simplex,patched,thor")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    demo = Path(__file__).parents[1] / "src/medlens/benchmarks/brain_anomaly/demo_unet.safetensors"
    if demo.is_file():
        model = load_unet(demo)[0]
    else:
        from medlens.benchmarks.brain_anomaly._demo import DEMO_UNET

        model = build_unet(DEMO_UNET, seed=0).eval()
    sched = make_schedule("linear", 1000)
    x = torch.rand((a.n, 1, 64, 64)) * 2 - 1
    hs = [round(a.t0 * f) for f in (6 / 7, 3 / 7, 1 / 7)]
    print(f"{a.n} images of 64², t0 = {a.t0}, ours DDIM {a.steps} steps batched; torch threads {a.threads}")
    print(
        f"{'method':10s} {'ours NFE':>8s} {'ours s/img':>10s} {'public NFE':>10s} {'public s/img':>12s} {'ratio':>7s}"
    )
    for method in a.methods.split(","):
        res = score_images(model, x, sched, method=method, t0=a.t0, steps=a.steps, batch_size=a.n,
                           harmonize_at=hs if method == "thor" else None)  # fmt: skip
        ours = res["seconds_per_image"]
        ref = public_style(model, x[: a.ref_images], method, a.t0, sched, harmonize_at=hs if method == "thor" else ())
        ref_nfe = 9 if method == "patched" else a.t0
        print(f"{method:10s} {res['nfe']:8d} {ours:10.3f} {ref_nfe:10d} {ref:12.3f} {ref / ours:6.1f}x", flush=True)


if __name__ == "__main__":
    main()
