"""The document behind ``medlens edit``: insert a lesion into one image, or into every image of a folder.

Inputs are read like ``medlens anomaly``'s (``.png``/``.npy``; 8/16-bit images scaled to [−1, 1], float
``.npy`` taken as already in [−1, 1]; masks: non-zero is inside). Single mode writes the edit to ``--out``
(``.npy`` float32, or an 8-bit ``.png``). Folder mode pairs ``--lesion-masks`` (and ``--brain-masks``) with
``--images`` by id and writes ``out/edits/<id>.npy`` plus one ``results.jsonl`` row per image into a run
folder with a ``manifest.json``: images go in fixed chunks of ``batch_size`` (seed ``seed + chunk``), so a
re-run with the same ``--out`` skips finished chunks and ends with the same edits; another configuration in
the folder exits 2 unless ``--overwrite``.

Every row and the summary report the network evaluations, seconds, the preservation MAE outside the region
``dilate(P, k) ∩ B`` (exactly 0 for MedEdit and RePaint; ``null`` when the region covers the whole image) and the default segmenter's Dice against the
requested lesion (:func:`~medlens.diffusion.edit.threshold_segmenter`; a crude stand-in, see its docstring).
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from medlens._provenance import config_hash, file_sha256, provenance, stamp
from medlens._validation import InputError, check_option

__all__ = ["run_edit"]


def _read(path: str | os.PathLike, kind: str, flag: str) -> np.ndarray:
    from medlens.diffusion._folders import read_image_file

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{flag} {p}: no such file; give a .png or .npy image.")
    if p.suffix.lower() not in (".png", ".npy"):
        raise InputError(f"{flag} {p}: expected a .png or .npy file; got {p.suffix or 'no suffix'}.")
    return read_image_file(p, kind=kind)


def _pair(ids: list[str], other: dict[str, Any], flag: str, shape: tuple[int, ...]) -> np.ndarray:
    index = {i: k for k, i in enumerate(other["ids"])}
    missing = [i for i in ids if i not in index]
    if missing:
        raise InputError(
            f"{flag} has no mask for image {missing[0]!r} ({len(missing)} missing); one mask per image id."
        )
    m = other["array"][[index[i] for i in ids]]
    if m.shape[2:] != shape:
        raise InputError(
            f"{flag}: masks are {m.shape[2]}x{m.shape[3]} but the images are {shape[0]}x{shape[1]}; they must match."
        )
    return m


def _check_pair(image: np.ndarray, mask: np.ndarray, where: str, flag: str) -> None:
    if mask.shape != image.shape:
        raise InputError(
            f"{flag} {where}: the mask is {mask.shape[0]}x{mask.shape[1]} but the image is "
            f"{image.shape[0]}x{image.shape[1]}; give a mask of the image's size."
        )


def _mean(values: list[Any]) -> float | None:
    """The mean of the values that are not ``None`` (a region covering a whole image has no preservation)."""
    kept = [float(v) for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _digest(*arrays: Any) -> str:
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        h.update(b"-" if a is None else np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _write_image(path: Path, a: np.ndarray) -> None:
    from medlens.io import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    if path.suffix.lower() == ".png":
        from medlens._optional import require

        pil = require("PIL.Image", extra="vision", purpose="writing PNG images")
        pil.fromarray(np.clip(np.round((a + 1) * 127.5), 0, 255).astype(np.uint8)).save(buf, format="PNG")
    else:
        np.save(buf, np.asarray(a, dtype=np.float32), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def _load(model_path: str | os.PathLike, method: str, size: tuple[int, int], device: str) -> tuple[Any, Any, Path]:
    from medlens._device import resolve_device
    from medlens.diffusion._backbones import load_unet
    from medlens.diffusion._run import _model_file
    from medlens.diffusion._schedule import make_schedule
    from medlens.diffusion.edit._samplers import check_model_for_method

    path = _model_file(model_path)
    model, meta = load_unet(path)
    want = (model.config["sample_size"], model.config["sample_size"])
    if tuple(size) != want or model.config["in_channels"] != 1:
        raise InputError(
            f"the images are {size[0]}x{size[1]} with 1 channel; the model {path.name} takes "
            f"{model.config['in_channels']} channel(s) of {want[0]}x{want[1]}. Resize the images to the checkpoint's size."
        )
    check_model_for_method(model, method, what=f"the checkpoint {path}", flag="--method")
    sched = make_schedule(meta.get("schedule", "linear"), int(meta.get("num_train_timesteps", 1000)))
    return model.to(resolve_device(device)), sched, path


def run_edit(
    model_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    image: str | os.PathLike | None = None,
    lesion_mask: str | os.PathLike | None = None,
    brain_mask: str | os.PathLike | None = None,
    images: str | os.PathLike | None = None,
    lesion_masks: str | os.PathLike | None = None,
    brain_masks: str | os.PathLike | None = None,
    method: str = "mededit",
    dilate: int | None = None,
    steps: int = 50,
    strength: float | None = None,
    resample: int | None = None,
    eta: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
    device: str = "cpu",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Edit one image (``image`` + ``lesion_mask`` → the file ``out``) or a folder (``images`` +
    ``lesion_masks`` → the run folder ``out``); see the module docstring. Returns the stamped summary."""
    from medlens.diffusion.edit._metrics import preservation_mae, segmenter_dice
    from medlens.diffusion.edit._samplers import DEFAULTS, EDIT_METHODS, counterfactual_edit

    check_option(method, EDIT_METHODS, name="--method")
    single = image is not None or lesion_mask is not None
    if single == (images is not None or lesion_masks is not None):
        raise InputError("give either --image and --lesion-mask (one edit) or --images and --lesion-masks (a folder).")
    if single and (image is None or lesion_mask is None):
        raise InputError("one edit needs both --image IMG and --lesion-mask MASK.")
    if not single and (images is None or lesion_masks is None):
        raise InputError("a folder of edits needs both --images DIR and --lesion-masks DIR.")
    if single and brain_masks is not None or not single and brain_mask is not None:
        raise InputError("--brain-mask goes with --image, --brain-masks with --images.")
    if single:
        ids = [Path(image).stem]
        x = _read(image, "image", "--image")
        p = _read(lesion_mask, "mask", "--lesion-mask")
        _check_pair(x, p, str(lesion_mask), "--lesion-mask")
        b = None
        if brain_mask is not None:
            b = _read(brain_mask, "mask", "--brain-mask")
            _check_pair(x, b, str(brain_mask), "--brain-mask")
        x, p, b = x[None, None], p[None, None], None if b is None else b[None, None]
        inputs = {"image": image, "lesion_mask": lesion_mask, **({"brain_mask": brain_mask} if brain_mask else {})}
    else:
        from medlens.diffusion._run import read_image_folder

        folder = read_image_folder(images, what="--images")
        ids, x = folder["ids"], folder["array"]
        p = _pair(
            ids, read_image_folder(lesion_masks, kind="mask", what="--lesion-masks"), "--lesion-masks", x.shape[2:]
        )
        b = None
        if brain_masks is not None:
            b = _pair(
                ids, read_image_folder(brain_masks, kind="mask", what="--brain-masks"), "--brain-masks", x.shape[2:]
            )
        inputs = {}
    empty = [i for i, m in zip(ids, p, strict=True) if not m.any()]
    if empty:
        flag = "--lesion-mask" if single else "--lesion-masks"
        raise InputError(
            f"{flag}: the mask of {empty[0]!r} is empty ({len(empty)} empty); draw the lesion to insert (non-zero pixels)."
        )
    model, sched, path = _load(model_path, method, tuple(x.shape[2:]), device)
    k = DEFAULTS[method]["dilate"] if dilate is None else dilate
    config = {"task": "edit", "method": method, "dilate": k, "steps": steps, "strength": strength, "resample": resample,
              "eta": eta, "batch_size": batch_size, "model_sha": file_sha256(path), "ids": config_hash(ids),
              "data_sha": _digest(x, p, b)}  # fmt: skip
    folders = (
        {} if single else {"images": str(images), "lesion_masks": str(lesion_masks), "brain_masks": str(brain_masks)}
    )
    prov = provenance(command="edit", config=config, seed=seed, models={"unet": str(path)}, inputs=inputs,
                      extra={"folders": folders} if folders else None)  # fmt: skip
    kw = dict(method=method, dilate=k, steps=steps, strength=strength, resample=resample, eta=eta)

    def edit(chunk: slice, chunk_seed: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
        t = time.perf_counter()
        res = counterfactual_edit(model, x[chunk], p[chunk], sched, brain_masks=None if b is None else b[chunk],
                                  seed=chunk_seed, batch_size=batch_size, **kw)  # fmt: skip
        per = (time.perf_counter() - t) / len(x[chunk])
        e = res["edited"].cpu().numpy()
        pres = preservation_mae(e, x[chunk], res["region"].cpu().numpy())
        dice = segmenter_dice(e, p[chunk], brain_masks=None if b is None else b[chunk])
        rows = [{"nfe": res["nfe"], "seconds": per, "preservation_mae": None if np.isnan(v) else float(v), "segmenter_dice": float(d),
                 "region_pixels": int(r.sum())} for v, d, r in zip(pres, dice, res["region"].cpu().numpy(), strict=True)]  # fmt: skip
        return e, rows

    if single:
        e, rows = edit(slice(0, 1), seed)
        _write_image(Path(out), e[0, 0])
        return stamp({"method": method, "out": str(out), "n_images": 1, **rows[0]}, prov)
    from medlens.io import RunFolder

    with RunFolder(out, config, overwrite=overwrite, provenance=prov, outputs=["results.jsonl", "edits"]) as run:
        run.write_manifest(status="running")
        log = run.log("results.jsonl")
        done = log.ids()
        edits = run.subdir("edits")
        for c, start in enumerate(range(0, len(ids), batch_size)):
            chunk_ids = ids[start : start + batch_size]
            if all(i in done for i in chunk_ids):
                continue
            e, rows = edit(slice(start, start + batch_size), seed + c)
            for i, a, row in zip(chunk_ids, e, rows, strict=True):
                _write_image(edits / f"{i}.npy", a[0])
                if i not in done:
                    log.append({"id": i, **row})
        records = log.records()
        run.write_manifest(status="done")
    mean = {key: _mean([r[key] for r in records]) for key in ("preservation_mae", "segmenter_dice", "seconds")}
    return stamp(
        {"method": method, "out": str(out), "edits": str(Path(out) / "edits"), "n_images": len(records),
         "nfe": max(r["nfe"] for r in records), **mean},
        prov,
    )  # fmt: skip
