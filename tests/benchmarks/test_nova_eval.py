"""nova_evaluate end to end on the synthetic NOVA: hand-checked localisation, caption and diagnosis numbers;
malformed prediction rows give errors naming file, line and field."""

from __future__ import annotations

import json
import math

import pytest

from medlens._validation import InputError
from medlens.benchmarks.nova import load_nova, nova_evaluate, read_nova_predictions
from medlens.metrics import CaptionOptions, Judgement, caption_report

NO_MODELS = {"bertscore_model": None, "meteor_wordnet": False}


def loc(filename, boxes, scores=None, box_format="xyxy_pixel"):
    return {"filename": filename, "task": "localization", "boxes": boxes, "scores": scores, "box_format": box_format}


# ============================================================================================= localisation
def test_perfect_boxes_in_every_frame_score_one_with_logged_deviations(nova, nf):
    out = nova_evaluate(nova, nf.perfect_localization())
    assert out["tasks"] == ["localization"]
    r = out["localization"]
    assert (r["protocol"], r["ap_mode"]) == ("nova-voc11", "voc11")
    assert (r["map30"], r["map50"], r["map50_95"], r["acc50"]) == (1.0, 1.0, 1.0, 1.0)
    assert (r["n_images"], r["n_images_scored"], r["n_images_without_gold"]) == (5, 4, 1)
    assert (r["n_predicted"], r["n_missing"]) == (5, 0)
    assert r["box_formats"] == {"xyxy_pixel": 2, "xywh_pixel": 1, "xyxy_norm1": 1, "xyxy_norm1000": 1}
    assert [(d["src"], d["n_images"], d["n_boxes"]) for d in r["deviations"]] == [
        ("xywh_pixel", 1, 1),
        ("xyxy_norm1", 1, 2),
        ("xyxy_norm1000", 1, 1),
    ]
    assert r["deviations"][1]["message"] == "converted 2 predicted box(es) in 1 image(s) from xyxy_norm1 to xyxy_pixel"
    assert r["n_rows_without_scores"] == 2
    coco = nova_evaluate(nova, nf.perfect_localization(), ap_mode="coco")["localization"]
    assert (coco["protocol"], coco["map50_95"]) == ("coco101", 1.0)


def test_human_ceiling_by_hand(nova, nf):
    c = nova_evaluate(nova, nf.perfect_localization())["localization"]["human_ceiling"]
    assert c["available"] is True
    assert c["raters"] == ["rater1", "rater2"]
    # rater1 as gold, rater2 as prediction, per image AP@0.5: 1, 0 (IoU 0.4), 6/11 (1 of 2 boxes), 1
    # rater2 as gold, rater1 as prediction: 1, 0, 1 (its first box hits), 1
    assert c["map50"] == pytest.approx(((1 + 0 + 6 / 11 + 1) / 4 + 3 / 4) / 2)
    assert c["map30"] == pytest.approx(((3 + 6 / 11) / 4 + 1) / 2)  # IoU 0.4 counts at 0.3
    assert c["acc50"] == 0.75
    assert c["n_images_scored"] == [4, 4]


def test_partial_predictions_by_hand(nova):
    rows = [
        loc("case0001_001.png", [[40, 30, 50, 40], [10, 8, 30, 24]], [0.9, 0.5]),  # FP ranked first, then TP
        loc("case0001_002.png", []),  # gold, no answer: AP 0
        loc("case0002_001.png", [[5, 5, 25, 25]], [1.0]),  # 1 of 2 gold boxes
        loc("case0004_001.png", [[0, 0, 25, 20]]),
    ]  # case0003_001.png has no row
    r = nova_evaluate(nova, rows)["localization"]
    # VOC-11 APs: precision 1/2 at recall 1 -> 0.5; 0; precision 1 up to recall 0.5 -> 6/11; 1
    assert r["map50"] == pytest.approx((0.5 + 0 + 6 / 11 + 1) / 4)
    assert r["acc50"] == 0.5  # the top-ranked box hits in case0002 and case0004 only
    assert (r["precision50"], r["recall50"]) == (3 / 4, 3 / 5)  # 3 hits of 4 boxes, of 5 gold boxes
    assert (r["n_predicted"], r["n_missing"], r["n_images"]) == (4, 1, 4)
    empty = nova_evaluate(nova, rows, missing="empty", no_gold="score")["localization"]
    assert empty["n_images"] == 5  # case0003 (no gold) scored as an empty answer: AP 1
    assert empty["map50"] == pytest.approx((0.5 + 0 + 6 / 11 + 1 + 1) / 5)


def test_numpy_numbers_in_rows_score_like_python_numbers(nova):
    # Regression: np.float32/np.int64 coordinates and scores in in-memory rows were refused as "not numbers".
    import numpy as np

    rows = [
        loc("case0001_001.png", [[40, 30, 50, 40], [10, 8, 30, 24]], [0.75, 0.5]),
        loc("case0002_001.png", [[5, 5, 25, 25]], [1.0]),
    ]
    np_rows = [
        {**r, "boxes": [[np.int64(v) if k % 2 else np.float32(v) for k, v in enumerate(b)] for b in r["boxes"]],
         "scores": [np.float32(s) for s in r["scores"]]}
        for r in rows
    ]  # fmt: skip
    assert nova_evaluate(nova, np_rows)["localization"] == nova_evaluate(nova, rows)["localization"]
    with pytest.raises(InputError, match=r"field 'boxes', box 0 must be 4 numbers"):
        nova_evaluate(nova, [loc("case0001_001.png", [[True, 30, 50, 40]])])


def test_boxes_outside_the_image_are_clipped_and_logged(nova):
    r = nova_evaluate(nova, [loc("case0004_001.png", [[0, 0, 0.5, 1.2]], box_format="xyxy_norm1")], details=True)
    r = r["localization"]
    assert r["map50"] == 1.0  # [0, 0, 25, 48] clipped to [0, 0, 25, 40]: IoU with [0, 0, 25, 20] is 0.5
    assert [(d["operation"], d["n_boxes"]) for d in r["deviations"]] == [("convert", 1), ("clip", 1)]
    assert (
        r["deviation_log"][1]["message"]
        == "clipped 1 of 1 box(es) of image 'case0004_001.png' to the image (image size 50x40)"
    )


def test_normalised_boxes_need_the_image(tmp_path, nf):
    root = nf.write_v1(tmp_path / "n")
    (root / "images" / "case0004_001.png").unlink()
    ds = load_nova(root, require_images=False)
    with pytest.raises(
        InputError,
        match=r"line 1 \(filename 'case0004_001.png', task 'localization'\): xyxy_norm1000 boxes need the image size",
    ):
        nova_evaluate(ds, [loc("case0004_001.png", [[0, 0, 500, 500]], box_format="xyxy_norm1000")])
    assert nova_evaluate(ds, [loc("case0004_001.png", [[0, 0, 25, 20]])])["localization"]["map50"] == 1.0


def test_no_ceiling_without_two_raters(tmp_path, nf):
    ds = load_nova(nf.write_csv(tmp_path / "c", raters=False))
    c = nova_evaluate(ds, nf.perfect_localization())["localization"]["human_ceiling"]
    assert c == {"available": False, "reason": "needs the boxes of two raters; this copy has 0 ([])."}


# ================================================================================================= captions
def test_captions_against_caption_report(nova, nf):
    rows = [
        {"filename": "case0001_001.png", "task": "caption", "caption": nf.IMAGES[0]["caption"]},
        {"filename": "case0002_001.png", "task": "caption", "caption": "Axial T2 image shows a tumor without edema."},
        {"filename": "case0003_001.png", "task": "caption", "caption": None, "raw": "I cannot see"},  # failed
        {"filename": "case0004_001.png", "task": "caption", "caption": "  "},  # failed
    ]
    r = nova_evaluate(nova, rows, caption_options=NO_MODELS, details=True)["caption"]
    refs, cands = [nf.IMAGES[0]["caption"], nf.IMAGES[2]["caption"]], [rows[0]["caption"], rows[1]["caption"]]
    ref = caption_report(refs, cands, options=CaptionOptions(meteor=None, bertscore=None), mode="coco-caption")
    keys = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider", "keyword_f1_modality", "keyword_f1_findings")
    assert r["mode"] == "coco-caption"  # the default: pycocoevalcap's numbers, as the paper reports them
    for key in keys:
        assert r[key] == ref.scores[key]
    sb = nova_evaluate(nova, rows, caption_options=NO_MODELS, caption_mode="sacrebleu")["caption"]
    sb_ref = caption_report(refs, cands, options=CaptionOptions(meteor=None, bertscore=None), mode="sacrebleu")
    assert sb["mode"] == "sacrebleu"
    for key in keys:
        assert sb[key] == sb_ref.scores[key]
    assert sb["bleu4"] != r["bleu4"]
    assert (r["meteor"], r["bertscore_f1"]) == (None, None)
    assert set(r["skipped"]) == {"meteor", "bertscore_f1"}
    assert (r["n_scored"], r["n_predicted"], r["n_empty"], r["n_missing"]) == (2, 4, 2, 1)
    assert [row["id"] for row in r["per_sample"]] == ["case0001_001.png", "case0002_001.png"]
    assert r["per_sample"][0]["rouge_l"] == 1.0
    # reference "FLAIR ... tumour with surrounding oedema" vs "T2 ... tumor without edema": tumor kept, oedema negated
    assert r["per_sample"][1]["keyword_f1_findings"] == pytest.approx(2 / 3)


def test_only_failed_captions(nova):
    r = nova_evaluate(nova, [{"filename": "case0001_001.png", "task": "caption", "caption": None}])["caption"]
    assert (r["bleu4"], r["n_scored"], r["n_empty"], r["note"]) == (None, 0, 1, "no caption to score")


# ================================================================================================ diagnosis
def test_diagnosis_by_hand(nova, nf):
    r = nova_evaluate(nova, nf.hand_diagnoses())["diagnosis"]
    assert (r["top1"], r["top5"]) == (2 / 5, 3 / 5)
    # per gold label: vestibular schwannoma (2 images) top1 1/2, top5 1; glioblastoma 1, 1; the others 0
    assert (r["top1_macro"], r["top5_macro"]) == (0.375, 0.5)
    assert (r["judge"], r["analysis_only"]) == ("exact_synonym", False)
    assert r["coverage"] == 1.0  # top-1 labels {vestibular schwannoma, meningioma, glioblastoma, cyst}: 4 of 4
    assert r["entropy_bits"] == 2.0
    assert r["gold_entropy_bits"] == pytest.approx(-(0.4 * math.log2(0.4) + 3 * 0.2 * math.log2(0.2)))
    assert (r["n"], r["n_empty"], r["n_cases"], r["n_missing"]) == (5, 1, 4, 0)


def test_missing_diagnoses_and_the_missing_rule(nova, nf):
    rows = nf.hand_diagnoses()[:3]
    skip = nova_evaluate(nova, rows)["diagnosis"]
    assert (skip["top1"], skip["n"], skip["n_missing"]) == (2 / 3, 3, 2)
    empty = nova_evaluate(nova, rows, missing="empty")["diagnosis"]
    assert (empty["top1"], empty["top5"], empty["n"], empty["n_missing"]) == (2 / 5, 3 / 5, 5, 2)


class YesJudge:
    name, judge_id, analysis_only = "yes", "yes:v1", False

    def judge(self, prediction, gold):
        return Judgement(True, 1.0, "always")

    def judge_batch(self, pairs):
        return [Judgement(True, 1.0, "always") for _ in pairs]

    def describe(self):
        return {"judge": self.name, "judge_id": self.judge_id, "analysis_only": False}


def test_second_judge_agreement_and_cache(nova, nf, tmp_path):
    out = nova_evaluate(nova, nf.hand_diagnoses(), compare_judge=YesJudge(), judge_cache=tmp_path)["diagnosis"]
    a = out["agreement"]
    # 7 judged pairs; exact_synonym says yes to 3 (acoustic neuroma, vestibular schwannoma, GBM), YesJudge to all:
    # p_o = 3/7 = p_e -> kappa 0
    assert (a["n_pairs"], a["both_match"], a["only_b"], a["neither"]) == (7, 3, 4, 0)
    assert a["kappa"] == 0.0
    assert a["judge_b"] == "yes:v1"
    assert a["judge_b_scores"]["top1"] == 4 / 5  # every non-empty list is a hit
    assert out["judging"]["judged"] == 7
    again = nova_evaluate(nova, nf.hand_diagnoses(), judge_cache=tmp_path)["diagnosis"]
    assert (again["judging"]["cache_hits"], again["judging"]["judged"]) == (7, 0)


# ====================================================================================== all tasks, errors
def test_all_tasks_in_one_file(nova_files):
    ds = load_nova(nova_files.root)
    out = nova_evaluate(ds, nova_files.predictions, caption_options=NO_MODELS)
    assert out["tasks"] == ["localization", "caption", "diagnosis"]
    assert out["n_prediction_rows"] == 15
    assert out["caption"]["rouge_l"] == 1.0
    assert out["caption"]["bleu4"] == pytest.approx(1.0)  # coco-caption scale (0-1)
    assert out["localization"]["map50"] == 1.0
    assert out["diagnosis"]["top5"] == 0.6
    only = nova_evaluate(ds, nova_files.predictions, tasks=["diagnosis"])
    assert only["tasks"] == ["diagnosis"]
    assert "caption" not in only
    preds = read_nova_predictions(nova_files.predictions, ds)
    assert preds.tasks == ["localization", "caption", "diagnosis"]
    assert preds.settings["caption"] == {"unspecified": 5}


F = "case0001_001.png"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("{not json", "line 2 is not valid JSON"),
        ("[1, 2]", "line 2 must be a JSON object; got list"),
        ({"task": "caption", "caption": "x"}, "line 2: missing field 'filename'"),
        ({"filename": F, "task": "captions", "caption": "x"}, "field 'task' must be one of .* Did you mean: 'caption'"),
        (
            {"filename": "case9.png", "task": "caption", "caption": "x"},
            "filename 'case9.png' is not an image of the NOVA data",
        ),
        (
            {"filename": F, "task": "diagnosis", "diagnoses": []},
            r"line 2: a second diagnosis row for 'case0001_001.png' \(the first is at .*line 1\)",
        ),
        ({"filename": F, "task": "localization", "boxes": []}, "missing field 'box_format'"),
        (
            {"filename": F, "task": "localization", "boxes": [], "box_format": "xyxy"},
            "field 'box_format' must be one of",
        ),
        (
            {"filename": F, "task": "localization", "boxes": [1, 2, 3, 4], "box_format": "xyxy_pixel"},
            "field 'boxes', box 0 must be 4 numbers; got 1",
        ),
        (
            {"filename": F, "task": "localization", "boxes": [[1, 2, 3]], "box_format": "xyxy_pixel"},
            "field 'boxes', box 0 must be 4 numbers",
        ),
        (
            {"filename": F, "task": "localization", "boxes": [[5, 5, 1, 9]], "box_format": "xyxy_pixel"},
            r"box 0 \[5, 5, 1, 9\] is not a xyxy_pixel box",
        ),
        (
            {"filename": F, "task": "localization", "boxes": [[5, 5, -1, 9]], "box_format": "xywh_pixel"},
            "width and height >= 0",
        ),
        (
            {
                "filename": F,
                "task": "localization",
                "boxes": [[1, 1, 2, 2]],
                "scores": [0.5, 0.4],
                "box_format": "xyxy_pixel",
            },
            "field 'scores' has 2 values for 1 boxes",
        ),
        (
            {
                "filename": F,
                "task": "localization",
                "boxes": [[1, 1, 2, 2]],
                "scores": "high",
                "box_format": "xyxy_pixel",
            },
            "field 'scores' must be a list of numbers or null",
        ),
        ({"filename": F, "task": "caption", "caption": 3}, "field 'caption' must be a string or null; got int 3"),
        ({"filename": F, "task": "caption"}, "missing field 'caption'"),
        ({"filename": F, "task": "caption", "caption": "x", "raw": 1}, "field 'raw' must be a string or null"),
        ({"filename": F, "task": "caption", "caption": "x", "setting": "vision"}, "field 'setting' must be one of"),
        (
            {"filename": "case0002_001.png", "task": "diagnosis", "diagnoses": "glioma"},
            "field 'diagnoses' must be a ranked list of names",
        ),
        (
            {"filename": "case0002_001.png", "task": "diagnosis", "diagnoses": ["glioma", ""]},
            "field 'diagnoses', item 1 must be a non-empty string",
        ),
    ],
)
def test_malformed_rows_name_file_line_and_field(nova, nf, tmp_path, row, message):
    path = nf.write_jsonl(tmp_path / "pred.jsonl", [{"filename": F, "task": "diagnosis", "diagnoses": ["x"]}, row])
    with pytest.raises(InputError, match=message) as exc:
        nova_evaluate(nova, path)
    assert str(exc.value).startswith(f"{path}: line 2")


def test_empty_and_missing_prediction_files(nova, tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="no prediction rows"):
        nova_evaluate(nova, tmp_path / "empty.jsonl")
    with pytest.raises(InputError, match="no such predictions file"):
        nova_evaluate(nova, tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="The 'ap_mode' parameter must be one of"):
        nova_evaluate(nova, [], ap_mode="voc")  # type: ignore[arg-type]


def test_result_is_json_ready(nova_files):
    from medlens.io._atomic import to_json

    ds = load_nova(nova_files.root)
    out = nova_evaluate(ds, nova_files.predictions, caption_options=NO_MODELS, details=True)
    assert json.loads(to_json(out))["diagnosis"]["per_sample"][0]["id"] == "case0001_001.png"
