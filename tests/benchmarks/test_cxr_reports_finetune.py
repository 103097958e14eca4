"""``medlens demo --full``: the fine-tuning section end to end with a tiny stand-in encoder (the real MiniLM runs
in ``medlens demo --full``), its 2×2 table, report section, and resume."""

import json

import pytest

from medlens.cli import main

pytest.importorskip("matplotlib")
pytest.importorskip("torch")
pytest.importorskip("torchxrayvision")  # the data files; the package itself is never imported


@pytest.fixture
def toy_encoder(monkeypatch):
    from tests.hierarchy.test_finetune import ToyTextEncoder

    import medlens.encoders

    monkeypatch.setattr(medlens.encoders, "load_encoder", lambda name, **kw: ToyTextEncoder(d=32))
    monkeypatch.setattr("medlens.benchmarks._runner.DEMO", ("cxr-reports",))  # rare-hpo: test_rare_hpo_run.py
    monkeypatch.setattr("medlens.benchmarks._runner.DEMO_FULL", ("cxr-reports-finetune",))  # omni: its own test


def test_demo_full_writes_the_two_by_two_table(tmp_path, toy_encoder, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--full", "--epochs", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) >= {"cxr-reports", "cxr-reports-finetune", "report", "provenance"}
    m = json.loads((out / "cxr-reports-finetune" / "metrics.json").read_text())
    assert m["splits"] == {"train": 1901, "calibration": 950, "test": 951}
    assert set(m["table"]) == {"zero_shot", "finetuned"}
    for row in m["table"].values():
        assert set(row) == {"fixed", "crc"}
        assert row["fixed"]["lambda"] == 0.5
        for c in row.values():
            assert c["n"] == 951
            assert 0 <= c["cae_rate"] <= 1
            assert 0 <= c["coverage"] <= 1
            assert 0 <= c["macro_auroc"] <= 1
        assert row["crc"]["macro_auroc"] == row["fixed"]["macro_auroc"]  # AUROC does not depend on λ
    # the zero-shot row is scored from the cxr-reports run's probabilities, so it matches that section
    zs = json.loads((out / "cxr-reports" / "metrics.json").read_text())
    assert m["table"]["zero_shot"]["fixed"]["cae_rate"] == pytest.approx(zs["baseline_test"]["cae_rate"])
    assert m["table"]["zero_shot"]["crc"]["lambda"] == pytest.approx(zs["thresholds"]["crc"]["calibration"]["lambda"])
    assert [h["epoch"] for h in m["training"]["history"]] == [1]
    assert m["provenance"]["command"] == "demo cxr-reports-finetune"
    for name in (
        "scores_calibration.csv",
        "scores_test.csv",
        "thresholds_crc_finetuned.json",
        "model/model.safetensors",
    ):
        assert (out / "cxr-reports-finetune" / name).is_file(), name
    html = (out / "report.html").read_text()
    assert "fine-tuning × risk-constrained thresholds" in html
    # a second run resumes the finished model instead of training again
    assert main(["demo", "--out", str(out), "--full", "--epochs", "1", "--json"]) == 0
    again = json.loads((out / "cxr-reports-finetune" / "metrics.json").read_text())
    assert again["training"]["resumed_from"] == 1
    assert again["table"] == m["table"]
    # a model folder of an older version (pickles) is refused, and --overwrite trains it again, identically
    from tests.training.test_checkpoint import plant_pickle

    model_dir = out / "cxr-reports-finetune" / "model"
    marker = tmp_path / "pwned"
    for name in ("checkpoint", "model"):  # the folder as an older version left it
        (model_dir / f"{name}.safetensors").unlink()
        plant_pickle(model_dir / f"{name}.pt", marker)
    capsys.readouterr()
    assert main(["demo", "--out", str(out), "--full", "--epochs", "1", "--json"]) == 2
    err = capsys.readouterr().err
    assert "model.pt was written by an older medlens as a pickle" in err
    assert "pass --overwrite" in err
    assert main(["demo", "--out", str(out), "--full", "--epochs", "1", "--overwrite", "--json"]) == 0
    retrained = json.loads((out / "cxr-reports-finetune" / "metrics.json").read_text())
    assert retrained["training"]["resumed_from"] == 0
    assert retrained["table"] == m["table"]
    assert not marker.exists()
    assert not (model_dir / "checkpoint.pt").exists()
    assert not (model_dir / "model.pt").exists()
