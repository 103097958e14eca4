"""NOVA loader: the three layouts give the same records; structural faults raise naming file, row and columns;
content problems are collected (strict raises, lenient keeps them); the Hugging Face cache is read, never fetched."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.benchmarks.nova import NOVA_SCHEMA, TableSchema, load_nova


def _xyxy(boxes):
    return np.array([[x, y, x + w, y + h] for x, y, w, h in boxes], dtype=float).reshape(-1, 4)


EXPECTED_LAYOUT = {
    "parquet_v1_json": ("parquet_v1", "json"),
    "parquet_v1_nested": ("parquet_v1", "nested"),
    "parquet_struct": ("parquet_struct", "nested"),
    "parquet_struct_paths": ("parquet_struct", "nested"),
    "csv": ("csv", "csv"),
}


def test_every_layout_gives_the_same_records(any_layout, nf):
    variant, root = any_layout
    ds = load_nova(root)
    assert (ds.layout, ds.encoding) == EXPECTED_LAYOUT[variant]
    assert ds.filenames == nf.FILENAMES
    assert ds.problems == ()
    assert ds.raters == ("rater1", "rater2")
    for truth in nf.IMAGES:
        im = ds.image(truth["filename"])
        history, dx = nf.CASES[truth["case_id"]]
        assert (im.case_id, im.scan_id, im.caption) == (truth["case_id"], truth["scan_id"], truth["caption"])
        assert (im.clinical_history, im.final_diagnosis) == (history, dx)
        assert im.image_size == truth["size"]
        np.testing.assert_array_equal(im.gold_boxes, _xyxy(truth["gold"]))  # xywh pixels -> xyxy pixels
        np.testing.assert_array_equal(im.rater_boxes.get("rater1", np.zeros((0, 4))), _xyxy(truth["gold"]))
        np.testing.assert_array_equal(im.rater_boxes.get("rater2", np.zeros((0, 4))), _xyxy(truth["rater2"]))
        assert im.open_image().size == truth["size"]
    assert list(ds.cases) == ["case01", "case02", "case03", "case04"]
    assert ds.cases["case01"].filenames == ("case0001_001.png", "case0001_002.png")
    assert ds.final_diagnosis("case0001_002.png") == "Vestibular schwannoma"


def test_summary_counts_by_hand(nova):
    s = nova.summary()
    assert (s["n_images"], s["n_cases"], s["n_diagnoses"]) == (5, 4, 4)
    assert (s["n_gold_boxes"], s["n_images_without_gold"]) == (5, 1)
    assert s["raters"] == {"rater1": 5, "rater2": 4}
    assert s["n_rater_boxes"] == 9
    assert s["images_per_case"] == {"min": 1, "max": 2}
    assert s["image_width"] == {"min": 50, "max": 80}
    assert s["image_height"] == {"min": 40, "max": 64}
    assert s["valid"] is True
    assert s["problems"] == []
    assert s["problem_counts"] == {}
    json.dumps(s)  # JSON-ready


def test_parquet_file_path_and_forced_layout(nova_dir):
    path = nova_dir / "data" / "nova-v1.parquet"
    assert len(load_nova(path)) == 5  # images resolve from the repo root (data/..)
    assert load_nova(nova_dir, layout="parquet_v1").layout == "parquet_v1"
    with pytest.raises(InputError, match=r"missing column\(s\) \['caption', 'clinical_history', 'final_diagnosis'"):
        load_nova(nova_dir, layout="parquet_struct")
    with pytest.raises(InputError, match="The 'layout' parameter must be one of"):
        load_nova(nova_dir, layout="jsonl")  # type: ignore[arg-type]


def test_missing_column_names_file_expected_and_found(tmp_path, nf):
    rows = [{("caption" if k == "caption_text" else k): v for k, v in r.items()} for r in nf.v1_rows()]
    nf.write_v1(tmp_path, rows=rows)
    with pytest.raises(InputError) as exc:
        load_nova(tmp_path)
    msg = str(exc.value)
    assert "nova-v1.parquet" in msg
    assert "missing column(s) ['caption_text']" in msg
    assert "expected columns ['filename', 'case_id', 'caption_text', 'meta', 'bboxes']" in msg
    assert "found ['filename', 'case_id', 'scan_id', 'caption', 'image_path', 'meta', 'bboxes']" in msg
    assert "NOVA_SCHEMA" in msg


def test_schema_is_adjustable_in_one_place(tmp_path, nf):
    rows = [{("caption" if k == "caption_text" else k): v for k, v in r.items()} for r in nf.v1_rows()]
    nf.write_v1(tmp_path, rows=rows)
    v1 = NOVA_SCHEMA.parquet_v1
    schema = dataclasses.replace(
        NOVA_SCHEMA, parquet_v1=TableSchema(v1.file, {**v1.columns, "caption": "caption"}, v1.required)
    )
    assert load_nova(tmp_path, schema=schema).image("case0002_001.png").caption.startswith("Axial FLAIR")


def test_unknown_columns_name_both_layouts(tmp_path, nf):
    nf.write_parquet(tmp_path / "x.parquet", [{"a": 1, "b": "x"}])
    with pytest.raises(
        InputError, match=r"cannot tell the NOVA layout.*parquet_v1 expects.*parquet_struct expects.*found \['a', 'b'\]"
    ):
        load_nova(tmp_path)


def test_bad_json_and_bad_numbers_name_the_row(tmp_path, nf):
    rows = nf.v1_rows()
    rows[2]["meta"] = '{"clinical_history": "x", '
    nf.write_v1(tmp_path / "a", rows=rows)
    with pytest.raises(
        InputError, match=r"nova-v1.parquet row 2 \(filename 'case0002_001.png'\): column 'meta' is not valid JSON"
    ):
        load_nova(tmp_path / "a")
    rows = nf.v1_rows()
    boxes = json.loads(rows[1]["bboxes"])
    boxes[0]["width"] = "wide"
    rows[1]["bboxes"] = json.dumps(boxes)
    nf.write_v1(tmp_path / "b", rows=rows)
    with pytest.raises(
        InputError,
        match=r"row 1 \(filename 'case0001_002.png'\), bboxes box 0: box field 'width' must be a number; got 'wide'",
    ):
        load_nova(tmp_path / "b")
    rows = nf.v1_rows()
    rows[0]["bboxes"] = json.dumps([{"x": 1, "y": 1, "width": 2, "height": 2}])
    nf.write_v1(tmp_path / "c", rows=rows)
    with pytest.raises(InputError, match="missing key 'source'"):
        load_nova(tmp_path / "c")


def test_duplicate_filename_is_an_error(tmp_path, nf):
    rows = nf.v1_rows()
    rows[3]["filename"] = rows[0]["filename"]
    nf.write_v1(tmp_path, rows=rows)
    with pytest.raises(InputError, match=r"row 3 .*already appears at nova-v1.parquet row 0"):
        load_nova(tmp_path)


def _with_box(rows, i, box, source="gold"):
    boxes = json.loads(rows[i]["bboxes"]) + [dict(zip(("x", "y", "width", "height"), box, strict=True), source=source)]
    rows[i]["bboxes"] = json.dumps(boxes)
    return rows


def test_box_outside_image_strict_and_lenient(tmp_path, nf):
    nf.write_v1(tmp_path, rows=_with_box(nf.v1_rows(), 4, (40, 30, 20, 20)))  # 50x40 image: x2 = 60 > 50
    with pytest.raises(InputError) as exc:
        load_nova(tmp_path)
    msg = str(exc.value)
    assert "1 problem(s)" in msg
    assert "row 4 (filename 'case0004_001.png'), bboxes box 3" in msg
    assert "lies outside the 50x40 image" in msg
    assert "medlens nova validate" in msg
    ds = load_nova(tmp_path, strict=False)
    assert [p.kind for p in ds.problems] == ["box_outside_image"]
    assert ds.problems[0].filename == "case0004_001.png"
    assert len(ds.image("case0004_001.png").gold_boxes) == 2  # kept
    assert ds.summary()["problem_counts"] == {"box_outside_image": 1}


def test_non_positive_box_is_dropped(tmp_path, nf):
    nf.write_v1(tmp_path, rows=_with_box(nf.v1_rows(), 0, (5, 5, 0, 4), source="rater2"))
    ds = load_nova(tmp_path, strict=False)
    assert [p.kind for p in ds.problems] == ["box_not_positive"]
    assert "width=0" in ds.problems[0].message
    assert "dropped" in ds.problems[0].message
    assert len(ds.image("case0001_001.png").rater_boxes["rater2"]) == 1


def test_case_fields_must_agree(tmp_path, nf):
    rows = nf.v1_rows()
    meta = json.loads(rows[1]["meta"])
    meta["final_diagnosis"] = "Meningioma"
    rows[1]["meta"] = json.dumps(meta)
    nf.write_v1(tmp_path, rows=rows)
    ds = load_nova(tmp_path, strict=False)
    (p,) = ds.problems
    assert p.kind == "case_inconsistent"
    assert "case 'case01': final_diagnosis differs" in p.message
    assert "row 0 (filename 'case0001_001.png'): 'Vestibular schwannoma'" in p.message
    assert "row 1 (filename 'case0001_002.png'): 'Meningioma'" in p.message
    assert ds.cases["case01"].final_diagnosis == "Vestibular schwannoma"  # the first image's value
    assert ds.final_diagnosis("case0001_002.png") == "Vestibular schwannoma"


def test_missing_images(tmp_path, nf):
    nf.write_v1(tmp_path)
    (tmp_path / "images" / "case0003_001.png").unlink()
    ds = load_nova(tmp_path, strict=False)
    assert [(p.kind, p.filename) for p in ds.problems] == [("image_missing", "case0003_001.png")]
    assert ds.image("case0003_001.png").image_size is None
    assert load_nova(tmp_path, require_images=False).problems == ()
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "images", moved)
    nf.write_images(moved, [im for im in nf.IMAGES if im["filename"] == "case0003_001.png"])
    assert load_nova(tmp_path, image_root=moved).image("case0003_001.png").image_path == moved / "case0003_001.png"


def test_csv_problems_and_errors(tmp_path, nf):
    root = nf.write_csv(tmp_path / "a")
    with (root / "bboxes_gold.csv").open("a") as fh:
        fh.write("nope.png,1,1,2,2\n")
    with (root / "captions.csv").open("a") as fh:
        fh.write("case0009_001.png,case09,s9,Axial T1 image.\n")
    nf.write_images(root / "images", [{"filename": "case0009_001.png", "size": (8, 8)}])
    ds = load_nova(root, strict=False)
    kinds = {(p.kind, p.where) for p in ds.problems}
    assert ("unknown_filename", "bboxes_gold.csv line 7") in kinds
    assert ("missing_case", "captions.csv line 7 (filename 'case0009_001.png')") in kinds
    assert ("empty_field", "captions.csv line 7 (filename 'case0009_001.png')") in kinds  # no diagnosis
    root = nf.write_csv(tmp_path / "b")
    (root / "case_metadata.csv").write_text("case_id,history,final_diagnosis\ncase01,x,y\n")
    with pytest.raises(
        InputError,
        match=r"case_metadata.csv: missing column\(s\) \['clinical_history'\].*found \['case_id', 'history', 'final_diagnosis'\]",
    ):
        load_nova(root)


def test_no_data_and_bad_paths(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        InputError,
        match=r"no NOVA data found. Expected data/nova-v1.parquet .* \['captions.csv', 'case_metadata.csv', 'bboxes_gold.csv'\]",
    ):
        load_nova(tmp_path / "empty")
    with pytest.raises(InputError, match="no such file or folder"):
        load_nova(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="a file of another type"):
        load_nova(tmp_path / "notes.txt")


def _fake_hub(cache: Path, source: Path) -> None:
    repo = cache / "datasets--c-i-ber--Nova"
    snap = repo / "snapshots" / "0123abcd"
    shutil.copytree(source, snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")


def test_hugging_face_id_only_from_the_local_cache(tmp_path, nova_dir):
    pytest.importorskip("huggingface_hub")
    cache = tmp_path / "hub"
    _fake_hub(cache, nova_dir)
    for source in ("c-i-ber/Nova", "hf://datasets/c-i-ber/Nova"):
        ds = load_nova(source, hf_cache_dir=cache)
        assert len(ds) == 5
        assert ds.source == source
        assert ds.root.name == "0123abcd"
    with pytest.raises(
        InputError, match=r"'someone/Else' is not a local path and is not in .*medlens never downloads NOVA"
    ):
        load_nova("someone/Else", hf_cache_dir=cache)


def test_struct_layout_reads_json_string_struct_columns(tmp_path, nf):
    rows = nf.struct_rows()
    for r in rows:
        r["bbox_gold"] = json.dumps(r["bbox_gold"])
    nf.write_parquet(tmp_path / "nova.parquet", rows)
    ds = load_nova(tmp_path)
    assert ds.layout == "parquet_struct"
    assert ds.encoding == "mixed"
    np.testing.assert_array_equal(ds.image("case0002_001.png").gold_boxes, [[5, 5, 25, 25], [40, 30, 60, 50]])
    rows[0]["bbox_gold"] = json.dumps({"x": [1, 2], "y": [1], "width": [1, 1], "height": [1, 1]})
    nf.write_parquet(tmp_path / "nova.parquet", rows)
    with pytest.raises(InputError, match=r"row 0 .*column 'bbox_gold' must be parallel lists of equal length"):
        load_nova(tmp_path)
