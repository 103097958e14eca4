"""``diagnose_cases`` / ``rag diagnose --cases`` on an executor (fast: the local executor, and a fake Ray that
pickles the task and sends the cases as JSON, ``tests/executors/_fake_ray.py``): each worker builds its own agent
(index opened from its folder, its own client), the results equal the in-process run's, the run folder resumes
either way, and the bad combinations are refused before anything loads. Real Ray: tests/executors/test_ray_llm.py.
"""

from __future__ import annotations

import json
import sys

import pytest
from tests.agents.conftest import CASE, Doctor, build_index, client_of
from tests.executors._fake_ray import PickledExecutor

from medlens._validation import InputError
from medlens.agents import AgentConfig, AgentFactory, RadarAgent, diagnose_cases
from medlens.executors import LocalExecutor

CASES = [
    {**CASE, "id": f"c{i}", "clinical_history": f"{CASE['clinical_history']} Seen at visit {i}."} for i in range(5)
]
CASES[3] = {"id": "c3", "clinical_history": "Seizures since infancy.", "caption": "Cortical tubers on MRI."}


class DoctorFactory:
    """A picklable client factory: what a worker calls to build its own scripted doctor."""

    def __call__(self):
        return client_of(Doctor())


@pytest.fixture
def index_dir(tmp_path):
    build_index().save(tmp_path / "idx")
    return tmp_path / "idx"


def lines(out) -> list[dict]:
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


def by_id(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: r["id"])


@pytest.mark.parametrize("llm", [True, False], ids=["agent", "retrieval-only"])
def test_executors_give_the_results_of_the_in_process_run(index_dir, tmp_path, llm):
    from medlens.retrieval import load_index

    cfg = AgentConfig(leakage="auto")
    agent = RadarAgent(load_index(index_dir), client_of(Doctor()) if llm else None, cfg)
    here = diagnose_cases(agent, CASES, tmp_path / "here")
    local = diagnose_cases(agent, CASES, tmp_path / "local", executor=LocalExecutor(), block_size=2)
    fake = PickledExecutor(seed=3)  # blocks finish in the order 2, 1, 0
    factory = AgentFactory(index_dir, DoctorFactory() if llm else None, cfg)
    dist = diagnose_cases(agent, CASES, tmp_path / "fake", executor=fake, agent_factory=factory, block_size=2)
    assert fake.loads == 1
    assert (here["executor"], local["executor"], dist["executor"]) == (
        {"name": "local"},
        {"name": "local"},
        {"name": "fake-ray", "workers": 2},
    )
    assert json.loads((tmp_path / "fake" / "manifest.json").read_text())["executor"] == dist["executor"]
    want = lines(tmp_path / "here")
    assert want[0]["mode"] == ("agent" if llm else "retrieval-only")
    assert lines(tmp_path / "local") == want
    got = lines(tmp_path / "fake")
    assert [r["id"] for r in got] == ["c4", "c2", "c3", "c0", "c1"]  # block-completion order, the same results
    assert by_id(got) == by_id(want)
    drop = ("out", "results", "manifest", "executor")
    assert {k: v for k, v in dist.items() if k not in drop} == {k: v for k, v in here.items() if k not in drop}
    assert dist["config_hash"] == here["config_hash"]  # the executor is not configuration


def test_a_worker_dying_keeps_finished_blocks_and_any_executor_resumes(index_dir, tmp_path):
    from medlens.retrieval import load_index

    cfg = AgentConfig()
    agent = RadarAgent(load_index(index_dir), client_of(Doctor()), cfg)
    factory = AgentFactory(index_dir, DoctorFactory(), cfg)
    diagnose_cases(agent, CASES, tmp_path / "whole")
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="worker died"):
        diagnose_cases(
            agent, CASES, out, executor=PickledExecutor(seed=5, fail_at=1), agent_factory=factory, block_size=2
        )
    assert [r["id"] for r in lines(out)] == ["c2", "c3"]  # block 1 came back, then the worker died
    res = diagnose_cases(agent, CASES, out)  # resumed in this process
    assert (res["n_done"], res["n_skipped"]) == (3, 2)
    assert by_id(lines(out)) == by_id(lines(tmp_path / "whole"))
    # and the other way round: an in-process start resumed on the (fake) Ray
    other = tmp_path / "other"
    diagnose_cases(agent, CASES[:2], other)
    res = diagnose_cases(agent, CASES, other, executor=PickledExecutor(seed=0), agent_factory=factory, block_size=1)
    assert (res["n_done"], res["n_skipped"]) == (3, 2)
    assert sorted(r["id"] for r in lines(other)) == [c["id"] for c in CASES]  # each id once
    assert by_id(lines(other)) == by_id(lines(tmp_path / "whole"))


def test_an_executor_run_refuses_threads_and_a_missing_factory(index_dir, tmp_path):
    from medlens.retrieval import load_index

    agent = RadarAgent(load_index(index_dir), client_of(Doctor()), AgentConfig())
    with pytest.raises(InputError, match="exclude each other"):
        diagnose_cases(agent, CASES, tmp_path / "a", workers=2, executor=LocalExecutor())
    with pytest.raises(InputError, match="give agent_factory"):
        diagnose_cases(agent, CASES, tmp_path / "b", executor=PickledExecutor())
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


def test_the_agent_factory_travels_without_index_or_model(index_dir, tmp_path, monkeypatch):
    import pickle

    monkeypatch.chdir(tmp_path)
    factory = AgentFactory("idx", DoctorFactory(), AgentConfig())
    assert factory.index == index_dir.resolve()  # absolute: a worker may start in another folder
    blob = pickle.dumps(factory)
    assert len(blob) < 4000
    agent = pickle.loads(blob)()
    assert agent.mode == "agent"
    assert agent.diagnose(CASES[0])["id"] == "c0"
    assert AgentFactory(None, DoctorFactory(), AgentConfig(retrieval=False))().mode == "no-retrieval"


def test_cli_executor_refusals_and_a_missing_ray(index_dir, tmp_path, monkeypatch, capsys):
    from tests.cli.conftest import cli_runner
    from tests.cli.test_cli import assert_user_error

    cli = cli_runner(capsys)
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps(c) + "\n" for c in CASES))
    case = tmp_path / "case.json"
    case.write_text(json.dumps(CASE))
    base = ["rag", "diagnose", "--index", index_dir, "--cases", cases, "--out", tmp_path / "o"]
    local = ["--model-path", tmp_path / "no-such-model"]  # never loaded: the options are refused first
    assert_user_error(
        cli(*base, "--llm-url", "http://127.0.0.1:9/v1", "--model", "m", "--executor", "ray", "--workers", "2"),
        "--executor ray runs a --model-path model on Ray actors",
    )
    assert_user_error(cli(*base, *local, "--ray-address", "auto"), "--ray-address applies to --executor ray only")
    assert_user_error(cli(*base, *local, "--executor", "ray", "--rate-limit", "3"), "--rate-limit", "--executor ray")
    assert_user_error(cli(*base, *local, "--workers", "2"), "--workers overlaps", "add --executor ray")
    single = ["rag", "diagnose", "--index", index_dir, "--case", case, *local, "--executor", "ray"]
    assert_user_error(cli(*single), "--executor ray diagnoses the cases of --cases")
    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert_user_error(cli(*base, *local, "--executor", "ray"), 'pip install "medlens[ray]"')
    assert not (tmp_path / "o").exists()
