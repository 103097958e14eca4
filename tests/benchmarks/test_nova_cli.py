"""``medlens nova validate`` and ``medlens nova evaluate``: JSON contract, provenance, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli.conftest import cli_runner
from tests.cli.test_cli import PROVENANCE_KEYS, assert_user_error

from medlens.io import file_sha256

NO_MODELS = ["--encoder", "none", "--meteor-wordnet", "none"]


@pytest.fixture
def cli(capsys, tmp_path, monkeypatch):
    """``cli(*args) -> Result``: ``medlens.cli.main`` in-process, with ``$MEDLENS_CACHE`` in a temp folder."""
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    return cli_runner(capsys)


# ================================================================================================= validate
def test_validate_json_contract(cli, any_layout):
    _, root = any_layout
    res = cli("nova", "validate", "--data", root, "--json")
    assert res.rc == 0, res.err
    d = json.loads(res.out)
    assert d["schema_version"] == "1.0"
    assert set(d["provenance"]) >= PROVENANCE_KEYS
    assert d["provenance"]["command"] == "nova validate"
    for f in d["files"]:
        assert d["provenance"]["input_hashes"][f"data:{Path(f).name}"]["sha256"] == file_sha256(f)
    assert (d["n_images"], d["n_cases"], d["n_gold_boxes"], d["raters"]) == (5, 4, 5, {"rater1": 5, "rater2": 4})
    assert (d["valid"], d["problems"]) == (True, [])
    assert d["layout"] in {"parquet_v1", "parquet_struct", "csv"}


def test_validate_with_problems_prints_the_report_and_exits_2(cli, nf, tmp_path):
    root = nf.write_v1(tmp_path / "n")
    (root / "images" / "case0003_001.png").unlink()
    res = cli("nova", "validate", "--data", root, "--json", "--out", tmp_path / "report.json")
    assert res.rc == 2
    d = json.loads(res.out)
    assert d["problem_counts"] == {"image_missing": 1}
    assert d["problems"][0]["filename"] == "case0003_001.png"
    assert res.err.strip() == f"medlens: 1 problem(s) in the NOVA data at {root}"
    assert json.loads((tmp_path / "report.json").read_text())["n_problems"] == 1
    assert cli("nova", "validate", "--data", root, "--no-images", "--json").rc == 0
    human = cli("nova", "validate", "--data", root)
    assert "[image_missing]" in human.out
    assert "n_images" in human.out


def test_validate_errors_are_one_line(cli, tmp_path):
    assert_user_error(cli("nova", "validate", "--data", tmp_path / "nope"), "no such file or folder")
    (tmp_path / "d").mkdir()
    assert_user_error(cli("nova", "validate", "--data", tmp_path / "d"), "no NOVA data found")


# ================================================================================================= evaluate
def test_evaluate_json_contract(cli, nova_files, tmp_path):
    res = cli(
        "nova", "evaluate", "--data", nova_files.root, "--predictions", nova_files.predictions, *NO_MODELS, "--json"
    )
    assert res.rc == 0, res.err
    assert res.err == ""
    d = json.loads(res.out)
    assert d["schema_version"] == "1.0"
    assert d["tasks"] == ["localization", "caption", "diagnosis"]
    assert {"map30", "map50", "map50_95", "acc50", "protocol", "deviations", "human_ceiling"} <= set(d["localization"])
    assert d["localization"]["protocol"] == "nova-voc11"
    assert d["caption"]["mode"] == "coco-caption"
    assert {
        "bleu1",
        "bleu2",
        "bleu3",
        "bleu4",
        "rouge_l",
        "cider",
        "meteor",
        "bertscore_f1",
        "keyword_f1_modality",
        "keyword_f1_findings",
    } <= set(d["caption"])
    assert {"top1", "top5", "judge", "coverage", "entropy_bits"} <= set(d["diagnosis"])
    assert d["diagnosis"]["judge"] == "exact_synonym"
    assert (d["localization"]["map50"], d["diagnosis"]["top1"], d["diagnosis"]["top5"]) == (1.0, 0.4, 0.6)
    for task in d["tasks"]:
        assert (d[task]["n_predicted"], d[task]["n_missing"]) == (5, 0)
    p = d["provenance"]
    assert set(p) >= PROVENANCE_KEYS
    assert p["command"] == "nova evaluate"
    assert p["input_hashes"]["predictions"]["sha256"] == file_sha256(nova_files.predictions)
    assert p["input_hashes"]["data:nova-v1.parquet"]["sha256"] == file_sha256(
        nova_files.root / "data" / "nova-v1.parquet"
    )
    assert p["model_ids"]["diagnosis_judge"] == d["diagnosis"]["judge_id"]
    caches = list((tmp_path / "cache" / "judgements").glob("exact_synonym-*.jsonl"))
    assert len(caches) == 1  # judgements cached (and logged) under $MEDLENS_CACHE
    assert len(caches[0].read_text().splitlines()) == 7


def test_evaluate_options(cli, nova_files, tmp_path):
    args = ("nova", "evaluate", "--data", nova_files.root, "--predictions", nova_files.predictions, *NO_MODELS)
    coco = json.loads(cli(*args, "--ap-mode", "coco", "--no-cache", "--json").out)
    assert coco["localization"]["protocol"] == "coco101"
    assert not (tmp_path / "cache" / "judgements").exists()
    syn = tmp_path / "syn.json"
    syn.write_text(json.dumps({"name": "tiny", "groups": [["cyst", "arachnoid cyst"]]}))
    custom = json.loads(cli(*args, "--synonyms", syn, "--json", "--out", tmp_path / "r.json").out)
    assert custom["diagnosis"]["top1"] == 0.2  # "cyst" now matches; "Acoustic neuroma" and "GBM" no longer do
    assert custom["diagnosis"]["synonym_table"]["name"] == "tiny"
    assert json.loads((tmp_path / "r.json").read_text())["diagnosis"]["top1"] == 0.2
    human = cli(*args)
    assert human.rc == 0
    assert "human ceiling" in human.out
    assert "judge exact_synonym" in human.out


def test_evaluate_warns_about_missing_rows(cli, nova_dir, nf, tmp_path):
    pred = nf.write_jsonl(tmp_path / "p.jsonl", nf.hand_diagnoses()[:3])
    res = cli("nova", "evaluate", "--data", nova_dir, "--predictions", pred, "--json")
    assert res.rc == 0
    assert res.err.strip() == "medlens: warning: 2 of 5 image(s) have no diagnosis row (skipped; see --missing)"
    d = json.loads(res.out)
    assert d["tasks"] == ["diagnosis"]
    assert d["diagnosis"]["n_missing"] == 2


def test_evaluate_errors_are_one_line(cli, nova_dir, nf, tmp_path):
    bad = nf.write_jsonl(
        tmp_path / "bad.jsonl", [{"filename": "case0001_001.png", "task": "localization", "boxes": []}]
    )
    base = ("nova", "evaluate", "--data", nova_dir)
    assert_user_error(cli(*base, "--predictions", bad), f"{bad}: line 1", "missing field 'box_format'")
    good = nf.write_jsonl(tmp_path / "good.jsonl", nf.hand_diagnoses())
    assert_user_error(cli(*base, "--predictions", good, "--judge", "exact"), "Unknown judge 'exact'")
    assert_user_error(cli(*base, "--predictions", good, "--ap-mode", "voc"), "'ap-mode' parameter must be one of")
    broken = nf.write_v1(tmp_path / "broken")
    (broken / "images" / "case0001_001.png").unlink()
    loc = nf.write_jsonl(tmp_path / "loc.jsonl", nf.perfect_localization())
    assert_user_error(cli(*base[:3], broken, "--predictions", loc), "1 problem(s)", "--allow-problems")
    res = cli(*base[:3], broken, "--predictions", loc, "--allow-problems", "--json")
    assert res.rc == 0, res.err
    d = json.loads(res.out)
    assert d["data"]["problems"][0]["kind"] == "image_missing"
    # images are only required for localisation: diagnosis rows evaluate on the same broken copy
    assert cli(*base[:3], broken, "--predictions", good, "--json").rc == 0


def test_help_has_examples(cli):
    for cmd in ("validate", "evaluate"):
        res = cli("nova", cmd, "--help")
        assert res.rc == 0, res.err
        assert "Example" in res.out
        assert "--data" in res.out
