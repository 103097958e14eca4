"""Features of a folder of images or a file of texts: the pipeline behind ``medlens encode``.

Checks every cheap option first (loading a model takes seconds), reads the inputs, loads the encoder, embeds,
writes ``FEATS.npy`` with ``FEATS.ids.txt`` beside it, and returns the stamped summary.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from medlens._provenance import provenance, stamp
from medlens._validation import InputError, check_interval
from medlens.io import file_sha256, list_images, read_texts, write_features

__all__ = ["EncodeTask", "run_encode"]


class EncodeTask:
    """A picklable recipe for an executor: ``task()`` loads the encoder once and returns ``fn(items) -> (n, dim)``.

    ``modality`` is ``"text"`` or ``"image"`` (items are texts or image paths). A task made with ``encoder=`` (an
    already loaded encoder) reuses it in this process; pickled to a Ray actor it travels without it and the
    actor loads its own from ``name``.
    """

    def __init__(
        self,
        name: str,
        modality: str,
        *,
        batch_size: int,
        device: str = "cpu",
        load_kwargs: dict[str, Any] | None = None,
        encoder: Any = None,
    ) -> None:
        self.name = name
        self.modality = modality
        self.batch_size = int(batch_size)
        self.device = device
        self.load_kwargs = dict(load_kwargs or {})
        self._encoder = encoder

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_encoder"] = None  # an actor loads its own copy
        return state

    def __call__(self):
        enc = self._encoder
        if enc is None:
            from medlens.encoders import load_encoder

            enc = load_encoder(self.name, device=self.device, **self.load_kwargs)
        encode = enc.encode_texts if self.modality == "text" else enc.encode_images
        bs = self.batch_size
        return lambda items: encode(list(items), batch_size=bs, progress=False)


def _images_sha256(ids: list[str], paths: list[Path]) -> str:
    """One hash for an image folder: SHA-256 over (relative path, file SHA-256) in id order."""
    h = hashlib.sha256()
    for i, p in zip(ids, paths, strict=True):
        h.update(f"{i}\t{file_sha256(p)}\n".encode())
    return h.hexdigest()


def run_encode(
    encoder: str,
    out: str | os.PathLike,
    *,
    images: str | os.PathLike | None = None,
    texts: str | os.PathLike | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    dtype: str = "float32",
    normalize: bool = True,
    progress: bool = False,
    executor: str = "local",
    ray_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Embed ``images`` (a folder; ids = paths relative to it) or ``texts`` (.txt, or .csv/.jsonl with id,text)
    with ``encoder`` (a registered name or a local model folder); write ``out`` (``.npy``, float32, n x dim) and
    its ``.ids.txt``; return the stamped summary (what ``medlens encode --json`` prints).

    Every option is checked before the encoder is loaded. Weights are read from local files only.

    ``executor`` ``"local"`` (default) or ``"ray"`` (:mod:`medlens.executors`; ``ray_address`` the cluster,
    ``workers`` the actors, each holding one model): both encode the same blocks of whole batches, so the
    features are equal whichever runs them. The features file is written atomically either way.
    """
    from medlens._device import resolve_device, resolve_dtype
    from medlens.encoders import load_encoder
    from medlens.executors import block_size_for, check_executor_options, make_executor, plan_blocks, run_blocks

    out = Path(out)
    if (images is None) == (texts is None):
        raise InputError("give exactly one of --images DIR or --texts FILE.")
    check_interval(batch_size, name="--batch-size", low=1, closed="left")
    if out.suffix != ".npy":
        raise InputError(f"{out}: features are written as .npy (with a .ids.txt beside it); use --out NAME.npy.")
    resolve_dtype(dtype, resolve_device(device))  # cheap checks first: loading a model takes seconds
    check_executor_options(executor, ray_address, workers)
    if texts is not None:
        ids, items = read_texts(texts)
        if not ids:
            raise InputError(f"{texts}: no texts found; give one text per line (.txt) or rows with id,text.")
        modality, inputs, input_hashes = "text", {"texts": texts}, None
    else:
        ids, items = list_images(images)  # type: ignore[arg-type]
        modality, inputs = "image", {}
        input_hashes = {"images": {"path": str(images), "sha256": _images_sha256(ids, items), "n": len(ids)}}
    runner = make_executor(executor, ray_address=ray_address, workers=workers, device=device)
    t0 = time.perf_counter()
    load_kwargs = {"dtype": dtype, "normalize": normalize}
    enc = load_encoder(encoder, device=device, **load_kwargs)  # the local model (and the checks a wrong name fails)
    t1 = time.perf_counter()
    task = EncodeTask(
        encoder,
        modality,
        batch_size=batch_size,
        device=device,
        load_kwargs=load_kwargs,
        encoder=enc if runner.name == "local" else None,
    )
    if modality == "image":
        items = [str(p) for p in items]
    blocks = plan_blocks(len(ids), block_size=block_size_for(batch_size))
    feats = run_blocks(runner, task, items, blocks, progress=progress, label=f"encoding {modality}s")
    t2 = time.perf_counter()
    npy, ids_path = write_features(out, ids, feats)
    cfg = enc.config
    summary: dict[str, Any] = {
        "n": len(ids),
        "dim": int(feats.shape[1]),
        "modality": modality,
        "features": str(npy),
        "ids": str(ids_path),
        "encoder": cfg.to_dict(),
        "model_id": enc.model_id,
        "revision": getattr(enc, "revision", None),
        "device": getattr(enc, "device", device),
        "dtype": dtype,
        "batch_size": batch_size,
        "executor": runner.info(),
        "normalized": cfg.normalized,
        "timing": {
            "load_s": round(t1 - t0, 4),
            "encode_s": round(t2 - t1, 4),
            "items_per_s": round(len(ids) / (t2 - t1), 2) if t2 > t1 else None,
        },
    }
    config = {
        "encoder": encoder,
        "modality": modality,
        "batch_size": batch_size,
        "device": device,
        "dtype": dtype,
        "normalize": normalize,
    }
    models = {"encoder": enc.model_id}
    if summary["revision"]:
        models["encoder_revision"] = summary["revision"]
    prov = provenance(command="encode", config=config, inputs=inputs, models=models)
    if input_hashes is not None:
        prov["input_hashes"] = input_hashes
    return stamp(summary, prov)
