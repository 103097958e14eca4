"""Any registered benchmark runs by name (`medlens bench run`), the demo is a list of names over the same path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medlens._registry import Registry
from medlens._validation import InputError
from medlens.benchmarks import BENCHMARKS, BenchmarkSpec, build_report, list_benchmarks, run_benchmark, run_demo
from medlens.io import atomic_write_json

CALLS: list[dict] = []


def _toy_run(out_dir, *, n: int = 3, seed: int = 0, alpha: float = 0.1, progress=False, overwrite=False):
    CALLS.append({"n": n, "seed": seed, "alpha": alpha, "overwrite": overwrite})
    doc = {"benchmark": "toy", "n": n, "seed": seed, "alpha": alpha, "value": n * 10 + seed}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(out_dir) / "metrics.json", doc)
    return doc


def _needs_data_run(out_dir, *, data: str, progress=False):
    doc = {"benchmark": "needs-data", "data": data}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(out_dir) / "metrics.json", doc)
    return doc


def _section(doc):
    from medlens.report import Section

    s = Section(f"toy section {doc['benchmark']}")
    s.paragraph(f"value {doc.get('value')}")
    return s


@pytest.fixture
def toy_registry(monkeypatch):
    reg: Registry[BenchmarkSpec] = Registry("benchmark")
    reg.register(
        "toy",
        BenchmarkSpec(
            name="toy",
            description="a toy",
            run=_toy_run,
            report_section=_section,
            summarize=lambda d: {"value": d["value"]},
            summary_lines=lambda d: [f"toy: value {d['value']}", "  second line"],
            explain=lambda d: [f"a value of {d['value']} reads as toy"],
        ),
        description="a toy",
        extras=("viz",),
    )
    reg.register(
        "needs-data",
        BenchmarkSpec(name="needs-data", description="needs data", run=_needs_data_run, report_section=_section),
        description="needs data",
    )
    monkeypatch.setattr("medlens.benchmarks._runner.BENCHMARKS", reg)
    monkeypatch.setattr("medlens.benchmarks._runner.DEMO", ("toy", "needs-data"))
    monkeypatch.setattr("medlens.benchmarks._runner.DEMO_FULL", ())
    CALLS.clear()
    return reg


def test_the_real_registry_lists_every_benchmark():
    names = [r["name"] for r in list_benchmarks()]
    assert names == BENCHMARKS.names()
    assert {"cxr-reports", "cxr-reports-finetune", "nova", "rare-hpo"} <= set(names)
    rows = {r["name"]: r for r in list_benchmarks()}
    assert rows["cxr-reports"]["demo"] == "quick"
    assert rows["cxr-reports-finetune"]["demo"] == "full"
    assert rows["nova"]["demo"] is None
    for r in rows.values():
        assert set(r["missing_extras"]) <= set(r["extras"])


def test_every_registered_spec_has_a_runner_summary_and_section():
    for name in BENCHMARKS.names():
        spec = BENCHMARKS.get(name)
        assert spec.name == name
        assert callable(spec.run)
        assert callable(spec.report_section)
        assert callable(spec.summarize)
        assert callable(spec.summary_lines)


def test_run_benchmark_passes_options_and_only_accepted_shared_ones(toy_registry, tmp_path):
    res = run_benchmark("toy", tmp_path / "t", options={"n": 5}, shared={"seed": 2, "branch_depth": 1}, overwrite=True)
    assert CALLS == [{"n": 5, "seed": 2, "alpha": 0.1, "overwrite": True}]  # branch_depth: not taken, not passed
    assert res["summary"] == {"value": 52}
    assert res["lines"] == ["toy: value 52", "  second line"]
    assert res["metrics"] == str(tmp_path / "t" / "metrics.json")
    assert json.loads(Path(res["metrics"]).read_text())["value"] == 52


@pytest.mark.parametrize(
    ("name", "options", "fragment"),
    [
        ("toi", {}, "unknown benchmark 'toi'. Did you mean: 'toy'? See `medlens bench list`"),
        ("toy", {"nn": 3}, "benchmark 'toy' has no option 'nn'. Did you mean: 'n'? It takes: alpha, n, seed."),
        ("needs-data", {}, "benchmark 'needs-data' needs data: pass --set data=..."),
    ],
)
def test_run_benchmark_refuses_what_it_cannot_run(toy_registry, tmp_path, name, options, fragment):
    with pytest.raises(InputError) as ei:
        run_benchmark(name, tmp_path / "x", options=options)
    assert fragment in str(ei.value)
    assert not (tmp_path / "x").exists()


def test_run_demo_is_the_list_of_names_then_the_report(toy_registry, tmp_path):
    doc = run_demo(tmp_path, shared={"seed": 1, "alpha": 0.05}, options={"needs-data": {"data": "d"}})
    assert CALLS == [{"n": 3, "seed": 1, "alpha": 0.05, "overwrite": False}]
    assert doc["toy"] == {
        "metrics": str(tmp_path / "toy" / "metrics.json"),
        "value": 31,
        "readings": ["a value of 31 reads as toy"],  # the report's one-line readings, in --json too
        "lines": ["toy: value 31", "  second line"],
    }
    assert doc["needs-data"]["lines"] == []
    assert doc["report"] == str(tmp_path / "report.html")
    assert doc["schema_version"]
    assert doc["provenance"]["command"] == "demo"
    assert doc["provenance"]["seed"] == 1
    html = (tmp_path / "report.html").read_text()
    assert "toy section toy" in html
    assert "toy section needs-data" in html


def test_build_report_reads_a_single_bench_run_folder(toy_registry, tmp_path):
    run_benchmark("toy", tmp_path / "one")
    info = build_report(tmp_path / "one")
    assert info == {"report": str(tmp_path / "one" / "report.html"), "sections": ["toy"]}


def test_build_report_of_an_empty_folder_and_a_corrupt_metrics_file(toy_registry, tmp_path):
    with pytest.raises(InputError, match="holds no"):
        build_report(tmp_path)
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "metrics.json").write_text("{not json")
    with pytest.raises(InputError, match=r"toy/metrics.json: not a readable metrics.json"):
        build_report(tmp_path)


def test_run_demo_names_each_section_on_stderr_with_progress(toy_registry, tmp_path, capsys):
    run_demo(tmp_path, options={"needs-data": {"data": "d"}}, progress=True)
    err = capsys.readouterr().err
    assert "medlens demo [1/2] toy: " in err
    assert "medlens demo [2/2] needs-data: " in err
    assert "medlens demo [1/2] toy: done in " in err
    run_demo(tmp_path / "quiet", options={"needs-data": {"data": "d"}}, progress=False)
    assert "medlens demo [" not in capsys.readouterr().err
