"""The cxr-reports runner end to end, with a transparent stand-in encoder (the real MiniLM runs in `make demo`)."""

import json

import pytest

from medlens.cli import main

pytest.importorskip("matplotlib")


class HashEncoder:
    """The library's deterministic feature-hashing embedder (CRC32, stable across processes) as a text encoder:
    no weights, enough signal to exercise every step."""

    model_id = "test/hash-encoder"

    def __init__(self, *args, **kwargs):
        from medlens.encoders import EncoderConfig
        from medlens.retrieval import HashingEmbedder

        self.config = EncoderConfig(name="hash", source="test", modality="text", embedding_dim=256)
        self._embedder = HashingEmbedder(dim=256)

    def encode_texts(self, texts, **kwargs):
        return self._embedder.embed(list(texts))


@pytest.fixture
def fake_encoder(monkeypatch):
    pytest.importorskip("torchxrayvision")  # the data files; the package itself is never imported
    import medlens.encoders

    monkeypatch.setattr(medlens.encoders, "load_encoder", lambda name, **kw: HashEncoder())
    monkeypatch.setattr("medlens.benchmarks._runner.DEMO", ("cxr-reports",))  # rare-hpo: test_rare_hpo_run.py


def test_demo_writes_metrics_report_and_manifest(tmp_path, fake_encoder, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["report"].endswith("report.html")
    m = json.loads((out / "cxr-reports" / "metrics.json").read_text())
    assert m["schema_version"]
    assert m["provenance"]["taxonomy"]["name"] == "cxr_anatomic_v1"
    assert m["provenance"]["model_ids"] == {"text_encoder": "test/hash-encoder"}
    assert m["splits"] == {"train": 1901, "calibration": 950, "test": 951}
    b = m["baseline_test"]
    for key in ("hP", "hR", "hF", "cae_rate", "cae_share", "coverage", "error_breakdown", "mistake_severity"):
        assert key in b
    assert b["n"] == 951
    assert b["multilabel"]
    assert "ci" in b
    for method in ("crc", "ltt", "empirical"):
        r = m["thresholds"][method]
        c = r["calibration"]
        assert c["method"] == method
        assert c["rule"] == "multilabel"
        assert c["n_calibration"] == 950
        if c["feasible"]:
            assert c["calibration_risk"] <= 0.02 + 1e-12
        assert r["test"]["cae_rate"] == r["test_cae_rate"]
        assert (out / "cxr-reports" / f"thresholds_{method}.json").is_file()
    for method in ("crc", "ltt", "empirical"):  # the back-off (climb) rule: one node per report
        c = m["thresholds_climb"][method]["calibration"]
        assert c["rule"] == "climb"
        assert (out / "cxr-reports" / f"thresholds_{method}_climb.json").is_file()
    html = (out / "report.html").read_text()
    assert "cxr-reports" in html
    assert html.count("data:image/png;base64,") == 3
    manifest = json.loads((out / "cxr-reports" / "manifest.json").read_text())
    assert manifest["config"]["alpha"] == 0.02
    # the written CSVs replay through the CLI: calibrate -> predict -> evaluate
    d = out / "cxr-reports"
    th = tmp_path / "th.json"
    assert (
        main(
            [
                "hier",
                "calibrate",
                "--scores",
                str(d / "scores_calibration.csv"),
                "--truth",
                str(d / "truth_calibration.csv"),
                "--alpha",
                "0.05",
                "--method",
                "crc",
                "--out",
                str(th),
            ]
        )
        == 0
    )
    pred = tmp_path / "pred.csv"
    assert (
        main(["hier", "predict", "--thresholds", str(th), "--scores", str(d / "scores_test.csv"), "--out", str(pred)])
        == 0
    )
    assert main(["hier", "evaluate", "--truth", str(d / "truth_test.csv"), "--pred", str(pred), "--json"]) == 0
    # a second run with another config is refused (exit 2) unless --overwrite
    capsys.readouterr()
    assert main(["demo", "--out", str(out), "--alpha", "0.05"]) == 2
    assert "different configuration" in capsys.readouterr().err
