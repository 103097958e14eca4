"""GREEN parsing, the rubric and GREEN judges through a scripted client, and kappa equal to scikit-learn's."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from medlens._validation import InputError
from medlens.fairness import (
    GreenJudge,
    RubricJudge,
    judge_scores,
    judges_agreement,
    parse_green,
    parse_rubric_score,
    weighted_kappa,
)
from medlens.llm import CallableClient
from medlens.metrics import JudgeCache

GREEN_TEMPLATE = """[Explanation]:
The candidate misses the disc haemorrhage and overstates cupping.

[Clinically Significant Errors]:
(a) False report of a finding in the candidate: 1. Severe cupping.
(b) Missing a finding present in the reference: 2. Disc haemorrhage; RNFL thinning.
(c) Misidentification of a finding's anatomic location/position: 0.
(d) Misassessment of the severity of a finding: 0.
(e) Mentioning a comparison that isn't in the reference: 0.
(f) Omitting a comparison detailing a change from a prior study: 0.

[Clinically Insignificant Errors]:
(a) False report of a finding in the candidate: 1. Mild drusen.
(b) Missing a finding present in the reference: 0.
(c) Misidentification of a finding's anatomic location/position: 0.
(d) Misassessment of the severity of a finding: 0.
(e) Mentioning a comparison that isn't in the reference: 0.
(f) Omitting a comparison detailing a change from a prior study: 0.

[Matched Findings]:
3. Glaucoma; visual field loss; elevated IOP.
"""


def test_green_template_by_hand():
    g = parse_green(GREEN_TEMPLATE)
    assert g.ok
    assert g.matched == 3
    assert g.significant == {"a": 1, "b": 2, "c": 0, "d": 0, "e": 0, "f": 0}
    assert g.insignificant["a"] == 1
    assert g.score == pytest.approx(3 / 6)  # M / (M + sum of significant errors); insignificant ones do not count
    assert g.missing == ()


def test_green_tolerates_real_llm_drift():
    text = (
        "Sure! Here is my assessment.\n\n**[Clinically Significant Errors]:**\n"
        "- (a) False report of a finding in the candidate: None\n"
        "- (b) Missing a finding present in the reference: two. Haemorrhage; notch.\n"
        "(c): 1. Wrong eye.\n\n### Matched Findings\n**2**. Cupping; field loss."
    )
    g = parse_green(text)
    assert g.ok, g.error
    assert (g.significant["a"], g.significant["b"], g.significant["c"]) == (0, 2, 1)
    assert g.missing == ("d", "e", "f")
    assert g.matched == 2
    assert g.score == pytest.approx(2 / 5)
    none = parse_green("[Clinically Significant Errors]: None\n\n[Matched Findings]: 4. all of them")
    assert none.ok
    assert none.score == 1.0
    assert parse_green("[Clinically Significant Errors]:\n(a) 0.\n[Matched Findings]:\n0.").score == 0.0  # M = 0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("The report looks fine to me.", "Significant Errors"),
        ("[Clinically Significant Errors]:\n(a) 1. x\n", "Matched Findings"),
        ("[Clinically Significant Errors]:\n(a) several. x\n[Matched Findings]:\n2. y", "no count"),
        ("[Clinically Significant Errors]:\n(a) 0.\n[Matched Findings]:\nsome of them", "matched findings"),
    ],
)
def test_green_unparseable_is_a_result_not_a_crash(text, reason):
    g = parse_green(text)
    assert not g.ok
    assert math.isnan(g.score)
    assert reason.lower() in g.error.lower()


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_green_parser_never_raises(text):
    g = parse_green(text)
    assert g.ok or math.isnan(g.score)
    assert g.ok is False or 0.0 <= g.score <= 1.0


@pytest.mark.parametrize(
    ("text", "grade"),
    [
        ('{"score": 4, "reason": "minor omission"}', 4),
        ('<think>maybe 2? {"score": 2}</think>\n```json\n{"score": 5, "reason": "exact"}\n```', 5),
        ("Score: 3", 3),
        ("**Grade:** 2/5 because the laterality is wrong.", 2),
        ("The answer deserves 4 out of 5.", 4),
        ("1", 1),
        ("  5. ", 5),
        ("On a rating scale of 1 to 5 the answer is close.\nRating: 4", 4),
        ("Initial score 2, but on reflection the final score: 3", 3),
    ],
)
def test_rubric_grades_read_from_real_shapes(text, grade):
    assert parse_rubric_score(text, 1, 5) == (grade, None)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("I cannot grade this.", "no grade"),
        ("Score: 8", "outside"),
        ("Score: 7/10", "another scale"),
        ('{"score": 3.5}', "not an integer"),
        ('{"score": "high"}', "not a number"),
    ],
)
def test_rubric_failures_are_reasons(text, reason):
    g, why = parse_rubric_score(text, 1, 5)
    assert g is None
    assert reason in why


def _scripted(replies):
    calls = []

    def fn(messages, **params):
        calls.append((messages, params))
        cand = messages[-1]["content"].split("Candidate:\n")[1].split("\n")[0]
        return replies[cand]

    return CallableClient(fn, model="scripted-judge"), calls


def test_rubric_judge_scores_with_nan_for_failures_and_caches(tmp_path):
    client, calls = _scripted({"cupped disc": "Score: 5", "normal": '{"score": 1}', "??": "no idea"})
    judge = RubricJudge(client, pass_mark=4)
    cache = JudgeCache(tmp_path)
    preds = ["cupped disc", "normal", "??", "cupped disc"]
    refs = ["glaucomatous cupping", "glaucoma", "glaucoma", "glaucomatous cupping"]
    s = judge_scores(judge, preds, refs, cache=cache)
    assert np.array_equal(s.scores[[0, 1, 3]], [5.0, 1.0, 5.0])
    assert math.isnan(s.scores[2])
    assert s.n_failed == 1
    assert s.matches.tolist() == [True, False, False, True]
    assert s.raw[2] == "no idea"  # the raw judge text is kept
    assert len(calls) == 3  # the repeated pair is asked once
    assert calls[0][1]["temperature"] == 0.0
    again = judge_scores(RubricJudge(client, pass_mark=4), preds, refs, cache=JudgeCache(tmp_path))
    assert len(calls) == 3
    assert again.stats["cache_hits"] == 3
    np.testing.assert_array_equal(again.scores, s.scores)
    assert s.to_dict()["mean"] == pytest.approx(11 / 3)


def test_rubric_judge_sees_the_question_and_the_rubric():
    client, calls = _scripted({"yes": "Score: 4"})
    judge = RubricJudge(client, rubric="Grade 1-3.", scale=(1, 3))
    with pytest.raises(InputError, match="pass_mark"):
        RubricJudge(client, scale=(1, 3), pass_mark=5)
    judge_scores(judge, ["yes"], ["glaucoma: yes"], questions=["Does the patient have glaucoma?"])
    user = calls[0][0][-1]["content"]
    assert user.startswith("Grade 1-3.")
    assert "Question: Does the patient have glaucoma?" in user
    assert judge_scores(judge, ["yes"], ["x"]).n_failed == 1  # 4 is outside 1..3
    assert "scale=1-3" in judge.judge_id
    assert judge.judge_id != RubricJudge(client).judge_id


def test_green_judge_through_a_client():
    client = CallableClient(lambda m, **p: GREEN_TEMPLATE, model="scripted-green")
    judge = GreenJudge(client)
    j = judge.judge("severe cupping", "disc haemorrhage, RNFL thinning, glaucoma")
    assert j.score == pytest.approx(0.5)
    assert not j.match
    assert j.rationale == GREEN_TEMPLATE
    bad = GreenJudge(CallableClient(lambda m, **p: "Looks good.", model="bad")).judge("a", "b")
    assert bad.score is None
    with pytest.raises(InputError, match="--llm-url"):
        GreenJudge()


@given(
    st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=2, max_size=40),
    st.sampled_from([None, "linear", "quadratic"]),
)
@settings(max_examples=150, deadline=None)
def test_kappa_equals_scikit_learn(pairs, weights):
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    labels = [1, 2, 3, 4, 5]
    ours = weighted_kappa(a, b, labels=labels, weights=weights)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns where kappa is undefined (nan)
        ref = cohen_kappa_score(a, b, labels=labels, weights=weights)
    if math.isnan(ref):
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(ref, abs=1e-12)
    # without labels: positions in the sorted union of the observed grades, as scikit-learn
    if len(set(a) | set(b)) > 1:
        assert weighted_kappa(a, b, weights=weights) == pytest.approx(
            cohen_kappa_score(a, b, weights=weights), abs=1e-12
        )


def test_kappa_by_hand_and_errors():
    # 2x2: observed agreement 3/4, expected (2*1 + 2*3)/16 = 1/2 -> kappa 0.5
    assert weighted_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert math.isnan(weighted_kappa([2, 2], [2, 2]))
    with pytest.raises(InputError, match=r"ratings_b\[1\]"):
        weighted_kappa([1, 2], [1, 9], labels=[1, 2, 3])
    with pytest.raises(InputError, match="weights"):
        weighted_kappa([1], [1], weights="cubic")


def test_agreement_between_judges_skips_failures():
    rep = judges_agreement({"green70b": [1, 2, 3, np.nan, 5], "rubric8b": [1, 2, 2, 4, 5], "x": [1, 1, 1, 1, 1]})
    first = rep["pairs"][0]
    assert (first["a"], first["b"], first["n"], first["n_missing"]) == ("green70b", "rubric8b", 4, 1)
    assert first["kappa"] == pytest.approx(cohen_kappa_score([1, 2, 3, 5], [1, 2, 2, 5], weights="quadratic"))
    assert first["exact_agreement"] == 0.75
    assert len(rep["pairs"]) == 3
    with pytest.raises(InputError, match="two judges"):
        judges_agreement({"only": [1, 2]})


def test_run_fair_judge_writes_scores_raw_and_agreement(tmp_path):
    from medlens.fairness import run_fair_agreement, run_fair_judge

    preds = [{"id": f"s{i}", "prediction": ["glaucoma", "normal", "??"][i % 3], "task": "vqa"} for i in range(6)]
    refs = [{"id": f"s{i}", "question": "Is there glaucoma?", "reference": "glaucoma", "language": ["en", "es"][i % 2],
             "task": "vqa"} for i in range(6)]  # fmt: skip
    p, r = tmp_path / "P.jsonl", tmp_path / "R.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in preds))
    r.write_text("".join(json.dumps(x) + "\n" for x in refs))
    replies_a = {"glaucoma": "Score: 5", "normal": "Score: 1", "??": "unsure"}
    replies_b = {"glaucoma": '{"score": 4}', "normal": '{"score": 1}', "??": '{"score": 2}'}

    def client(replies, name):
        def fn(messages, **kw):
            user = messages[-1]["content"]
            assert "Question: Is there glaucoma?" in user
            return replies[user.split("Candidate:\n")[1].split("\n")[0]]

        return CallableClient(fn, model=name)

    a = run_fair_judge(p, r, client(replies_a, "a"), out=tmp_path / "A.csv",
                       column="judge_a", cache=False)  # fmt: skip
    b = run_fair_judge(p, r, client(replies_b, "b"), out=tmp_path / "B.csv", column="judge_b", cache=False)
    assert a["n_failed"] == 2
    assert b["n_failed"] == 0
    rows = (tmp_path / "A.csv").read_text().splitlines()
    assert rows[0] == "id,judge_a,language"  # bookkeeping fields (task, question) are not attributes
    assert rows[3] == "s2,,en"  # an unreadable reply is an empty cell
    raw = [json.loads(x) for x in (tmp_path / "A.csv.judgements.jsonl").read_text().splitlines()]
    assert raw[2]["raw"] == "unsure"
    assert raw[2]["score"] is None
    doc = run_fair_agreement([tmp_path / "A.csv", tmp_path / "B.csv"], columns=["judge_a", "judge_b"], weights="linear")
    pair = doc["pairs"][0]
    assert pair["n"] == 4
    assert pair["n_missing"] == 2
    assert pair["kappa"] == pytest.approx(cohen_kappa_score([5, 1, 5, 1], [4, 1, 4, 1], weights="linear"))
    with pytest.raises(InputError, match="exactly one"):
        run_fair_agreement([tmp_path / "A.csv", tmp_path / "A.csv"], columns=["judge_a", "judge_b"])
