"""``medlens multiview extract | train | evaluate`` end to end on small NIfTI volumes, and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
pytest.importorskip("torch")
pytest.importorskip("torch_geometric")

from medlens.cli import main  # noqa: E402


def _cases(tmp_path, n=12):
    rng = np.random.default_rng(0)
    (tmp_path / "vols").mkdir()
    rows = ["id,volume,mask,label"]
    aff = np.diag([2.0, 1.5, 2.5, 1.0])
    for i in range(n):
        label = i % 2
        vol = rng.normal(0, 0.1, (16, 16, 16)).astype(np.float32)
        vol[5:11, 5:11, 5:11] += 1.0 + 2.0 * label
        mask = np.zeros((16, 16, 16), np.uint8)
        mask[5:11, 5:11, 5:11] = 1
        nib.save(nib.Nifti1Image(vol, aff), tmp_path / "vols" / f"v{i}.nii.gz")
        nib.save(nib.Nifti1Image(mask, aff), tmp_path / "vols" / f"m{i}.nii.gz")
        rows.append(f"case{i},vols/v{i}.nii.gz,{f'vols/m{i}.nii.gz' if i % 3 else ''},{label}")
    (tmp_path / "cases.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "cases.csv"


@pytest.mark.slow
def test_extract_train_evaluate(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    csv = _cases(tmp_path)
    feats = tmp_path / "feats"
    args = ["multiview", "extract", str(csv), "--views", "4", "--size", "16", "--intensity", "none",
            "--out", str(feats), "--json"]  # fmt: skip
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_cases"] == 12
    assert doc["planes"] == 4
    with np.load(feats / "features.npz") as z:
        assert z["features"].shape == (12, 4, 128)
        assert z["ids"].tolist()[:2] == ["case0", "case1"]
    # a rerun resumes: every case is already in results.jsonl
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["n_resumed"] == 12

    model = tmp_path / "model"
    targs = ["multiview", "train", str(feats), "--folds", "2", "--epochs", "4", "--patience", "2", "--lr", "0.01",
             "--batch-size", "4", "--bootstrap", "50", "--out", str(model), "--json"]  # fmt: skip
    assert main(targs) == 0
    tdoc = json.loads(capsys.readouterr().out)
    assert set(tdoc["cv"]["metrics"]) == {"auroc", "balanced_accuracy", "mcc"}
    assert (model / "head.safetensors").is_file()
    preds = (model / "cv_predictions.csv").read_text().splitlines()
    assert preds[0] == "id,label,probability,fold"
    assert len(preds) == 13

    ev = tmp_path / "eval"
    assert main(["multiview", "evaluate", str(feats), "--model-path", str(model), "--bootstrap", "50",
                 "--out", str(ev), "--json"]) == 0  # fmt: skip
    edoc = json.loads(capsys.readouterr().out)
    assert edoc["n_cases"] == 12
    assert 0.0 <= edoc["metrics"]["auroc"]["value"] <= 1.0
    assert len((ev / "predictions.csv").read_text().splitlines()) == 13


def test_bad_cases_csv(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,volume,mask,label\na,v.nii,,2\n")
    assert main(["multiview", "extract", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "row 2 (id a): label must be 0 or 1" in capsys.readouterr().err


def test_extract_rejects_cases_with_other_planes(tmp_path, monkeypatch, capsys):
    """A folder whose per-case features disagree (plane count, normals, feature size) is a clear exit 2."""
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    csv = _cases(tmp_path, n=3)
    feats = tmp_path / "feats"
    args = ["multiview", "extract", str(csv), "--views", "3", "--size", "8", "--intensity", "none",
            "--out", str(feats)]  # fmt: skip
    assert main(args) == 0
    files = sorted((feats / "features").glob("case2-*.npy"))
    assert len(files) == 1
    good = np.load(files[0])
    assert good.shape == (3, 128 + 3)
    np.save(files[0], np.concatenate([good, good[:1]]))  # one plane more for case2
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "row 4 (id case2): 4 planes of 128 features, but case case0 has 3 of 128" in err
    other = good.copy()
    other[:, -3:] = other[:, -3:][:, [1, 2, 0]] * 0.6  # normals no longer the same planes
    np.save(files[0], other)
    assert main(args) == 2
    assert "other plane normals than case case0" in capsys.readouterr().err
    np.save(files[0], good)  # restored: the resumed run stacks every case again
    assert main(args) == 0
    with np.load(feats / "features.npz") as z:
        assert z["features"].shape == (3, 3, 128)
