"""The stitch-reports benchmark end to end on the real reports, with the hashing stand-in as the target encoder."""

import json

import numpy as np
import pytest
from tests.benchmarks.test_cxr_reports_run import HashEncoder

pytest.importorskip("matplotlib")


@pytest.fixture
def hash_encoder(monkeypatch):
    pytest.importorskip("torchxrayvision")  # the data files; the package itself is never imported
    import medlens.encoders

    monkeypatch.setattr(medlens.encoders, "load_encoder", lambda name, **kw: HashEncoder())


@pytest.mark.slow
def test_run_is_leak_free_and_translation_beats_padding(tmp_path, hash_encoder):
    from medlens.benchmarks import build_report, run_benchmark

    res = run_benchmark("stitch-reports", tmp_path / "sr", options={"anchors": 256, "seeds": 2, "lsa_dim": 32})
    doc = json.loads((tmp_path / "sr" / "metrics.json").read_text())
    assert doc == json.loads(json.dumps(res["doc"]))
    assert doc["schema_version"]
    assert doc["provenance"]["command"] == "demo stitch-reports"
    assert doc["splits"] == {"train": 1901, "test": 951}
    # sentence anchors come only from train sentences that no test report contains
    sent = doc["sentences"]
    assert sent["anchor_pool"] == sent["train"] - sent["in_both_splits"]
    assert sent["in_both_splits"] > 0
    assert doc["anchors"] == {"reports": 256, "sentences": 256}
    h, z = doc["head_transfer"], doc["zero_shot"]
    assert h["translated"]["macro_auroc"] > h["absolute"]["macro_auroc"] + 0.1
    assert z["translated"]["macro_auroc"] > z["absolute"]["macro_auroc"]
    for block in (h, z):
        for key in ("hF", "cae_rate", "coverage", "macro_auroc"):
            assert 0.0 <= block["translated"][key] <= 1.0
    # least squares cannot be fitted with 16 anchors in 32 dimensions; Procrustes can; 2 seeds give intervals
    sweep = {c["anchors"]: c for c in doc["sweep"]["head"]["linear"]}
    assert sweep[16]["underdetermined"]
    assert sweep[16]["mean"] is None
    ortho = {c["anchors"]: c for c in doc["sweep"]["head"]["ortho"]}
    assert ortho[16]["n"] == 2
    assert ortho[16]["ci"][0] <= ortho[16]["mean"] <= ortho[16]["ci"][1]
    assert np.isfinite(ortho[1024]["mean"])
    table = {r["method"]: r for r in doc["methods_table"]}
    assert set(table) == {"absolute", "ortho", "sim", "linear", "lortho", "ridge", "affine"}
    assert table["ortho"]["mrr"] > table["absolute"]["mrr"]
    info = build_report(tmp_path / "sr")
    html = (tmp_path / "sr" / "report.html").read_text()
    assert info["sections"] == ["stitch-reports"]
    assert "Head transfer without training on the source" in html
    assert "data:image/png;base64" in html
