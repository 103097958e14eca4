"""Parity with pycocotools' COCOeval (bbox): stats[0..5], stats[8] and the full precision/recall arrays.

The random sets are built to hit every branch of pycocotools' matching and accumulation: unsorted image and
category ids, images without ground truth, images without detections, a category with no annotation,
detections of categories absent from the ground truth and of unknown category ids (dropped), crowd regions,
``area`` fields that disagree with w*h (they decide the area ranges), duplicated boxes (IoU ties), rounded
scores (score ties across and within images), zero-size detections, more than ``maxDets`` detections in one
image. Values must agree within 1e-12 (the issue asks for 1e-9).
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medlens.metrics import coco_evaluate

pycoco = pytest.importorskip("pycocotools.coco", reason='pycocotools not installed (pip install "medlens[reference]")')
pycocoeval = pytest.importorskip("pycocotools.cocoeval")

pytestmark = pytest.mark.reference

ATOL = 1e-12


def random_coco(seed: int, n_images: int = 40, n_cats: int = 4, max_gt: int = 5, max_dt: int = 9, crowd: float = 0.05):
    """A COCO ground-truth dict and result list designed to exercise ties and edge cases."""
    rng = np.random.default_rng(seed)
    image_ids = [int(v) for v in rng.permutation(10 * n_images)[:n_images] + 1]
    cat_ids = [int(v) for v in rng.permutation(50)[: n_cats + 1] + 1]
    gt_cats = cat_ids[:-1]  # the last category never has an annotation
    images = [{"id": i, "width": 640, "height": 480} for i in image_ids]
    anns, dets = [], []
    for img in image_ids:
        n_gt = int(rng.integers(0, max_gt + 1)) if rng.random() > 0.15 else 0
        boxes = []
        for _ in range(n_gt):
            w, h = (float(v) for v in rng.choice([4, 8, 20, 31, 33, 60, 95, 97, 150], 2))
            x, y = float(rng.integers(0, 400)), float(rng.integers(0, 300))
            if rng.random() < 0.3:  # fractional coordinates
                x, y, w, h = x + rng.random(), y + rng.random(), w + rng.random(), h + rng.random()
            box = [x, y, w, h]
            if boxes and rng.random() < 0.15:
                box = list(boxes[-1][0])  # duplicate ground truth: IoU ties between gold boxes
            cat = boxes[-1][1] if (boxes and rng.random() < 0.5) else int(rng.choice(gt_cats))
            boxes.append((box, cat))
            area = box[2] * box[3] * (1.0 if rng.random() < 0.7 else float(rng.uniform(0.3, 1.2)))
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img,
                    "category_id": cat,
                    "bbox": box,
                    "area": area,
                    "iscrowd": int(rng.random() < crowd),
                }
            )
        n_dt = int(rng.integers(0, max_dt + 1)) if rng.random() > 0.15 else 0
        for _ in range(n_dt):
            if boxes and rng.random() < 0.7:
                (x, y, w, h), cat = boxes[int(rng.integers(len(boxes)))]
                jitter = rng.choice([0.0, 0.0, 1.0, 2.0, 5.0])
                box = [x + jitter * rng.integers(-2, 3), y + jitter * rng.integers(-2, 3), w, h]
                if rng.random() < 0.2:
                    cat = int(rng.choice(cat_ids))  # may be the category without annotations
            else:
                box = [float(rng.integers(0, 500)), float(rng.integers(0, 400)), float(rng.integers(1, 90)), 40.0]
                cat = int(rng.choice(cat_ids))
            if rng.random() < 0.03:
                box[2] = 0.0  # zero-size detection: IoU 0 with everything
            if rng.random() < 0.03:
                cat = 999  # unknown category: dropped
            score = float(np.round(rng.random(), 1))  # many ties
            dets.append({"image_id": img, "category_id": cat, "bbox": [float(v) for v in box], "score": score})
    cats = [{"id": c, "name": f"cat{c}"} for c in cat_ids]
    if not dets:
        dets.append({"image_id": image_ids[0], "category_id": cat_ids[0], "bbox": [1.0, 1.0, 5.0, 5.0], "score": 0.5})
    return {"images": images, "annotations": anns, "categories": cats}, dets


def pycocotools_eval(gt: dict, dets: list, *, iou_thrs=None, max_dets=None, use_cats: bool = True):
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = pycoco.COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(dets))
        ev = pycocoeval.COCOeval(coco_gt, coco_dt, "bbox")
        if iou_thrs is not None:
            ev.params.iouThrs = np.asarray(iou_thrs)
        if max_dets is not None:
            ev.params.maxDets = max_dets
        ev.params.useCats = int(use_cats)
        ev.evaluate()
        ev.accumulate()
        if iou_thrs is None and max_dets is None:
            ev.summarize()
    return ev


def _nan_to_minus1(x: float) -> float:
    return -1.0 if np.isnan(x) else x


def assert_parity(gt: dict, dets: list, **kw) -> None:
    ev = pycocotools_eval(gt, dets)
    ours = coco_evaluate(gt, dets, area_ranges=("all", "small", "medium", "large"), **kw)
    got = [ours.ap(), ours.ap(0.5), ours.ap(0.75), ours.ap(area="small"), ours.ap(area="medium")]
    got += [ours.ap(area="large"), ours.ar()]
    want = [ev.stats[i] for i in (0, 1, 2, 3, 4, 5, 8)]
    np.testing.assert_allclose([_nan_to_minus1(v) for v in got], want, rtol=0, atol=ATOL)
    # The whole accumulated arrays, not only their means (maxDets=100 column).
    np.testing.assert_allclose(ours.precision, ev.eval["precision"][..., -1], rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours.recall, ev.eval["recall"][..., -1], rtol=0, atol=ATOL)


@pytest.mark.parametrize("seed", range(12))
def test_random_sets_match_pycocotools(seed):
    gt, dets = random_coco(seed, n_images=30 + 10 * seed)
    assert_parity(gt, dets)


def test_many_images_several_categories():
    gt, dets = random_coco(123, n_images=400, n_cats=6)
    assert_parity(gt, dets)


def test_crowd_heavy_and_dense_images():
    # Crowd regions are matched repeatedly and ignore their detections; >100 detections per image are cut.
    gt, dets = random_coco(7, n_images=12, n_cats=2, max_gt=8, max_dt=40, crowd=0.4)
    rng = np.random.default_rng(0)
    img = gt["images"][0]["id"]
    dets += [
        {"image_id": img, "category_id": gt["categories"][0]["id"], "bbox": [float(rng.integers(0, 300)), 10.0, 30.0, 30.0],
         "score": float(np.round(rng.random(), 2))}
        for _ in range(150)
    ]  # fmt: skip
    assert_parity(gt, dets)


def test_exact_ties_in_iou_and_score():
    # Two identical gold boxes, three identical detections with one score: every tie rule decides the result.
    gt = {
        "images": [{"id": 2}, {"id": 1}],
        "categories": [{"id": 1}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [50, 50, 10, 10], "area": 100, "iscrowd": 0},
        ],
    }
    dets = [
        {"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5},
        {"image_id": 1, "category_id": 1, "bbox": [0, 1, 10, 10], "score": 0.5},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5},
        {"image_id": 2, "category_id": 1, "bbox": [50, 50, 10, 10], "score": 0.5},
    ]
    assert_parity(gt, dets)


@pytest.mark.parametrize("seed", [3, 4])
def test_custom_thresholds_and_max_dets(seed):
    gt, dets = random_coco(seed, n_images=50)
    thrs = [0.3, 0.5, 0.62]
    ev = pycocotools_eval(gt, dets, iou_thrs=thrs, max_dets=[1, 2, 3])
    ours = coco_evaluate(gt, dets, iou_thresholds=thrs, max_detections=3)
    np.testing.assert_allclose(ours.precision[..., 0], ev.eval["precision"][..., 0, -1], rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours.recall[..., 0], ev.eval["recall"][..., 0, -1], rtol=0, atol=ATOL)


@pytest.mark.parametrize("seed", [5, 6])
def test_class_agnostic_equals_use_cats_0(seed):
    gt, dets = random_coco(seed, n_images=60)
    ev = pycocotools_eval(gt, dets, use_cats=False)
    ours = coco_evaluate(gt, dets, class_agnostic=True, area_ranges=("all", "small", "medium", "large"))
    np.testing.assert_allclose(ours.precision, ev.eval["precision"][..., -1], rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours.recall, ev.eval["recall"][..., -1], rtol=0, atol=ATOL)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    n_images=st.integers(1, 25),
    n_cats=st.integers(1, 4),
    crowd=st.sampled_from([0.0, 0.1, 0.5]),
)
def test_hypothesis_random_sets(seed, n_images, n_cats, crowd):
    gt, dets = random_coco(seed, n_images=n_images, n_cats=n_cats, crowd=crowd)
    assert_parity(gt, dets)


@pytest.mark.parametrize("seed", range(4))
def test_detection_report_coco_protocol_matches_pycocotools(seed):
    """The single-class list API (detection_report, protocol="coco101") against pycocotools on the same boxes."""
    from medlens.metrics import detection_report

    rng = np.random.default_rng(seed)
    gold, pred, scores = [], [], []
    for _ in range(80):
        g = [[*xy, *(xy + rng.integers(5, 60, 2))] for xy in rng.integers(0, 200, (int(rng.integers(0, 4)), 2))]
        p = [list(np.add(b, np.tile(rng.integers(-4, 5, 2), 2))) for b in g if rng.random() < 0.8]  # shifted
        p += [[*xy, *(xy + rng.integers(5, 60, 2))] for xy in rng.integers(0, 200, (int(rng.integers(0, 3)), 2))]
        gold.append(np.array(g, float).reshape(-1, 4))
        pred.append(np.array(p, float).reshape(-1, 4))
        scores.append(np.round(rng.random(len(p)), 1))
    images = [{"id": i + 1} for i in range(len(gold))]
    boxes = [(i, b) for i, gs in enumerate(gold) for b in gs.tolist()]
    anns = [
        {"id": k + 1, "image_id": i + 1, "category_id": 1, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
         "area": (b[2] - b[0]) * (b[3] - b[1]), "iscrowd": 0}
        for k, (i, b) in enumerate(boxes)
    ]  # fmt: skip
    dets = [
        {"image_id": i + 1, "category_id": 1, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": float(s)}
        for i, (ps, ss) in enumerate(zip(pred, scores, strict=True))
        for b, s in zip(ps.tolist(), ss, strict=True)
    ]
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1}]}
    ev = pycocotools_eval(gt, dets)
    ev30 = pycocotools_eval(gt, dets, iou_thrs=[0.3])
    r = detection_report(gold, pred, scores=scores, protocol="coco101", no_gold="score")
    np.testing.assert_allclose(
        [r.map50_95, r.map50, r.map30],
        [ev.stats[0], ev.stats[1], np.mean(ev30.eval["precision"][0, :, 0, 0, -1])],
        rtol=0,
        atol=ATOL,
    )


# --------------------------------------------------------------------------------------------------------------
# The audit's case set, kept: every one of pycocotools' 12 summary stats, on crowd regions, IoU ties, more than
# maxDets detections, empty images (neither gold nor detections), string image ids and NumPy-typed input.


def twelve_stats(gt: dict, dets: list) -> list[float]:
    """Our values of COCOeval.stats[0..11] (nan as pycocotools' -1)."""
    areas = ("all", "small", "medium", "large")
    r100 = coco_evaluate(gt, dets, area_ranges=areas)
    r1 = coco_evaluate(gt, dets, area_ranges=areas, max_detections=1)
    r10 = coco_evaluate(gt, dets, area_ranges=areas, max_detections=10)
    got = [r100.ap(), r100.ap(0.5), r100.ap(0.75), *(r100.ap(area=a) for a in areas[1:])]
    got += [r1.ar(), r10.ar(), r100.ar(), *(r100.ar(area=a) for a in areas[1:])]
    return [_nan_to_minus1(v) for v in got]


def assert_twelve_stats(gt: dict, dets: list) -> np.ndarray:
    want = pycocotools_eval(gt, dets).stats
    assert len(want) == 12
    np.testing.assert_allclose(twelve_stats(gt, dets), want, rtol=0, atol=ATOL)
    return want


def _with_string_image_ids(gt: dict, dets: list) -> tuple[dict, list]:
    name = {im["id"]: f"case-{im['id']:04d}.png" for im in gt["images"]}
    gt = {
        **gt,
        "images": [{**im, "id": name[im["id"]]} for im in gt["images"]],
        "annotations": [{**a, "image_id": name[a["image_id"]]} for a in gt["annotations"]],
    }
    return gt, [{**d, "image_id": name[d["image_id"]]} for d in dets]


def audit_case(seed: int = 11) -> tuple[dict, list]:
    """Random sets plus, explicitly: empty images, a crowd region, an exact IoU tie and 130 detections in one image."""
    gt, dets = random_coco(seed, n_images=25, n_cats=3, max_gt=6, max_dt=12, crowd=0.2)
    cat = gt["categories"][0]["id"]
    top = max(im["id"] for im in gt["images"])
    empty, crowd_img, tie_img, dense_img = top + 1, top + 2, top + 3, top + 4
    gt["images"] += [{"id": i} for i in (empty, top + 5, crowd_img, tie_img, dense_img)]  # top + 5: empty too
    ann = len(gt["annotations"])
    gt["annotations"] += [
        {"id": ann + 1, "image_id": crowd_img, "category_id": cat, "bbox": [0.0, 0.0, 200.0, 200.0], "area": 40000.0, "iscrowd": 1},
        {"id": ann + 2, "image_id": crowd_img, "category_id": cat, "bbox": [10.0, 10.0, 30.0, 30.0], "area": 900.0, "iscrowd": 0},
        {"id": ann + 3, "image_id": tie_img, "category_id": cat, "bbox": [0.0, 0.0, 20.0, 20.0], "area": 400.0, "iscrowd": 0},
        {"id": ann + 4, "image_id": tie_img, "category_id": cat, "bbox": [10.0, 0.0, 20.0, 20.0], "area": 400.0, "iscrowd": 0},
        {"id": ann + 5, "image_id": dense_img, "category_id": cat, "bbox": [50.0, 50.0, 40.0, 40.0], "area": 1600.0, "iscrowd": 0},
    ]  # fmt: skip
    dets += [
        # crowd: many detections inside the crowd region are ignored, one matches the real box
        *({"image_id": crowd_img, "category_id": cat, "bbox": [float(x), 60.0, 25.0, 25.0], "score": 0.6} for x in range(0, 150, 15)),
        {"image_id": crowd_img, "category_id": cat, "bbox": [10.0, 10.0, 30.0, 30.0], "score": 0.7},
        # a detection exactly between two gold boxes: IoU 1/3 with each (a tie the gold order breaks)
        {"image_id": tie_img, "category_id": cat, "bbox": [5.0, 0.0, 20.0, 20.0], "score": 0.8},
        {"image_id": tie_img, "category_id": cat, "bbox": [5.0, 0.0, 20.0, 20.0], "score": 0.8},
        # 130 detections in one image, scores rounded (ties at the maxDets cut), the hit ranked 105th
        *({"image_id": dense_img, "category_id": cat, "bbox": [float(3 * k), 300.0, 10.0, 10.0], "score": round(0.99 - k / 200, 2)} for k in range(130)),
        {"image_id": dense_img, "category_id": cat, "bbox": [50.0, 50.0, 40.0, 40.0], "score": round(0.99 - 104.5 / 200, 3)},
    ]  # fmt: skip
    return gt, dets


def test_audit_cases_all_twelve_stats():
    gt, dets = audit_case()
    want = assert_twelve_stats(gt, dets)
    assert (want[[0, 6, 7, 8]] > 0).all()  # the case is not degenerate
    # the dense image alone: only maxDets decides whether its hit (ranked 105th) counts
    counts = np.unique([d["image_id"] for d in dets], return_counts=True)
    dense = int(counts[0][np.argmax(counts[1])])
    one = {**gt, "images": [{"id": dense}], "annotations": [a for a in gt["annotations"] if a["image_id"] == dense]}
    stats = assert_twelve_stats(one, [d for d in dets if d["image_id"] == dense])
    assert stats[8] == 0.0  # AR@100: the hit is cut


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_sets_all_twelve_stats(seed):
    assert_twelve_stats(*random_coco(seed, n_images=40, crowd=0.1))


def test_string_image_ids_all_twelve_stats():
    gt, dets = _with_string_image_ids(*audit_case(12))
    assert isinstance(gt["images"][0]["id"], str)
    assert_twelve_stats(gt, dets)


def test_empty_images_only_and_a_dataset_without_detections_of_a_category():
    # images with neither gold nor detections leave every stat unchanged
    gt, dets = random_coco(5, n_images=20)
    base = assert_twelve_stats(gt, dets)
    top = max(im["id"] for im in gt["images"])
    padded = {**gt, "images": gt["images"] + [{"id": top + k} for k in range(1, 30)]}
    np.testing.assert_allclose(assert_twelve_stats(padded, dets), base, rtol=0, atol=ATOL)


def test_numpy_typed_input_matches_pycocotools():
    # Regression: NumPy scalars (np.int64 ids, np.float64/np.float32 coordinates and scores) are taken as
    # pycocotools takes them; the stats equal pycocotools' on the same NumPy-typed data.
    gt, dets = audit_case(13)
    np_gt = {
        "images": [{"id": np.int64(im["id"])} for im in gt["images"]],
        "categories": [{**c, "id": np.int64(c["id"])} for c in gt["categories"]],
        "annotations": [
            {**a, "id": np.int64(a["id"]), "image_id": np.int64(a["image_id"]), "category_id": np.int64(a["category_id"]),
             "bbox": [np.float64(v) for v in a["bbox"]], "area": np.float64(a["area"]), "iscrowd": np.int64(a["iscrowd"])}
            for a in gt["annotations"]
        ],
    }  # fmt: skip
    np_dets = [
        {"image_id": np.int64(d["image_id"]), "category_id": np.int64(d["category_id"]),
         "bbox": [np.float64(v) for v in d["bbox"]], "score": np.float32(d["score"])}
        for d in dets
    ]  # fmt: skip
    assert_twelve_stats(np_gt, np_dets)
