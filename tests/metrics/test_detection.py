"""Detection metrics: IoU, frames, hand-computed VOC-11 cases, the no-gold rules, ACC/precision/recall, COCO
readers' errors, and the vectorised per-image engine against a plain-Python transcription of the documented rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlens._validation import InputError
from medlens.metrics import (
    BOX_FORMATS,
    DetectionReport,
    InterRaterReport,
    MetricResult,
    accuracy_at_iou,
    average_precision_per_image,
    box_iou,
    box_precision_recall,
    check_boxes,
    clip_boxes,
    coco_evaluate,
    convert_boxes,
    detection_report,
    inter_rater_report,
    load_coco_ground_truth,
    load_coco_predictions,
    mean_average_precision,
    voc11_evaluate,
)

# --------------------------------------------------------------------------------------------------- IoU


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),  # identical
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),  # disjoint
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching edges: zero-width intersection
        ([0, 0, 10, 10], [0, 0, 5, 5], 0.25),  # contained: 25 / 100
        ([0, 0, 10, 10], [5, 0, 15, 10], 1 / 3),  # half overlap: 50 / (100 + 100 - 50)
        ([0, 0, 10, 10], [5, 5, 15, 15], 25 / 175),  # corner overlap: 25 / (200 - 25)
        ([0, 0, 10, 10], [3, 3, 3, 8], 0.0),  # zero-area box
    ],
)
def test_box_iou_hand_cases(a, b, expected):
    assert box_iou([a], [b])[0, 0] == pytest.approx(expected, abs=1e-15)


def test_box_iou_shape_symmetry_and_empty():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (7, 2))
    a = np.c_[xy, xy + rng.uniform(1, 30, (7, 2))]
    b = a[:4] + 3
    iou = box_iou(a, b)
    assert iou.shape == (7, 4)
    np.testing.assert_allclose(iou, box_iou(b, a).T, rtol=0, atol=1e-15)
    assert ((iou >= 0) & (iou <= 1)).all()
    assert box_iou([], b).shape == (0, 4)
    assert box_iou(a, np.zeros((0, 4))).shape == (7, 0)


def test_box_iou_rejects_inverted_boxes():
    with pytest.raises(InputError, match=r"boxes_a: box 0 \[10, 0, 0, 10\] has width -10"):
        box_iou([[10, 0, 0, 10]], [[0, 0, 1, 1]])


# ------------------------------------------------------------------------------------- frames and checks


@st.composite
def boxes_in_image(draw):
    w = draw(st.floats(1, 4000))
    h = draw(st.floats(1, 4000))
    n = draw(st.integers(0, 6))
    out = []
    for _ in range(n):
        x1, x2 = sorted(draw(st.lists(st.floats(0, 1), min_size=2, max_size=2, unique=True)))
        y1, y2 = sorted(draw(st.lists(st.floats(0, 1), min_size=2, max_size=2, unique=True)))
        out.append([x1 * w, y1 * h, x2 * w, y2 * h])
    return np.array(out).reshape(-1, 4), (w, h)


@settings(max_examples=150, deadline=None)
@given(data=boxes_in_image(), fmt=st.sampled_from(BOX_FORMATS))
def test_frame_round_trip(data, fmt):
    boxes, size = data
    there, rec = convert_boxes(boxes, "xyxy_pixel", fmt, image_size=size, check=False)
    back, rec_back = convert_boxes(there, fmt, "xyxy_pixel", image_size=size, check=False)
    scale = max(size)
    np.testing.assert_allclose(back, boxes, rtol=1e-12, atol=1e-12 * scale)
    assert rec.n_boxes == len(boxes)
    assert rec.deviation == (fmt != "xyxy_pixel" and len(boxes) > 0)
    if fmt != "xywh_pixel" and len(boxes):  # IoU is invariant to per-axis scaling
        np.testing.assert_allclose(box_iou(there, there[::-1]), box_iou(boxes, boxes[::-1]), atol=1e-9)


def test_conversions_by_hand_and_the_record():
    # A Qwen-style 0-1000 box on a 480 x 400 image: x * 480 / 1000, y * 400 / 1000.
    out, rec = convert_boxes([[100, 250, 500, 750]], "xyxy_norm1000", "xyxy_pixel", image_size=(480, 400), image="c1")
    assert out.tolist() == [[48.0, 100.0, 240.0, 300.0]]
    assert rec.to_dict() == {
        "operation": "convert",
        "src": "xyxy_norm1000",
        "dst": "xyxy_pixel",
        "n_boxes": 1,
        "n_changed": 1,
        "image_size": [480.0, 400.0],
        "image": "c1",
        "message": "converted 1 box(es) of image 'c1' from xyxy_norm1000 to xyxy_pixel (image size 480x400)",
    }
    assert convert_boxes([[10, 20, 30, 40]], "xywh_pixel", "xyxy_pixel")[0].tolist() == [[10, 20, 40, 60]]
    assert convert_boxes([[0.1, 0.2, 0.3, 0.4]], "xyxy_norm1", "xyxy_norm1000")[0].tolist() == [[100, 200, 300, 400]]
    same, rec = convert_boxes([[1, 2, 3, 4]], "xyxy_pixel", "xyxy_pixel")
    assert not rec.deviation
    assert "nothing converted" in rec.message()


def test_conversion_needs_the_image_size():
    with pytest.raises(InputError, match=r"from xyxy_norm1 to xywh_pixel needs image_size=\(width, height\)"):
        convert_boxes([[0.1, 0.1, 0.2, 0.2]], "xyxy_norm1", "xywh_pixel")


@pytest.mark.parametrize(
    ("boxes", "kw", "message"),
    [
        (
            [[0, 0, 5, 5], [0, 0, float("nan"), 5]],
            {},
            r"boxes of image 'img7': box 1 \[0, 0, nan, 5\] has a non-finite",
        ),
        ([[0, 0, 5, 5], [0, 5, 5, 2]], {}, r"box 1 \[0, 5, 5, 2\] has height -3; xyxy_pixel boxes need x1 < x2"),
        ([[0, 0, 0, 5]], {"box_format": "xywh_pixel"}, r"box 0 \[0, 0, 0, 5\] has width 0; xywh_pixel boxes need"),
        ([[0, 0, 5, 5], [400, 10, 481, 20]], {"image_size": (480, 640)}, r"box 1 .* lies outside the image \[0, 480\]"),
        ([[0, 0, 0.5, 1.2]], {"box_format": "xyxy_norm1"}, r"box 0 .* \(xyxy_norm1\) lies outside the image \[0, 1\]"),
        ([[1, 2, 3]], {}, r"must have shape \(n, 4\); got shape \(1, 3\)"),
        ([1, 2, 3, 4], {}, r"got shape \(4,\)\. Wrap a single box as \[\[a, b, c, d\]\]"),
    ],
)
def test_check_boxes_errors_name_image_and_box(boxes, kw, message):
    with pytest.raises(InputError, match=message):
        check_boxes(boxes, image="img7", **kw)


def test_clip_boxes_records_the_change():
    out, rec = clip_boxes([[-5, 10, 50, 700], [1, 2, 3, 4]], (480, 640), image="a")
    assert out.tolist() == [[0, 10, 50, 640], [1, 2, 3, 4]]
    assert (rec.n_changed, rec.deviation) == (1, True)
    assert rec.message() == "clipped 1 of 2 box(es) of image 'a' to the image (image size 480x640)"


# ------------------------------------------------------------------------------- hand-computed VOC-11 AP

G3 = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]]


def test_voc11_classic_curve():
    # 3 gold boxes; predictions by score: TP(G0) FP TP(G1) FP(duplicate of G0) TP(G2).
    #   k  P      R
    #   1  1/1    1/3
    #   2  1/2    1/3
    #   3  2/3    2/3
    #   4  2/4    2/3
    #   5  3/5    3/3
    # Interpolated precision (max P at R >= r): r = 0, .1, .2, .3 -> 1 (4 points); r = .4, .5, .6 -> 2/3 (3 points);
    # r = .7, .8, .9, 1 -> 3/5 (4 points). AP = (4 + 2 + 2.4) / 11 = 8.4 / 11 = 42/55.
    pred = [[40, 0, 50, 10], [0, 0, 10, 10], [60, 0, 70, 10], [0, 0, 10, 10], [20, 0, 30, 10]]
    scores = [0.5, 0.9, 0.8, 0.6, 0.7]  # given out of order: the ranking comes from the scores
    ap = average_precision_per_image([G3], [pred], scores=[scores])
    assert ap[0] == pytest.approx(42 / 55, abs=1e-15)


def test_voc11_recall_points_are_exact_tenths():
    # 10 gold boxes, 3 exact hits: P = 1 at R = .1, .2, .3. Recall 3/10 reaches the 0.3 point, so 4 points
    # (r = 0, .1, .2, .3) have precision 1: AP = 4/11. (np.arange(0, 1.1, 0.1) would give 3/11.)
    gold = [[10 * i, 0, 10 * i + 5, 5] for i in range(10)]
    ap = average_precision_per_image([gold], [gold[:3]])
    assert ap[0] == pytest.approx(4 / 11, abs=1e-15)


def test_voc11_score_ties_keep_the_given_order():
    # 1 gold box; a miss and a hit with equal scores. Given order miss, hit: P = 0, 1/2 at R = 0, 1 -> every
    # point reads 1/2 -> AP 0.5. Given order hit, miss: AP 1. No scores behaves like equal scores.
    miss, hit = [50, 50, 60, 60], [0, 0, 10, 10]
    gold = [[[0, 0, 10, 10]]]
    assert average_precision_per_image(gold, [[miss, hit]], scores=[[0.5, 0.5]])[0] == 0.5
    assert average_precision_per_image(gold, [[hit, miss]], scores=[[0.5, 0.5]])[0] == 1.0
    assert average_precision_per_image(gold, [[miss, hit]])[0] == 0.5
    assert average_precision_per_image(gold, [[miss, hit]], scores=[[0.1, 0.9]])[0] == 1.0


def test_voc11_second_prediction_on_one_gold_is_a_false_positive():
    # 1 gold, 2 identical hits: TP then FP -> P = 1, 1/2 at R = 1, 1 -> AP 1; box precision 1/2, recall 1.
    gold, pred = [[[0, 0, 10, 10]]], [[[0, 0, 10, 10], [0, 0, 10, 10]]]
    assert average_precision_per_image(gold, pred)[0] == 1.0
    assert box_precision_recall(gold, pred) == (0.5, 1.0)


def test_voc11_greedy_takes_the_highest_iou_then_the_first_gold_on_ties():
    # G0 = [0,0,10,10], G1 = [5,0,15,10]. p0 = [4,0,14,10]: IoU(G0) = 60/140, IoU(G1) = 90/110 -> takes G1.
    # p1 = [6,0,16,10]: G1 is taken, IoU(G0) = 40/160 = 0.25.
    # At t = 0.5: TP, FP -> P = 1, 1/2; R = 1/2, 1/2 -> r = 0..0.5 read 1 (6 points), r >= 0.6 read 0: AP = 6/11.
    # At t = 0.2: p1 takes G0 -> TP, TP -> AP 1.
    gold = [[[0, 0, 10, 10], [5, 0, 15, 10]]]
    pred = [[[4, 0, 14, 10], [6, 0, 16, 10]]]
    assert average_precision_per_image(gold, pred, iou=0.5)[0] == pytest.approx(6 / 11, abs=1e-15)
    assert average_precision_per_image(gold, pred, iou=0.2)[0] == 1.0
    # Tie: p0 = [5,0,15,10] has IoU 1/3 with both G0 = [0,0,10,10] and G1 = [10,0,20,10] -> the first (G0).
    # p1 = G0 exactly, but G0 is taken and IoU(G1) = 0 -> FP. At t = 0.3: TP, FP -> AP 6/11 (1 if the tie went to G1).
    gold = [[[0, 0, 10, 10], [10, 0, 20, 10]]]
    pred = [[[5, 0, 15, 10], [0, 0, 10, 10]]]
    assert average_precision_per_image(gold, pred, iou=0.3)[0] == pytest.approx(6 / 11, abs=1e-15)


def test_iou_exactly_at_the_threshold_is_a_hit():
    # IoU of [0,0,10,10] and [0,0,10,5] is 50/100 = 0.5 exactly: a hit at 0.5, a miss at 0.55.
    gold, pred = [[[0, 0, 10, 10]]], [[[0, 0, 10, 5]]]
    assert mean_average_precision(gold, pred, iou=0.5) == 1.0
    assert mean_average_precision(gold, pred, iou=0.55) == 0.0


def test_voc11_and_coco101_differ_on_the_same_curve():
    # The classic curve above under COCO's 101 points: r = 0..0.33 read 1 (34 points), r = 0.34..0.66 read 2/3
    # (33 points), r = 0.67..1 read 3/5 (34 points): AP = (34 + 22 + 20.4) / 101 = 76.4/101 = 0.75644 vs 42/55 = 0.76364.
    pred = [[0, 0, 10, 10], [60, 0, 70, 10], [20, 0, 30, 10], [0, 0, 10, 10], [40, 0, 50, 10]]
    voc = mean_average_precision([G3], [pred], scores=[[5, 4, 3, 2, 1]], iou=0.5)
    coco = mean_average_precision([G3], [pred], scores=[[5, 4, 3, 2, 1]], iou=0.5, protocol="coco101")
    assert voc == pytest.approx(42 / 55, abs=1e-15)
    assert coco == pytest.approx(76.4 / 101, abs=1e-12)  # pycocotools divides by tp + fp + eps


# ------------------------------------------------------------------------------------ the no-gold rules

# image 0: gold + exact hit; 1, 2: no gold, no prediction; 3: no gold, one prediction; 4: gold, no prediction.
NG_GOLD = [[[0, 0, 10, 10]], [], [], [], [[0, 0, 10, 10]]]
NG_PRED = [[[0, 0, 10, 10]], [], [], [[0, 0, 5, 5]], []]


def test_no_gold_skip_is_the_default_and_counts_the_images():
    # Scored: images 0 and 4 -> AP 1 and 0 -> mAP 0.5; ACC 1/2; precision: 1 TP of 1 prediction; recall 1 of 2.
    r = detection_report(NG_GOLD, NG_PRED)
    assert average_precision_per_image(NG_GOLD, NG_PRED).tolist()[::4] == [1.0, 0.0]
    assert np.isnan(average_precision_per_image(NG_GOLD, NG_PRED)[1:4]).all()
    assert (r.map50, r.acc50, r.precision50, r.recall50) == (0.5, 0.5, 1.0, 0.5)
    assert (r.n_images, r.n_images_scored, r.n_images_without_gold, r.no_gold) == (5, 2, 3, "skip")
    assert r.protocol == "nova-voc11"


def test_no_gold_score_rewards_empty_predictions():
    # Per-image AP: 1, 1, 1, 0 (a box where there is nothing), 0 -> 3/5. ACC the same 3/5.
    # Precision: predictions of all images: 2, 1 TP -> 1/2. Recall 1/2.
    r = detection_report(NG_GOLD, NG_PRED, no_gold="score")
    assert average_precision_per_image(NG_GOLD, NG_PRED, no_gold="score").tolist() == [1, 1, 1, 0, 0]
    assert (r.map50, r.acc50, r.precision50, r.recall50) == (0.6, 0.6, 0.5, 0.5)
    assert r.n_images_scored == 5


def test_nothing_scored_gives_nan_not_an_error():
    r = detection_report([[], []], [[], [[0, 0, 1, 1]]])
    assert np.isnan(r.map50)
    assert np.isnan(r.acc50)
    assert np.isnan(r.precision50)
    assert r.n_images_without_gold == 2


def test_report_keys_are_stable():
    r = detection_report([[[0, 0, 10, 10]]], [[[0, 0, 10, 10]]])
    assert isinstance(r, DetectionReport)
    assert isinstance(r, MetricResult)
    assert list(r.to_dict()) == [
        "protocol",
        "map30",
        "map50",
        "map50_95",
        "acc50",
        "precision50",
        "recall50",
        "tp50",
        "n_gold_boxes",
        "n_pred_boxes",
        "n_images",
        "n_images_scored",
        "n_images_without_gold",
        "no_gold",
    ]
    assert r.map50_95 == 1.0


def test_acc50_uses_the_top_scoring_box_only():
    # Image 0: the top box (0.9) has IoU 0.4, a lower one hits -> miss. Image 1: the top box hits. ACC = 1/2.
    gold = [[[0, 0, 10, 10]], [[0, 0, 10, 10]]]
    pred = [[[0, 0, 10, 4], [0, 0, 10, 10]], [[0, 0, 10, 10], [50, 50, 60, 60]]]
    assert accuracy_at_iou(gold, pred, scores=[[0.9, 0.1], [0.9, 0.1]]) == 0.5
    assert accuracy_at_iou(gold, pred, scores=[[0.1, 0.9], [0.9, 0.1]]) == 1.0
    assert accuracy_at_iou(gold, pred, scores=[[0.9, 0.1], [0.9, 0.1]], iou=0.4) == 1.0


def test_map50_95_is_the_mean_over_ten_thresholds():
    # One gold [0,0,10,10], one box [0,0,10,8]: IoU 0.8 -> AP 1 at .5,.55,...,.8 (7 thresholds), 0 at .85,.9,.95.
    r = detection_report([[[0, 0, 10, 10]]], [[[0, 0, 10, 8]]])
    assert r.map50_95 == pytest.approx(0.7, abs=1e-15)
    assert r.map30 == 1.0


def test_inter_rater_report_is_rater_b_against_rater_a():
    a = [[[0, 0, 10, 10]], [[0, 0, 10, 10], [20, 20, 30, 30]]]
    b = [[[0, 0, 10, 10]], [[0, 0, 10, 10]]]
    rep = inter_rater_report(a, b)
    assert isinstance(rep, InterRaterReport)
    ab = rep.to_dict()
    assert ab == {**detection_report(a, b).to_dict(), "reference": "rater_a"}
    # A as gold: image 1 recall 1/2 -> AP 6/11; B as gold: perfect (the extra box of A is a FP after the TP).
    assert ab["map50"] == pytest.approx((1 + 6 / 11) / 2)
    sym = inter_rater_report(a, b, symmetric=True).to_dict()
    assert sym["map50"] == pytest.approx(((1 + 6 / 11) / 2 + 1.0) / 2)
    assert [d["reference"] for d in sym["directions"]] == ["rater_a", "rater_b"]


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"pred": [[]]}, InputError, r"gold and pred must have the same number of samples; got 2 and 1"),
        (
            {"scores": [[0.5, 0.4], None]},
            InputError,
            r"scores of image 0 must have one value per predicted box; got 2 scores for 1 boxes",
        ),
        ({"scores": [[float("inf")], None]}, InputError, r"scores of image 0 must be finite"),
        ({"protocol": "coco"}, InputError, r"'protocol' parameter must be one of .* Did you mean: 'coco101'"),
        ({"no_gold": "skp"}, InputError, r"'no_gold' parameter must be one of \{'skip', 'score'\}"),
        ({"gold": [[[0, 0, 0, 5]], []]}, InputError, r"gold boxes of image 0: box 0 \[0, 0, 0, 5\] has width 0"),
    ],
)
def test_report_input_errors(kwargs, exc, message):
    args = {"gold": [[[0, 0, 10, 10]], []], "pred": [[[0, 0, 10, 10]], [[1, 1, 2, 2]]]} | kwargs
    with pytest.raises(exc, match=message):
        detection_report(**args)


def test_errors_use_image_ids_when_given():
    with pytest.raises(InputError, match=r"predicted boxes of image 'case_2.png': box 0 \[5, 5, 1, 9\] has width -4"):
        detection_report([[], []], [[], [[5, 5, 1, 9]]], image_ids=["case_1.png", "case_2.png"])


# ---------------------------------------- the vectorised engine vs a transcription of the documented rules


def _reference_voc11(gold, pred, scores, t):
    """Plain-Python per-image VOC-11 AP, written from the docstring of medlens.metrics._voc."""
    gold = np.asarray(gold, float).reshape(-1, 4)
    pred = np.asarray(pred, float).reshape(-1, 4)
    if len(gold) == 0:
        return None
    if len(pred) == 0:
        return 0.0
    order = sorted(range(len(pred)), key=lambda i: -scores[i])  # Python's sort is stable
    taken, tps = set(), []
    for i in order:
        best, best_j = -1.0, -1
        for j in range(len(gold)):
            if j in taken:
                continue
            v = box_iou(pred[i : i + 1], gold[j : j + 1])[0, 0]
            if v > best:  # strict: ties keep the first gold box
                best, best_j = v, j
        if best_j >= 0 and best >= t:
            taken.add(best_j)
            tps.append(1)
        else:
            tps.append(0)
    cum = np.cumsum(tps)
    prec = cum / np.arange(1, len(tps) + 1)
    rec = cum / len(gold)
    return sum(max([p for p, r in zip(prec, rec, strict=True) if r >= j / 10], default=0.0) for j in range(11)) / 11


@st.composite
def detection_sets(draw):
    n = draw(st.integers(1, 8))
    grid = st.integers(0, 6).map(lambda v: v * 5.0)  # a coarse grid: many IoU ties and exact thresholds
    size = st.sampled_from([5.0, 10.0, 15.0])

    def box():
        x, y = draw(grid), draw(grid)
        return [x, y, x + draw(size), y + draw(size)]

    gold = [[box() for _ in range(draw(st.integers(0, 4)))] for _ in range(n)]
    pred = [[box() for _ in range(draw(st.integers(0, 6)))] for _ in range(n)]
    scores = [[draw(st.sampled_from([0.1, 0.5, 0.9])) for _ in p] for p in pred]
    return gold, pred, scores


@settings(max_examples=200, deadline=None)
@given(data=detection_sets(), t=st.sampled_from([0.1, 0.3, 0.5, 0.75]))
def test_vectorised_voc11_equals_the_reference(data, t):
    gold, pred, scores = data
    ours = average_precision_per_image(gold, pred, scores=scores, iou=t)
    for i in range(len(gold)):
        want = _reference_voc11(gold[i], pred[i], scores[i], t)
        if want is None:
            assert np.isnan(ours[i])
        else:
            assert ours[i] == pytest.approx(want, abs=1e-12), (i, gold[i], pred[i], scores[i])


# -------------------------------------------------------------------------------------------- COCO files


def _gt(**extra):
    d = {
        "images": [{"id": 1}, {"id": 2}],
        "categories": [{"id": 1, "name": "lesion"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0}],
    }
    d.update(extra)
    return d


DET = {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}


@pytest.mark.parametrize(
    ("gt", "message"),
    [
        ({"images": [], "annotations": []}, r"<ground truth>: missing top-level field 'categories'"),
        (_gt(images={"id": 1}), r"top-level field 'images' must be a list; got dict"),
        (_gt(images=[{"id": 1}, {"id": 1}]), r"images\[1\]: duplicate id 1 \(first at images\[0\]\)"),
        (_gt(images=[{"id": 1}, {"name": "x"}]), r"images\[1\]: missing field 'id'"),
        (_gt(images=[{"id": 1}, {"id": 2.5}]), r"images\[1\]: field 'id' must be an integer or a string; got 2.5"),
        (_gt(annotations=[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10]}]), r"annotations\[0\]: field 'bbox' must be 4 finite numbers"),
        (_gt(annotations=[{"image_id": 1, "category_id": 1, "bbox": [0, 0, -1, 2]}]), r"annotations\[0\]: field 'bbox' .*got \[0, 0, -1, 2\]"),
        (_gt(annotations=[{"image_id": 1, "category_id": 1, "bbox": [0, "0", 1, 2]}]), r"annotations\[0\]: field 'bbox'"),
        (_gt(annotations=[{"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 2]}]), r"annotations\[0\]: field 'image_id' 9 is not among the 'images' ids"),
        (_gt(annotations=[{"image_id": 1, "category_id": 4, "bbox": [0, 0, 1, 2]}]), r"annotations\[0\]: field 'category_id' 4 is not among"),
        (_gt(annotations=[{"image_id": 1, "bbox": [0, 0, 1, 2]}]), r"annotations\[0\]: missing field 'category_id'"),
        (_gt(annotations=[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 2], "area": None}]), r"annotations\[0\]: field 'area' must be a finite number; got None"),
        (_gt(annotations=[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 2], "iscrowd": 2}]), r"annotations\[0\]: field 'iscrowd' must be 0 or 1; got 2"),
        (_gt(annotations=[{"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 2]}] * 2), r"annotations\[1\]: duplicate id 5"),
        ([1, 2], r"a COCO annotation file is a JSON object"),
    ],
)  # fmt: skip
def test_coco_ground_truth_errors_name_entry_and_field(gt, message):
    with pytest.raises(InputError, match=message):
        load_coco_ground_truth(gt)


@pytest.mark.parametrize(
    ("dets", "message"),
    [
        ([DET, {**DET, "score": "high"}], r"<predictions>: entry 1: field 'score' must be a finite number; got 'high'"),
        ([DET, {**DET, "score": float("nan")}], r"entry 1: field 'score' must be a finite number; got nan"),
        ([{k: v for k, v in DET.items() if k != "bbox"}], r"entry 0: missing field 'bbox'"),
        ([DET, [0, 0, 1, 1]], r"entry 1: expected a JSON object; got list"),
        ([DET, {**DET, "image_id": 7}], r"entry 1: field 'image_id' 7 is not an image of <ground truth>"),
        ([DET, {**DET, "bbox": [0, 0, 1, float("inf")]}], r"entry 1: field 'bbox' must be 4 finite numbers"),
        ([DET, {**DET, "category_id": None}], r"entry 1: field 'category_id' must be an integer or a string; got None"),
        ({"annotations": [DET]}, r"COCO results are a JSON list .* \(found 'annotations': pass that list instead\)"),
    ],
)
def test_coco_prediction_errors_name_entry_and_field(dets, message):
    with pytest.raises(InputError, match=message):
        load_coco_predictions(dets, load_coco_ground_truth(_gt()))


def _numpy_typed(gt: dict, dets: list) -> tuple[dict, list]:
    """The same COCO data with NumPy scalars everywhere pycocotools takes them (and one box as an array)."""
    np_gt = {
        "images": [{**im, "id": np.int64(im["id"])} for im in gt["images"]],
        "categories": [{**c, "id": np.int32(c["id"])} for c in gt["categories"]],
        "annotations": [
            {**a, "id": np.int64(a["id"]), "image_id": np.int64(a["image_id"]), "category_id": np.int64(a["category_id"]),
             "bbox": [np.float64(v) for v in a["bbox"]], "area": np.float32(a["area"]), "iscrowd": np.int64(a["iscrowd"])}
            for a in gt["annotations"]
        ],
    }  # fmt: skip
    np_dets = [
        {"image_id": np.int64(d["image_id"]), "category_id": np.int64(d["category_id"]),
         "bbox": np.asarray(d["bbox"], dtype=np.float64) if i == 0 else [np.float32(v) for v in d["bbox"]],
         "score": np.float32(d["score"])}
        for i, d in enumerate(dets)
    ]  # fmt: skip
    return np_gt, np_dets


def test_coco_accepts_numpy_scalars_like_python_numbers():
    # Regression: np.float64 coordinates, np.int64 ids and np.float32 scores were refused with "must be 4
    # finite numbers"; pycocotools takes them. Boxes and scores here are exact in float32.
    gt = _gt(
        annotations=[
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [5.5, 5, 20, 8], "area": 160, "iscrowd": 1},
        ]
    )
    dets = [
        DET,
        {**DET, "bbox": [0, 0, 10, 8], "score": 0.25},
        {**DET, "image_id": 2, "bbox": [5, 5, 20, 8], "score": 0.5},
    ]
    np_gt, np_dets = _numpy_typed(gt, dets)
    want, got = coco_evaluate(gt, dets), coco_evaluate(np_gt, np_dets)
    np.testing.assert_array_equal(got.precision, want.precision)
    np.testing.assert_array_equal(got.recall, want.recall)
    g = load_coco_ground_truth(np_gt)
    assert g.image_ids == (1, 2)
    assert all(type(v) is int for v in g.image_ids + g.category_ids)
    assert g.crowd.tolist() == [False, True]
    # a NumPy string id is a string; a NumPy boolean crowd flag is a flag
    s_gt = _gt(
        images=[{"id": np.str_("a")}],
        annotations=[{"image_id": "a", "category_id": 1, "bbox": [0, 0, 1, 1], "iscrowd": np.bool_(True)}],
    )
    assert load_coco_ground_truth(s_gt).image_ids == ("a",)
    # the per-image API and voc11 take them too
    assert voc11_evaluate(np_gt, np_dets).ap(0.5) == pytest.approx(voc11_evaluate(gt, dets).ap(0.5))


@pytest.mark.parametrize(
    ("dets", "message"),
    [
        ([{**DET, "bbox": [True, 0, 10, 10]}], r"entry 0: field 'bbox' must be 4 finite numbers .*\(a boolean is not a coordinate\)"),
        ([{**DET, "bbox": [np.bool_(True), 0, 10, 10]}], r"\(a boolean is not a coordinate\)"),
        ([{**DET, "score": True}], r"entry 0: field 'score' must be a finite number; got True"),
        ([{**DET, "score": np.float32("nan")}], r"entry 0: field 'score' must be a finite number; got .*nan"),
        ([{**DET, "image_id": True}], r"entry 0: field 'image_id' must be an integer or a string; got True"),
        ([{**DET, "image_id": np.float64(1.0)}], r"entry 0: field 'image_id' must be an integer or a string; got"),
        ([DET, {**DET, "image_id": np.str_("1")}], r"field 'image_id' mixes integers and strings"),
        ([{**DET, "bbox": np.zeros((2, 2))}], r"entry 0: field 'bbox' must be 4 finite numbers"),
    ],
)  # fmt: skip
def test_coco_still_refuses_booleans_and_non_numbers(dets, message):
    # pycocotools would read True as 1; here a boolean where a number belongs is an error (as everywhere in medlens).
    with pytest.raises(InputError, match=message):
        load_coco_predictions(dets, load_coco_ground_truth(_gt()))


def test_coco_files_on_disk_and_invalid_json(tmp_path):
    gt_path, pred_path = tmp_path / "GT.json", tmp_path / "PRED.json"
    gt_path.write_text(json.dumps(_gt()))
    pred_path.write_text('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},]')
    g = load_coco_ground_truth(gt_path)
    with pytest.raises(InputError, match=r"PRED.json: not valid JSON \(line 1, column"):
        load_coco_predictions(pred_path, g)
    pred_path.write_text(json.dumps([DET, {**DET, "bbox": [1, 2]}]))
    with pytest.raises(InputError, match=r"PRED.json: entry 1: field 'bbox'"):
        load_coco_predictions(pred_path, g)
    with pytest.raises(FileNotFoundError, match="predictions file not found"):
        load_coco_predictions(tmp_path / "missing.json", g)


def test_coco_empty_predictions_and_unknown_categories():
    # pycocotools cannot load an empty result list; here it is simply AP 0 (gold exists, nothing found).
    r = coco_evaluate(_gt(), [])
    assert (r.ap(), r.ap(0.5), r.ar()) == (0.0, 0.0, 0.0)
    # A detection of an unknown category is dropped and counted, as pycocotools drops it silently.
    r = coco_evaluate(_gt(), [DET, {**DET, "category_id": 99}])
    assert r.counts["n_pred_unknown_category"] == 1
    assert r.ap(0.5) == pytest.approx(1.0)


def test_coco_annotation_id_zero_counts_as_matched():
    # pycocotools reads dtMatches == 0 as "unmatched", so a gold box with id 0 can never be a TP there.
    gt = _gt(annotations=[{"id": 0, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100}])
    assert coco_evaluate(gt, [DET]).ap(0.5) == pytest.approx(1.0)


def test_coco_result_to_dict_and_threshold_lookup():
    r = coco_evaluate(_gt(), [DET], iou_thresholds=[0.3, *np.linspace(0.5, 0.95, 10)])
    d = r.to_dict(per_category=True)
    assert {"protocol", "map", "map50", "map75", "map30", "mar100", "n_images", "per_category"} <= set(d)
    assert d["protocol"] == "coco101"
    assert d["per_category"][0]["name"] == "lesion"
    with pytest.raises(InputError, match=r"no results at IoU 0.4; evaluated thresholds are 0.3, 0.5"):
        r.ap(0.4)


def test_voc11_on_coco_files_per_category_and_no_gold_rule():
    # Category 1: image 1 hit (AP 1); image 2 has no gold of 1 but one box. Category 2: image 2 gold, missed (AP 0).
    gt = {
        "images": [{"id": 1}, {"id": 2}],
        "categories": [{"id": 1}, {"id": 2}, {"id": 3}],  # category 3 has no gold: left out of the mean
        "annotations": [
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]},
            {"image_id": 2, "category_id": 2, "bbox": [0, 0, 10, 10]},
        ],
    }
    dets = [DET, {**DET, "image_id": 2}, {**DET, "image_id": 2, "category_id": 2, "bbox": [50, 50, 5, 5]}]
    skip = voc11_evaluate(gt, dets)
    assert (skip.ap(0.5, category=1), skip.ap(0.5, category=2), skip.ap(0.5)) == (1.0, 0.0, 0.5)
    assert np.isnan(skip.ap(0.5, category=3))
    # "score": category 1 now also scores image 2 (a box without gold: AP 0) -> 1/2; category 2 scores image 1
    # (no gold, no box: AP 1) -> 1/2. mAP 1/2.
    score = voc11_evaluate(gt, dets, no_gold="score")
    assert (score.ap(0.5, category=1), score.ap(0.5, category=2)) == (0.5, 0.5)
    # Class-agnostic: image 1 gold + hit (AP 1); image 2: gold, boxes [0,0,10,10] (hit) and [50,50,55,55] -> AP 1.
    assert voc11_evaluate(gt, dets, class_agnostic=True).ap(0.5) == 1.0
