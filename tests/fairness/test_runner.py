"""FairVLMed loader (codes, unknown policy, row-named errors), VQA generation with self-check, and the resumable run."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.fairness import (
    generate_vqa,
    load_fairvlmed,
    load_slo_image,
    read_items,
    run_fair_run,
    run_fair_vqa,
    write_synthetic_fairvlmed,
)
from medlens.llm import CallableClient, LLMHTTPError
from medlens.metrics import CaptionOptions, caption_report

HEADER = "filename,age,gender,race,ethnicity,language,maritalstatus,note,gpt4_summary,glaucoma,use\n"


def _summary(tmp_path, rows):
    (tmp_path / "data_summary.csv").write_text(HEADER + "".join(r + "\n" for r in rows))
    return tmp_path


def test_codes_and_names_decode_and_unknown_policy(tmp_path):
    root = _summary(
        tmp_path,
        [
            "data_00001.npz,61,0,2,0,0,1,note one,sum one,1,test",
            "data_00002.npz,48,male,Asian,non-hispanic,Spanish,-1,note two,sum two,no,test",
            "data_00003.npz,70,1,1,-1,0,0,note three,sum three,0,test",
            "data_00004.npz,55,1,1,1,Unknown,0,note four,,yes,test",
            "data_00005.npz,33,0,0,0,0,0,note five,sum five,0,training",
        ],
    )
    ds = load_fairvlmed(root)
    assert [r.id for r in ds.records] == ["data_00001", "data_00002"]
    first = ds.records[0]
    assert first.attributes == {
        "gender": "Female",
        "race": "White",
        "ethnicity": "Non-Hispanic",
        "language": "English",
        "maritalstatus": "Single",
    }
    assert first.glaucoma == 1
    assert first.age == 61.0
    assert ds.records[1].attributes["maritalstatus"] is None  # unknown marital status does not drop a record
    assert ds.counts["dropped_unknown"] == 2
    assert ds.counts["dropped_unknown_by_attribute"] == {"race": 0, "gender": 0, "ethnicity": 1, "language": 1}
    kept = load_fairvlmed(root, unknown="keep")
    assert len(kept.records) == 4
    assert kept.records[2].attributes["ethnicity"] is None
    with pytest.raises(InputError, match="gpt4_summary"):
        kept.records[3].reference("summary")
    assert kept.records[3].reference("note") == "note four"
    assert [r.id for r in load_fairvlmed(root, split="train").records] == ["data_00005"]


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("data_1.npz,61,0,7,0,0,1,n,s,1,test", r"row 2, field 'race' holds '7'; expected .*2 White"),
        ("data_1.npz,61,0,martian,0,0,1,n,s,1,test", r"row 2, field 'race' holds 'martian'"),
        ("data_1.npz,61,0,1,0,0,1,n,s,maybe,test", r"row 2, field 'glaucoma'"),
        ("data_1.npz,old,0,1,0,0,1,n,s,1,test", r"row 2, field 'age'"),
        ("data_1.npz,61,0,1,0,0,1,n,s,1,holdout", r"row 2, field 'use'"),
        ("data_1.npz,61,0,1,0,0,1,,s,1,test", r"row 2 \(data_1.npz\) has an empty 'note'"),
    ],
)
def test_bad_rows_are_named(tmp_path, row, match):
    with pytest.raises(InputError, match=match):
        load_fairvlmed(_summary(tmp_path, [row]))


def test_missing_files_and_columns(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_fairvlmed(tmp_path / "nope")
    with pytest.raises(InputError, match="has no data_summary.csv"):
        load_fairvlmed(tmp_path)
    (tmp_path / "data_summary.csv").write_text(
        "filename,note,use,glaucoma,gender,race,ethnicity,language\nx,y,test,1,0,0,0,0\n"
    )
    with pytest.raises(InputError, match="'maritalstatus' column"):
        load_fairvlmed(tmp_path)


def test_synthetic_copy_round_trips_with_images(tmp_path):
    root = write_synthetic_fairvlmed(tmp_path / "fv", n=30, seed=1)
    ds = load_fairvlmed(root, unknown="keep")
    assert len(ds.records) == 30
    assert ds.counts["with_image"] == 30
    img = load_slo_image(ds.records[0].image_path)
    assert img.dtype == np.uint8
    assert img.shape == (32, 24)
    np.savez(tmp_path / "f.npz", slo_fundus=np.array([[0.0, 2.0], [4.0, 8.0]]))
    assert load_slo_image(tmp_path / "f.npz").tolist() == [[0, 64], [128, 255]]
    np.savez(tmp_path / "g.npz", other=np.zeros(3))
    with pytest.raises(InputError, match="no 'slo_fundus'"):
        load_slo_image(tmp_path / "g.npz")


def _vqa_client(bad_note="note three"):
    calls = []

    def fn(messages, **p):
        user = messages[-1]["content"]
        calls.append(user)
        if "Write one question-answer pair" in user:
            if bad_note in user:
                return "I am sorry, I cannot do that."
            dx = "no" if "no glaucoma" in user else "yes"
            pairs = [
                {"category": "diagnosis", "question": "Is there glaucoma?", "answer": dx},
                {"category": "Tests & Treatment", "question": "Which test?", "answer": "visual field"},
                {"category": "Medical conditions", "question": "What is the cup-to-disc ratio?", "answer": "unclear"},
                {"category": "diagnosis", "question": "Again?", "answer": "dup"},
            ]
            return "Here you go:\n```json\n" + json.dumps({"pairs": pairs}) + "\n```"
        if "Which test?" in user:
            return '{"keep": true, "question": "Which test was done?", "answer": "visual field test"}'
        if "cup-to-disc" in user:
            return '{"keep": false}'
        return '{"keep": true}'

    return CallableClient(fn, model="scripted-generator"), calls


def test_vqa_generation_self_check_and_counts(tmp_path):
    root = _summary(
        tmp_path,
        [
            "data_00001.npz,61,0,2,0,0,1,assessment: glaucoma,s,1,test",
            "data_00002.npz,61,0,1,0,1,1,assessment: no glaucoma,s,0,test",
            "data_00003.npz,61,0,0,0,0,1,note three,s,0,test",
        ],
    )
    ds = load_fairvlmed(root)
    client, calls = _vqa_client()
    items, counts = generate_vqa(ds.records, client)
    assert counts["records"] == 3
    assert counts["generation_failures"] == 1  # note three: no JSON even after the repair request
    assert counts["proposed"] == 6
    assert counts["rejected"] == 2
    assert counts["fixed"] == 2
    assert counts["kept"] == 4
    assert counts["off_category"] == 2  # the repeated diagnosis pair
    by_id = {it["id"]: it for it in items}
    assert by_id["data_00001#diagnosis"]["reference"] == "yes"
    assert by_id["data_00002#diagnosis"]["reference"] == "no"
    assert by_id["data_00002#diagnosis"]["language"] == "Spanish"
    assert by_id["data_00001#tests_treatment"]["question"] == "Which test was done?"
    assert by_id["data_00001#tests_treatment"]["self_check"] == "fixed"
    again, _ = generate_vqa(ds.records, client)
    assert again == items  # temperature 0, same seed, same prompts: deterministic
    out = tmp_path / "Q.jsonl"
    doc = run_fair_vqa(root, client, out=out)
    assert doc["n_items"] == 4
    assert doc["provenance"]["command"] == "fair vqa"
    assert len(read_items(out, "vqa")) == 4


def _answerer(fail_on=(), stop_after=None):
    calls = []

    def fn(messages, **p):
        calls.append(messages)
        if stop_after is not None and len(calls) > stop_after:
            raise KeyboardInterrupt
        user = messages[-1]["content"]
        text = user if isinstance(user, str) else next(x["text"] for x in user if x["type"] == "text")
        if any(f in text for f in fail_on):
            raise LLMHTTPError("too long", status=413)
        return "cup-to-disc ratio 0.7; glaucoma." if "report" in text else "yes"

    return CallableClient(fn, model="scripted-vlm"), calls


def test_report_run_appends_resumes_and_scores(tmp_path):
    root = write_synthetic_fairvlmed(tmp_path / "fv", n=12, seed=2)
    out = tmp_path / "run"
    client, calls = _answerer(stop_after=5)
    with pytest.raises(KeyboardInterrupt):
        run_fair_run(root, client, task="report", out=out)
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 5
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
    content = calls[0][-1]["content"]
    assert any(part["type"] == "image_url" for part in content)  # the SLO image went with the prompt
    client, calls = _answerer()
    doc = run_fair_run(root, client, task="report", out=out)
    n = doc["n"]
    assert len(calls) == n - 5  # resumed
    assert doc["counts"]["resumed"] == 5
    assert doc["counts"]["done"] == n
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert list(rows[0])[:4] == ["id", "bleu4", "rouge_l", "cider"]
    assert "race" in rows[0]
    ds = load_fairvlmed(root)
    rep = caption_report(
        [r.summary for r in ds.records],
        ["cup-to-disc ratio 0.7; glaucoma."] * n,
        options=CaptionOptions(meteor=None, bertscore=None),
        mode="coco-caption",
    )
    assert np.allclose([float(r["cider"]) for r in rows], rep.per_sample["cider"])
    assert json.loads((out / "summary.json").read_text())["mean"]["cider"] == pytest.approx(doc["mean"]["cider"])
    with pytest.raises(InputError, match="different configuration"):
        run_fair_run(root, client, task="report", out=out, temperature=0.5)


def test_vqa_items_run_text_only_with_refused_requests(tmp_path):
    items = tmp_path / "Q.jsonl"
    rows = [
        {"id": f"r{i}#diagnosis", "question": "Is there glaucoma?" + (" LONG" if i == 2 else ""), "reference": "yes",
         "race": ["Asian", "White"][i % 2]}
        for i in range(4)
    ]  # fmt: skip
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    client, calls = _answerer(fail_on=("LONG",))
    with pytest.raises(InputError, match="--text-only"):
        run_fair_run(items, client, task="vqa", out=tmp_path / "a")
    doc = run_fair_run(items, client, task="vqa", out=tmp_path / "b", images=False, metrics=["bleu1"])
    assert doc["counts"]["request_failures"] == 1
    preds = [json.loads(x) for x in (tmp_path / "b" / "predictions.jsonl").read_text().splitlines()]
    assert preds[2]["prediction"] == ""
    assert "too long" in preds[2]["error"]
    assert calls[0][-1]["content"].startswith("Is there glaucoma?")
    assert doc["attributes"] == ["race"]
    assert doc["n_empty"] == 1
    scores = list(csv.DictReader((tmp_path / "b" / "scores.csv").open()))
    assert float(scores[2]["bleu1"]) == 0.0  # a refused request scores 0, counted, never dropped
    assert float(scores[0]["bleu1"]) > 0.9
    with pytest.raises(InputError, match="FairVLMed folder"):
        run_fair_run(tmp_path, client, task="vqa", out=tmp_path / "c", images=False)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ({"question": "q", "reference": "r"}, "line 1 has no 'id'"),
        ({"id": "a", "question": "q"}, r"line 1 \(id 'a'\): field 'reference'"),
        ({"id": "a", "reference": "r"}, "field 'question' must be a non-empty text for --task vqa"),
        ({"id": "a", "question": "q", "reference": "r", "task": "report"}, "is a 'report' item"),
    ],
)
def test_bad_items_are_named(tmp_path, line, match):
    p = tmp_path / "Q.jsonl"
    p.write_text(json.dumps(line) + "\n")
    with pytest.raises(InputError, match=match):
        read_items(p, "vqa")
