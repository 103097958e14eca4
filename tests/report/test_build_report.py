"""`build_report` (medlens report / the demo): readings from each benchmark's `explain`, a provenance row per run."""

from __future__ import annotations

from medlens._registry import Registry
from medlens.benchmarks import BenchmarkSpec, build_report
from medlens.io import atomic_write_json
from medlens.report import Section


def _section(doc):
    return Section(f"toy {doc['benchmark']}", data="toy data", model="toy model").paragraph("body")


def test_report_header_has_each_runs_provenance_and_readings(tmp_path, monkeypatch):
    reg: Registry[BenchmarkSpec] = Registry("benchmark")
    reg.register(
        "toy",
        BenchmarkSpec(
            name="toy",
            description="t",
            run=lambda out: {},
            report_section=_section,
            explain=lambda d: [f"toy: value {d['value']} means nothing"],
        ),
        description="t",
    )
    monkeypatch.setattr("medlens.benchmarks._runner.BENCHMARKS", reg)
    prov = {
        "medlens_version": "0.1.0",
        "command": "toy",
        "config_hash": "c" * 64,
        "seed": 3,
        "input_hashes": {"truth": {"path": "t.csv", "sha256": "d" * 64}, "missing": {"path": "x", "sha256": None}},
        "model_ids": {"text_encoder": "enc/one"},
        "taxonomy": {"name": "toy_tax", "version": "2", "sha256": "e" * 64},
        "archive_sha256": "f" * 64,
        "knowledge": [{"name": "kb-a", "version": "1.0", "sha256": "1" * 64}],
        "index": {"corpus": "hpo", "request_hash": "2" * 64, "seconds": 3.0},
    }
    atomic_write_json(tmp_path / "toy" / "metrics.json", {"benchmark": "toy", "value": 7, "provenance": prov})
    atomic_write_json(tmp_path / "other" / "metrics.json", {"benchmark": "unknown"})  # not registered: left out
    info = build_report(tmp_path)
    assert info["sections"] == ["toy"]
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    head, body = html.split("<section", 1)
    assert "toy: value 7 means nothing" in head
    for short in ("c" * 12, "d" * 12, "e" * 12, "f" * 12):
        assert short in head
    assert "truth <code" in head
    assert "taxonomy toy_tax v2 <code" in head
    assert "archive <code" in head
    assert "knowledge kb-a v1.0 <code title='" + "1" * 64 in head
    assert "index hpo (cache key) <code title='" + "2" * 64 in head
    assert "missing" not in head  # an input without a hash is not a data hash
    assert "text_encoder: enc/one" in head
    assert "<td>3</td>" in head  # the seed
    assert "id='toy'" in body  # the section's id is the benchmark name
    assert "<b>Data:</b> toy data" in body


def test_generated_data_names_its_generator_in_the_provenance_row():
    from medlens.benchmarks._runner import _data_hashes

    got = _data_hashes({"generator": "brain-anomaly-v1", "config_hash": "abc", "model_ids": {"unet": "x"}})
    assert got == {"generator": "brain-anomaly-v1"}


def test_the_header_cuts_digests_but_not_generator_versions():
    from medlens.report._html import _header

    page = _header([{"benchmark": "b", "data_hashes": {"generator": "brain-anomaly-v1", "archive": "ab" * 32}}])
    assert ">brain-anomaly-v1</code>" in page
    assert f">{'ab' * 6}</code>" in page
    assert f"title='{'ab' * 32}'" in page
