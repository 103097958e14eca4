"""``medlens metrics boxes``: detection mAP of COCO-format files, COCO pooled or NOVA per-image VOC-11."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from medlens.cli._common import console, emit_result, human_float, metric_table

app = typer.Typer(help="Metrics computed from files (detection boxes).", no_args_is_help=True)


@app.command("boxes")
def boxes_cmd(
    gt: Path = typer.Option(
        ..., "--gt", help="COCO annotation file: images, annotations (bbox = \\[x, y, w, h]), categories."
    ),
    pred: Path = typer.Option(
        ..., "--pred", help="COCO result list: \\[{image_id, category_id, bbox: \\[x, y, w, h], score}]."
    ),
    mode: str = typer.Option(
        ..., "--mode", help="coco: pooled 101-point AP (= pycocotools COCOeval) | voc11: per-image 11-point AP (NOVA)."
    ),
    iou: list[float] = typer.Option([], "--iou", help="Also report AP at this IoU threshold (repeatable)."),
    no_gold: str | None = typer.Option(
        None, "--no-gold", help="voc11: images without gold boxes: skip (default) | score (AP 1 if no box, else 0)."
    ),
    per_category: bool = typer.Option(False, "--per-category", help="Add one row per category."),
    class_agnostic: bool = typer.Option(False, "--class-agnostic", help="Ignore categories (one class, as NOVA)."),
    areas: bool = typer.Option(False, "--areas", help="coco: also AP for small, medium and large objects."),
    max_dets: int | None = typer.Option(None, "--max-dets", help="coco: detections kept per image and category (100)."),
    out: Path | None = typer.Option(None, "--out", help="Also write the JSON to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Detection mAP of COCO-format predictions: map (@\\[.5:.95]), map50, map75, map30 (+ mar100 in coco mode).

    coco mode equals pycocotools' COCOeval bbox stats[0], stats[1], stats[2]; voc11 mode is NOVA's per-image
    11-point AP, averaged over the images that have gold boxes of a category, then over categories.

    Example: medlens metrics boxes --gt instances_val.json --pred detections.json --mode coco --per-category --json
    """
    from medlens.metrics import run_boxes

    payload = run_boxes(
        gt,
        pred,
        mode=mode,
        iou=iou,
        no_gold=no_gold,
        per_category=per_category,
        class_agnostic=class_agnostic,
        areas=areas,
        max_dets=max_dets,
        out=out,
    )
    emit_result(payload, out=None, as_json=as_json, show=_print_boxes)


def _print_boxes(d: dict[str, Any]) -> None:
    from rich.table import Table

    t = metric_table(
        f"{d['protocol']} ({d['mode']} mode): {d['n_images']} images, {d['n_gt']} gold boxes, "
        f"{d['n_pred']} predictions, {d['n_categories']} categories"
    )
    for key in ("map", "map50", "map75", "map30", "map_small", "map_medium", "map_large", "mar100"):
        if key in d:
            t.add_row(key, human_float(d[key]))
    for thr, v in d.get("ap_at_iou", {}).items():
        t.add_row(f"AP@{thr}", human_float(v))
    console().print(t)
    if "per_category" in d:
        pc = Table(show_header=True, title="per category")
        for col in ("id", "name", "n_gt", "map", "map50", "map75"):
            pc.add_column(col, justify="right" if col not in ("name",) else "left")
        for row in d["per_category"]:
            pc.add_row(*(human_float(row[c]) for c in ("id", "name", "n_gt", "map", "map50", "map75")))
        console().print(pc)
