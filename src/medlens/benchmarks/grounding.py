"""The ``grounding`` benchmark (quick demo part): knowledge bases, rendered prompts and VinDr reader agreement.

Steps (each recorded in ``metrics.json``):

1. Load the built-in finding knowledge bases (``vindr-cxr``, ``padchest-gr``) and summarise them.
2. Derive the measured "typical size/location" attributes from the NIH and VinDr box tables of
   ``torchxrayvision`` (:func:`medlens.grounding.derive_attributes`, derivation recorded) and render the prompts of
   a few findings in every mode (name only, definition, all attributes with the measured size/location).
3. VinDr-CXR reader agreement per finding (:func:`medlens.grounding.reader_agreement`): how many of each image's
   three readers marked it, Fleiss' kappa, pairwise box F1@0.5 and mean best IoU: the human row a model is
   compared with.
4. The human ceiling (:func:`medlens.grounding.reader_ceiling`): each reader of an image against the weighted
   box fusion of the image's other readers, per finding, per gold box size (absolute: terciles of all VinDr box
   areas, :func:`vindr_size_bins`) and overall (P/R/F1@0.5, mean best IoU, hallucination
   rate): the row a model trained on fused boxes is compared with.
5. Why AP needs real scores: one reader's boxes scored against another's with :func:`medlens.grounding.
   evaluate_grounding`. Reader boxes have no scores, so the evaluator reports P/R/F1 and gives mAP only as an
   order-dependent pair (given vs reversed box order), the flaw of the public AG-KD evaluation (every box 1.0).

6. With ``full`` (``medlens demo --full``): a tiny random Florence-2 trained on CPU on synthetic chest-like
   images, name-only vs definition prompts, seen vs unseen findings (:mod:`medlens.benchmarks._grounding_full`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from medlens._provenance import config_hash, provenance, stamp
from medlens.benchmarks._spec import BenchmarkSpec
from medlens.io import atomic_write_json, prepare_run_dir

__all__ = ["SPEC", "report_section", "run"]

DEMO_FINDINGS = ("pleural effusion", "pneumothorax", "nodule or mass", "edema")


def _reader_pair_queries(rows: Any) -> list[dict[str, Any]]:
    """(image, finding) queries with the first reader of each image (sorted id) as gold and the second as the
    "model", for every pair marked by either; one sort, no per-group pandas calls."""
    import numpy as np

    ranks = rows.drop_duplicates(["image_id", "rad_id"]).sort_values(["image_id", "rad_id"])
    ranks = ranks.assign(rank=ranks.groupby("image_id").cumcount())[["image_id", "rad_id", "rank"]]
    b = rows[rows["class_name"] != "No finding"].merge(ranks, on=["image_id", "rad_id"])
    b = b[b["rank"] < 2].sort_values(["image_id", "class_name", "rank"], kind="stable")
    xyxy = b[["x_min", "y_min", "x_max", "y_max"]].to_numpy(np.float64)
    key = (b["image_id"] + "\x00" + b["class_name"]).to_numpy()
    rank = b["rank"].to_numpy()
    cuts = np.flatnonzero(key[1:] != key[:-1]) + 1
    out = []
    for s, e in zip(np.r_[0, cuts], np.r_[cuts, len(key)], strict=True):
        image, finding = str(key[s]).split("\x00")
        r = rank[s:e]
        out.append({"image_id": image, "finding": finding, "gold": xyxy[s:e][r == 0], "pred": xyxy[s:e][r == 1]})
    return out


def run(
    out_dir: str | Path,
    *,
    seed: int = 0,
    progress: bool = False,
    overwrite: bool = False,
    full: bool = False,
    full_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the quick grounding section into ``out_dir`` and return the ``metrics.json`` document; with ``full``
    also the tiny Florence-2 training (:mod:`medlens.benchmarks._grounding_full`, ``full_options`` go to it).

    Deterministic (``seed`` is recorded; nothing is sampled). Needs the ``data`` extra (torchxrayvision's tables).
    """
    from medlens.grounding import (
        derive_attributes,
        evaluate_grounding,
        knowledge_provenance,
        load_knowledge,
        read_nih_boxes,
        read_vindr_boxes,
        reader_agreement,
        reader_ceiling,
        render_prompt,
    )

    t0 = time.perf_counter()
    out = Path(out_dir)
    config = {"benchmark": "grounding", "seed": seed, "findings": list(DEMO_FINDINGS)}
    if full:
        config["full"] = dict(full_options or {})
    prepare_run_dir(out, config, overwrite=overwrite)
    kbs = [load_knowledge(n) for n in ("vindr-cxr", "padchest-gr")]
    vindr = kbs[0]
    nih_rows, vindr_rows = read_nih_boxes(), read_vindr_boxes()
    derived = derive_attributes(vindr, nih_boxes=nih_rows, vindr_rows=vindr_rows)
    prompts = {}
    for name in DEMO_FINDINGS:
        f = vindr.get(name)
        prompts[name] = {
            "split": f.split,
            "name_only": render_prompt(f, "name_only"),
            "definition": render_prompt(f, "definition"),
            "attributes": render_prompt(f, "attributes", measured=derived.attributes.get(f.name)),
        }
    t1 = time.perf_counter()
    agreement = reader_agreement(vindr_rows)
    for label, row in agreement.items():
        row["finding"] = vindr.get(label).name
        row["split"] = vindr.get(label).split
    t2 = time.perf_counter()
    bins = vindr_size_bins(vindr_rows)
    readers_eval = evaluate_grounding(_reader_pair_queries(vindr_rows), kb=vindr, size_bins_px2=bins)
    t3 = time.perf_counter()
    ceiling = reader_ceiling(vindr_rows, kb=vindr, size_bins_px2=bins)
    for f, row in ceiling["by_finding"].items():
        row["split"] = vindr.get(f).split
    t4 = time.perf_counter()
    trained = None
    if full:
        from medlens.benchmarks._grounding_full import run_full

        trained = run_full(vindr, nih_rows, seed=seed, progress=progress, **dict(full_options or {}))
    prov = provenance(
        command="bench run grounding",
        config=config,
        seed=seed,
        extra={"knowledge": [knowledge_provenance(kb) for kb in kbs]},
    )
    doc = stamp(
        {
            "benchmark": "grounding",
            "config_hash": config_hash(config),
            "knowledge_bases": [
                {
                    "name": kb.name,
                    "version": kb.version,
                    "dataset": kb.dataset,
                    "n_findings": len(kb.findings),
                    "seen": [f.name for f in kb.findings if f.split == "seen"],
                    "unseen": [f.name for f in kb.findings if f.split == "unseen"],
                }
                for kb in kbs
            ],
            "measured_attributes": derived.to_dict(),
            "prompts": prompts,
            "reader_agreement": agreement,
            "reader_vs_reader": {
                "description": "per (image, finding) marked by either: the first reader (sorted id) as gold, the "
                "second as predictions without scores; a negative query is one the gold reader left empty while "
                "the other marked it, so its hallucination rate is 1 by construction",
                **{k: v for k, v in readers_eval.items() if k not in ("by_finding",)},
            },
            "reader_ceiling": ceiling,
            **({"tiny_florence": trained} if trained is not None else {}),
            "timings_s": {
                "knowledge_and_prompts": round(t1 - t0, 3),
                "reader_agreement": round(t2 - t1, 3),
                "reader_vs_reader": round(t3 - t2, 3),
                "reader_ceiling": round(t4 - t3, 3),
                **({"tiny_florence": trained["seconds"]} if trained is not None else {}),
            },
        },
        prov,
    )
    atomic_write_json(out / "metrics.json", doc)
    return doc


def vindr_size_bins(rows: Any) -> tuple[float, float]:
    """The terciles of every VinDr reader box's area in pixels² (one set of size bins for the reader rows).

    The table has no image sizes, so box size can only be absolute; cutting all rows at the same bins keeps the
    reader-vs-reader and ceiling strata comparable.
    """
    boxed = rows.dropna(subset=["x_min", "y_min", "x_max", "y_max"])
    area = (boxed["x_max"] - boxed["x_min"]) * (boxed["y_max"] - boxed["y_min"])
    lo, hi = np.quantile(area.to_numpy(np.float64), [1 / 3, 2 / 3])
    return float(lo), float(hi)


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    ra = doc["reader_agreement"]
    rv = doc["reader_vs_reader"]
    return {
        "knowledge_bases": {k["name"]: k["n_findings"] for k in doc["knowledge_bases"]},
        "findings_without_statistics": len(doc["measured_attributes"]["without_statistics"]),
        "reader_f1_50": {k: v["pairwise_f1_50"] for k, v in ra.items()},
        "reader_vs_reader_f1_50": rv["f1_50"],
        "reader_vs_reader_score_status": rv["score_status"],
        "ceiling_f1_50": doc["reader_ceiling"]["overall"]["f1_50"],
        "ceiling_miou": doc["reader_ceiling"]["overall"]["miou"],
        "ceiling_f1_50_by_size": {k: v["f1_50"] for k, v in doc["reader_ceiling"].get("by_size", {}).items()},
    }


def _full_lines(doc: dict[str, Any]) -> list[str]:
    tf = doc.get("tiny_florence")
    if not tf:
        return []

    def f(x: Any) -> str:
        return "-" if x is None else f"{x:.3f}"

    out = [f"  tiny Florence-2 on synthetic images ({tf['seconds']:.0f} s; a mechanism check, not the papers' result):"]
    for mode, r in tf["by_mode"].items():
        sp = r["by_split"]
        out.append(
            f"    {mode}: F1@0.5 {f(r['overall']['f1_50'])} (seen {f(sp.get('seen', {}).get('f1_50'))}, unseen "
            f"{f(sp.get('unseen', {}).get('f1_50'))}), mean best IoU {f(r['overall']['miou'])}, hallucination "
            f"{f(r['overall']['hallucination_rate'])}"
        )
    return out


def summary_lines(doc: dict[str, Any]) -> list[str]:
    s = summarize(doc)
    rv = doc["reader_vs_reader"]
    od = rv["map_order_dependent"] or {}
    best = max(s["reader_f1_50"].items(), key=lambda kv: kv[1])
    worst = min(s["reader_f1_50"].items(), key=lambda kv: kv[1])
    return _full_lines(doc) + [
        "grounding: knowledge bases "
        + ", ".join(f"{k} ({n} findings)" for k, n in s["knowledge_bases"].items())
        + f"; {s['findings_without_statistics']} VinDr findings have no box statistics",
        f"  VinDr reader agreement, pairwise box F1@0.5: {best[0]} {best[1]:.3f} (best) ... {worst[0]} "
        f"{worst[1]:.3f} (worst)",
        f"  human ceiling (each reader vs the fusion of the other two): F1@0.5 {s['ceiling_f1_50']:.3f}, "
        f"mean best IoU {s['ceiling_miou']:.3f}"
        + (
            " (by gold box size: " + ", ".join(f"{k} {v:.3f}" for k, v in s["ceiling_f1_50_by_size"].items()) + ")"
            if s["ceiling_f1_50_by_size"]
            else ""
        ),
        f"  reader vs reader: P {rv['precision50']:.3f} R {rv['recall50']:.3f} F1 {rv['f1_50']:.3f}; "
        f"mAP50 is order-dependent without scores ({od.get('given_order', {}).get('map50', float('nan')):.4f} given, "
        f"{od.get('reversed_order', {}).get('map50', float('nan')):.4f} reversed order)",
    ]


def report_section(metrics: dict[str, Any]) -> Any:
    """The report section of a ``grounding`` run."""
    from medlens.report import Section, table_html

    s = Section(
        "grounding: finding knowledge and the human ceiling of chest X-ray grounding",
        data="VinDr-CXR reader boxes (3 readers per image) and NIH ChestX-ray14 boxes from torchxrayvision's data "
        "tables, and the VinDr-CXR and PadChest-GR finding knowledge bases",
        model="none: readers are scored against each other (the ceiling any grounding model is compared with)",
    )
    kb_rows = [
        [k["name"], k["version"], k["dataset"], k["n_findings"], len(k["seen"]), len(k["unseen"])]
        for k in metrics["knowledge_bases"]
    ]
    s.add(
        table_html(
            ["knowledge base", "version", "dataset", "findings", "seen", "unseen"],
            kb_rows,
            caption="Finding knowledge bases",
        )
    )
    unseen = metrics["knowledge_bases"][0]["unseen"]
    s.paragraph(f"Unseen VinDr-CXR findings (held out of training in the generalisation split): {', '.join(unseen)}.")
    m = metrics["measured_attributes"]
    rows = [[f, a.get("location", "-"), a.get("size", "-")] for f, a in m["attributes"].items()]
    s.add(
        table_html(["finding", "measured location", "measured size"], rows, caption="Attributes measured on real boxes")
    )
    s.paragraph(
        f"Derivation: {m['derivation']} Findings without box statistics (textual attributes only): "
        f"{', '.join(m['without_statistics'])}.",
        cls="note",
    )
    prow = [[f, p["split"], p["name_only"], p["definition"], p["attributes"]] for f, p in metrics["prompts"].items()]
    s.add(
        table_html(
            ["finding", "split", "name only", "definition", "attributes (+ measured)"], prow, caption="Rendered prompts"
        )
    )
    arow = [
        [v["finding"], v["split"], v["n_images_marked"], v["readers_1"], v["readers_2"], v["readers_3"],
         v["fleiss_kappa"], v["pairwise_f1_50"], v["pairwise_mean_best_iou"]]
        for v in metrics["reader_agreement"].values()
    ]  # fmt: skip
    s.add(
        table_html(
            ["finding", "split", "images marked", "by 1 reader", "by 2", "by 3", "Fleiss κ", "pairwise F1@0.5",
             "mean best IoU"],
            arow,
            caption="VinDr-CXR inter-reader agreement (15,000 training images, 3 readers each)",
        )
    )  # fmt: skip
    ceil = metrics.get("reader_ceiling")
    if ceil:
        crow = [
            [f, v["split"], v["n_positive"], v["precision50"], v["recall50"], v["f1_50"], v["miou"],
             v["hallucination_rate"]]
            for f, v in ceil["by_finding"].items()
        ]  # fmt: skip
        o = ceil["overall"]
        crow.append(["all", "", o["n_positive"], o["precision50"], o["recall50"], o["f1_50"], o["miou"],
                     o["hallucination_rate"]])  # fmt: skip
        s.add(
            table_html(
                ["finding", "split", "queries with gold", "precision@0.5", "recall@0.5", "F1@0.5", "mean best IoU",
                 "hallucination rate"],
                crow,
                caption="Human ceiling: each VinDr-CXR reader against the weighted box fusion (IoU > "
                f"{ceil['fusion']['iou']}) of the image's other readers",
            )
        )  # fmt: skip
        if ceil.get("by_size"):
            bins = ceil["size_strata"]["bins_px2"]
            cuts = {
                "small": f"< {bins[0]:,.0f}",
                "medium": f"{bins[0]:,.0f} – {bins[1]:,.0f}",
                "large": f"≥ {bins[1]:,.0f}",
            }
            srow = [
                [k, cuts[k], v["n_positive"], v["precision50"], v["recall50"], v["f1_50"], v["miou"]]
                for k, v in ceil["by_size"].items()
            ]
            s.add(
                table_html(
                    ["gold box size", "mean area (px²)", "queries with gold", "precision@0.5", "recall@0.5", "F1@0.5",
                     "mean best IoU"],
                    srow,
                    caption="Human ceiling by the size of the fused gold boxes (terciles of all VinDr box areas; the "
                    "table has no image sizes, so sizes are absolute)",
                )
            )  # fmt: skip
        s.paragraph(
            "The hallucination rate counts the (image, reader) pairs where the other readers marked nothing but "
            f"this reader marked the finding. {ceil['note'][:1].upper()}{ceil['note'][1:]}.",
            cls="note",
        )
    tf = metrics.get("tiny_florence")
    if tf:
        trow = []
        for mode, r in tf["by_mode"].items():
            for stratum, v in [("all", r["overall"]), *r["by_split"].items()]:
                trow.append([mode, stratum, v["n_queries"], v["precision50"], v["recall50"], v["f1_50"], v["miou"],
                             v["map50"], v["hallucination_rate"], (v["rodeo"] or {}).get("total")])  # fmt: skip
        s.add(
            table_html(
                ["prompt", "findings", "queries", "precision@0.5", "recall@0.5", "F1@0.5", "mean best IoU", "mAP50",
                 "hallucination rate", "RoDeO"],
                trow,
                caption="Tiny random Florence-2 trained on synthetic chest-like images (seen findings only)",
            )
        )  # fmt: skip
        s.paragraph(tf["description"], cls="note")
    rv = metrics["reader_vs_reader"]
    od = rv.get("map_order_dependent") or {}
    s.paragraph(
        f"One reader's boxes against another's ({rv['n_queries']} image-finding queries, {rv['n_negative']} where "
        f"the gold reader marked nothing): precision {rv['precision50']:.3f}, recall {rv['recall50']:.3f}, "
        f"F1@0.5 {rv['f1_50']:.3f}, mean best IoU {rv['miou']:.3f}. Reader boxes carry no scores, so an AP is only "
        f"the AP of a box order: mAP50 {od.get('given_order', {}).get('map50', float('nan')):.3f} in the given "
        f"order and {od.get('reversed_order', {}).get('map50', float('nan')):.3f} reversed. A model evaluated with "
        "every box scored 1.0 has the same problem; compare it with these rows by F1.",
        cls="note",
    )
    return s


SPEC = BenchmarkSpec(
    name="grounding",
    description="Finding knowledge bases (VinDr-CXR 22, PadChest-GR 24), rendered prompts, VinDr-CXR inter-reader "
    "agreement and the human ceiling (each reader vs the fusion of the others)",
    run=run,
    report_section=report_section,
    extras=("data",),
    summarize=summarize,
    summary_lines=summary_lines,
)
