"""RoDeO on hand-computed cases (and equal to the authors' ``rodeometric`` when installed), COCO JSON input,
box-size/count strata, and ``ground evaluate``'s document on a tiny truth."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlens._validation import InputError
from medlens.grounding import coco_queries, evaluate_document, evaluate_grounding, load_knowledge, rodeo

KB = load_knowledge("vindr")


def _hm(*xs):
    return len(xs) / sum(1 / (x + 1e-6) for x in xs)


def test_rodeo_one_shifted_box():
    # centre moved by half the gold width: d^2 = 0.25 -> localization 2^-0.25; same size: shape 1; class right: 1
    r = rodeo([[[0, 0, 10, 10]]], [["a"]], [[[5, 0, 15, 10]]], [["a"]], ["a", "b"])
    assert r["localization"] == pytest.approx(2**-0.25)
    assert r["shape"] == pytest.approx(1.0)
    assert r["classification"] == pytest.approx(1.0)
    assert r["total"] == pytest.approx(_hm(2**-0.25, 1.0, 1.0))
    assert (r["n_matched"], r["n_overpredicted"], r["n_missed"]) == (1, 0, 0)


def test_rodeo_unmatched_boxes_weigh_down_and_class_weight():
    gold = [[[0, 0, 10, 10]], [[0, 0, 10, 20]], []]
    gcls = [["a"], ["b"], []]
    pred = [[[0, 0, 20, 10]], [], [[1, 1, 2, 2]]]
    pcls = [["a"], [], ["a"]]
    r = rodeo(gold, gcls, pred, pcls, ["a", "b"], per_class=True)
    # presence (3 images x 2 classes) gold 100100 vs pred 100010: tp 1, fp 1, fn 1, tn 3 -> MCC 2/8
    assert r["class_weight_matching"] == pytest.approx(0.25)
    # one pair: centre offset 5 / width 10 -> 2^-0.25; centred IoU 100 / 200 = 0.5; weight 1 / (1 + 1 + 1)
    assert r["localization"] == pytest.approx(2**-0.25 / 3)
    assert r["shape"] == pytest.approx(0.5 / 3)
    assert r["classification"] == pytest.approx(1 / 3)
    assert r["total"] == pytest.approx(_hm(2**-0.25 / 3, 0.5 / 3, 1 / 3))
    # per class: a has the pair and the over-prediction, b only the miss
    assert r["by_class"]["a"]["shape"] == pytest.approx(0.5 / 2)
    assert r["by_class"]["b"]["total"] == 0.0


def test_rodeo_wrong_class_and_no_match():
    r = rodeo([[[0, 0, 10, 10]]], [["a"]], [[[0, 0, 10, 10]]], [["b"]], ["a", "b"])
    assert r["classification"] == 0.0  # one-hot MCC -1, clamped
    assert r["localization"] == pytest.approx(1.0)
    assert r["total"] < 1e-5
    empty = rodeo([[[0, 0, 10, 10]]], [["a"]], [[]], [[]], ["a", "b"])
    assert empty["total"] == 0.0
    assert empty["n_missed"] == 1
    with pytest.raises(InputError, match="at least two classes"):
        rodeo([[]], [[]], [[]], [[]], ["a"])
    with pytest.raises(InputError, match="not among the classes"):
        rodeo([[[0, 0, 1, 1]]], [["c"]], [[]], [[]], ["a", "b"])


_box = st.tuples(
    st.integers(0, 80), st.integers(0, 80), st.integers(1, 40), st.integers(1, 40), st.sampled_from([0, 1, 2])
)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.lists(_box, max_size=3), st.lists(_box, max_size=3)), min_size=1, max_size=4))
def test_rodeo_equals_the_authors_package(images):
    peer = pytest.importorskip("rodeo")
    if not hasattr(peer, "RoDeO"):
        pytest.skip("the installed 'rodeo' is not rodeometric")
    import rodeo.rodeo as peer_module
    from sklearn.metrics import matthews_corrcoef

    # rodeometric 0.0.1 calls .clip on scikit-learn's MCC, which recent scikit-learn returns as a Python float
    names = ["a", "b", "c"]
    gold, gcls, pred, pcls, pg, pp = [], [], [], [], [], []
    for g, p in images:
        gold.append([[x, y, x + w, y + h] for x, y, w, h, _ in g])
        gcls.append([names[c] for *_, c in g])
        pred.append([[x, y, x + w, y + h] for x, y, w, h, _ in p])
        pcls.append([names[c] for *_, c in p])
        pg.append(np.array(g, dtype=np.float64).reshape(-1, 5))
        pp.append(np.array(p, dtype=np.float64).reshape(-1, 5))
    ours = rodeo(gold, gcls, pred, pcls, names)
    m = peer.RoDeO(class_names=names)
    m.add(pp, pg)
    import warnings

    original = peer_module.matthews_corrcoef
    peer_module.matthews_corrcoef = lambda a, b: np.float64(matthews_corrcoef(a, b))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = m.compute()
    finally:
        peer_module.matthews_corrcoef = original
    for k, t in (("total", "total"), ("localization", "localization"), ("shape", "shape_matching"),
                 ("classification", "classification")):  # fmt: skip
        assert ours[k] == pytest.approx(theirs[f"RoDeO/{t}"], abs=1e-9), k


def _coco(tmp_path, bbox=(10, 20, 30, 40), width=100, height=200, category="Cardiomegaly"):
    data = {
        "images": [
            {"id": 1, "file_name": "sub/p1.png", "width": width, "height": height},
            {"id": 2, "file_name": "p2.png", "width": 50, "height": 50},
        ],
        "categories": [{"id": 7, "name": category}, {"id": 8, "name": "pneumothorax"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": list(bbox)}],
    }
    p = tmp_path / "gt.json"
    p.write_text(json.dumps(data))
    return p


def test_coco_queries_with_negatives(tmp_path):
    qs = coco_queries(_coco(tmp_path), KB)
    got = [(q["image_id"], q["finding"], q["gold"], q["width"], q["height"]) for q in qs]
    assert got == [
        ("p1", "cardiomegaly", [[10.0, 20.0, 40.0, 60.0]], 100.0, 200.0),
        ("p1", "pneumothorax", [], 100.0, 200.0),
        ("p2", "cardiomegaly", [], 50.0, 50.0),
        ("p2", "pneumothorax", [], 50.0, 50.0),
    ]
    assert [q["finding"] for q in coco_queries(_coco(tmp_path), KB, negatives=False)] == ["cardiomegaly"]


def test_coco_bad_input(tmp_path):
    with pytest.raises(InputError, match=r"annotations\[0\].*outside image 1 of \(width, height\) = \(100, 200\)"):
        coco_queries(_coco(tmp_path, bbox=(90, 20, 30, 40)), KB)
    with pytest.raises(InputError, match="unknown finding 'cardiomegally'.*Did you mean"):
        coco_queries(_coco(tmp_path, category="cardiomegally"), KB)
    with pytest.raises(InputError, match=r"images\[0\]: fields 'width' and 'height'"):
        coco_queries(_coco(tmp_path, width=0), KB)


def test_coco_images_folder_sizes_checked(tmp_path):
    from PIL import Image

    d = tmp_path / "imgs"
    d.mkdir()
    Image.new("L", (100, 200)).save(d / "p1.png")
    Image.new("L", (50, 50)).save(d / "p2.png")
    qs = coco_queries(_coco(tmp_path), KB, images=d)
    assert qs[0]["image"] == str(d / "p1.png")
    Image.new("L", (200, 100)).save(d / "p1.png")  # (H, W) swapped
    with pytest.raises(InputError, match="'p1' is 200×100 in .* but 100×200 in the COCO file"):
        coco_queries(_coco(tmp_path), KB, images=d)


def test_size_and_count_strata():
    qs = [
        {"image_id": "a", "finding": "nodule", "gold": [[0, 0, 5, 5]], "pred": [[0, 0, 5, 5]], "width": 100,
         "height": 100},  # 0.25 %: small, hit
        {"image_id": "b", "finding": "nodule", "gold": [[0, 0, 20, 20], [50, 50, 70, 70]], "pred": [],
         "width": 100, "height": 100},  # 4 %: medium, 2 boxes, missed
        {"image_id": "c", "finding": "cardiomegaly", "gold": [[0, 0, 50, 50]], "pred": [[0, 0, 50, 50]],
         "width": 100, "height": 100},  # 25 %: large
        {"image_id": "c", "finding": "nodule", "gold": [], "pred": [], "width": 100, "height": 100},
    ]  # fmt: skip
    r = evaluate_grounding(qs, kb=KB)
    assert {k: v["n_queries"] for k, v in r["by_size"].items()} == {"small": 1, "medium": 1, "large": 1}
    assert r["by_size"]["small"]["recall50"] == 1.0
    assert r["by_size"]["medium"]["recall50"] == 0.0
    assert {k: v["n_queries"] for k, v in r["by_n_boxes"].items()} == {"1": 2, "2": 1}
    assert r["size_strata"] == {"basis": "mean gold-box area as a fraction of the image", "bins": [0.01, 0.1]}
    # RoDeO: c's pair is perfect, a's too; b's two boxes missed -> weight 2 / 4
    assert r["rodeo"]["localization"] == pytest.approx(0.5)
    assert r["rodeo"]["shape"] == pytest.approx(0.5)
    assert r["by_finding"]["cardiomegaly"]["rodeo"]["total"] == pytest.approx(_hm(1, 1, 1))


def _truth_csv(tmp_path):
    rows = [
        "image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max",
        "p1,Cardiomegaly,3,R1,10,10,50,50",
        "p1,Cardiomegaly,3,R2,10,10,50,50",
        "p2,No finding,14,R1,,,,",
        "p3,Nodule/Mass,8,R1,0,0,10,10",
    ]
    p = tmp_path / "truth.csv"
    p.write_text("\n".join(rows) + "\n")
    return p


def test_evaluate_document_from_csv_truth(tmp_path):
    preds = [
        {"image_id": "p1", "finding": "cardiomegaly", "boxes": [[10, 10, 50, 50]], "scores": [0.9]},
        {"image_id": "p2", "finding": "cardiomegaly", "boxes": [[0, 0, 5, 5]], "scores": [0.4]},
        {"image_id": "p2", "finding": "nodule or mass", "boxes": [], "scores": []},
    ]  # p3's nodule has no line: counted as predicted empty
    p = tmp_path / "p.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in preds))
    doc = evaluate_document(p, _truth_csv(tmp_path))
    assert doc["provenance"]["command"] == "ground evaluate"
    assert doc["n_missing_predictions"] == 1
    assert (doc["n_positive"], doc["n_negative"]) == (2, 2)
    assert doc["precision50"] == pytest.approx(0.5)
    assert doc["recall50"] == pytest.approx(0.5)
    assert doc["hallucination_rate"] == pytest.approx(0.5)
    assert doc["score_status"] == "model"
    # ranking 0.9 TP, 0.4 FP over 2 gold: precision 1 up to recall 0.5 -> 51 of 101 points
    assert doc["map50"] == pytest.approx(51 / 101)
    for key in ("map", "map50", "map75", "f1_50", "acc50", "hallucination_rate", "rodeo"):
        assert key in doc
    assert math.isfinite(doc["rodeo"]["total"])


def test_evaluate_document_bad_lines(tmp_path):
    truth = _truth_csv(tmp_path)
    p = tmp_path / "p.jsonl"
    p.write_text(json.dumps({"image_id": "zz", "finding": "cardiomegaly", "boxes": []}) + "\n")
    with pytest.raises(InputError, match="line 1: image 'zz' is not in the truth"):
        evaluate_document(p, truth)
    p.write_text(json.dumps({"image_id": "p1", "boxes": []}) + "\n")
    with pytest.raises(InputError, match="line 1: missing field 'finding'"):
        evaluate_document(p, truth)
    p.write_text(json.dumps({"image_id": "p1", "finding": "cardiomegally", "boxes": []}) + "\n")
    with pytest.raises(InputError, match="Did you mean"):
        evaluate_document(p, truth)


def test_size_strata_without_image_sizes_are_absolute():
    """The VinDr table has no image sizes: areas in px², at the gold terciles or at the given bins."""
    qs = [
        {"image_id": i, "finding": "nodule", "gold": [[0, 0, s, s]], "pred": [[0, 0, s, s]] if s > 10 else []}
        for i, s in enumerate([5, 10, 20, 30, 40, 50])
    ] + [{"image_id": 9, "finding": "nodule", "gold": [], "pred": [[0, 0, 3, 3]]}]
    r = evaluate_grounding(qs, kb=KB)
    lo, hi = np.quantile([25, 100, 400, 900, 1600, 2500], [1 / 3, 2 / 3])
    assert r["size_strata"]["bins_px2"] == pytest.approx([lo, hi])
    assert "no image size for 6 of 6 positive queries" in r["size_strata"]["basis"]
    assert {k: v["n_queries"] for k, v in r["by_size"].items()} == {"small": 2, "medium": 2, "large": 2}
    assert r["by_size"]["small"]["recall50"] == 0.0
    assert r["by_size"]["large"]["recall50"] == 1.0
    # the gold alone decides the bins: another model's predictions get the same strata
    other = evaluate_grounding([{**q, "pred": []} for q in qs], kb=KB)
    assert other["size_strata"] == r["size_strata"]
    fixed = evaluate_grounding(qs, kb=KB, size_bins_px2=(50, 1000))
    assert fixed["size_strata"]["bins_px2"] == [50.0, 1000.0]
    assert {k: v["n_queries"] for k, v in fixed["by_size"].items()} == {"small": 1, "medium": 3, "large": 2}
    with pytest.raises(InputError, match="two increasing positive areas"):
        evaluate_grounding(qs, kb=KB, size_bins_px2=(100, 10))
