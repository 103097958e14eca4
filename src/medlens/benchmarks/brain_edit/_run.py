"""The ``brain-edit`` benchmark (``medlens demo --full``): insert lesions into healthy brain-anomaly-v1 slices with
MedEdit, naive RePaint and SDEdit, all with the shipped mask-conditioned demo denoiser
(``demo_edit_unet.safetensors``, sha256-checked; trained by ``scripts/train_demo_edit.py``). Palette is not in
the demo: it needs a separately trained Palette-conditioned model (``anomaly train --conditioned palette``),
which the demo's 10-minute budget does not hold; it is in the API and its tests
(:func:`medlens.diffusion.edit.counterfactual_edit` with ``method="palette"``).

``n_images`` (≤ 16) healthy slices (split ``healthy``) each get the lesion mask of a lesioned slice (split
``test``, same index) intersected with the healthy slice's brain mask: the requested lesion. Every method runs
DDIM-respaced within ``max_nfe`` network evaluations per image (RePaint: ``steps // 2`` levels plus its
resampling jumps). Per method: preservation MAE outside ``dilate(P, 25) ∩ B`` (0 for MedEdit and RePaint by
construction), the default threshold segmenter's Dice against the requested lesion, FID and KID of the edits
against ``n_real`` real lesioned slices (split ``val``) on the fixed default extractor, with bootstrap
intervals; the unedited inputs give the reference row. A figure shows input, mask, each edit and its difference.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from medlens._provenance import provenance, stamp
from medlens.benchmarks._spec import BenchmarkSpec

__all__ = ["SPEC", "run", "report_section", "summarize", "summary_lines"]

METHODS = ("mededit", "repaint", "sdedit")  # Palette needs its own model: API and tests only (module docstring)
LABELS = {"input": "unedited input (reference)", "mededit": "MedEdit (k = 25)", "repaint": "naive RePaint",
          "sdedit": "SDEdit (strength 0.1)"}  # fmt: skip


def _demo_model() -> tuple[Any, dict[str, Any]]:
    from medlens._provenance import file_sha256
    from medlens._validation import InputError
    from medlens.benchmarks.brain_edit._demo import DEMO_EDIT_FILE, demo_edit_record
    from medlens.diffusion import load_unet

    rec = demo_edit_record()
    if not DEMO_EDIT_FILE.is_file() or file_sha256(DEMO_EDIT_FILE) != rec["sha256"]:
        raise InputError(f"{DEMO_EDIT_FILE}: missing or not the recorded file (sha256 {rec['sha256'][:12]}…); "
                         "reinstall medlens or rerun scripts/train_demo_edit.py.")  # fmt: skip
    model, _ = load_unet(DEMO_EDIT_FILE)
    return model, rec


def _mean_ci(values: np.ndarray, n_bootstrap: int, seed: int) -> dict[str, Any]:
    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    draws = [float(v[rng.integers(0, len(v), len(v))].mean()) for _ in range(n_bootstrap)]
    return {"value": float(v.mean()), "ci": [float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))]}


def run(
    out_dir: str | Path,
    *,
    seed: int = 0,
    n_images: int = 16,
    n_real: int = 64,
    max_nfe: int = 50,
    n_bootstrap: int = 200,
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run the benchmark into ``out_dir`` and return the ``metrics.json`` document (see the module docstring)."""
    from medlens._validation import InputError
    from medlens.diffusion import brain_slices, make_schedule
    from medlens.diffusion.edit import (
        bootstrap_fid_kid,
        counterfactual_edit,
        edit_region,
        image_features,
        preservation_mae,
        segmenter_dice,
    )
    from medlens.io import atomic_write_json, prepare_run_dir

    if not 1 <= n_images <= 16:
        raise InputError(f"n_images must be in [1, 16] (the demo's budget); got {n_images}.")
    start = time.perf_counter()
    out = Path(out_dir)
    config = {"seed": seed, "n_images": n_images, "n_real": n_real, "max_nfe": max_nfe, "n_bootstrap": n_bootstrap}
    prepare_run_dir(out, config, overwrite=overwrite)
    model, rec = _demo_model()
    healthy = brain_slices(n_images, seed=seed, split="healthy")
    donors = brain_slices(n_images, anomalous=True, seed=seed, split="test")
    real = brain_slices(n_real, anomalous=True, seed=seed, split="val")
    x, brain = healthy.images, healthy.brain.astype(np.uint8)
    lesions = (donors.masks & brain).astype(np.uint8)
    empty = ~lesions.reshape(n_images, -1).any(1)
    lesions[empty] = donors.masks[empty]  # a donor lesion outside this brain: keep it as drawn
    sched = make_schedule("linear", 1000)
    region = np.maximum(edit_region(lesions, brain, dilate=25).numpy(), lesions)  # ⊇ P even for a kept donor lesion
    real_f = image_features(real.images)
    results: dict[str, Any] = {}
    examples: dict[str, np.ndarray] = {"input": x[:3, 0], "mask": lesions[:3, 0]}
    base = bootstrap_fid_kid(real_f, image_features(x), n_bootstrap=n_bootstrap, seed=seed)
    results["input"] = {"fid": base["fid"], "kid": base["kid"], "preservation_mae": {"value": 0.0, "ci": [0.0, 0.0]},
                        "segmenter_dice": _mean_ci(segmenter_dice(x, lesions, brain_masks=brain), n_bootstrap, seed),
                        "nfe": 0, "seconds_per_image": 0.0}  # fmt: skip
    for method in METHODS:
        steps = max_nfe // 2 if method == "repaint" else max_nfe
        res = counterfactual_edit(model, x, lesions, sched, method=method, brain_masks=brain, steps=steps, seed=seed,
                                  batch_size=16)  # fmt: skip
        if res["nfe"] > max_nfe:
            raise InputError(f"{method}: {res['nfe']} network evaluations exceed max_nfe {max_nfe}.")
        e = res["edited"].cpu().numpy()
        fk = bootstrap_fid_kid(real_f, image_features(e), n_bootstrap=n_bootstrap, seed=seed)
        results[method] = {
            "fid": fk["fid"],
            "kid": fk["kid"],
            "preservation_mae": _mean_ci(preservation_mae(e, x, region), n_bootstrap, seed),
            "segmenter_dice": _mean_ci(segmenter_dice(e, lesions, brain_masks=brain), n_bootstrap, seed),
            "nfe": res["nfe"],
            "seconds_per_image": round(res["seconds"] / n_images, 4),
        }
        examples[method] = e[:3, 0]
    np.savez_compressed(out / "examples.npz", **examples)
    prov = provenance(command="bench run brain-edit", config=config, seed=seed,
                      extra={"generator": healthy.meta.get("version")})  # fmt: skip
    model_info = {"source": "shipped demo checkpoint", "sha256": rec["sha256"], "train": rec["train"],
                  "loss_curve": rec["loss_curve"], "command": rec["command"], "n_parameters": rec["n_parameters"]}  # fmt: skip
    doc = stamp(
        {"benchmark": "brain-edit", "mode": "full", "model": model_info,
         "data": {"n_images": n_images, "n_real": n_real, "size": int(x.shape[-1]),
                  "lesion_pixels_mean": float(lesions.reshape(n_images, -1).sum(1).mean())},
         "max_nfe": max_nfe, "n_bootstrap": n_bootstrap, "features": "default (random conv net, 224-d)",
         "methods": results, "examples": str((out / "examples.npz").resolve()),
         "timing_s": {"total": round(time.perf_counter() - start, 2)}},
        prov,
    )  # fmt: skip
    atomic_write_json(out / "metrics.json", doc)
    return doc


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    return {m: {k: r[k]["value"] for k in ("fid", "kid", "preservation_mae", "segmenter_dice")} | {"nfe": r["nfe"]}
            for m, r in doc["methods"].items()}  # fmt: skip


def summary_lines(doc: dict[str, Any]) -> list[str]:
    return [
        f"{LABELS.get(m, m)}: FID {r['fid']['value']:.3f}, KID {r['kid']['value']:.4f}, preservation MAE "
        f"{r['preservation_mae']['value']:.4f}, segmenter Dice {r['segmenter_dice']['value']:.3f}; {r['nfe']} NFE, "
        f"{r['seconds_per_image']:.3f} s/image"
        for m, r in doc["methods"].items()
    ]


def _ci(row: dict[str, Any], digits: int = 3) -> str:
    lo, hi = row["ci"]
    return f"{row['value']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _figure(doc: dict[str, Any]) -> Any:
    from medlens._optional import require

    mpl = require("matplotlib", extra="viz", purpose="report plots")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    ex = np.load(doc["examples"])
    methods = [m for m in METHODS if m in ex]
    n, cols = len(ex["input"]), 2 + 2 * len(methods)
    fig, axes = plt.subplots(n, cols, figsize=(1.3 * cols, 1.4 * n), squeeze=False)
    for i in range(n):
        panels = [("input", ex["input"][i], "gray", -1, 1), ("lesion mask", ex["mask"][i], "gray", 0, 1)]
        for m in methods:
            panels += [
                (f"{m}", ex[m][i], "gray", -1, 1),
                (f"{m}\nedit − input", ex[m][i] - ex["input"][i], "RdBu_r", -1, 1),
            ]
        for ax, (title, img, cmap, lo, hi) in zip(axes[i], panels, strict=True):
            ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=6)
    fig.tight_layout()
    return fig


def report_section(metrics: dict[str, Any]) -> Any:
    """The report section of a ``brain-edit`` run."""
    from medlens.report import Section, figure_html, table_html

    s = Section("brain-edit: counterfactual lesion insertion (MedEdit and baselines)")
    d, mi = metrics["data"], metrics["model"]
    s.paragraph(
        f"{d['n_images']} healthy slices at {d['size']}² from brain-anomaly-v1, each given a synthetic lesion mask "
        f"(mean {d['lesion_pixels_mean']:.0f} pixels) inside its brain; one mask-conditioned denoiser "
        f"({mi['source']}, {mi['n_parameters']:,} parameters) for every method, at most {metrics['max_nfe']} network "
        f"evaluations per image (RePaint's resampling jumps included). FID and KID against {d['n_real']} real "
        "lesioned slices on the fixed default feature extractor (not Inception: compare rows, not papers)."
    )
    s.paragraph(
        "Preservation is the MAE outside the lesion mask dilated by 25 px within the brain: 0 by construction for "
        "MedEdit and RePaint, which paste the input back. The segmenter is a robust intensity threshold, a crude "
        "stand-in for a trained lesion segmenter. The demo denoiser is small and briefly trained on two CPU cores: "
        f"the rows compare samplers on one weak model. Intervals: {metrics['n_bootstrap']} bootstrap resamples.",
        cls="note",
    )
    s.paragraph(
        "Palette, MedEdit's fourth baseline, is not run here: it needs a separately trained Palette-conditioned "
        "model (the lesion filled with noise as its condition; `medlens anomaly train --conditioned palette`), "
        "which this demo's budget does not hold. It is in the API and tests "
        '(`counterfactual_edit(..., method="palette")`, `medlens edit --method palette`).',
        cls="note",
    )
    rows = [[LABELS.get(m, m), _ci(r["fid"]), _ci(r["kid"], 4), _ci(r["preservation_mae"], 4), _ci(r["segmenter_dice"]),
             r["nfe"], r["seconds_per_image"]] for m, r in metrics["methods"].items()]  # fmt: skip
    s.add(table_html(["method", "FID", "KID", "preservation MAE", "segmenter Dice", "NFE / image", "s / image"], rows,
                     caption="Edits per method"))  # fmt: skip
    try:
        if Path(metrics["examples"]).is_file():
            s.add(figure_html(_figure(metrics), "Three slices: input, requested lesion, and per method the edit and "
                                                "its difference from the input."))  # fmt: skip
    except ImportError as exc:
        s.paragraph(f"Plots skipped: {exc}", cls="warn")
    return s


SPEC = BenchmarkSpec(
    name="brain-edit",
    description="Counterfactual lesion insertion on brain-anomaly-v1 slices: MedEdit, naive RePaint and SDEdit "
    "with the shipped mask-conditioned denoiser; preservation, segmenter Dice, FID/KID with CIs",
    run=run,
    report_section=report_section,
    extras=("diffusion", "data", "io", "viz"),
    summarize=summarize,
    summary_lines=summary_lines,
)
