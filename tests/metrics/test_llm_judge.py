"""The LLM diagnosis judge: majority of votes, invalid votes, seeds, caching of votes and decisions, the registry,
Cohen's kappa against the exact/synonym judge (by hand), and ``nova evaluate --judge llm`` on a loopback server."""

from __future__ import annotations

import json
import re

import pytest

from medlens.llm import CallableClient
from medlens.metrics import JUDGES, JudgeCache, LLMJudge, make_judge, run_judge


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    for var in ("MEDLENS_LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)


def _pair(messages) -> tuple[str, str]:
    text = messages[-1]["content"]
    gold = re.search(r"Gold diagnosis: (.*)", text).group(1)
    pred = re.search(r"Predicted diagnosis: (.*)", text).group(1)
    return pred, gold


class Voter:
    """Answers by (prediction, seed) from a table; records every call."""

    def __init__(self, table: dict[tuple[str, int], str]) -> None:
        self.table = table
        self.calls: list[dict] = []

    def __call__(self, messages, **params):
        pred, gold = _pair(messages)
        self.calls.append({"pred": pred, "gold": gold, **params})
        return self.table[(pred, params["seed"])]


YES = '{"same": true, "reason": "same entity"}'
NO = '{"same": false, "reason": "different disease"}'


def test_majority_of_votes_with_seeds_and_temperature_zero():
    voter = Voter({("a", 0): YES, ("a", 1): NO, ("a", 2): YES, ("b", 0): NO, ("b", 1): NO, ("b", 2): YES})
    judge = LLMJudge(CallableClient(voter, model="scripted"))
    ja, jb = judge.judge_batch([("a", "gold"), ("b", "gold")])
    assert ja.match is True
    assert ja.score == pytest.approx(2 / 3)
    assert ja.rationale == "2/3 votes same (seeds 0, 1, 2: yes, no, yes): same entity"
    assert jb.match is False
    assert jb.score == pytest.approx(1 / 3)
    assert jb.rationale.startswith("1/3 votes same (seeds 0, 1, 2: no, no, yes): different disease")
    assert [c["seed"] for c in voter.calls] == [0, 1, 2, 0, 1, 2]
    assert {c["temperature"] for c in voter.calls} == {0.0}
    assert voter.calls[0]["gold"] == "gold"


def test_invalid_votes_count_against_a_match_and_ties_are_no_match():
    # seed 0: prose twice (first reply + the repair reply) -> invalid; seeds 1, 2 split
    replies = iter(["I think so", "yes they are", YES, NO])
    judge = LLMJudge(CallableClient(lambda m, **p: next(replies), model="s"))
    j = judge.judge("x", "y")
    assert j.match is False
    assert j.score == pytest.approx(1 / 3)
    assert "(seeds 0, 1, 2: invalid, yes, no)" in j.rationale
    # two votes, one each way: not more than half -> no match
    two = LLMJudge(CallableClient(Voter({("x", 5): YES, ("x", 9): NO})), votes=2, seeds=[5, 9])
    assert two.judge("x", "y").match is False
    assert LLMJudge(CallableClient(Voter({("x", 0): YES})), votes=1).judge("x", "y").match is True


def test_votes_and_decisions_are_cached_and_logged(tmp_path, caplog):
    voter = Voter(
        {(p, s): (YES if p == "acoustic neuroma" else NO) for p in ("acoustic neuroma", "cyst") for s in range(3)}
    )
    cache = JudgeCache(tmp_path / "judgements")
    judge = LLMJudge(CallableClient(voter, model="scripted"), vote_cache=cache)
    pairs = [("acoustic neuroma", "Vestibular schwannoma"), ("cyst", "Arachnoid cyst"), ("cyst", "Arachnoid cyst")]
    with caplog.at_level("DEBUG", logger="medlens.metrics._llm_judge"):
        first = run_judge(judge, pairs, cache=cache)
    assert [j.match for j in first.judgements] == [True, False, False]
    assert len(voter.calls) == 6  # 2 unique pairs x 3 votes
    assert sum("llm judge vote seed=" in r.message for r in caplog.records) == 6

    # a fresh process: decisions come from the cache file, nothing is asked
    def boom(*a, **k):
        raise AssertionError("the model was asked again")

    again = LLMJudge(CallableClient(boom, model="scripted"), vote_cache=JudgeCache(tmp_path / "judgements"))
    run = run_judge(again, pairs, cache=JudgeCache(tmp_path / "judgements"))
    assert run.n_cached == 2
    assert [j.to_dict() for j in run.judgements] == [j.to_dict() for j in first.judgements]
    # every vote is in the cache too: without the decision cache, the votes are enough
    votes_only = LLMJudge(CallableClient(boom, model="scripted"), vote_cache=JudgeCache(tmp_path / "judgements"))
    assert [j.match for j in votes_only.judge_batch(pairs[:2])] == [True, False]
    fresh = JudgeCache(tmp_path / "judgements")
    assert fresh.get(judge.vote_id(2), "cyst", "Arachnoid cyst").match is False
    lines = [json.loads(x) for f in (tmp_path / "judgements").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert sum(1 for x in lines if "#vote:seed=" in x["judge_id"]) == 6
    assert sum(1 for x in lines if x["judge_id"] == judge.judge_id) == 2


def test_judge_id_tracks_what_changes_verdicts():
    c = CallableClient(lambda m, **p: YES, model="m1")
    base = LLMJudge(c).judge_id
    assert base.startswith("llm:callable:m1:votes=3:seeds=0,1,2:t=0")
    assert LLMJudge(c, votes=5).judge_id != base
    assert LLMJudge(CallableClient(lambda m, **p: YES, model="m2")).judge_id != base
    assert LLMJudge(c, seeds=[3, 4, 5]).judge_id != base


def test_registry_and_bad_options():
    assert "llm" in JUDGES.names()
    assert JUDGES.meta("llm")["extra"] == "llm"
    j = make_judge("llm", client=CallableClient(lambda m, **p: YES))
    assert isinstance(j, LLMJudge)
    with pytest.raises(ValueError, match="needs an endpoint and a model"):
        make_judge("llm")
    with pytest.raises(ValueError, match="--allow-remote"):
        LLMJudge(llm_url="http://judge.example.org/v1", model="m")
    with pytest.raises(ValueError, match="votes must be a positive int"):
        LLMJudge(CallableClient(lambda m, **p: YES), votes=0)
    with pytest.raises(ValueError, match="seeds must be 3 different ints"):
        LLMJudge(CallableClient(lambda m, **p: YES), seeds=[1, 1, 2])
