"""Counterfactual editing: seconds and network evaluations (NFE) per edit for each sampler (MedEdit, naive
RePaint with its resampling jumps, SDEdit, Palette), at 64² on CPU and, when CUDA is available, at 128².

The networks have the brain-edit demo UNet config (~0.6 M parameters) with random weights (the timing does not
depend on the weights): mask-conditioned (``[x_t, x⊙(1−P), P]``, 3 input channels) for MedEdit, RePaint and
SDEdit, and of the Palette kind (``palette_conditioned``: ``[x_t, c]``, 2 input channels) for Palette, which
needs its own separately trained model. Images are brain-anomaly-v1 healthy slices (64²) or, at 128², the same
slices upsampled; lesion masks are discs. All ``--n`` images go in one batch; seconds per image = wall / n.
No peer library runs MedEdit, so there is no ratio: the public code runs 1000 DDPM steps per edit (NFE 1000;
10× that with 10 RePaint resamplings), which the NFE column can be compared with.
Usage: python perf/mededit.py [--n 8] [--steps 50] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _inputs(n: int, size: int):  # noqa: ANN202
    import torch

    from medlens.diffusion import BrainConfig, brain_slices

    data = brain_slices(n, seed=0, split="healthy", config=BrainConfig(size=64))
    x, b = torch.as_tensor(data.images), torch.as_tensor(data.brain.astype(np.float32))
    if size != 64:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(-1, 1)
        b = (torch.nn.functional.interpolate(b, size=(size, size), mode="nearest") > 0).float()
    yy, xx = np.mgrid[:size, :size]
    disc = ((yy - 0.45 * size) ** 2 + (xx - 0.6 * size) ** 2 < (0.08 * size) ** 2).astype(np.float32)
    p = torch.as_tensor(np.broadcast_to(disc, (n, 1, size, size)).copy())
    return x, p, b


def main(argv: list[str] | None = None) -> int:
    import torch

    from medlens.benchmarks.brain_edit._demo import DEMO_EDIT_UNET
    from medlens.diffusion import build_unet, make_schedule
    from medlens.diffusion.edit import EDIT_METHODS, counterfactual_edit

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sched = make_schedule("linear", 1000)
    runs = [("cpu", 64)] + ([("cuda", 128)] if torch.cuda.is_available() else [])
    rows = []
    for device, size in runs:
        masked = build_unet({**DEMO_EDIT_UNET, "sample_size": size}, seed=0).eval().to(device)
        plain = {k: v for k, v in DEMO_EDIT_UNET.items() if k != "mask_conditioned"}
        palette = build_unet({**plain, "palette_conditioned": True, "sample_size": size}, seed=0).eval().to(device)
        x, p, b = _inputs(args.n, size)
        for method in EDIT_METHODS:
            model = palette if method == "palette" else masked
            steps = args.steps // 2 if method == "repaint" else args.steps
            kw = dict(method=method, brain_masks=b, steps=steps, seed=0, batch_size=args.n)
            counterfactual_edit(model, x[:1], p[:1], sched, **{**kw, "brain_masks": b[:1], "steps": 2})  # warm-up
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            res = counterfactual_edit(model, x, p, sched, **kw)
            if device == "cuda":
                torch.cuda.synchronize()
            wall = time.perf_counter() - t
            rows.append({"device": device, "size": size, "method": method, "model": model.conditioning,
                         "nfe": res["nfe"], "seconds_per_edit": round(wall / args.n, 4), "n": args.n})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
