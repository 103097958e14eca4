"""The ``nova`` entry of ``medlens.benchmarks.BENCHMARKS``: run = evaluate a predictions file into a folder with
``metrics.json``; ``report_section`` renders it in ``medlens report``; it is not part of ``medlens demo``."""

from __future__ import annotations

import json

import pytest
from tests.benchmarks.test_nova_run import DX_REPLIES, LOC_REPLIES, Script

from medlens.benchmarks import BENCHMARKS
from medlens.benchmarks.nova._run import nova_run
from medlens.llm import CallableClient


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))


def test_registered_lazily_and_not_in_demo():
    from medlens.benchmarks import DEMO, DEMO_FULL

    assert "nova" in BENCHMARKS.names()
    assert "nova" not in DEMO + DEMO_FULL
    spec = BENCHMARKS.get("nova")
    assert spec.name == "nova"
    assert callable(spec.run)
    assert callable(spec.report_section)


def test_run_writes_metrics_and_the_report_renders_it(nova, nova_dir, tmp_path):
    from medlens.benchmarks import build_report

    preds = tmp_path / "runs" / "vlm-dx"
    nova_run(nova, CallableClient(Script(*DX_REPLIES), model="scripted-vlm"), preds, task="diagnosis")
    spec = BENCHMARKS.get("nova")
    out = tmp_path / "report-run" / "nova"
    doc = spec.run(out, data=nova_dir, predictions=preds / "predictions.jsonl", compare_judge="exact_synonym")
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["benchmark"] == "nova"
    assert on_disk["schema_version"] == "1.0"
    assert on_disk["diagnosis"]["top1"] == pytest.approx(0.6)
    assert on_disk["diagnosis"]["top5"] == pytest.approx(0.8)
    assert on_disk["predictions_run"]["model"]["model"] == "scripted-vlm"
    assert on_disk["predictions_run"]["counts"]["parse_failures"] == 1
    assert on_disk["provenance"]["model_ids"]["predictions_model"] == "scripted-vlm"
    assert doc["config_hash"] == on_disk["config_hash"]
    assert (out / "manifest.json").is_file()
    info = build_report(tmp_path / "report-run", tmp_path / "report.html")
    assert info["sections"] == ["nova"]
    html = (tmp_path / "report.html").read_text()
    assert "NOVA: anomaly localisation" in html
    assert "0.6000" in html  # top1
    assert "scripted-vlm" in html
    assert "1 replies could not be parsed" in html
    assert "Cohen&#x27;s kappa" in html or "Cohen's kappa" in html
    # the same folder with another configuration is refused, then replaced with overwrite
    with pytest.raises(ValueError, match="different configuration"):
        spec.run(out, data=nova_dir, predictions=preds / "predictions.jsonl", ap_mode="coco")
    spec.run(out, data=nova_dir, predictions=preds / "predictions.jsonl", ap_mode="coco", overwrite=True)


def test_localization_section_has_the_human_ceiling(nova, nova_dir, tmp_path):
    preds = tmp_path / "loc"
    nova_run(nova, CallableClient(Script(*LOC_REPLIES)), preds, task="localization")
    spec = BENCHMARKS.get("nova")
    doc = spec.run(tmp_path / "bench", data=nova_dir, predictions=preds / "predictions.jsonl", judge_cache=False)
    assert doc["localization"]["map50"] == pytest.approx(0.5)
    html = "".join(spec.report_section(doc).body)
    assert "human ceiling (rater vs rater)" in html
    assert "nova-voc11" in html


def test_missing_predictions_file_is_a_one_line_error(nova_dir, tmp_path):
    with pytest.raises(ValueError, match="no such predictions file"):
        BENCHMARKS.get("nova").run(tmp_path / "x", data=nova_dir, predictions=tmp_path / "none.jsonl")
