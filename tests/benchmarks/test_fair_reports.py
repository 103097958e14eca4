"""The fair-reports benchmark: real IU ages, and the runner end to end with a stand-in encoder."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from medlens.benchmarks import BENCHMARKS, DEMO
from medlens.benchmarks.fair_reports import AGE_GROUPS, age_group, load_report_ages
from medlens.cli import main

pytest.importorskip("torchxrayvision")  # the data files; the package itself is never imported


def test_ages_come_from_birth_and_study_dates():
    ages = load_report_ages().set_index("id")
    assert len(ages) == 3851
    # CXR1000: born 1955-08-20, studied 2011-03-28 (both images)
    assert ages.loc["CXR1000", "age"] == pytest.approx(
        (np.datetime64("2011-03-28") - np.datetime64("1955-08-20")).astype(int) / 365.25
    )
    assert ages.loc["CXR1000", "n_images"] == 2
    assert ages["age"].between(17, 100).all()
    assert age_group(ages["age"].to_numpy()).tolist().count(None) == 0
    assert set(age_group(ages["age"].to_numpy())) == set(AGE_GROUPS)


def test_registered_in_the_demo():
    assert "fair-reports" in BENCHMARKS.names()
    assert "fair-reports" in DEMO


class HashEncoder:
    """Deterministic feature hashing as a text encoder (no weights); the real MiniLM runs in `make demo`."""

    model_id = "test/hash-encoder"

    def __init__(self, *args, **kwargs):
        from medlens.retrieval import HashingEmbedder

        self._embedder = HashingEmbedder(dim=256)

    def encode_texts(self, texts, **kwargs):
        return self._embedder.embed(list(texts))


@pytest.mark.slow
def test_run_end_to_end(tmp_path, monkeypatch, capsys):
    import medlens.encoders

    monkeypatch.setattr(medlens.encoders, "load_encoder", lambda name, **kw: HashEncoder())
    out = tmp_path / "fr"
    assert main(["bench", "run", "fair-reports", "--out", str(out), "--set", "n_bootstrap=50", "--json"]) == 0
    capsys.readouterr()
    m = json.loads((out / "metrics.json").read_text())
    ds = m["dataset"]
    assert sum(ds["age_group_counts"].values()) + ds["n_test_without_age"] == ds["n_test"]
    assert m["provenance"]["model_ids"] == {"text_encoder": "test/hash-encoder"}
    for system in ("nearest-neighbour", "constant"):
        for metric in ("bleu4", "rouge_l", "cider"):
            r = m["results"][system]["by_age"][metric]
            assert [g["name"] for g in r["groups"]] == list(AGE_GROUPS)
            assert r["fap"]["value"] == pytest.approx(r["fap"]["performance"] - r["fap"]["dispersion"])
            assert r["worst_group"] in AGE_GROUPS
            for g in r["groups"]:
                assert g["ci_low"] <= g["score"] <= g["ci_high"]
    assert m["classifier"] is None  # no cxr-reports run next to this one
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert len(rows) == ds["n_test"]
    # the scores file feeds `medlens fair report` and gives the same group means
    assert main(["fair", "report", "--scores", str(out / "scores.csv"), "--attributes", "age_group",
                 "--metric", "cider", "--bootstrap", "50", "--json"]) == 0  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    got = {g["name"]: g["score"] for g in doc["results"]["cider"]["age_group"]["groups"]}
    want = {g["name"]: g["score"] for g in m["results"]["nearest-neighbour"]["by_age"]["cider"]["groups"]}
    assert got == pytest.approx(want)


@pytest.mark.slow
def test_classifier_by_age_equals_evaluate_on_each_group(tmp_path):
    """Part (a) on a small cxr-reports-like folder of real report ids: each age group's numbers are evaluate()'s."""
    from medlens.benchmarks.fair_reports._classifier import classifier_by_age
    from medlens.hierarchy import evaluate, predict_labels, write_label_table, write_score_table
    from medlens.taxonomy import load_taxonomy

    tax = load_taxonomy("cxr_anatomic_v1")
    ages = load_report_ages().set_index("id")["age"].to_dict()
    rng = np.random.default_rng(0)
    ids = sorted(ages)[:120] + ["CXR-no-age"]
    leaves = tax.leaves
    labels = [[leaves[int(rng.integers(len(leaves)))]] for _ in ids]
    scores = rng.random((len(ids), len(tax) - 1))
    write_label_table(tmp_path / "truth_test.csv", ids, labels)
    write_score_table(tmp_path / "scores_test.csv", ids, tax.nodes[1:], scores)
    crc = {"taxonomy": "cxr_anatomic_v1", "rule": "multilabel", "lambda": 0.7, "alpha": 0.1, "branch_depth": 1}
    (tmp_path / "thresholds_crc.json").write_text(json.dumps(crc))
    out = classifier_by_age(tmp_path, ages, n_bootstrap=20, min_group_size=5)
    assert out["n_test"] == 121
    assert out["n_without_age"] == 1
    r = out["thresholds"]["CRC λ̂ 0.7 (α 0.1)"]
    groups = age_group(np.array([ages.get(i, np.nan) for i in ids], dtype=float))
    full = np.ones((len(ids), len(tax)))
    full[:, 1:] = scores
    pred = predict_labels(full, tax, rule="multilabel", lam=0.7)
    truth = [labels[i] for i in range(len(ids))]
    for g, row in r["by_age"].items():
        idx = np.flatnonzero(groups == g)
        want = evaluate([truth[i] for i in idx], pred.subset(idx), taxonomy=tax, node_scores=full[idx])
        assert row["n"] == len(idx)
        assert row["hF"] == pytest.approx(want.hF)
        assert row["cae_rate"] == pytest.approx(want.cae_rate)
    worst = r["summary"]["cae_rate"]  # CAE: lower is better, so the worst group has the highest rate
    assert worst["fap"]["min_group_score"] == max(v["cae_rate"] for v in r["by_age"].values())
    assert r["by_age"][worst["worst_group"]]["cae_rate"] == worst["fap"]["min_group_score"]


@pytest.mark.slow
def test_per_group_risk_fits_one_crc_threshold_per_age_group(tmp_path):
    """With the calibration split present, part (a) adds Mondrian CRC by age: λ̂ per group equal to the library's."""
    from medlens.benchmarks.fair_reports._classifier import classifier_by_age
    from medlens.hierarchy import node_scores_from_leaves, write_label_table, write_score_table
    from medlens.risk import GroupRiskThresholder
    from medlens.taxonomy import load_taxonomy

    tax = load_taxonomy("cxr_anatomic_v1")
    ages = load_report_ages().set_index("id")["age"].to_dict()
    rng = np.random.default_rng(1)
    ids = sorted(ages)[:400]
    leaves = list(tax.leaves)
    for split, part in (("calibration", ids[:200] + ["CXR-no-age"]), ("test", ids[200:])):
        p = rng.dirichlet(np.full(len(leaves), 0.3), size=len(part))
        y = [[leaves[int(rng.choice(len(leaves), p=q))]] for q in p]
        s = node_scores_from_leaves(p, taxonomy=tax, leaves=leaves)
        write_label_table(tmp_path / f"truth_{split}.csv", part, y)
        write_score_table(tmp_path / f"scores_{split}.csv", part, tax.nodes[1:], s[:, 1:])
        if split == "calibration":
            cal = (s[:-1], y[:-1], age_group(np.array([ages[i] for i in part[:-1]], dtype=float)))
    crc = {"taxonomy": "cxr_anatomic_v1", "rule": "multilabel", "lambda": 0.7, "alpha": 0.1, "branch_depth": 1}
    (tmp_path / "thresholds_crc.json").write_text(json.dumps(crc))
    out = classifier_by_age(tmp_path, ages, n_bootstrap=10, min_group_size=5)
    pgr = out["per_group_risk"]
    assert pgr["n_calibration"] == 200
    assert pgr["n_calibration_without_age"] == 1
    th = GroupRiskThresholder(tax, alpha=0.1, method="crc", rule="multilabel").fit(*cal)
    for g, lam in th.lambdas_.items():
        assert pgr["groups"][g]["group"]["lambda"] == pytest.approx(lam)
    assert pgr["marginal_lambda"] == pytest.approx(th.marginal.lambda_)
    assert sum(v["n"] for v in pgr["groups"].values()) == 200
