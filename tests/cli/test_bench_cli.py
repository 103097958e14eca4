"""`medlens bench list | run`: every registered benchmark by name, with clean errors."""

from __future__ import annotations

import json

import pytest
from tests.benchmarks.test_runner import CALLS, toy_registry  # noqa: F401  (fixture)

from medlens.cli._bench import _parse_sets


def test_bench_list_json_and_text(cli):
    r = cli("bench", "list", "--json")
    assert r.rc == 0, r.err
    doc = json.loads(r.out)
    assert doc["schema_version"]
    assert doc["provenance"]["command"] == "bench list"
    names = [b["name"] for b in doc["benchmarks"]]
    assert {"cxr-reports", "rare-hpo", "nova"} <= set(names)
    r = cli("bench", "list")
    assert r.rc == 0
    assert "in `medlens demo`" in r.out
    assert "not in the demo" in r.out


def test_bench_run_by_name(cli, toy_registry, tmp_path):  # noqa: F811
    r = cli("bench", "run", "toy", "--out", tmp_path / "t", "--seed", "4", "--set", "n=2", "--json")
    assert r.rc == 0, r.err
    doc = json.loads(r.out)
    assert doc["toy"] == {
        "metrics": str(tmp_path / "t" / "metrics.json"),
        "value": 24,
        "readings": ["a value of 24 reads as toy"],
    }
    assert doc["provenance"]["command"] == "bench run"
    assert doc["provenance"]["seed"] == 4
    assert CALLS[-1] == {"n": 2, "seed": 4, "alpha": 0.1, "overwrite": False}
    r = cli("bench", "run", "toy", "--out", tmp_path / "t2")
    assert r.rc == 0
    assert "toy: value 30" in r.out
    assert "metrics:" in r.out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["bench", "run", "toi", "--out", "{tmp}"], "unknown benchmark 'toi'"),
        (["bench", "run", "toy", "--out", "{tmp}", "--set", "nn=1"], "has no option 'nn'"),
        (["bench", "run", "toy", "--out", "{tmp}", "--set", "n"], "expected KEY=VALUE"),
        (["bench", "run", "toy", "--out", "{tmp}", "--set", "n=1", "--set", "n=2"], "given twice"),
        (["bench", "run", "toy", "--out", "{tmp}", "--seed", "1", "--set", "seed=2"], "both as a flag and with --set"),
        (["bench", "run", "toy", "--out", "{tmp}", "-k", "2"], "has no option 'branch_depth'"),
        (["bench", "run", "needs-data", "--out", "{tmp}"], "needs data: pass --set data=..."),
        (["bench", "run", "toy"], "--out"),
    ],
)
def test_bench_run_bad_input_exits_2(cli, toy_registry, tmp_path, args, fragment):  # noqa: F811
    r = cli(*[a.replace("{tmp}", str(tmp_path / "x")) for a in args])
    assert r.rc == 2
    assert fragment in r.err
    assert len(r.err.strip().splitlines()) <= 3


def test_parse_sets_decodes_json_values():
    assert _parse_sets(["n=50", "alpha=0.05", "name=abc", "flag=true", "xs=[1,2]", "path=/a/b", "none=null"]) == {
        "n": 50,
        "alpha": 0.05,
        "name": "abc",
        "flag": True,
        "xs": [1, 2],
        "path": "/a/b",
        "none": None,
    }
    assert _parse_sets(["top-k=3"]) == {"top_k": 3}
