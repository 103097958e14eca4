"""The documents behind ``medlens anomaly train | score | evaluate``: image folders in, stamped JSON out.

Image folders hold ``.png`` or ``.npy`` files (ids = paths relative to the folder, without the suffix, so a map
``a/b.npy`` pairs with a mask ``a/b.png``). Intensities: an ``.npy`` float array is taken as already in [−1, 1]
(values outside are an error); an integer array or PNG is scaled from its type's range (8-bit ``v/127.5 − 1``,
16-bit ``v/32767.5 − 1``). Masks: non-zero is a lesion pixel. Maps are written as float32 ``.npy``, one per
image, under the same ids.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._provenance import config_hash, provenance, stamp
from medlens._validation import InputError, check_option

__all__ = ["read_image_folder", "run_anomaly_evaluate", "run_anomaly_score", "run_anomaly_train"]

SUFFIXES = (".png", ".npy")


def _read_one(path: Path, *, kind: str) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except Exception as e:  # noqa: BLE001 - numpy raises several types for broken files
            raise InputError(f"{path}: cannot read as a .npy array ({type(e).__name__}).") from None
    else:
        pil = require("PIL.Image", extra="vision", purpose="reading PNG images")
        try:
            with pil.open(path) as img:
                a = np.asarray(img)
        except Exception as e:  # noqa: BLE001 - PIL raises many types
            raise InputError(f"{path}: cannot read as an image ({type(e).__name__}).") from None
    a = np.squeeze(a) if a.ndim == 3 and 1 in (a.shape[0], a.shape[-1]) else a
    if a.ndim != 2:
        raise InputError(f"{path}: expected one grey 2-D image (H, W); got shape {a.shape}. Convert it to grey.")
    if kind == "mask":
        return (a > 0).astype(np.uint8)
    if kind == "map":
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise InputError(f"{path}: the map holds NaN or infinite values.")
        return a
    if a.dtype.kind in "ui":
        top = 255.0 if a.dtype.itemsize == 1 else 65535.0
        return (a.astype(np.float32) / (top / 2) - 1.0).astype(np.float32)
    a = a.astype(np.float32)
    if not np.isfinite(a).all() or a.min() < -1 or a.max() > 1:
        raise InputError(
            f"{path}: float images must be finite and scaled to [-1, 1]; got [{a.min():.3g}, {a.max():.3g}]."
        )
    return a


def read_image_folder(folder: str | os.PathLike, *, kind: str = "image", what: str = "--images") -> dict[str, Any]:
    """``{"ids", "paths", "array" (N, 1, H, W)}`` for every .png/.npy under ``folder`` (recursive, sorted);
    ``kind`` ``image`` (scaled to [−1, 1]), ``mask`` (0/1) or ``map`` (finite floats as they are)."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{what} {root}: not a folder; give a folder of .png or .npy images.")
    paths = sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not paths:
        raise InputError(f"{what} {root}: no .png or .npy images in this folder.")
    ids = [p.relative_to(root).with_suffix("").as_posix() for p in paths]
    dup = next((i for i, j in zip(ids, ids[1:], strict=False) if i == j), None)
    if dup:
        raise InputError(f"{what} {root}: two files share the id {dup!r} (.png and .npy); keep one.")
    arrays = [_read_one(p, kind=kind) for p in paths]
    shape = arrays[0].shape
    bad = next((p for p, a in zip(paths, arrays, strict=True) if a.shape != shape), None)
    if bad is not None:
        raise InputError(f"{bad}: shape {_read_one(bad, kind=kind).shape} differs from {paths[0].name}'s {shape}.")
    return {"ids": ids, "paths": paths, "array": np.stack(arrays)[:, None]}


def run_anomaly_train(
    out: str | os.PathLike,
    *,
    images: str | os.PathLike | None = None,
    generator: str | None = None,
    n_images: int = 256,
    size: int = 64,
    steps: int = 1000,
    batch_size: int = 16,
    lr: float = 1e-3,
    num_train_timesteps: int = 1000,
    noise: str = "gaussian",
    unet: dict[str, Any] | None = None,
    conditioned: str | None = None,
    seed: int = 0,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Train a denoiser on healthy images (a folder, or a registered generator's ``train`` split) into the run
    folder ``out`` (``model.safetensors`` + checkpoint, resumable). ``steps`` optimiser steps in all, in
    epochs of at most 100.

    ``conditioned="class"`` (weakly supervised, for the guidance methods): the images are healthy (class 0)
    and diseased (class 1) — a folder's ``healthy/`` and ``anomalous/`` sub-folders, or the generator's
    ``train`` split plus as many slices with lesions; the denoiser is class-conditioned (null-class dropout
    0.1, for ``cfg``) and a noise-aware classifier is trained for ``steps`` steps too, into
    ``out/classifier`` (for ``classifier``).

    ``conditioned="mask"`` (an inpainting model for ``medlens edit``): images with lesions and their lesion masks
    — a folder's ``images/`` and ``masks/`` sub-folders (paired by id), or the generator's ``train`` split with
    lesions; the denoiser sees ``[x_t, x_0⊙(1−m), m]`` (``mask_conditioned`` in its config)."""
    from medlens.diffusion import DATASETS
    from medlens.diffusion._backbones import build_unet
    from medlens.diffusion._train import train_diffusion

    if (images is None) == (generator is None):
        raise InputError("give exactly one of --images DIR and --generator NAME.")
    if conditioned is not None:
        check_option(conditioned, ("class", "mask"), name="--conditioned")
    labels = masks = None
    if generator is not None:
        from medlens.diffusion._brain import BrainConfig, brain_slices

        gen = DATASETS.get(generator)
        n_healthy = 0 if conditioned == "mask" else n_images  # the mask model trains on lesioned slices only
        data = gen(n_train=n_healthy, n_healthy=0, n_test=0, seed=seed, config=BrainConfig(size=size))
        x, source = data["train"].images, {"generator": DATASETS.meta(generator).get("version", generator)}
        if conditioned == "mask":
            bad = brain_slices(n_images, anomalous=True, seed=seed, split="train", config=BrainConfig(size=size))
            x, masks = bad.images, bad.masks
        if conditioned == "class":
            bad = brain_slices(n_images, anomalous=True, seed=seed, split="train", config=BrainConfig(size=size))
            x, labels = np.concatenate([x, bad.images]), np.repeat([0, 1], [len(x), len(bad.images)])
    elif conditioned == "mask":
        x, masks = _image_mask_pairs(images)
        source = {"images": str(images), "n": len(x)}
    else:
        folder = read_image_folder(images)
        x, source = folder["array"], {"images": str(images), "n": len(folder["ids"])}
        if conditioned == "class":
            labels = _class_labels(folder["ids"], images)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"--steps must be a positive integer; got {steps!r}.")
    epochs = math.ceil(steps / 100)
    per_epoch = math.ceil(steps / epochs)
    cfg = {"sample_size": int(x.shape[-1]), **({"num_classes": 2} if labels is not None else {}),
           **({"mask_conditioned": True} if masks is not None else {}), **(unet or {})}  # fmt: skip
    model = build_unet(cfg, seed=seed)
    res = train_diffusion(model, x, labels=labels, masks=masks, epochs=epochs, steps_per_epoch=per_epoch, batch_size=batch_size, lr=lr,
                          num_train_timesteps=num_train_timesteps, noise=noise, seed=seed, out=out, resume=resume,
                          overwrite=overwrite, progress=progress)  # fmt: skip
    config = {"source": source, "steps": epochs * per_epoch, "batch_size": batch_size, "lr": lr, "noise": noise,
              "num_train_timesteps": num_train_timesteps, "unet": model.config}  # fmt: skip
    hist = res["history"]
    extra: dict[str, Any] = {}
    if masks is not None:
        config |= {"conditioned": conditioned}
    if labels is not None:
        from medlens.diffusion._guidance import build_classifier, train_classifier

        clf = build_classifier({"sample_size": int(x.shape[-1]), "in_channels": int(x.shape[1])}, seed=seed)
        cres = train_classifier(clf, x, labels, epochs=epochs, steps_per_epoch=per_epoch, batch_size=batch_size,
                                lr=lr, num_train_timesteps=num_train_timesteps, seed=seed, out=Path(out) / "classifier",
                                resume=resume, overwrite=overwrite, progress=progress)  # fmt: skip
        ch = cres["history"]
        config |= {"conditioned": conditioned, "classifier": clf.config}
        extra = {"classifier_path": str(cres["classifier_path"]), "n_labels": [int((labels == k).sum()) for k in (0, 1)],
                 "classifier_first_loss": ch[0]["train_loss"] if ch else None,
                 "classifier_last_loss": ch[-1]["train_loss"] if ch else None}  # fmt: skip
    return stamp(
        {**extra, "model_path": str(res["model_path"]), "steps": epochs * per_epoch, "image_shape": list(x.shape[1:]),
         "n_parameters": int(sum(p.numel() for p in model.parameters())),
         "first_loss": hist[0]["train_loss"] if hist else None, "last_loss": hist[-1]["train_loss"] if hist else None},
        provenance(command="anomaly train", config=config, seed=seed),
    )  # fmt: skip


def _image_mask_pairs(images: Any) -> tuple[np.ndarray, np.ndarray]:
    root = Path(images)
    if not (root / "images").is_dir() or not (root / "masks").is_dir():
        raise InputError(
            f"--images {images}: --conditioned mask needs two sub-folders, images/ and masks/ (paired by id)."
        )
    img = read_image_folder(root / "images", what="--images")
    msk = read_image_folder(root / "masks", kind="mask", what="--images masks/")
    index = {i: k for k, i in enumerate(msk["ids"])}
    missing = [i for i in img["ids"] if i not in index]
    if missing:
        raise InputError(f"--images {images}: masks/ has no mask for image {missing[0]!r} ({len(missing)} missing).")
    m = msk["array"][[index[i] for i in img["ids"]]]
    if m.shape != img["array"].shape:
        raise InputError(f"--images {images}: masks are {m.shape[2:]} but images are {img['array'].shape[2:]}.")
    return img["array"], m


def _class_labels(ids: list[str], images: Any) -> np.ndarray:
    top = [i.split("/", 1)[0] for i in ids]
    bad = next((i for i, t in zip(ids, top, strict=True) if t not in ("healthy", "anomalous")), None)
    if bad is not None or "healthy" not in top or "anomalous" not in top:
        raise InputError(
            f"--images {images}: --conditioned class needs the images in two sub-folders, healthy/ and anomalous/"
            + (f" (found {bad!r})." if bad else " (one of them is missing or empty).")
        )
    return np.array([0 if t == "healthy" else 1 for t in top])


def _model_file(path: str | os.PathLike) -> Path:
    from medlens.diffusion._train import MODEL_FILE

    p = Path(path)
    if p.is_dir():
        p = p / MODEL_FILE
    if not p.is_file():
        raise InputError(f"--model-path {path}: no model file here (give a model.safetensors or its run folder).")
    return p


def run_anomaly_score(
    model_path: str | os.PathLike,
    images: str | os.PathLike,
    out: str | os.PathLike,
    *,
    method: str = "anoddpm",
    t0: int = 250,
    steps: int | None = 25,
    scale: float = 10.0,
    weight: float = 3.0,
    batch_size: int = 16,
    seed: int = 0,
    device: str = "cpu",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Score every image of a folder: one float32 map ``out/maps/<id>.npy`` each, one ``results.jsonl`` row
    each (id, score, nfe, seconds). Images go in fixed chunks of ``batch_size`` (seed ``seed + chunk``), so an
    interrupted run re-run with the same ``out`` skips finished chunks and ends with the same maps.

    ``classifier`` uses the noise-aware classifier trained next to the model (``classifier/classifier.safetensors``
    in the run folder of ``anomaly train --conditioned class``) with gradient scale ``scale``; ``cfg`` needs a
    class-conditioned model and uses guidance weight ``weight``."""
    from medlens._device import resolve_device
    from medlens.diffusion._backbones import load_unet
    from medlens.diffusion._reconstruct import METHODS, score_images
    from medlens.diffusion._schedule import make_schedule
    from medlens.io import RunFolder, atomic_write_bytes

    check_option(method, METHODS, name="--method")
    path = _model_file(model_path)
    folder = read_image_folder(images)
    model, meta = load_unet(path)
    want = (model.config["in_channels"], model.config["sample_size"], model.config["sample_size"])
    if tuple(folder["array"].shape[1:]) != want:
        raise InputError(
            f"--images are {tuple(folder['array'].shape[2:])} with 1 channel; the model {path.name} takes "
            f"{want[0]} channel(s) of {want[1]}x{want[2]}. Resize the images to the checkpoint's size."
        )
    clf = None
    if method == "classifier":
        from medlens.diffusion._guidance import CLASSIFIER_FILE, load_classifier

        cpath = path.parent / "classifier" / CLASSIFIER_FILE
        if not cpath.is_file():
            raise InputError(f"--method classifier: no {cpath} next to the model; train with --conditioned class.")
        clf = load_classifier(cpath)[0].to(resolve_device(device))
    if method == "cfg" and model.null_class is None:
        raise InputError(f"--method cfg: {path.name} is not class-conditioned; train it with --conditioned class.")
    model = model.to(resolve_device(device))
    sched = make_schedule(meta.get("schedule", "linear"), int(meta.get("num_train_timesteps", 1000)))
    config = {"task": "anomaly.score", "model_sha": config_hash({"file": str(path.resolve()), "size": path.stat().st_size}),
              "method": method, "t0": t0, "steps": steps, "batch_size": batch_size, "seed": seed,
              **({"scale": scale} if method == "classifier" else {"weight": weight} if method == "cfg" else {}),
              "ids": config_hash(folder["ids"])}  # fmt: skip
    prov = provenance(command="anomaly score", config=config, seed=seed, models={"unet": str(path)})
    with RunFolder(out, config, overwrite=overwrite, provenance=prov, outputs=["results.jsonl", "maps"]) as run:
        run.write_manifest(status="running")
        log = run.log("results.jsonl")
        done = log.ids()
        maps_dir = run.subdir("maps")
        for k, start in enumerate(range(0, len(folder["ids"]), batch_size)):
            ids = folder["ids"][start : start + batch_size]
            if all(i in done for i in ids):
                continue
            t = time.perf_counter()
            res = score_images(model, folder["array"][start : start + batch_size], sched, method=method, t0=t0,
                               steps=steps, seed=seed + k, batch_size=batch_size, classifier=clf, scale=scale,
                               w=weight)  # fmt: skip
            per = (time.perf_counter() - t) / len(ids)
            for i, m, s in zip(ids, res["maps"], res["scores"], strict=True):
                target = maps_dir / f"{i}.npy"
                target.parent.mkdir(parents=True, exist_ok=True)
                buf = _npy_bytes(m[0])
                atomic_write_bytes(target, buf)
                if i not in done:
                    log.append({"id": i, "score": float(s), "nfe": res["nfe"], "seconds": per})
        records = log.records()
        run.write_manifest(status="done")
    nfe = [r["nfe"] for r in records]
    return stamp(
        {"method": method, "t0": t0, "steps": steps, "n_images": len(records), "maps": str(Path(out) / "maps"),
         "nfe_per_image": max(nfe) if nfe else 0,
         "seconds_per_image": float(np.mean([r["seconds"] for r in records])) if records else 0.0},
        prov,
    )  # fmt: skip


def _npy_bytes(a: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.asarray(a, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def _paired(maps: dict[str, Any], masks: dict[str, Any], what: str) -> np.ndarray:
    index = {i: k for k, i in enumerate(masks["ids"])}
    missing = [i for i in maps["ids"] if i not in index]
    if missing:
        raise InputError(f"--masks has no mask for map {missing[0]!r} ({len(missing)} missing); one mask per map.")
    m = masks["array"][[index[i] for i in maps["ids"]]]
    if m.shape != maps["array"].shape:
        raise InputError(f"{what}: masks are {m.shape[2:]} but maps are {maps['array'].shape[2:]}; they must match.")
    return m


def run_anomaly_evaluate(
    maps: str | os.PathLike,
    masks: str | os.PathLike,
    *,
    healthy: str | os.PathLike | None = None,
    fpr: float = 0.05,
    n_bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Evaluate a folder of maps against a folder of masks (paired by id); ``healthy`` maps fit the FPR
    threshold (else the oracle threshold is used, labelled so). See
    :func:`~medlens.diffusion.evaluate_localization` for the keys."""
    from medlens.diffusion._evaluate import evaluate_localization

    mp = read_image_folder(maps, kind="map", what="--maps")
    mk = read_image_folder(masks, kind="mask", what="--masks")
    truth = _paired(mp, mk, "--masks")
    hm = read_image_folder(healthy, kind="map", what="--healthy")["array"] if healthy is not None else None
    if hm is not None and hm.shape[1:] != mp["array"].shape[1:]:
        raise InputError(f"--healthy maps are {hm.shape[2:]} but --maps are {mp['array'].shape[2:]}; they must match.")
    doc = evaluate_localization(mp["array"], truth, healthy_maps=hm, fpr=fpr, n_bootstrap=n_bootstrap, ci=ci, seed=seed)
    config = {"fpr": fpr, "n_bootstrap": n_bootstrap, "ci": ci, "ids": config_hash(mp["ids"])}
    inputs = {"maps": str(maps), "masks": str(masks), **({"healthy": str(healthy)} if healthy else {})}
    return stamp(doc, provenance(command="anomaly evaluate", config=config, seed=seed, extra={"folders": inputs}))
