"""``medlens stitch fit | apply | zeroshot | sweep`` end to end on small generated features."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from medlens.io import write_features


@pytest.fixture
def pair(tmp_path):
    """Source = a rotated, shifted copy of the target's first 6 dims plus noise dims; ids shuffled in the target."""
    rng = np.random.default_rng(0)
    n = 120
    y = rng.normal(size=(n, 6))
    q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    x = np.hstack([y @ q.T + 1.0, 0.01 * rng.normal(size=(n, 2))])
    ids = [f"r{i}" for i in range(n)]
    write_features(tmp_path / "s.npy", ids, x)
    order = rng.permutation(n)
    write_features(tmp_path / "t.npy", [ids[i] for i in order], y[order])
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "label"])
        for i in range(n):
            w.writerow([ids[i], "pos" if y[i, 0] > 0 else "neg"])
    return tmp_path, x, y, ids


def test_fit_pairs_by_ids_and_apply_recovers_the_target(cli, pair):
    tmp, x, y, ids = pair
    res = cli("stitch", "fit", "--source", tmp / "s.npy", "--target", tmp / "t.npy", "--method", "ortho",
              "--pre", "center", "--anchors", "80", "--out", tmp / "tr.npz", "--json")  # fmt: skip
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["paired_by"] == "ids"
    assert doc["n_anchors"] == 80
    assert doc["held_out"]["n"] == 40
    assert doc["held_out"]["pair_cosine"] > 0.99
    assert doc["held_out"]["top1"] == 1.0
    assert doc["provenance"]["command"] == "stitch fit"
    assert doc["schema_version"]
    res = cli("stitch", "apply", "--translator", tmp / "tr.npz", "--features", tmp / "s.npy", "--out", tmp / "y.npy")
    assert res.rc == 0, res.err
    out = np.load(tmp / "y.npy")
    assert (tmp / "y.ids.txt").read_text().split() == ids
    assert np.abs(out - y).max() < 0.05


def test_least_squares_with_too_few_anchors_is_exit_2_with_advice(cli, pair):
    tmp, *_ = pair
    res = cli("stitch", "fit", "--source", tmp / "s.npy", "--target", tmp / "t.npy", "--method", "linear",
              "--anchors", "5", "--out", tmp / "tr.npz")  # fmt: skip
    assert res.rc == 2
    assert "use --method ortho or ridge" in res.err


def test_sweep_marks_underdetermined_cells_and_scores_a_head(cli, pair):
    tmp, *_ = pair
    res = cli("stitch", "sweep", "--source", tmp / "s.npy", "--target", tmp / "t.npy", "--labels", tmp / "labels.csv",
              "--anchors", "4,40", "--seeds", "2", "--method", "ortho", "--method", "linear", "--method", "absolute", "--pre", "center",
              "--json")  # fmt: skip
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    cell = {(r["method"], r["anchors"]): r for r in doc["table"]}
    assert cell[("linear", 4)]["underdetermined"]
    assert "metrics" not in cell[("linear", 4)]
    assert not cell[("linear", 40)]["underdetermined"]
    # an exact rotation: the translated features reach the upper bound (the head on the true targets)
    assert cell[("ortho", 40)]["metrics"]["pair_cosine"]["mean"] > 0.999
    assert cell[("ortho", 40)]["metrics"]["accuracy"]["mean"] == pytest.approx(doc["reference"]["accuracy"])
    assert cell[("ortho", 40)]["metrics"]["accuracy"]["mean"] > cell[("absolute", 40)]["metrics"]["accuracy"]["mean"]
    assert doc["reference"]["accuracy"] > 0.8
    assert len(cell[("ortho", 40)]["metrics"]["mrr"]["values"]) == 2
    # the table view draws the same cells
    res = cli("stitch", "sweep", "--source", tmp / "s.npy", "--target", tmp / "t.npy", "--anchors", "4,40",
              "--seeds", "1", "--method", "linear")  # fmt: skip
    assert res.rc == 0, res.err
    assert "underdetermined" in res.out


def test_zeroshot_writes_a_scores_csv_that_hier_evaluate_reads(cli, tmp_path):
    """Source = MiniLM embeddings of short texts under a fixed rotation: translated back, the prompts apply."""
    from medlens.encoders import load_encoder

    texts = ["There is a large pleural effusion.", "The heart is enlarged.", "There is a pneumothorax."] * 8
    enc = load_encoder("minilm")
    e = enc.encode_texts(texts)
    q = np.linalg.qr(np.random.default_rng(1).normal(size=(e.shape[1], e.shape[1])))[0]
    ids = [f"t{i}" for i in range(len(texts))]
    write_features(tmp_path / "src.npy", ids, e @ q)
    write_features(tmp_path / "txt.npy", ids, e)
    res = cli("stitch", "fit", "--source", tmp_path / "src.npy", "--target", tmp_path / "txt.npy", "--pre", "none",
              "--out", tmp_path / "tr.npz")  # fmt: skip
    assert res.rc == 0, res.err
    res = cli("stitch", "zeroshot", "--features", tmp_path / "src.npy", "--translator", tmp_path / "tr.npz",
              "--taxonomy", "chexpert_pham", "--encoder", "minilm", "--temperature", "0.1", "--out", tmp_path / "s.csv", "--json")  # fmt: skip
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["method"]["method"] == "contrast"
    assert doc["n"] == len(texts)
    with open(tmp_path / "s.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(texts)
    eff = [float(r["Pleural Effusion"]) for r in rows]
    cardio = [float(r["Cardiomegaly"]) for r in rows]
    assert eff[0] > eff[1]
    assert cardio[1] > cardio[0]
    with open(tmp_path / "truth.csv", "w") as fh:
        fh.write(
            "id,label\n"
            + "".join(
                f"{i},{lab}\n"
                for i, lab in zip(ids, ["Pleural Effusion", "Cardiomegaly", "Pneumothorax"] * 8, strict=True)
            )
        )
    res = cli("hier", "evaluate", "--taxonomy", "chexpert_pham", "--truth", tmp_path / "truth.csv", "--pred",
              tmp_path / "truth.csv", "--scores", tmp_path / "s.csv", "--json")  # fmt: skip
    assert res.rc == 0, res.err
