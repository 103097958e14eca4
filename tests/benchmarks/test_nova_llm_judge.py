"""``nova evaluate`` with the LLM judge: Cohen's kappa against the exact/synonym judge (worked out by hand) and the
CLI on a loopback OpenAI-compatible server (three votes per pair, all cached)."""

from __future__ import annotations

import json

import pytest
from tests.metrics.test_llm_judge import NO, YES, _pair

from medlens.llm import CallableClient
from medlens.metrics import LLMJudge, cohen_kappa


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    for var in ("MEDLENS_LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)


# ==================================================================================== agreement, NOVA evaluate
# one prediction per image; exact/synonym verdicts Y Y Y N N, LLM verdicts Y Y N Y N (by hand):
# observed agreement 3/5, chance 0.6*0.6 + 0.4*0.4 = 0.52, kappa = (0.6 - 0.52) / 0.48 = 1/6
DX = {
    "case0001_001.png": ("Vestibular schwannoma", True),
    "case0001_002.png": ("acoustic neuroma", True),
    "case0002_001.png": ("GBM", False),
    "case0003_001.png": ("cyst", True),
    "case0004_001.png": ("Schizencephaly", False),
}


def _rows():
    return [{"filename": f, "task": "diagnosis", "diagnoses": [name]} for f, (name, _) in DX.items()]


def test_kappa_between_llm_and_exact_synonym_judges(nova):
    from medlens.benchmarks.nova import nova_evaluate

    verdict = {name: same for name, same in DX.values()}
    judge = LLMJudge(CallableClient(lambda m, **p: YES if verdict[_pair(m)[0]] else NO, model="scripted"))
    res = nova_evaluate(nova, _rows(), judge=judge, compare_judge="exact_synonym")
    dx = res["diagnosis"]
    assert dx["top1"] == pytest.approx(3 / 5)
    assert dx["judge_id"] == judge.judge_id
    agree = dx["agreement"]
    assert agree["kappa"] == pytest.approx(1 / 6)
    assert agree["kappa"] == pytest.approx(cohen_kappa([1, 1, 1, 0, 0], [1, 1, 0, 1, 0]))
    assert agree["judge_b_scores"]["top1"] == pytest.approx(3 / 5)


@pytest.fixture
def server():
    from tests.llm._server import ScriptedServer

    s = ScriptedServer()
    yield s
    s.close()


def test_cli_evaluate_with_the_llm_judge(nova_dir, tmp_path, server, capsys):
    from tests.llm._server import reply

    from medlens.cli import main

    for _name, same in DX.values():  # pairs are judged in data order, three votes each
        server.push(*(reply(YES if same else NO) for _ in range(3)))
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    args = ["nova", "evaluate", "--data", nova_dir, "--predictions", pred, "--judge", "llm"]
    args += ["--llm-url", server.url, "--model", "judge-model", "--compare-judge", "exact_synonym", "--json"]
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    assert rc == 0, out.err
    dx = json.loads(out.out)["diagnosis"]
    assert dx["top1"] == pytest.approx(0.6)
    assert dx["agreement"]["kappa"] == pytest.approx(1 / 6)
    assert len(server.requests) == 15
    assert [r["body"]["seed"] for r in server.requests[:3]] == [0, 1, 2]
    doc = json.loads(out.out)
    assert doc["provenance"]["model_ids"]["diagnosis_judge"].startswith("llm:openai:judge-model:votes=3")
    # everything is cached: a second evaluation asks nothing
    rc = main([str(a) for a in args])
    assert rc == 0
    assert len(server.requests) == 15
    # the judge's endpoint is checked like any other
    capsys.readouterr()
    rc = main([str(a) for a in [*args[:-7], "--llm-url", "http://judge.example.org/v1", "--model", "m"]])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--allow-remote" in err
    rc = main([str(a) for a in ["nova", "evaluate", "--data", nova_dir, "--predictions", pred, "--model", "m"]])
    assert rc == 2
    assert "add --judge llm" in capsys.readouterr().err
