"""``medlens encoders list`` and ``medlens encode``: the registered encoders, and features for texts or images."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import typer

from medlens.cli._common import console, emit_json, progress_enabled

app = typer.Typer(
    help="Text and image encoders (loaded offline from the local cache or a folder).", no_args_is_help=True
)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """List the registered encoders and whether their weights are available locally (nothing is loaded).

    Example: medlens encoders list --json
    """
    from medlens.encoders import hf_cache_dir, list_encoders

    rows = list_encoders()
    if as_json:
        from medlens._provenance import provenance, stamp

        emit_json(stamp({"hf_cache": str(hf_cache_dir()), "encoders": rows}, provenance(command="encoders list")))
        return
    from rich.table import Table

    t = Table("name", "family", "modality", "source", "local", "licence", title=f"Hugging Face cache: {hf_cache_dir()}")
    for r in rows:
        t.add_row(r["name"], r["family"], r["modality"], r["source"], "yes" if r["available"] else "no", r["license"])
    console().print(t)


def _images_sha256(root: Path, ids: list[str], paths: list[Path]) -> str:
    """One hash for an image folder: SHA-256 over (relative path, file SHA-256) in id order."""
    from medlens.io import file_sha256

    h = hashlib.sha256()
    for i, p in zip(ids, paths, strict=True):
        h.update(f"{i}\t{file_sha256(p)}\n".encode())
    return h.hexdigest()


def encode(
    encoder: str = typer.Option(
        ..., "--encoder", "-e", help="Registered name (medlens encoders list) or model folder."
    ),
    images: Path | None = typer.Option(None, "--images", help="Folder of images (ids = paths relative to it)."),
    texts: Path | None = typer.Option(None, "--texts", help=".txt (one text per line) or .csv/.jsonl with id,text."),
    out: Path = typer.Option(..., "--out", help="FEATS.npy to write (float32, n x dim) with FEATS.ids.txt beside it."),
    batch_size: int = typer.Option(32, "--batch-size", max=65536, help="Batch size."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 | bfloat16 | float16 (float16 needs CUDA)."),
    no_normalize: bool = typer.Option(False, "--no-normalize", help="Keep the raw feature lengths (no L2 norm)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Embed a folder of images or a file of texts with one encoder; write FEATS.npy and FEATS.ids.txt.

    Weights come from a local folder or the local Hugging Face cache; nothing is downloaded.

    Example: medlens encode --encoder minilm --texts findings.txt --out findings.npy --json
    """
    from medlens._device import resolve_device, resolve_dtype
    from medlens._provenance import provenance, stamp
    from medlens._validation import InputError, check_interval
    from medlens.encoders import load_encoder
    from medlens.io import list_images, read_texts, write_features

    if (images is None) == (texts is None):
        raise InputError("give exactly one of --images DIR or --texts FILE.")
    check_interval(batch_size, name="--batch-size", low=1, closed="left")
    if out.suffix != ".npy":
        raise InputError(f"{out}: features are written as .npy (with a .ids.txt beside it); use --out NAME.npy.")
    resolve_dtype(dtype, resolve_device(device))  # cheap checks first: loading a model takes seconds
    if texts is not None:
        ids, items = read_texts(texts)
        if not ids:
            raise InputError(f"{texts}: no texts found; give one text per line (.txt) or rows with id,text.")
        modality, inputs, input_hashes = "text", {"texts": texts}, None
    else:
        ids, items = list_images(images)
        modality, inputs = "image", {}
        input_hashes = {"images": {"path": str(images), "sha256": _images_sha256(images, ids, items), "n": len(ids)}}
    t0 = time.perf_counter()
    enc = load_encoder(encoder, device=device, dtype=dtype, normalize=not no_normalize)
    t1 = time.perf_counter()
    progress = progress_enabled(as_json)
    if modality == "text":
        feats = enc.encode_texts(items, batch_size=batch_size, progress=progress)
    else:
        feats = enc.encode_images(items, batch_size=batch_size, progress=progress)
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
        "normalized": cfg.normalized,
        "timing": {
            "load_s": round(t1 - t0, 4),
            "encode_s": round(t2 - t1, 4),
            "items_per_s": round(len(ids) / (t2 - t1), 2) if t2 > t1 else None,
        },
    }
    if as_json:
        config = {
            "encoder": encoder,
            "modality": modality,
            "batch_size": batch_size,
            "device": device,
            "dtype": dtype,
            "normalize": not no_normalize,
        }
        models = {"encoder": enc.model_id}
        if summary["revision"]:
            models["encoder_revision"] = summary["revision"]
        prov = provenance(command="encode", config=config, inputs=inputs, models=models)
        if input_hashes is not None:
            prov["input_hashes"] = input_hashes
        emit_json(stamp(summary, prov))
        return
    console().print(
        f"wrote {npy} ({len(ids)} x {summary['dim']}, {cfg.name}) and {ids_path.name} "
        f"in {t2 - t1:.1f} s ({summary['timing']['items_per_s']} {modality}s/s)",
        markup=False,
    )
