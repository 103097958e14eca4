"""The ``grounding`` demo benchmark: reader-pair queries by hand, and the real run (slow, needs the data extra)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from medlens.benchmarks import BENCHMARKS
from medlens.benchmarks._runner import DEMO
from medlens.benchmarks.grounding import _reader_pair_queries

HAS_DATA = importlib.util.find_spec("torchxrayvision") is not None


def test_reader_pair_queries_by_hand():
    nan = np.nan
    rows = pd.DataFrame(
        {"image_id": ["a", "a", "a", "a", "b", "b", "b"],
         "class_name": ["Y", "Y", "Z", "No finding", "No finding", "Y", "No finding"],
         "rad_id": ["R2", "R1", "R1", "R3", "R5", "R4", "R9"],
         "x_min": [0.0, 1, 2, nan, nan, 3, nan], "y_min": [0.0, 1, 2, nan, nan, 3, nan],
         "x_max": [5.0, 6, 7, nan, nan, 8, nan], "y_max": [5.0, 6, 7, nan, nan, 8, nan]}
    )  # fmt: skip
    q = _reader_pair_queries(rows)
    # image a: readers R1 < R2 < R3: R1 is gold, R2 the "model"; image b: R4 gold, R5 model, R9 ignored
    assert [(x["image_id"], x["finding"]) for x in q] == [("a", "Y"), ("a", "Z"), ("b", "Y")]
    assert q[0]["gold"].tolist() == [[1, 1, 6, 6]]
    assert q[0]["pred"].tolist() == [[0, 0, 5, 5]]
    assert q[1]["pred"].shape == (0, 4)
    assert q[2]["gold"].tolist() == [[3, 3, 8, 8]]
    assert q[2]["pred"].shape == (0, 4)


def test_registered_and_in_the_quick_demo():
    assert "grounding" in BENCHMARKS.names()
    assert "grounding" in DEMO


@pytest.mark.slow
@pytest.mark.skipif(not HAS_DATA, reason='needs the torchxrayvision data files: pip install "medlens[data]"')
def test_real_run_document_and_report(tmp_path):
    from medlens.benchmarks._runner import build_report, run_benchmark

    res = run_benchmark("grounding", tmp_path / "grounding")
    doc = json.loads((tmp_path / "grounding" / "metrics.json").read_text(encoding="utf-8"))
    assert doc["benchmark"] == "grounding"
    assert [k["n_findings"] for k in doc["knowledge_bases"]] == [22, 24]
    ra = doc["reader_agreement"]
    assert len(ra) == 14
    assert (
        ra["Cardiomegaly"]["readers_1"] + ra["Cardiomegaly"]["readers_2"] + ra["Cardiomegaly"]["readers_3"]
        == (ra["Cardiomegaly"]["n_images_marked"])
    )
    assert ra["Pneumothorax"]["split"] == "unseen"
    rv = doc["reader_vs_reader"]
    assert rv["score_status"] == "none"
    assert rv["map50"] is None
    assert rv["map_order_dependent"]["given_order"]["map50"] != rv["map_order_dependent"]["reversed_order"]["map50"]
    assert "order-dependent" in res["lines"][-1]
    assert "pleural effusion: shape:" in doc["prompts"]["pleural effusion"]["attributes"]
    info = build_report(tmp_path)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert info["sections"] == ["grounding"]
    assert "VinDr-CXR inter-reader agreement" in html
    ceil = doc["reader_ceiling"]
    assert ceil["readers_per_image"] == [3]
    assert len(ceil["by_finding"]) == 14
    assert 0 < ceil["overall"]["f1_50"] < 1
    assert ceil["by_finding"]["pneumothorax"]["split"] == "unseen"
    assert "Human ceiling" in html
    assert "human ceiling" in res["lines"][-2]
