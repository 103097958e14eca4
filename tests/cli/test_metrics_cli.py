"""``medlens metrics boxes``: JSON contract, both modes, and one-line errors naming file, entry and field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.cli.test_cli import PROVENANCE_KEYS, assert_user_error

from medlens.metrics import coco_evaluate, voc11_evaluate


@pytest.fixture
def coco_files(tmp_path) -> tuple[Path, Path, dict, list]:
    """30 images, 2 categories: jittered copies of the gold boxes plus random false positives."""
    rng = np.random.default_rng(0)
    images = [{"id": i + 1, "file_name": f"case{i + 1}.png"} for i in range(30)]
    anns, dets = [], []
    for img in images:
        for _ in range(int(rng.integers(0, 3))):
            x, y, w, h = (float(v) for v in (*rng.integers(0, 200, 2), *rng.integers(10, 80, 2)))
            cat = int(rng.integers(1, 3))
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img["id"],
                    "category_id": cat,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
            if rng.random() < 0.8:
                dx, dy = (float(v) for v in rng.integers(-6, 7, 2))
                dets.append(
                    {
                        "image_id": img["id"],
                        "category_id": cat,
                        "bbox": [x + dx, y + dy, w, h],
                        "score": float(rng.random()),
                    }
                )
        if rng.random() < 0.4:
            dets.append(
                {
                    "image_id": img["id"],
                    "category_id": int(rng.integers(1, 3)),
                    "bbox": [300.0, 300.0, 20.0, 20.0],
                    "score": float(rng.random()),
                }
            )
    gt = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": 1, "name": "lesion"}, {"id": 2, "name": "oedema"}],
    }
    gt_path, pred_path = tmp_path / "GT.json", tmp_path / "PRED.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(dets))
    return gt_path, pred_path, gt, dets  # fmt: skip


def test_coco_mode_json_contract(cli, coco_files):
    gt_path, pred_path, gt, dets = coco_files
    res = cli("metrics", "boxes", "--gt", gt_path, "--pred", pred_path, "--mode", "coco", "--json")
    assert res.rc == 0, res.err
    d = json.loads(res.out)
    assert d["schema_version"] == "1.0"
    assert d["protocol"] == "coco101"
    assert d["mode"] == "coco"
    assert set(d["provenance"]) >= PROVENANCE_KEYS
    assert d["provenance"]["command"] == "metrics boxes"
    assert set(d["provenance"]["input_hashes"]) == {"gt", "pred"}
    assert len(d["provenance"]["input_hashes"]["pred"]["sha256"]) == 64
    ref = coco_evaluate(gt, dets, iou_thresholds=[0.3, *np.linspace(0.5, 0.95, 10)])
    for key, want in (("map", ref.ap()), ("map50", ref.ap(0.5)), ("map75", ref.ap(0.75)), ("map30", ref.ap(0.3))):
        assert d[key] == pytest.approx(want, abs=1e-15), key
    assert d["mar100"] == pytest.approx(ref.ar(), abs=1e-15)
    assert 0 < d["map"] < d["map50"] <= d["map30"] <= 1
    assert (d["n_images"], d["n_categories"], d["n_pred"]) == (30, 2, len(dets))


def test_voc11_mode_per_category_extra_iou_and_out(cli, coco_files, tmp_path):
    gt_path, pred_path, gt, dets = coco_files
    out = tmp_path / "res" / "boxes.json"
    args = ("--mode", "voc11", "--per-category", "--iou", "0.4", "--no-gold", "score", "--out", out, "--json")
    res = cli("metrics", "boxes", "--gt", gt_path, "--pred", pred_path, *args)
    assert res.rc == 0, res.err
    d = json.loads(res.out)
    assert json.loads(out.read_text()) == d
    ref = voc11_evaluate(gt, dets, iou_thresholds=[0.3, 0.4, *np.linspace(0.5, 0.95, 10)], no_gold="score")
    assert d["protocol"] == "nova-voc11"
    assert d["no_gold"] == "score"
    assert d["map50"] == pytest.approx(ref.ap(0.5), abs=1e-15)
    assert d["ap_at_iou"] == {"0.4": pytest.approx(ref.ap(0.4), abs=1e-15)}
    assert [r["name"] for r in d["per_category"]] == ["lesion", "oedema"]
    assert d["per_category"][1]["map50"] == pytest.approx(ref.ap(0.5, category=2), abs=1e-15)


def test_class_agnostic_and_human_table(cli, coco_files):
    gt_path, pred_path, gt, dets = coco_files
    res = cli("metrics", "boxes", "--gt", gt_path, "--pred", pred_path, "--mode", "coco", "--class-agnostic", "--areas")
    assert res.rc == 0, res.err
    assert "coco101 (coco mode): 30 images" in res.out
    assert "map_small" in res.out
    assert "mar100" in res.out


def test_unknown_category_predictions_are_dropped_with_a_warning(cli, coco_files, tmp_path):
    gt_path, _, _, dets = coco_files
    pred = tmp_path / "P2.json"
    pred.write_text(json.dumps([*dets, {**dets[0], "category_id": 77}]))
    res = cli("metrics", "boxes", "--gt", gt_path, "--pred", pred, "--mode", "coco", "--json")
    assert res.rc == 0
    assert json.loads(res.out)["n_pred_unknown_category"] == 1
    assert res.err.strip() == (
        "medlens: warning: 1 prediction(s) with a category_id absent from the ground-truth categories were dropped "
        "(as pycocotools does)"
    )


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (
            lambda d: d[:3] + [{**d[3], "bbox": [1, 2, 3]}],
            ["PRED.json: entry 3: field 'bbox' must be 4 finite numbers"],
        ),
        (
            lambda d: d[:2] + [{**d[2], "score": None}],
            ["PRED.json: entry 2: field 'score' must be a finite number; got None"],
        ),
        (
            lambda d: [*d, {k: v for k, v in d[0].items() if k != "image_id"}],
            ["PRED.json: entry", "missing field 'image_id'"],
        ),
        (
            lambda d: [{**d[0], "image_id": 999}],
            ["PRED.json: entry 0: field 'image_id' 999 is not an image of", "GT.json"],
        ),
        (lambda d: {"results": d}, ["PRED.json: COCO results are a JSON list"]),
    ],
)
def test_malformed_predictions_give_one_line(cli, coco_files, edit, fragments):
    gt_path, pred_path, _, dets = coco_files
    pred_path.write_text(json.dumps(edit(dets)))
    res = cli("metrics", "boxes", "--gt", gt_path, "--pred", pred_path, "--mode", "coco", "--json")
    assert_user_error(res, *fragments)


def test_malformed_ground_truth_and_bad_options(cli, coco_files, tmp_path):
    gt_path, pred_path, gt, _ = coco_files
    bad = tmp_path / "BADGT.json"
    bad.write_text(
        json.dumps({**gt, "annotations": [*gt["annotations"][:4], {**gt["annotations"][4], "bbox": "0 0 1 1"}]})
    )
    assert_user_error(
        cli("metrics", "boxes", "--gt", bad, "--pred", pred_path, "--mode", "coco"),
        "BADGT.json: annotations[4]: field 'bbox' must be 4 finite numbers",
    )
    bad.write_text('{"images": [}')
    assert_user_error(cli("metrics", "boxes", "--gt", bad, "--pred", pred_path, "--mode", "coco"), "not valid JSON")
    assert_user_error(
        cli("metrics", "boxes", "--gt", tmp_path / "nope.json", "--pred", pred_path, "--mode", "coco"),
        "ground truth file not found",
    )
    assert_user_error(
        cli("metrics", "boxes", "--gt", gt_path, "--pred", pred_path, "--mode", "voc"),
        "'mode' parameter must be one of {'coco', 'voc11'}; got 'voc'. Did you mean: 'voc11'",
    )
    assert_user_error(
        cli("metrics", "boxes", "--gt", gt_path, "--pred", pred_path, "--mode", "coco", "--no-gold", "score"),
        "--no-gold applies to --mode voc11 only",
    )
    assert_user_error(
        cli("metrics", "boxes", "--gt", gt_path, "--pred", pred_path, "--mode", "coco", "--iou", "1.5"),
        "must be in the range (0, 1]; got 1.5",
    )
    assert cli("metrics", "boxes", "--gt", gt_path, "--pred", pred_path).rc == 2  # --mode is required


def test_help_has_an_example(cli):
    res = cli("metrics", "boxes", "--help")
    assert res.rc == 0
    assert "Example: medlens metrics boxes --gt" in " ".join(res.out.split())
    assert "[x, y, w, h]" in res.out
