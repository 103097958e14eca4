"""The ``brain-anomaly`` benchmark: diffusion anomaly localisation on brain-anomaly-v1 (augmented MNI152 slices
with synthetic lesions, 64²), every method scored on the same images with the same denoiser.

Quick mode loads the shipped demo denoiser (``demo_unet.safetensors``, sha256-checked; trained by
``scripts/train_demo_diffusion.py``) and scores ``n_test`` test images (half with lesions) and ``n_healthy``
healthy images (for the label-free threshold at pixel FPR ``fpr``) with AnoDDPM-Gaussian, AnoDDPM-simplex,
patched (pDDPM) and THOR, DDIM-respaced to ``steps`` network evaluations (the patched method: one x̂_0 per
patch). Maps are post-processed alike (brain mask eroded by H/25, 5×5 median filter). Per method: pixel AUPRC
and AUROC, Dice at the healthy-FPR threshold, image AUROC (map mean), each with bootstrap CIs over test images
(``n_bootstrap`` resamples), plus NFE and seconds per image, and the normative-learning metrics of the
reconstructions (RQI, CACI, AHI; :mod:`medlens.metrics.normative`). ``full=True`` trains the same UNet from scratch
(``train_steps`` steps), plus a class-conditioned UNet and a noise-aware classifier on healthy and lesioned
training slices, and adds the guidance methods ``classifier`` and ``cfg``.

Cost of the quick mode (it is in the quick demo, budget 120 s): 96 images go through each denoising step as
one batch (``torch.inference_mode``, channels-last UNet), t0 = 250 DDIM-respaced to 10 steps (10 network
evaluations per image for AnoDDPM, simplex and THOR; THOR harmonises at 214, 107 and 36), the patched method
9 patches of 32² on a stride of 16 with one x̂_0 each (9 evaluations): 39 UNet passes over 96 images. It runs
torch single-threaded by default: on a shared 2-core machine two threads spin-wait (97 s wall at load 3–4 with
one thread; 361 s with two at load 4–7).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from medlens._progress import progress_bar
from medlens._provenance import provenance, stamp
from medlens.benchmarks._spec import BenchmarkSpec

__all__ = ["SPEC", "run", "report_section", "summarize", "summary_lines"]

QUICK_METHODS = ("anoddpm", "simplex", "patched", "thor")
GUIDED_METHODS = ("classifier", "cfg")
LABELS = {"anoddpm": "AnoDDPM (Gaussian)", "simplex": "AnoDDPM (simplex)", "patched": "patched (pDDPM)",
          "thor": "THOR", "classifier": "classifier guidance", "cfg": "classifier-free guidance"}  # fmt: skip


def _demo_model() -> tuple[Any, dict[str, Any]]:
    from medlens._provenance import file_sha256
    from medlens._validation import InputError
    from medlens.benchmarks.brain_anomaly._demo import DEMO_FILE, demo_record
    from medlens.diffusion import load_unet

    rec = demo_record()
    if not DEMO_FILE.is_file() or file_sha256(DEMO_FILE) != rec["sha256"]:
        raise InputError(f"{DEMO_FILE}: missing or not the recorded file (sha256 {rec['sha256'][:12]}…); reinstall "
                         "medlens or rerun scripts/train_demo_diffusion.py.")  # fmt: skip
    model, _ = load_unet(DEMO_FILE)
    return model, rec


def run(
    out_dir: str | Path,
    *,
    seed: int = 0,
    full: bool = False,
    n_test: int = 48,
    n_healthy: int = 48,
    t0: int = 250,
    steps: int = 10,
    fpr: float = 0.05,
    n_bootstrap: int = 200,
    train_steps: int | None = None,
    threads: int | None = 1,
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run the benchmark into ``out_dir`` and return the ``metrics.json`` document (see the module docstring).
    ``threads``: torch's intra-op threads while it runs (``None`` leaves torch's setting)."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return _run(out_dir, seed=seed, full=full, n_test=n_test, n_healthy=n_healthy, t0=t0, steps=steps, fpr=fpr,
                    n_bootstrap=n_bootstrap, train_steps=train_steps, threads=threads, progress=progress,
                    overwrite=overwrite)  # fmt: skip
    finally:
        torch.set_num_threads(before)


def _run(
    out_dir: str | Path,
    *,
    seed: int,
    full: bool,
    n_test: int,
    n_healthy: int,
    t0: int,
    steps: int,
    fpr: float,
    n_bootstrap: int,
    train_steps: int | None,
    threads: int | None,
    progress: bool,
    overwrite: bool,
) -> dict[str, Any]:
    import torch

    from medlens.benchmarks.brain_anomaly._demo import DEMO_TRAIN, DEMO_UNET
    from medlens.diffusion import (
        evaluate_localization,
        generate_brain_anomaly,
        load_unet,
        make_schedule,
        postprocess_maps,
        run_anomaly_train,
        score_images,
    )
    from medlens.io import atomic_write_json, prepare_run_dir

    start = time.perf_counter()
    out = Path(out_dir)
    config = {"seed": seed, "full": full, "n_test": n_test, "n_healthy": n_healthy, "t0": t0, "steps": steps,
              "fpr": fpr, "n_bootstrap": n_bootstrap, "train_steps": train_steps, "threads": threads}  # fmt: skip
    prepare_run_dir(out, config, overwrite=overwrite)
    data = generate_brain_anomaly(n_train=0, n_healthy=n_healthy, n_test=n_test, seed=seed)
    test, healthy = data["test"], data["healthy"]
    t_train = 0.0
    models: dict[str, Any] = {}
    if full:
        t = time.perf_counter()
        train = {**DEMO_TRAIN, "seed": seed, **({"steps": train_steps} if train_steps else {})}
        doc = run_anomaly_train(out / "model", generator="brain-anomaly", unet=DEMO_UNET, progress=progress,
                                overwrite=overwrite, **train)  # fmt: skip
        model, _ = load_unet(doc["model_path"])
        cdoc = run_anomaly_train(out / "model-class", generator="brain-anomaly", unet=DEMO_UNET, conditioned="class",
                                 progress=progress, overwrite=overwrite, **train)  # fmt: skip
        from medlens.diffusion import load_classifier

        models["cfg"] = load_unet(cdoc["model_path"])[0]
        classifier = load_classifier(cdoc["classifier_path"])[0]
        t_train = time.perf_counter() - t
        model_info = {"source": "trained from scratch", "train": train, "last_loss": doc["last_loss"],
                      "class_model_last_loss": cdoc["last_loss"], "classifier_last_loss": cdoc["classifier_last_loss"]}  # fmt: skip
    else:
        model, rec = _demo_model()
        classifier = None
        model_info = {"source": "shipped demo checkpoint", "sha256": rec["sha256"], "train": rec["train"],
                      "loss_curve": rec["loss_curve"], "command": rec["command"]}  # fmt: skip
    model_info["n_parameters"] = int(sum(p.numel() for p in model.parameters()))
    sched = make_schedule("linear", 1000)
    x = np.concatenate([test.images, healthy.images])
    brain = np.concatenate([test.brain, healthy.brain])
    methods = QUICK_METHODS + (GUIDED_METHODS if full else ())
    results: dict[str, Any] = {}
    examples: dict[str, np.ndarray] = {}
    pick = np.array([0, 1, 2])  # three lesion images
    label = f"brain-anomaly: scoring {len(x)} slices, {len(methods)} methods"
    with progress_bar(len(methods), progress, label, transient=True) as advance:
        for method in methods:
            torch.manual_seed(seed)
            kw = {"classifier": classifier} if method == "classifier" else {}
            res = score_images(models.get(method, model), x, sched, method=method, t0=t0, steps=steps, seed=seed,
                               batch_size=48, **kw)  # fmt: skip
            maps = postprocess_maps(res["maps"], brain=brain)
            ev = evaluate_localization(maps[:n_test], test.masks,
                                       healthy_maps=maps[n_test:], fpr=fpr, n_bootstrap=n_bootstrap, seed=seed)  # fmt: skip
            results[method] = {
                **{k: ev[k] for k in ("auprc", "auroc", "dice", "dice_per_image", "image_auroc", "fpr")},
                "threshold": ev["threshold"],
                "oracle_dice": ev["thresholds"]["oracle"]["dice"],
                "nfe": res["nfe"],
                "seconds_per_image": round(res["seconds_per_image"], 4),
            }
            results[method]["normative"] = _normative(res["reconstructions"], test, healthy)
            examples[f"{method}_recon"] = res["reconstructions"][pick, 0]
            examples[f"{method}_map"] = maps[pick, 0]
            advance(1)
    examples["input"] = test.images[pick, 0]
    examples["truth"] = test.masks[pick, 0]
    np.savez_compressed(out / "examples.npz", **examples)
    unet = (f"demo checkpoint sha256:{model_info['sha256'][:12]}" if "sha256" in model_info
            else f"trained from scratch in this run ({model_info['n_parameters']:,} parameters)")  # fmt: skip
    prov = provenance(command="bench run brain-anomaly", config=config, seed=seed, models={"unet": unet},
                      extra={"generator": data["meta"].get("version")})  # fmt: skip
    doc = stamp(
        {"benchmark": "brain-anomaly", "mode": "full" if full else "quick", "model": model_info,
         "data": {"n_test": n_test, "n_lesion": int(test.masks.reshape(n_test, -1).any(1).sum()),
                  "n_healthy": n_healthy, "size": int(x.shape[-1])},
         "t0": t0, "steps": steps, "fpr": fpr, "n_bootstrap": n_bootstrap, "methods": results,
         "examples": str((out / "examples.npz").resolve()),
         "timing_s": {"train": round(t_train, 2), "total": round(time.perf_counter() - start, 2)}},
        prov,
    )  # fmt: skip
    atomic_write_json(out / "metrics.json", doc)
    return doc


def _normative(recon: np.ndarray, test: Any, healthy: Any) -> dict[str, Any]:
    """RQI on the healthy slices' reconstructions, CACI on the lesion slices (inside the lesion vs the rest of
    the brain), AHI of the lesion slices' reconstructions (reference: the healthy slices; floor: the test
    slices without a lesion; default block-mean features)."""
    from medlens.metrics import anomaly_to_healthy_index, masked_fidelity, restoration_quality

    n = len(test.images)
    lesion = test.masks.reshape(n, -1).any(axis=1)
    r_test = recon[:n]
    return {
        "rqi": restoration_quality(healthy.images, recon[n:]),
        "caci": masked_fidelity(test.images[lesion], r_test[lesion], masks=test.masks[lesion], region=test.brain[lesion]),
        "ahi": anomaly_to_healthy_index(test.images[lesion], r_test[lesion], healthy_reference=healthy.images,
                                        healthy_unseen=test.images[~lesion]),
    }  # fmt: skip


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    return {m: {k: r[k]["value"] for k in ("auprc", "dice", "image_auroc")} | {"nfe": r["nfe"]}
            for m, r in doc["methods"].items()}  # fmt: skip


def summary_lines(doc: dict[str, Any]) -> list[str]:
    return [
        f"{LABELS[m]}: AUPRC {r['auprc']['value']:.3f}, Dice@FPR{doc['fpr']:g} {r['dice']['value']:.3f}, image AUROC "
        f"{r['image_auroc']['value']:.3f}; {r['nfe']} NFE, {r['seconds_per_image']:.3f} s/image"
        for m, r in doc["methods"].items()
    ]


def _ci(row: dict[str, Any]) -> str:
    lo, hi = row["ci"] if row.get("ci") else (None, None)
    return f"{row['value']:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None else f"{row['value']:.3f}"


def _figure(doc: dict[str, Any]) -> Any:
    from medlens._optional import require

    mpl = require("matplotlib", extra="viz", purpose="report plots")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    ex = np.load(doc["examples"])
    methods = list(doc["methods"])
    n = len(ex["input"])
    cols = 2 + 2 * len(methods)
    fig, axes = plt.subplots(n, cols, figsize=(1.3 * cols, 1.4 * n), squeeze=False)
    for i in range(n):
        panels = [("input", ex["input"][i], "gray", (-1, 1)), ("truth", ex["truth"][i], "gray", (0, 1))]
        for m in methods:
            panels += [(f"{m}\nreconstruction", ex[f"{m}_recon"][i], "gray", (-1, 1)),
                       (f"{m}\nmap", ex[f"{m}_map"][i], "magma", (0, None))]  # fmt: skip
        for ax, (title, img, cmap, (lo, hi)) in zip(axes[i], panels, strict=True):
            ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=6)
    fig.tight_layout()
    return fig


def report_section(metrics: dict[str, Any]) -> Any:
    """The report section of a ``brain-anomaly`` run."""
    from medlens.report import Section, figure_html, table_html

    d, mi = metrics["data"], metrics["model"]
    s = Section(
        "brain-anomaly: diffusion anomaly localisation on augmented MNI152 slices",
        data=f"brain-anomaly-v1: MNI152 T1 slices (nilearn's wheel) with synthetic lesions, {d['n_test']} test / "
        f"{d['n_healthy']} healthy at {d['size']}²",
        model=f"diffusion denoiser {mi['source']} ({mi['n_parameters']:,} parameters)",
    )
    s.paragraph(
        f"{d['n_test']} test slices ({d['n_lesion']} with a synthetic lesion) and {d['n_healthy']} healthy slices "
        f"at {d['size']}² from the brain-anomaly-v1 generator; one denoiser ({mi['source']}, "
        f"{mi['n_parameters']:,} parameters) for the reconstruction methods. Noise to t0 = {metrics['t0']} of 1000, "
        f"DDIM-respaced to {metrics['steps']} steps; maps multiplied by the eroded brain mask and median-filtered."
    )
    s.paragraph(
        f"Dice at the threshold leaving a pixel FPR of {metrics['fpr']:g} on the healthy slices (label-free); the "
        "oracle Dice (threshold chosen on the test labels) is shown for reference only. Intervals: "
        f"{metrics['n_bootstrap']} bootstrap resamples of test images. The demo denoiser is small and briefly "
        "trained on two CPU cores: the numbers compare methods on one weak model, not the methods' ceiling. "
        "It was trained with Gaussian noise, so AnoDDPM-simplex runs it off its training noise (AnoDDPM trains "
        "a separate simplex model).",
        cls="note",
    )
    rows = [[LABELS[m], _ci(r["auprc"]), _ci(r["auroc"]), _ci(r["dice"]), r["oracle_dice"], _ci(r["image_auroc"]),
             r["nfe"], r["seconds_per_image"]] for m, r in metrics["methods"].items()]  # fmt: skip
    s.add(table_html(["method", "pixel AUPRC", "pixel AUROC", f"Dice @ FPR {metrics['fpr']:g}", "oracle Dice",
                      "image AUROC", "NFE / image", "s / image"], rows, caption="Localisation per method"))  # fmt: skip
    norm = {m: r["normative"] for m, r in metrics["methods"].items() if "normative" in r}
    if norm:
        s.paragraph(
            "Normative-learning metrics of the reconstructions (Bercea et al., Nat. Commun. 2025): RQI = fidelity on "
            "the healthy slices (MAE in [-1, 1] units, SSIM); CACI = MAE inside the lesions vs in the rest of the "
            "brain, and their ratio (higher: the lesion is changed more than its context); AHI = 1 − [FID(R_P, N) − "
            "FID(U_N, N)] / [FID(P, N) − FID(U_N, N)] on 8×8 block-mean intensity features, with N the healthy "
            "slices, U_N the test slices without a lesion, P the lesion slices and R_P their reconstructions (our "
            "interpretation of the paper's FID triplet; 1: as healthy as unseen healthy slices, 0: no change).",
            cls="note",
        )
        nrows = [[LABELS[m], round(d["rqi"]["mae"], 4), round(d["rqi"]["ssim"], 3), round(d["caci"]["inside"]["mae"], 4),
                  round(d["caci"]["outside"]["mae"], 4), round(d["caci"]["mae_ratio"], 2), round(d["ahi"]["ahi"], 3)]
                 for m, d in norm.items()]  # fmt: skip
        s.add(table_html(["method", "RQI MAE", "RQI SSIM", "CACI MAE lesion", "CACI MAE context", "CACI ratio", "AHI"],
                         nrows, caption="Normative-learning metrics per method"))  # fmt: skip
    try:
        if Path(metrics["examples"]).is_file():
            s.add(figure_html(_figure(metrics), "Three lesion slices: input, truth, and per method the reconstruction "
                                                "and the post-processed anomaly map."))  # fmt: skip
    except ImportError as exc:
        s.paragraph(f"Plots skipped: {exc}", cls="warn")
    return s


SPEC = BenchmarkSpec(
    name="brain-anomaly",
    description="Diffusion anomaly localisation on brain-anomaly-v1 (MNI152 slices, synthetic lesions): AnoDDPM "
    "Gaussian/simplex, patched, THOR (full: + classifier and classifier-free guidance)",
    run=run,
    report_section=report_section,
    extras=("diffusion", "data", "io", "viz"),
    summarize=summarize,
    summary_lines=summary_lines,
)
