"""Grounding data: weighted box fusion, queries with negatives, splits and the reader ceiling (hand-computed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medlens._validation import InputError
from medlens.grounding import load_knowledge
from medlens.grounding._data import (
    build_queries,
    fuse_readers,
    load_grounding_data,
    reader_ceiling,
    validation_split,
    weighted_box_fusion,
)

KB = load_knowledge("vindr-cxr")
COLS = ["image_id", "class_name", "rad_id", "x_min", "y_min", "x_max", "y_max"]


def _rows(data):
    return pd.DataFrame(data, columns=COLS)


def test_wbf_hand_computed_weights_and_support():
    # two overlapping boxes, weights 3 and 1: coordinates are the weighted mean
    b, s, c = weighted_box_fusion([[0, 0, 10, 10], [0, 0, 10, 14]], ["a", "b"], scores=[3, 1], n_readers=3)
    assert b.tolist() == [[0, 0, 10, 11]]
    assert s.tolist() == [2]
    assert c[0] == pytest.approx(2 * (2 / 3))
    # IoU 0.5 does not exceed the threshold 0.55: two clusters, each of support 1, dropped by a majority rule
    b, s, _ = weighted_box_fusion([[0, 0, 10, 10], [0, 0, 10, 20]], ["a", "b"], iou=0.55)
    assert len(b) == 2
    assert len(weighted_box_fusion([[0, 0, 10, 10], [0, 0, 10, 20]], ["a", "b"], min_readers=2)[0]) == 0
    # one reader's two overlapping boxes fuse but count once
    _, s, _ = weighted_box_fusion([[0, 0, 10, 10], [0, 0, 10, 10]], ["a", "a"])
    assert s.tolist() == [1]
    with pytest.raises(InputError, match="one per box"):
        weighted_box_fusion([[0, 0, 1, 1]], ["a", "b"])


def test_fuse_readers_and_queries_with_negatives():
    rows = _rows(
        [
            ["i1", "Cardiomegaly", "R1", 10, 10, 50, 50],
            ["i1", "Cardiomegaly", "R2", 12, 10, 50, 50],
            ["i1", "Cardiomegaly", "R3", 10, 10, 48, 50],
            ["i1", "Pneumothorax", "R1", 0, 0, 5, 5],
            ["i2", "No finding", "R1", np.nan, np.nan, np.nan, np.nan],
            ["i2", "No finding", "R2", np.nan, np.nan, np.nan, np.nan],
            ["i2", "No finding", "R3", np.nan, np.nan, np.nan, np.nan],
        ]
    )
    fused = fuse_readers(rows)
    card = fused[fused["class_name"] == "Cardiomegaly"]
    assert len(card) == 1
    assert card["support"].iloc[0] == 3
    assert card["score"].iloc[0] == pytest.approx(1.0)
    assert card[["x_min", "x_max"]].to_numpy().tolist() == [[pytest.approx(32 / 3), pytest.approx(148 / 3)]]
    majority = fuse_readers(rows, min_readers=2)
    assert set(majority["class_name"]) == {"Cardiomegaly"}
    qs = build_queries(fused, {"i1": (100, 80), "i2": (64, 64)}, KB)
    assert [(q["image_id"], q["finding"], len(q["gold"])) for q in qs] == [
        ("i1", "cardiomegaly", 1),
        ("i1", "pneumothorax", 1),
        ("i2", "cardiomegaly", 0),
        ("i2", "pneumothorax", 0),
    ]
    assert qs[1]["finding_split"] == "unseen"
    assert qs[0]["width"] == 100
    assert len(build_queries(fused, {"i1": (100, 80), "i2": (64, 64)}, KB, negatives=False)) == 2
    with pytest.raises(InputError, match="outside the image"):
        build_queries(fused, {"i1": (40, 80), "i2": (64, 64)}, KB)


def test_validation_split_is_grouped_seeded_and_stable():
    ids = [f"img{i}" for i in range(40)]
    groups = [f"p{i // 2}" for i in range(40)]
    val = validation_split(ids, fraction=0.25, seed=3, groups=groups)
    assert len(val) == 10  # 5 of 20 patients, 2 images each
    assert all((f"img{2 * (int(i[3:]) // 2)}" in val) == (f"img{2 * (int(i[3:]) // 2) + 1}" in val) for i in val)
    assert val == validation_split(list(reversed(ids)), fraction=0.25, seed=3, groups=list(reversed(groups)))
    assert val != validation_split(ids, fraction=0.25, seed=4, groups=groups)
    with pytest.raises(InputError, match="at least two"):
        validation_split(["a"], fraction=0.5)


def test_reader_ceiling_hand_computed():
    rows = _rows(
        [
            # image a: all three agree on one box; R3 adds a far box (a false positive against R1+R2)
            ["a", "Cardiomegaly", "R1", 0, 0, 10, 10],
            ["a", "Cardiomegaly", "R2", 0, 0, 10, 10],
            ["a", "Cardiomegaly", "R3", 0, 0, 10, 10],
            ["a", "Cardiomegaly", "R3", 50, 50, 60, 60],
            # image b: only R1 marks it
            ["b", "Cardiomegaly", "R1", 0, 0, 10, 10],
            ["b", "No finding", "R2", np.nan, np.nan, np.nan, np.nan],
            ["b", "No finding", "R3", np.nan, np.nan, np.nan, np.nan],
        ]
    )
    c = reader_ceiling(rows, kb=KB)
    row = c["by_finding"]["cardiomegaly"]
    # image a: R1 vs fuse(R2,R3) = 2 gold boxes, 1 TP; R2 likewise; R3 vs fuse(R1,R2) = 1 gold, 2 preds, 1 TP.
    # image b: R1 vs nothing (a false alarm on a negative); R2, R3 vs R1's box: 1 miss each.
    assert row["precision50"] == pytest.approx(3 / 5)
    assert row["recall50"] == pytest.approx(3 / 7)
    assert row["f1_50"] == pytest.approx(2 * 3 / (5 + 7))
    assert row["miou"] == pytest.approx((0.5 + 0.5 + 1 + 0 + 0) / 5)
    assert row["n_positive"] == 5
    assert row["n_negative"] == 1
    assert row["hallucination_rate"] == 1.0
    assert c["readers_per_image"] == [3]
    # every gold box is 10x10 = 100 px²: all five positive triples in one stratum; strata hold positive queries
    # only, so R1's false alarm on image b (a negative) drops out: P 3/4, R 3/7
    c = reader_ceiling(rows, kb=KB, size_bins_px2=(50, 150))
    assert c["size_strata"]["bins_px2"] == [50.0, 150.0]
    assert list(c["by_size"]) == ["medium"]
    assert c["by_size"]["medium"]["n_positive"] == 5
    assert c["by_size"]["medium"]["precision50"] == pytest.approx(3 / 4)
    assert c["by_size"]["medium"]["f1_50"] == pytest.approx(2 * 3 / (4 + 7))
    assert "hallucination_rate" not in c["by_size"]["medium"]  # negatives have no gold box, hence no size


def test_load_grounding_data_layout(tmp_path):
    from PIL import Image

    imgs = tmp_path / "images"
    (imgs / "sub").mkdir(parents=True)
    for i, (w, h) in enumerate([(120, 100), (80, 60), (64, 64), (64, 64)]):
        Image.new("L", (w, h)).save((imgs / "sub" if i == 3 else imgs) / f"im{i}.png")
    rows = [
        ["im0", "Pleural effusion", "R1", 0, 50, 40, 100],
        ["im0", "Pleural effusion", "R2", 0, 52, 40, 100],
        ["im1", "Pneumothorax", "R1", 0, 0, 20, 20],
        ["im2", "No finding", "R1", None, None, None, None],
        ["im3", "No finding", "R1", None, None, None, None],
    ]
    csv = tmp_path / "train.csv"
    pd.DataFrame(rows, columns=COLS).assign(class_id=0).to_csv(csv, index=False)
    split = tmp_path / "split.csv"
    split.write_text("image_id,split\nim2,test\nim1,train\n")
    data = load_grounding_data(csv, imgs, KB, split_file=split, val_fraction=0.5, seed=0)
    test = data.splits["test"]
    assert {q["image_id"] for q in test} == {"im2"}
    assert {q["finding"] for q in test} == {
        "pleural effusion",
        "pneumothorax",
    }
    # pneumothorax is unseen: left out of train and val
    assert all(q["finding"] == "pleural effusion" for s in ("train", "val") for q in data.splits[s])
    assert data.splits["val"]
    assert data.config["val"]["carved_from_train"]
    pos = [q for s in ("train", "val") for q in data.splits[s] if q["gold"]]
    assert pos[0]["gold"][0] == [0.0, 51.0, 40.0, 100.0]
    assert (pos[0]["width"], pos[0]["height"]) == (120, 100)
    (imgs / "im1.png").unlink()
    with pytest.raises(InputError, match="no image for 1 id"):
        load_grounding_data(csv, imgs, KB)
    bad = tmp_path / "bad.csv"
    pd.DataFrame([["im0", "Pneumothorx", "R1", 0, 0, 1, 1]], columns=COLS).to_csv(bad, index=False)
    with pytest.raises(InputError, match="Did you mean"):
        load_grounding_data(bad, imgs, KB)
    Image.new("L", (80, 60)).save(imgs / "im1.png")
    split.write_text("image_id,split\nim2,dev\n")
    with pytest.raises(InputError, match="row 2: split 'dev'"):
        load_grounding_data(csv, imgs, KB, split_file=split)
