"""COCO-mode mAP of medlens vs pycocotools on 5,000 images / 10,000 detections (~7,500 gold boxes, 4 categories).

pycocotools is timed on loadRes + evaluate + accumulate + summarize (stdout suppressed), starting from an indexed
ground-truth COCO object and a fresh copy of the result list; medlens on ``coco_evaluate`` starting from the
same ground-truth dict and result list (parsing and validation included). Both in this run, median of
``--repeat``. Prints the seconds, the ratio ours/peer and the largest difference of stats[0..2] and of the
whole precision array (must be 0 within 1e-9).
Usage: python perf/coco_map.py [--images 5000] [--dets 10000] [--categories 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _util import timed  # noqa: E402


def make_data(n_images: int, n_dets: int, n_cats: int = 4, gt_per_image: float = 1.5, seed: int = 0):
    """Gold boxes spread over images; 60 % of detections are jittered copies of gold boxes, the rest random."""
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": 640, "height": 480} for i in range(n_images)]
    cats = [{"id": c + 1, "name": f"finding{c + 1}"} for c in range(n_cats)]
    n_gt = int(round(n_images * gt_per_image))
    g_img = rng.integers(1, n_images + 1, n_gt)
    wh = rng.uniform(8, 200, (n_gt, 2)).round(1)
    xy = np.c_[rng.uniform(0, 640 - wh[:, 0]), rng.uniform(0, 480 - wh[:, 1])].round(1)
    g_cat = rng.integers(1, n_cats + 1, n_gt)
    anns = [
        {
            "id": i + 1,
            "image_id": int(g_img[i]),
            "category_id": int(g_cat[i]),
            "bbox": [float(xy[i, 0]), float(xy[i, 1]), float(wh[i, 0]), float(wh[i, 1])],
            "area": float(wh[i, 0] * wh[i, 1]),
            "iscrowd": 0,
        }
        for i in range(n_gt)
    ]
    dets = []
    n_tp = int(0.6 * n_dets)
    src = rng.integers(0, n_gt, n_tp)
    jit = rng.normal(0, 0.07, (n_tp, 4)) * np.c_[wh[src], wh[src]]
    for j, i in enumerate(src):
        box = [float(xy[i, 0] + jit[j, 0]), float(xy[i, 1] + jit[j, 1])]
        box += [float(max(1.0, wh[i, 0] + jit[j, 2])), float(max(1.0, wh[i, 1] + jit[j, 3]))]
        cat = int(g_cat[i]) if rng.random() < 0.9 else int(rng.integers(1, n_cats + 1))
        dets.append({"image_id": int(g_img[i]), "category_id": cat, "bbox": box, "score": float(rng.beta(4, 2))})
    for _ in range(n_dets - n_tp):
        w, h = (float(v) for v in rng.uniform(8, 200, 2))
        box = [float(rng.uniform(0, 640 - w)), float(rng.uniform(0, 480 - h)), w, h]
        dets.append(
            {
                "image_id": int(rng.integers(1, n_images + 1)),
                "category_id": int(rng.integers(1, n_cats + 1)),
                "bbox": box,
                "score": float(rng.beta(2, 4)),
            }
        )
    return {"images": images, "annotations": anns, "categories": cats}, dets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--dets", type=int, default=10000)
    ap.add_argument("--categories", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from medlens.metrics import coco_evaluate

    gt, dets = make_data(args.images, args.dets, n_cats=args.categories)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
    copies = iter([copy.deepcopy(dets) for _ in range(args.repeat)])

    def peer():
        with contextlib.redirect_stdout(io.StringIO()):
            ev = COCOeval(coco_gt, coco_gt.loadRes(next(copies)), "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return ev

    peer_t, ev = timed(peer, args.repeat)
    ours_t, res = timed(lambda: coco_evaluate(gt, dets), args.repeat)
    ours = np.array([res.ap(), res.ap(0.5), res.ap(0.75)])
    diff = float(np.abs(ours - ev.stats[:3]).max())
    diff_prec = float(np.abs(res.precision[..., 0] - ev.eval["precision"][..., 0, -1]).max())
    print(
        f"COCO bbox mAP, {args.images} images, {len(dets)} detections, {len(gt['annotations'])} gold boxes, "
        f"{len(gt['categories'])} categories, median of {args.repeat}"
    )
    print(
        f"  pycocotools {peer_t:.3f} s, medlens {ours_t:.4f} s -> ratio ours/peer {ours_t / peer_t:.4f} "
        f"({peer_t / ours_t:.0f}x faster)"
    )
    print(
        f"  stats[0..2] ours {ours.round(6).tolist()} pycocotools {np.round(ev.stats[:3], 6).tolist()}; "
        f"max abs diff {diff:.3g} (stats), {diff_prec:.3g} (precision array)"
    )
    if not (diff <= 1e-9 and diff_prec <= 1e-9):
        raise SystemExit("values differ")
    if ours_t * 5 > peer_t:
        raise SystemExit(f"target missed: medlens must be >= 5x faster (got {peer_t / ours_t:.1f}x)")


if __name__ == "__main__":
    main()
