"""The file-to-file library calls behind ``hier calibrate | predict | evaluate``: one call each, stamped documents."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.hierarchy import node_scores_from_leaves, run_evaluate, write_score_table
from medlens.risk import RiskConstrainedThresholder, run_calibrate, run_predict
from medlens.taxonomy import load_taxonomy


@pytest.fixture
def files(tmp_path):
    tax = load_taxonomy("chexpert_pham")
    rng = np.random.default_rng(0)
    leaves = list(tax.leaves)
    n = 60
    y = rng.integers(0, len(leaves), n)
    logits = rng.normal(size=(n, len(leaves)))
    logits[np.arange(n), y] += 2.0
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    ids = [f"s{i:02d}" for i in range(n)]
    scores = tmp_path / "scores.csv"
    write_score_table(scores, ids, leaves, p)
    truth = tmp_path / "truth.csv"
    truth.write_text("id,label\n" + "".join(f"{i},{leaves[j]}\n" for i, j in zip(ids, y, strict=True)))
    return tmp_path, scores, truth


def test_calibrate_predict_evaluate_round_trip(files):
    d, scores, truth = files
    th = d / "th.json"
    rep = run_calibrate("chexpert_pham", scores, truth, th, alpha=0.2, from_leaves="sum")
    assert rep["provenance"]["command"] == "hier calibrate"
    assert rep["rule"] == "climb"
    saved = json.loads(th.read_text(encoding="utf-8"))
    assert saved["aggregator"] == "sum"
    assert saved["provenance"] == rep["provenance"]
    assert RiskConstrainedThresholder.load(th).lambda_ == rep["lambda"]
    summary = run_predict(th, scores, d / "pred.csv")
    assert summary["provenance"]["command"] == "hier predict"
    assert (summary["n"], summary["lambda"], summary["out"]) == (60, rep["lambda"], str(d / "pred.csv"))
    ev = run_evaluate("chexpert_pham", truth, d / "pred.csv", out=d / "ev.json")
    assert ev["provenance"]["command"] == "hier evaluate"
    assert ev["coverage"] == pytest.approx(summary["coverage"])
    assert json.loads((d / "ev.json").read_text(encoding="utf-8"))["n"] == 60


def test_predict_names_the_calibration_layout(files):
    d, scores, truth = files
    tax = load_taxonomy("chexpert_pham")
    th = d / "th.json"
    run_calibrate(tax, scores, truth, th, alpha=0.2, from_leaves="sum")
    leaf = np.loadtxt(scores, delimiter=",", skiprows=1, usecols=range(1, len(tax.leaves) + 1))
    ids = [line.split(",")[0] for line in scores.read_text(encoding="utf-8").splitlines()[1:]]
    nodes = d / "nodes.csv"
    write_score_table(nodes, ids, tax.nodes, node_scores_from_leaves(leaf, taxonomy=tax))
    with pytest.raises(InputError, match="fitted on scores with one column per leaf, aggregated with 'sum'"):
        run_predict(th, nodes, d / "pred.csv")
    assert not (d / "pred.csv").exists()
