"""``medlens multiview extract | train | evaluate`` over a CSV of ``id,volume,mask,label``.

* ``extract``: slice and encode every volume into the run folder (``results.jsonl`` one line per case, flushed;
  a rerun skips finished cases; per-case features ``features/<id>.npy``), then ``features.npz`` (``ids``,
  ``labels``, ``features`` (n, V, D), ``normals``).
* ``train``: patient-level cross-validation of a head on the features (``cv_predictions.csv``, metrics with
  bootstrap CIs), then one head fitted on all cases (early stopping on a held-out validation split) saved as
  ``head.safetensors`` (with the standardisation and the graph).
* ``evaluate``: apply a trained head to the features of another extraction: ``predictions.csv`` and metrics.

Paths in the CSV are relative to the CSV's folder; ``mask`` may be empty; ``label`` is 0 or 1.
"""

from __future__ import annotations

import csv
import hashlib
import io as _bytes_io
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._progress import progress_bar
from medlens._provenance import file_sha256, provenance, stamp
from medlens._validation import InputError, check_option
from medlens.io import RunFolder, atomic_write_bytes, atomic_write_json, atomic_write_text, read_mask, read_volume
from medlens.multiview._cv import bootstrap_metrics, cross_validate, train_head
from medlens.multiview._features import LAYOUTS, view_features
from medlens.multiview._graph import view_graph

__all__ = ["read_cases", "run_multiview_evaluate", "run_multiview_extract", "run_multiview_train"]

RANDOM_CNN = "random-cnn"


def read_cases(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of ``id,volume,mask,label`` with the paths resolved against the CSV's folder."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"cases CSV {p} does not exist; give a CSV with columns id,volume,mask,label.")
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"id", "volume", "label"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"{p}: missing column(s) {sorted(missing)}; expected id,volume,mask,label.")
        rows, seen = [], set()
        for line, r in enumerate(reader, start=2):
            cid = (r.get("id") or "").strip()
            if not cid or cid in seen:
                raise InputError(f"{p} row {line}: the id {cid!r} is {'empty' if not cid else 'repeated'}.")
            seen.add(cid)
            label = (r.get("label") or "").strip()
            if label not in ("0", "1"):
                raise InputError(f"{p} row {line} (id {cid}): label must be 0 or 1; got {label!r}.")
            vol = (r.get("volume") or "").strip()
            if not vol:
                raise InputError(f"{p} row {line} (id {cid}): the volume path is empty.")
            mask = (r.get("mask") or "").strip()
            rows.append({"id": cid, "volume": p.parent / vol, "mask": p.parent / mask if mask else None,
                         "label": int(label), "row": line})  # fmt: skip
    if not rows:
        raise InputError(f"{p} has no cases.")
    return rows


def _encoder(name: str, *, size: int, seed: int, device: str) -> Any:
    from medlens.multiview._encoder import RandomConvEncoder

    if name == RANDOM_CNN:
        return RandomConvEncoder(seed=seed, size=size, device=device)
    from medlens.encoders import load_encoder

    return load_encoder(name, device=device)


class ExtractTask:
    """A picklable recipe: ``task()`` loads the encoder once and returns ``fn([case]) -> {"features", "key",
    "cached"}`` for one case (``{"id", "volume", "mask", "row"}``; features ``(planes, dim + 3)``: the view
    features, then each plane's normal). Made with ``encoder_obj=`` it reuses that one in this process; pickled
    to a Ray actor it travels without it and the actor loads its own."""

    def __init__(self, encoder: str, opts: dict[str, Any], *, where: str, device: str, encoder_obj: Any = None):
        self.encoder, self.opts, self.where, self.device = encoder, dict(opts), str(where), device
        self._enc = encoder_obj

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_enc": None}

    def __call__(self):
        o = self.opts
        enc = self._enc or _encoder(self.encoder, size=o["size"], seed=o["seed"], device=self.device)

        def fn(items: list[dict[str, Any]]) -> dict[str, Any]:
            (r,) = items
            try:
                vol = read_volume(r["volume"])
                mask = read_mask(r["mask"], like=vol) if r["mask"] is not None else None
            except (InputError, ValueError, OSError) as e:
                raise InputError(f"{self.where} row {r['row']} (id {r['id']}): {e}") from None
            f = view_features(vol.array, vol.affine, enc, mask=mask, **o)
            feats = np.concatenate([f.features, f.normals.astype(np.float32)], axis=1)
            return {"features": feats, "key": f.key, "cached": bool(f.cached)}

        return fn


def run_multiview_extract(
    cases: str | os.PathLike,
    out: str | os.PathLike,
    *,
    encoder: str = RANDOM_CNN,
    layout: str = "omni",
    views: int = 12,
    size: int = 64,
    fov_mm: float | None = None,
    spacing_mm: float = 3.0,
    intensity: str = "mr",
    seed: int = 0,
    batch_size: int = 64,
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool = False,
    executor: str = "local",
    ray_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Slice and encode every case of ``cases`` into the run folder ``out`` (resumable); see the module notes.

    ``executor="ray"`` runs the cases on ``workers`` Ray actors (``ray_address``), each loading one encoder (one
    GPU each with a CUDA ``device``); each case comes back to this process, which alone writes its features
    file and its ``results.jsonl`` line, so resume works the same. The executor is not part of the config.
    """
    from medlens.executors import check_executor_options, make_executor, plan_blocks

    check_executor_options(executor, ray_address, workers)
    check_option(layout, LAYOUTS, name="layout")
    rows = read_cases(cases)
    t0 = time.perf_counter()
    config = {"command": "multiview extract", "cases": file_sha256(cases), "encoder": encoder, "layout": layout,
              "views": views, "size": size, "fov_mm": fov_mm, "spacing_mm": spacing_mm, "intensity": intensity,
              "seed": seed}  # fmt: skip
    runner = make_executor(executor, ray_address=ray_address, workers=workers, device=device)
    enc = _encoder(encoder, size=size, seed=seed, device=device)
    prov = provenance(command="multiview extract", config=config, seed=seed, inputs={"cases": cases},
                      models={"encoder": enc.model_id})  # fmt: skip
    opts = {"layout": layout, "views": views, "seed": seed, "size": size, "fov_mm": fov_mm,
            "spacing_mm": spacing_mm, "intensity": intensity, "batch_size": batch_size}  # fmt: skip
    task = ExtractTask(encoder, opts, where=str(cases), device=device,
                       encoder_obj=enc if runner.name == "local" else None)  # fmt: skip
    outputs = ("results.jsonl", "features", "features.npz")
    with RunFolder(out, config, overwrite=overwrite, provenance=prov, outputs=outputs) as run:
        run.write_manifest(status="running")
        log = run.log("results.jsonl", key="id")
        done = set(log.ids())
        feat_dir = run.subdir("features")
        todo = [{"id": r["id"], "volume": str(r["volume"]), "row": r["row"],
                 "mask": None if r["mask"] is None else str(r["mask"])} for r in rows if r["id"] not in done]  # fmt: skip
        label = {r["id"]: r["label"] for r in rows}
        with progress_bar(len(rows), progress, "multiview extract") as bar:
            bar(len(rows) - len(todo))
            for b, res in runner.map_blocks(task, todo, plan_blocks(len(todo), block_size=1)):
                cid = todo[b]["id"]
                buf = _bytes_io.BytesIO()
                np.save(buf, res["features"])
                atomic_write_bytes(feat_dir / f"{_safe(cid)}.npy", buf.getvalue())
                log.append({"id": cid, "label": label[cid], "key": str(res["key"]), "cached": bool(res["cached"]),
                            "planes": int(len(res["features"]))})  # fmt: skip
                bar(1)
        feats, normals = _stack_cases(rows, feat_dir, cases)
        dim = feats.shape[2]
        buf = _bytes_io.BytesIO()
        np.savez(buf, ids=np.array([r["id"] for r in rows]), labels=np.array([r["label"] for r in rows]),
                 features=feats, normals=normals)  # fmt: skip
        atomic_write_bytes(run.path / "features.npz", buf.getvalue())
        run.write_manifest(status="complete")
    doc = stamp({"n_cases": len(rows), "n_resumed": len(done), "planes": int(feats.shape[1]), "dim": int(dim),
                 "encoder": enc.model_id, "files": {"features": str(Path(out) / "features.npz")},
                 "executor": runner.info(), "seconds": round(time.perf_counter() - t0, 3)}, prov)  # fmt: skip
    atomic_write_json(Path(out) / "extract.json", doc)
    return doc


def _stack_cases(rows: list[dict[str, Any]], feat_dir: Path, cases: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-case ``(planes, dim + 3)`` files → features ``(n, planes, dim)`` and the normals ``(planes, 3)``.

    Every case must have the same planes (count and normals, up to sign) and feature size: a head reads a fixed
    graph of views. A case that differs is an error naming it (the folder then mixes extractions).
    """
    ref = None
    out = []
    for r in rows:
        f = feat_dir / f"{_safe(r['id'])}.npy"
        try:
            a = np.load(f)
        except (OSError, ValueError) as e:
            raise InputError(f"{f} (case {r['id']}): unreadable features ({e}); rerun with --overwrite.") from None
        if a.ndim != 2 or a.shape[1] < 4:
            raise InputError(f"{f} (case {r['id']}): expected (planes, dim + 3) features; got {a.shape}. Rerun with "
                             "--overwrite.")  # fmt: skip
        if ref is None:
            ref = (r, a)
        else:
            r0, a0 = ref
            what = None
            if a.shape != a0.shape:
                what = (f"{a.shape[0]} planes of {a.shape[1] - 3} features, but case {r0['id']} has "
                        f"{a0.shape[0]} of {a0.shape[1] - 3}")  # fmt: skip
            elif not np.allclose(np.abs(a[:, -3:]), np.abs(a0[:, -3:]), atol=1e-5):
                what = f"other plane normals than case {r0['id']}"
            if what:
                raise InputError(f"{cases} row {r['row']} (id {r['id']}): {what}; every case must be sliced in the "
                                 "same planes and encoded by the same encoder. Rerun extract with --overwrite.")  # fmt: skip
        out.append(a)
    feats = np.stack([a[:, :-3] for a in out])
    return feats, out[0][:, -3:].astype(float)


def _safe(cid: str) -> str:
    return (
        "".join(c if c.isalnum() or c in "-_." else "_" for c in cid)
        + "-"
        + hashlib.sha256(cid.encode()).hexdigest()[:8]
    )


def _load_features(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    path = Path(folder) / "features.npz"
    if not path.is_file():
        raise InputError(f"{path} does not exist; run `medlens multiview extract --out {folder}` first.")
    with np.load(path) as z:
        return {k: z[k] for k in ("ids", "labels", "features", "normals")}


def run_multiview_train(
    features: str | os.PathLike,
    out: str | os.PathLike,
    *,
    head: str = "graph",
    k: int | None = 4,
    folds: int = 5,
    epochs: int = 100,
    patience: int = 15,
    lr: float = 1e-3,
    batch_size: int = 16,
    budget: int = 100_000,
    seed: int = 0,
    bootstrap: int = 1000,
    ci: float = 0.95,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Cross-validate ``head`` on an extraction folder, then fit it on all cases and save ``head.safetensors``."""
    from medlens.multiview._heads import HEADS, build_head
    from medlens.training import write_safetensors

    check_option(head, HEADS, name="head")
    d = _load_features(features)
    x, y, ids = d["features"], d["labels"].astype(int), [str(i) for i in d["ids"]]
    g = view_graph(d["normals"], k=None if k is None or x.shape[1] <= k else k)
    config = {"command": "multiview train", "features": file_sha256(Path(features) / "features.npz"), "head": head,
              "k": k, "folds": folds, "epochs": epochs, "patience": patience, "lr": lr, "batch_size": batch_size,
              "budget": budget, "seed": seed, "bootstrap": bootstrap, "ci": ci}  # fmt: skip

    def make() -> Any:
        return build_head(head, n_views=x.shape[1], dim=x.shape[2], budget=budget, edge_index=g.edge_index,
                          edge_weight=g.edge_weight)  # fmt: skip

    train = {"epochs": epochs, "patience": patience, "lr": lr, "batch_size": batch_size}
    prov = provenance(command="multiview train", config=config, seed=seed)
    with RunFolder(out, config, overwrite=overwrite, provenance=prov,
                   outputs=("cv_predictions.csv", "head.safetensors", "metrics.json")) as run:  # fmt: skip
        run.write_manifest(status="running")
        cv = cross_validate(x, y, make, n_folds=folds, seed=seed, **train)
        metrics = bootstrap_metrics(y, cv.probabilities, n_bootstrap=bootstrap, ci=ci, seed=seed)
        lines = ["id,label,probability,fold"] + [
            f"{i},{lab},{p:.6f},{f}" for i, lab, p, f in zip(ids, y, cv.probabilities, cv.fold, strict=True)
        ]
        atomic_write_text(run.path / "cv_predictions.csv", "\n".join(lines) + "\n")
        # the final head: all cases, early stopping on a stratified 20 % validation split
        rng = np.random.default_rng(seed)
        val = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: max(1, round(0.2 * (y == c).sum()))]
                              for c in (0, 1)])  # fmt: skip
        fit = np.setdiff1d(np.arange(len(y)), val)
        mu, sd = x[fit].mean(axis=(0, 1)), x[fit].std(axis=(0, 1)) + 1e-6
        z = (x - mu) / sd
        model, info = train_head(make, z[fit], y[fit], z[val], y[val], seed=seed, **train)
        meta = {"head": head, "n_views": int(x.shape[1]), "dim": int(x.shape[2]), "budget": budget, "k": k,
                "normals": d["normals"].tolist(), "mean": mu.tolist(), "std": sd.tolist(), **info}  # fmt: skip
        write_safetensors(run.path / "head.safetensors", model.state_dict(), metadata=meta)
        doc = stamp({"n_cases": len(y), "head": head, "cv": {"metrics": metrics, "folds": cv.folds},
                     "final": info, "files": {"head": str(run.path / "head.safetensors"),
                                              "cv_predictions": str(run.path / "cv_predictions.csv")}}, prov)  # fmt: skip
        atomic_write_json(run.path / "metrics.json", doc)
        run.write_manifest(status="complete")
    return doc


def run_multiview_evaluate(
    model: str | os.PathLike,
    features: str | os.PathLike,
    out: str | os.PathLike,
    *,
    bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Apply the head saved by :func:`run_multiview_train` (folder or file) to an extraction folder."""
    from medlens.multiview._heads import build_head
    from medlens.training import read_safetensors

    torch = require("torch", extra="torch", purpose="multiview evaluate")
    path = Path(model)
    path = path / "head.safetensors" if path.is_dir() else path
    tensors, meta = read_safetensors(path, what="multiview head", fix="train one with `medlens multiview train`.")
    meta = meta if isinstance(meta, dict) else json.loads(meta or "{}")
    d = _load_features(features)
    x, y = d["features"], d["labels"].astype(int)
    if x.shape[1:] != (meta["n_views"], meta["dim"]):
        raise InputError(f"{path} expects {meta['n_views']} views of {meta['dim']} features; {features} has "
                         f"{x.shape[1]} of {x.shape[2]}: extract with the same layout, views and encoder.")  # fmt: skip
    if not np.allclose(np.abs(np.asarray(meta["normals"])), np.abs(d["normals"]), atol=1e-6):
        raise InputError(f"{features} was sliced along other plane normals than {path} was trained on.")
    g = view_graph(np.asarray(meta["normals"]), k=meta["k"] if meta["k"] and meta["n_views"] > meta["k"] else None)
    net = build_head(meta["head"], n_views=meta["n_views"], dim=meta["dim"], budget=meta["budget"],
                     edge_index=g.edge_index, edge_weight=g.edge_weight)  # fmt: skip
    net.load_state_dict(tensors)
    net.eval()
    z = (x - np.asarray(meta["mean"])) / np.asarray(meta["std"])
    with torch.no_grad():
        p = torch.softmax(net(torch.as_tensor(z, dtype=torch.float32)), dim=1)[:, 1].numpy()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["id,label,probability"] + [f"{i},{lab},{q:.6f}" for i, lab, q in zip(d["ids"], y, p, strict=True)]
    atomic_write_text(out_dir / "predictions.csv", "\n".join(lines) + "\n")
    cfg = {"model": file_sha256(path), "features": file_sha256(Path(features) / "features.npz"), "bootstrap": bootstrap,
           "ci": ci, "seed": seed}  # fmt: skip
    metrics = bootstrap_metrics(y, p, n_bootstrap=bootstrap, ci=ci, seed=seed) if len(set(y)) == 2 else None
    doc = stamp({"n_cases": len(y), "metrics": metrics, "files": {"predictions": str(out_dir / "predictions.csv")}},
                provenance(command="multiview evaluate", config=cfg, seed=seed))  # fmt: skip
    atomic_write_json(out_dir / "metrics.json", doc)
    return doc
