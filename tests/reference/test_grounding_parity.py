"""Grounding mAP (queries as images of one category, negatives included) equals pycocotools' COCOeval bbox AP."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from medlens.grounding import evaluate_grounding

pycoco = pytest.importorskip("pycocotools.coco", reason='pycocotools not installed (pip install "medlens[reference]")')
pycocoeval = pytest.importorskip("pycocotools.cocoeval")

pytestmark = pytest.mark.reference


def _random_queries(seed: int, n: int = 60) -> list[dict]:
    rng = np.random.default_rng(seed)
    qs = []
    for i in range(n):
        n_gold = int(rng.integers(0, 3))  # 0: a negative query
        gold = rng.uniform(0, 400, (n_gold, 2))
        gold = np.c_[gold, gold + rng.uniform(10, 100, (n_gold, 2))]
        keep = gold[rng.random(n_gold) < 0.7]
        pred = keep + rng.normal(0, 8, keep.shape)
        extra = rng.uniform(0, 400, (int(rng.integers(0, 2)), 2))
        pred = np.r_[pred, np.c_[extra, extra + 40]]
        pred = np.c_[np.minimum(pred[:, :2], pred[:, 2:]), np.maximum(pred[:, :2], pred[:, 2:])].clip(0, 600)
        qs.append(
            {"image_id": i, "finding": "f", "gold": gold, "pred": pred, "scores": np.round(rng.random(len(pred)), 2)}
        )
    return qs


def _pycoco(qs: list[dict]) -> tuple[float, float, float]:
    images = [{"id": i + 1, "width": 600, "height": 600} for i in range(len(qs))]
    anns, dets = [], []
    for i, q in enumerate(qs):
        for g in q["gold"]:
            w, h = g[2] - g[0], g[3] - g[1]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "bbox": [g[0], g[1], w, h],
                         "area": w * h, "iscrowd": 0})  # fmt: skip
        for p, s in zip(q["pred"], q["scores"], strict=True):
            dets.append(
                {"image_id": i + 1, "category_id": 1, "bbox": [p[0], p[1], p[2] - p[0], p[3] - p[1]], "score": float(s)}
            )
    with contextlib.redirect_stdout(io.StringIO()):
        gt = pycoco.COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "f"}]}
        gt.createIndex()
        dt = gt.loadRes(dets)
        ev = pycocoeval.COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1]), float(ev.stats[2])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_equals_pycocotools(seed):
    qs = _random_queries(seed)
    ours = evaluate_grounding(qs)
    assert ours["score_status"] == "model"
    assert ours["n_negative"] > 0
    ref = _pycoco(qs)
    assert (ours["map"], ours["map50"], ours["map75"]) == pytest.approx(ref, abs=1e-12)
