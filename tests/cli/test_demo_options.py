"""``medlens demo``: which options reach which benchmark."""

from __future__ import annotations


def test_epochs_reach_only_the_fine_tune(cli, monkeypatch, tmp_path):
    """``--epochs`` is the fine-tune's: passed as a shared option it reached every benchmark with an ``epochs``
    parameter (omni-phantoms trained its heads 5 epochs instead of 40 in the demo, unlike ``bench run``)."""
    seen = {}

    def fake_run_demo(out, **kwargs):
        seen.update(kwargs)
        return {"report": str(tmp_path / "report.html"), "provenance": {}}

    monkeypatch.setattr("medlens.benchmarks.run_demo", fake_run_demo)
    monkeypatch.setattr("medlens.cli._demo.print_sections", lambda *a, **k: None)
    res = cli("demo", "--out", tmp_path / "demo", "--epochs", "3", "--seed", "2")
    assert res.rc == 0, res.err
    assert "epochs" not in seen["shared"]
    assert seen["shared"]["seed"] == 2
    assert seen["options"] == {"cxr-reports-finetune": {"epochs": 3}}
