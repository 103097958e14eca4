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
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert len(rows) == ds["n_test"]
    # the scores file feeds `medlens fair report` and gives the same group means
    assert main(["fair", "report", "--scores", str(out / "scores.csv"), "--attributes", "age_group",
                 "--metric", "cider", "--bootstrap", "50", "--json"]) == 0  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    got = {g["name"]: g["score"] for g in doc["results"]["cider"]["age_group"]["groups"]}
    want = {g["name"]: g["score"] for g in m["results"]["nearest-neighbour"]["by_age"]["cider"]["groups"]}
    assert got == pytest.approx(want)
