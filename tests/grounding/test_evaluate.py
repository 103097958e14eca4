"""Grounding evaluation on hand-computed cases: P/R/F1, Acc@0.5, mIoU, negatives, real vs constant scores."""

from __future__ import annotations

import pytest

from medlens._validation import InputError
from medlens.grounding import evaluate_grounding, load_knowledge

KB = load_knowledge("vindr")


def _queries(scores=True):
    q = [
        ("i1", "cardiomegaly", [[0, 0, 10, 10]], [[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.2]),
        ("i2", "cardiomegaly", [[0, 0, 10, 10]], [[0, 0, 10, 5]], [0.8]),  # IoU exactly 0.5: a hit
        ("i3", "pneumothorax", [], [[0, 0, 5, 5]], [0.7]),  # negative query with a box: hallucination
        ("i4", "pneumothorax", [[50, 50, 60, 60]], [], []),  # missed
        ("i5", "pneumothorax", [], [], []),  # negative, correctly empty
    ]
    return [{"image_id": i, "finding": f, "gold": g, "pred": p, "scores": s if scores else None} for i, f, g, p, s in q]


def test_hand_computed_overall_with_real_scores():
    r = evaluate_grounding(_queries(), kb=KB)
    assert r["score_status"] == "model"
    assert (r["n_positive"], r["n_negative"], r["n_gold_boxes"], r["n_pred_boxes"]) == (3, 2, 3, 4)
    # TP = 2 (i1 first box, i2), predictions 4, gold 3
    assert r["precision50"] == pytest.approx(0.5)
    assert r["recall50"] == pytest.approx(2 / 3)
    assert r["f1_50"] == pytest.approx(4 / 7)
    assert r["acc50"] == pytest.approx(2 / 3)
    assert r["acc50_any"] == pytest.approx(2 / 3)
    assert r["miou"] == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert r["hallucination_rate"] == pytest.approx(0.5)
    assert r["empty_rate"] == pytest.approx(1 / 3)
    # pooled ranking 0.9 TP, 0.8 TP, 0.7 FP, 0.2 FP over 3 gold: precision 1 up to recall 2/3 -> 67 of 101 points
    assert r["map50"] == pytest.approx(67 / 101)
    assert r["map_order_dependent"] is None
    # per finding: cardiomegaly AP 1 (both gold found before the FP); pneumothorax AP 0
    assert r["by_finding"]["cardiomegaly"]["map50"] == pytest.approx(1.0)
    assert r["by_finding"]["pneumothorax"]["map50"] == pytest.approx(0.0)
    assert r["map50_finding_mean"] == pytest.approx(0.5)
    assert r["by_finding"]["pneumothorax"]["hallucination_rate"] == pytest.approx(0.5)
    # cardiomegaly is seen, pneumothorax unseen
    assert r["by_split"]["seen"]["f1_50"] == pytest.approx(2 * 2 / (3 + 2))
    assert r["by_split"]["unseen"]["recall50"] == pytest.approx(0.0)


def test_constant_scores_do_not_pretend_to_be_map():
    for scores in (False, True):
        qs = _queries(scores)
        if scores:  # every box scored 1.0, as the public evaluation does
            for q in qs:
                q["scores"] = [1.0] * len(q["pred"])
        r = evaluate_grounding(qs, kb=KB)
        assert r["score_status"] == ("constant" if scores else "none")
        assert r["map"] is None
        assert r["map50"] is None
        od = r["map_order_dependent"]
        assert "depends on the order" in od["note"]
        # given order: TP(i1), FP(i1), TP(i2), FP(i3) -> the same boxes, other order, other AP
        assert od["given_order"]["map50"] != od["reversed_order"]["map50"]
        assert r["f1_50"] == pytest.approx(4 / 7)
        assert r["acc50"] is None  # "top-ranked" would only mean "first"
        assert r["acc50_any"] == pytest.approx(2 / 3)


def test_negative_only_and_bad_input():
    r = evaluate_grounding([{"image_id": "a", "finding": "edema", "gold": [], "pred": [[0, 0, 1, 1]], "scores": [0.3]}])
    assert r["hallucination_rate"] == 1.0
    assert r["precision50"] == 0.0
    assert r["map50"] is None
    assert r["recall50"] is None
    with pytest.raises(InputError, match="unknown finding 'edemaa'"):
        evaluate_grounding([{"finding": "edemaa", "gold": [], "pred": []}], kb=KB)
    with pytest.raises(InputError, match="2 scores for 1 predicted boxes"):
        evaluate_grounding([{"finding": "edema", "gold": [], "pred": [[0, 0, 1, 1]], "scores": [0.1, 0.2]}])
    mixed = _queries()
    mixed[1]["scores"] = None
    with pytest.raises(InputError, match="for every query or for none"):
        evaluate_grounding(mixed)
    with pytest.raises(InputError, match=r"shape \(n, 4\)"):
        evaluate_grounding([{"finding": "edema", "gold": [[0, 0, 1]], "pred": []}])
