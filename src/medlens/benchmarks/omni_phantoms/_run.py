"""The ``omni-phantoms`` benchmark: omnidirectional vs canonical vs axial-stack views of generated brain volumes.

Every volume (generator ``omni-phantoms-v1``, :mod:`._data`) is sliced in three layouts through the lesion's
centroid, over the same field of view: ``omni`` (``views`` Thomson planes on RP², canonical ones included),
``canonical`` (axial, coronal, sagittal) and ``axial-stack`` (``views`` parallel axial planes 3 mm apart).
The same frozen encoder (a seeded random-init CNN: no pretrained image weights are installed here; the same
code takes DINOv2 from a local folder) and the same heads (the edge-weighted SAGE graph head and mean pooling,
100k-parameter budget) are cross-validated (5 patient-level folds, early stopping on an inner validation split).
``ablation`` (or ``full``: ``medlens demo --full``) adds graph-head omni runs at 3, 8, 12, 16 and 24 planes. The
report also slices nibabel's real T1 brain and pydicom's real CT series (a DICOM folder) for two montages.
"""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path
from typing import Any

import numpy as np

from medlens._optional import is_available, require
from medlens._progress import progress_bar
from medlens._provenance import config_hash, provenance, stamp
from medlens._validation import InputError
from medlens.benchmarks._spec import BenchmarkSpec
from medlens.io import atomic_write_bytes, atomic_write_json, prepare_run_dir

__all__ = ["SPEC", "report_section", "run", "summarize", "summary_lines"]

_CACHE_FORMAT = 1  # bump when the features of a layout change for the same inputs
LAYOUT_LABELS = {"omni": "omnidirectional", "canonical": "canonical 3 planes", "axial-stack": "axial stack"}


def _montage(out: Path, size: int) -> dict[str, Any] | None:
    """Slice nibabel's real T1 brain (``anatomical.nii``) in 12 orientations and write ``montage.png``."""
    if not (is_available("nibabel") and is_available("matplotlib")):
        return None
    import importlib.util

    from medlens.io import read_volume
    from medlens.slicing import montage_png, normalize_intensity, slice_volume

    spec = importlib.util.find_spec("nibabel")
    path = Path(spec.origin).parent / "tests" / "data" / "anatomical.nii"
    if not path.is_file():
        return None
    vol = read_volume(path)
    s = slice_volume(normalize_intensity(vol.array, "mr"), vol.affine, views=12, size=size)
    atomic_write_bytes(out / "montage.png", montage_png(s, title="nibabel anatomical.nii, 12 plane orientations"))
    return {"path": str(out / "montage.png"), "volume": path.name, "shape": list(vol.shape),
            "spacing_mm": [round(float(x), 3) for x in vol.spacing_mm], "views": 12}  # fmt: skip


CT_SERIES = ("dicomdirtests", "98892001", "CT5N")
"""pydicom's real CT series (5 slices of a downsampled head CT, 16×16 pixels of 0.49 mm, 2.5 mm apart)."""


def _ct_montage(out: Path, size: int) -> dict[str, Any] | None:
    """Read pydicom's real CT series as a DICOM folder (:func:`medlens.io.read_volume`) and write
    ``ct_montage.png`` (12 orientations, HU window [-200, 300])."""
    if not (is_available("pydicom") and is_available("matplotlib")):
        return None
    import importlib.util

    from medlens.io import read_volume
    from medlens.slicing import montage_png, normalize_intensity, slice_volume

    spec = importlib.util.find_spec("pydicom")
    path = Path(spec.origin).parent.joinpath("data", "test_files", *CT_SERIES)
    if not path.is_dir():
        return None
    vol = read_volume(path)
    s = slice_volume(normalize_intensity(vol.array, "ct", window=(-200.0, 300.0)), vol.affine, views=12, size=size)
    title = f"pydicom CT series {'/'.join(CT_SERIES[1:])} (DICOM folder), 12 plane orientations"
    atomic_write_bytes(out / "ct_montage.png", montage_png(s, title=title))
    return {"path": str(out / "ct_montage.png"), "volume": "/".join(CT_SERIES), "reader": vol.reader,
            "files": len([f for f in path.iterdir() if f.is_file()]), "shape": list(vol.shape),
            "spacing_mm": [round(float(x), 3) for x in vol.spacing_mm], "views": 12}  # fmt: skip


def _features(
    layouts: list[tuple[str, int]],
    encoder: Any,
    *,
    n: int,
    size: int,
    seed: int,
    fov_mm: float,
    stack_mm: float,
    progress: bool,
) -> tuple[np.ndarray, dict, dict, dict[str, Any]]:
    """Labels and per-layout features ``(n, P, D)`` and normals of the generated volumes.

    Each layout's features of the whole set are cached as one file under ``$MEDLENS_CACHE/omni-phantoms``,
    keyed by what determines them (generator name and source file, the template file, n, size, seed, layout,
    sampling, encoder id): a warm run neither generates nor slices. A cold run generates the volumes and slices and encodes each one's layouts in
    one pass (:func:`medlens.multiview.layout_features`; the per-volume feature cache is skipped: the set
    file replaces it).
    """
    import io as _bytes_io

    from medlens._cache import cache_root
    from medlens._progress import progress_bar
    from medlens._provenance import file_sha256
    from medlens.benchmarks.omni_phantoms import _data
    from medlens.multiview import encoder_id, layout_features

    base = {"generator": _data.GENERATOR, "source": file_sha256(_data.__file__),
            "template": file_sha256(_data.mni_t1_path()), "n": n, "size": size, "seed": seed, "fov_mm": fov_mm,
            "stack_spacing_mm": stack_mm, "intensity": "mr", "order": 1, "encoder": encoder_id(encoder),
            "format": _CACHE_FORMAT}  # fmt: skip
    paths = {k: cache_root("omni-phantoms", f"{config_hash({**base, 'layout': list(k)})}.npz") for k in layouts}
    y: np.ndarray | None = None
    feats: dict[tuple[str, int], np.ndarray] = {}
    normals: dict[tuple[str, int], np.ndarray] = {}
    for k, path in paths.items():
        if path.is_file():
            try:
                with np.load(path) as z:
                    y, feats[k], normals[k] = z["labels"], z["features"], z["normals"]
            except (OSError, ValueError, KeyError):  # a damaged entry is recomputed
                feats.pop(k, None)
    missing = [k for k in layouts if k not in feats]
    hits = n * (len(layouts) - len(missing))
    if not missing:
        return y, feats, normals, {"hits": hits, "generate_s": 0.0}
    t0 = time.perf_counter()
    phantoms = _data.generate_phantoms(n, size=size, seed=seed)
    t_gen = time.perf_counter() - t0
    y = np.array([p.label for p in phantoms])
    per: dict[tuple[str, int], list[np.ndarray]] = {k: [] for k in missing}
    with progress_bar(len(phantoms), progress, "omni-phantoms: encoding views") as bar:
        for p in phantoms:
            got = layout_features(p.volume, p.affine, encoder, missing, mask=p.mask, seed=seed, size=size,
                                  fov_mm=fov_mm, spacing_mm=stack_mm, batch_size=256, cache=False)  # fmt: skip
            for k, f in got.items():
                per[k].append(f.features)
                normals[k] = f.normals
            bar(1)
    for k in missing:
        feats[k] = np.stack(per[k])
        buf = _bytes_io.BytesIO()
        np.savez(buf, labels=y, features=feats[k], normals=normals[k])
        paths[k].parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(paths[k], buf.getvalue())
    return y, feats, normals, {"hits": hits, "generate_s": t_gen}


def run(
    out_dir: str | Path,
    *,
    n: int = 200,
    size: int = 64,
    views: int = 12,
    seed: int = 0,
    folds: int = 5,
    epochs: int = 40,
    patience: int = 8,
    heads: tuple[str, ...] | list[str] = ("graph", "mean"),
    ablation: bool = False,
    full: bool = False,
    n_bootstrap: int = 1000,
    progress: bool = False,
    overwrite: bool = False,
    **_: Any,
) -> dict[str, Any]:
    """Run the benchmark into ``out_dir`` and return its ``metrics.json`` document (see the module notes)."""
    from medlens.benchmarks.omni_phantoms._data import GENERATOR
    from medlens.multiview import RandomConvEncoder, build_head, cross_validate, view_graph

    torch = require("torch", extra="torch", purpose="the omni-phantoms benchmark")
    if n < 2 * folds:
        raise InputError(f"n must be at least 2 x folds ({2 * folds}); got {n}.")
    t0 = time.perf_counter()
    out = Path(out_dir)
    ablation = bool(ablation or full)  # `medlens demo --full` adds the view-count ablation
    fov_mm, stack_mm = 48.0, 3.0
    counts = sorted({3, 8, 12, 16, 24, views}) if ablation else [views]
    config = {"benchmark": "omni-phantoms", "generator": GENERATOR, "n": n, "size": size, "views": views,
              "seed": seed, "folds": folds, "epochs": epochs, "patience": patience, "heads": list(heads),
              "ablation": counts if ablation else None, "fov_mm": fov_mm, "stack_spacing_mm": stack_mm,
              "n_bootstrap": n_bootstrap}  # fmt: skip
    prepare_run_dir(out, config, overwrite=overwrite)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions and heads: one thread is fastest, above all on a shared machine
    try:
        encoder = RandomConvEncoder(seed=seed, size=size)
        layouts = [("omni", v) for v in counts] + [("canonical", 3), ("axial-stack", views)]
        t1 = time.perf_counter()
        y, feats, normals, hits = _features(layouts, encoder, n=n, size=size, seed=seed, fov_mm=fov_mm,
                                            stack_mm=stack_mm, progress=progress)  # fmt: skip
        t_gen = hits["generate_s"]
        t_feat = time.perf_counter() - t1 - t_gen
        hits = hits["hits"]
        t2 = time.perf_counter()
        results = []
        main = [("omni", views), ("canonical", 3), ("axial-stack", views)]
        runs = [(k, h) for k in main for h in heads] + [(("omni", v), "graph") for v in counts if v != views]
        label = f"omni-phantoms: {folds}-fold cross-validation of {len(runs)} layout/head pairs"
        with progress_bar(len(runs), progress, label, transient=True) as advance:
            for (layout, v), head in runs:
                x = feats[(layout, v)]
                g = view_graph(normals[(layout, v)], k=min(4, x.shape[1] - 1) if x.shape[1] > 4 else None)

                def make(h: str = head, nv: int = x.shape[1], dim: int = x.shape[2], g: Any = g) -> Any:
                    return build_head(h, n_views=nv, dim=dim, edge_index=g.edge_index, edge_weight=g.edge_weight)

                ts = time.perf_counter()
                cv = cross_validate(x, y, make, n_folds=folds, seed=seed, epochs=epochs, patience=patience,
                                    batch_size=32, threads=None)  # fmt: skip
                m = cv.metrics(y, n_bootstrap=n_bootstrap, seed=seed)
                results.append({"layout": layout, "views": int(x.shape[1]), "head": head, "graph": g.to_dict(),
                                "metrics": m, "best_epochs": [f["best_epoch"] for f in cv.folds],
                                "seconds": round(time.perf_counter() - ts, 2)})  # fmt: skip
                advance(1)
        t_cv = time.perf_counter() - t2
        montage = _montage(out, 96)
        ct_montage = _ct_montage(out, 48)
    finally:
        torch.set_num_threads(threads)
    prov = provenance(command="bench run omni-phantoms", config=config, seed=seed,
                      models={"encoder": encoder.model_id}, extra={"generator": GENERATOR})  # fmt: skip
    doc = stamp(
        {
            "benchmark": "omni-phantoms",
            "config_hash": config_hash(config),
            "generator": GENERATOR,
            "n": n,
            "n_per_class": [int((y == 0).sum()), int((y == 1).sum())],
            "classes": {"0": "rod (prolate, aspect 3.5)", "1": "disc (oblate, aspect 1/3.5)"},
            "seed": seed,
            "encoder": {
                "model_id": encoder.model_id,
                "kind": "seeded random-init CNN (frozen, never trained)",
                "dim": encoder.config.embedding_dim,
            },  # fmt: skip
            "results": results,
            "montage": montage,
            "ct_montage": ct_montage,
            "cache_hits": int(hits),
            "timing_s": {
                "generate": round(t_gen, 2),
                "features": round(t_feat, 2),
                "cross_validation": round(t_cv, 2),
                "total": round(time.perf_counter() - t0, 2),
            },  # fmt: skip
        },
        prov,
    )
    atomic_write_json(out / "metrics.json", doc)
    return doc


def _cell(m: dict[str, Any]) -> str:
    if m["value"] is None:
        return "–"
    return f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    """AUROC with its CI per (layout, views, head), and the timings."""
    return {
        "auroc": {f"{r['layout']}-{r['views']}-{r['head']}": r["metrics"]["auroc"] for r in doc["results"]},
        "timing_s": doc["timing_s"],
    }


def summary_lines(doc: dict[str, Any]) -> list[str]:
    t = doc["timing_s"]
    lines = [
        f"omni-phantoms ({doc['generator']}, n={doc['n']}, seed {doc['seed']}, frozen {doc['encoder']['model_id']}, "
        f"{t['total']:.0f} s): AUROC / balanced accuracy / MCC [95 % CI]"
    ]
    for r in doc["results"]:
        m = r["metrics"]
        lines.append(
            f"  {r['layout']:11s} {r['views']:2d} views {r['head']:6s} AUROC {_cell(m['auroc'])}, "
            f"BACC {_cell(m['balanced_accuracy'])}, MCC {_cell(m['mcc'])}"
        )
    return lines


def _png_figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure class="fig"><img alt="montage" src="data:image/png;base64,{data}"/>'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")  # fmt: skip


def _ablation_figure(doc: dict[str, Any]) -> Any:
    """AUROC of the graph head against the number of omnidirectional planes (``None`` without an ablation)."""
    omni = sorted((r for r in doc["results"] if r["layout"] == "omni" and r["head"] == "graph"),
                  key=lambda r: r["views"])  # fmt: skip
    if len(omni) < 2 or not is_available("matplotlib"):
        return None
    mpl = require("matplotlib", extra="viz", purpose="the ablation figure")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    def bars(rows: list[dict[str, Any]]) -> tuple[list, list, list]:
        a = [r["metrics"]["auroc"] for r in rows]
        return ([x["value"] for x in a], [x["value"] - x["low"] for x in a], [x["high"] - x["value"] for x in a])

    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    v, lo, hi = bars(omni)
    ax.errorbar([r["views"] for r in omni], v, yerr=[lo, hi], marker="o", capsize=3, label="omnidirectional")
    for i, layout in enumerate(("canonical", "axial-stack")):
        rows = [r for r in doc["results"] if r["layout"] == layout and r["head"] == "graph"]
        if rows:
            v, lo, hi = bars(rows)
            ax.errorbar([r["views"] + 0.4 * (i + 1) for r in rows], v, yerr=[lo, hi], marker="s", linestyle="none",
                        capsize=3, label=LAYOUT_LABELS[layout], color=f"C{i + 1}")  # fmt: skip
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks([r["views"] for r in omni])
    ax.set_xlabel("planes")
    ax.set_ylabel("AUROC (graph head)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def report_section(doc: dict[str, Any]) -> Any:
    """The report section: the comparison table, the view-count ablation figure (``--full``) and montages of a
    real T1 brain (NIfTI) and a real CT series (DICOM folder)."""
    from medlens.report import Section, figure_html, table_html

    s = Section(
        "omni-phantoms: omnidirectional slicing and graph aggregation of 3-D lesions",
        data=f"{doc['n']} generated volumes ({doc['generator']}) from the MNI152 T1 brain with a rod or disc lesion",
        model=f"frozen random-init CNN {doc['encoder']['model_id']}; SAGE graph or mean-pooling heads",
    )
    s.paragraph(
        f"{doc['n']} generated volumes ({doc['generator']}): the real MNI152 T1 brain from nilearn's wheel, deformed "
        "by a random affine and resampled onto a 64³ oblique grid with anisotropic 2.6–3.4 mm voxels; a bright "
        "lesion of equal volume, randomly oriented, is a rod (class 0) or a disc (class 1). Views pass through the "
        "lesion centroid over a 48 mm field of view; the axial stack has its planes 3 mm apart."
    )
    s.paragraph(
        f"Encoder: {doc['encoder']['model_id']}, a seeded random-init CNN ({doc['encoder']['dim']}-d mean‖max "
        "features), frozen and never trained: no pretrained image weights are installed here. The same code takes "
        "DINOv2 from a local folder (load_encoder('/path/to/dinov2-small')). Heads: one edge-weighted SAGE layer "
        "(mean‖max, graph of the 4 nearest planes by arccos|n_i·n_j|) or mean pooling, both at 100k parameters; "
        "5 patient-level stratified folds, early stopping on a validation split inside each training fold.",
        cls="note",
    )
    rows = [
        [LAYOUT_LABELS.get(r["layout"], r["layout"]), r["views"], r["head"], _cell(r["metrics"]["auroc"]),
         _cell(r["metrics"]["balanced_accuracy"]), _cell(r["metrics"]["mcc"])]
        for r in doc["results"]
    ]  # fmt: skip
    s.add(table_html(["views", "planes", "head", "AUROC", "balanced accuracy", "MCC"], rows,
                     caption="Out-of-fold metrics, 95 % percentile bootstrap over volumes"))  # fmt: skip
    t = doc["timing_s"]
    s.paragraph(
        f"Wall time {t['total']:.1f} s (generate {t['generate']:.1f} s, features {t['features']:.1f} s with "
        f"{doc['cache_hits']} cache hits, cross-validation {t['cross_validation']:.1f} s).",
        cls="note",
    )
    fig = _ablation_figure(doc)
    if fig is not None:
        s.add(figure_html(fig, "View-count ablation (demo --full): out-of-fold AUROC of the graph head with its 95 % "
                               "bootstrap CI against the number of Thomson planes; the canonical 3 planes and the "
                               "axial stack for reference."))  # fmt: skip
    mont = doc.get("montage")
    if mont and Path(mont["path"]).is_file():
        cap = (f"The real T1 brain nibabel ships ({mont['volume']}, {mont['shape']} voxels of {mont['spacing_mm']} "
               f"mm) cut along {mont['views']} plane orientations in millimetres through its affine.")  # fmt: skip
        s.add(_png_figure(Path(mont["path"]), cap))
    ct = doc.get("ct_montage")
    if ct and Path(ct["path"]).is_file():
        cap = (f"A real CT series pydicom ships ({ct['volume']}: {ct['files']} DICOM files read as one series "
               f"folder, {ct['shape']} voxels of {ct['spacing_mm']} mm, a downsampled head CT) cut along "
               f"{ct['views']} orientations, HU window [-200, 300]; dark red: outside the volume.")  # fmt: skip
        s.add(_png_figure(Path(ct["path"]), cap))
    return s


SPEC = BenchmarkSpec(
    name="omni-phantoms",
    description="rod vs disc lesions in the MNI152 brain: omnidirectional vs canonical vs axial-stack views",
    run=run,
    report_section=report_section,
    extras=("torch", "graph", "data", "io", "viz"),
    summarize=summarize,
    summary_lines=summary_lines,
)
