"""RADAR benchmarks: NOVA's text setting (generated NOVA fixture + tiny corpus) and agent rows for rare-hpo."""

from __future__ import annotations

import json

import pytest
from tests.agents.conftest import Doctor, build_index, client_of, passage_ids, passage_titles

pytest.importorskip("pyarrow")
pytest.importorskip("PIL")

from tests.benchmarks.conftest import CASES, IMAGES, write_v1  # noqa: E402

from medlens.agents import AgentConfig  # noqa: E402
from medlens.benchmarks.radar import nova_text_cases, rare_hpo_agent_rows, run_radar_nova  # noqa: E402
from medlens.retrieval import LeakageGuard  # noqa: E402

NOVA_DOCS = [
    {
        "id": "vs",
        "title": "Vestibular schwannoma",
        "text": "Enhancing extra-axial mass of the cerebellopontine angle extending into the internal auditory "
        "canal; hearing loss and tinnitus.",
    },
    {
        "id": "gbm",
        "title": "Glioblastoma",
        "text": "Large necrotic tumour with surrounding oedema; seizures and headache in adults.",
    },
    {
        "id": "ac",
        "title": "Arachnoid cyst",
        "text": "CSF-intensity cyst, often an incidental finding in the posterior or middle cranial fossa.",
    },
    {
        "id": "sod",
        "title": "Septo-optic dysplasia",
        "text": "Absence of the septum pellucidum with optic nerve hypoplasia; visual impairment since birth.",
    },
    {"id": "men", "title": "Meningioma", "text": "Dural-based enhancing extra-axial mass with a dural tail."},
    {
        "id": "leak",
        "title": "Teaching case 12",
        "text": "Seizures and headache for two weeks. Axial FLAIR image shows a large tumour with surrounding "
        "oedema. Diagnosis: glioblastoma.",
    },
]
ORACLE = {  # an initial doctor that guesses each case's diagnosis from a telling word of the history
    "hearing loss": "Vestibular schwannoma",
    "Seizures": "Glioblastoma",
    "Incidental": "Arachnoid cyst",
    "Visual impairment": "Septo-optic dysplasia",
}
WRONG = ["Lymphoma", "Abscess", "Metastasis", "Ependymoma", "Medulloblastoma"]


def _initial(user: str) -> str:
    guess = next((dx for word, dx in ORACLE.items() if word in user), "Meningioma")
    return json.dumps({"findings": [], "hypotheses": [{"dx": guess, "rationale": "history"}]})


def _evidence(user: str) -> str:
    ids = passage_ids(user)
    return json.dumps({"assessments": [{"dx": "first passage", "supporting": ids[:1], "refuting": ids[1:2]}]})


def _final(user: str) -> str:
    """The agent names the first passage it is shown; without passages (the baseline) it guesses wrong."""
    titles, ids = passage_titles(user), passage_ids(user)
    if not titles:
        return json.dumps({"primary": WRONG[0], "differentials": WRONG[1:], "citations": {}, "confidence": 0.2})
    return json.dumps(
        {"primary": titles[0], "differentials": WRONG[:4], "citations": {titles[0]: ids[:1]}, "confidence": 0.9}
    )


@pytest.fixture(scope="module")
def nova(tmp_path_factory):
    from medlens.benchmarks.nova import load_nova

    return load_nova(write_v1(tmp_path_factory.mktemp("nova") / "nova"), require_images=False)


@pytest.fixture(scope="module")
def nova_index():
    return build_index(NOVA_DOCS, name="notes")


def test_nova_text_cases_one_per_case(nova):
    cases, counts = nova_text_cases(nova)
    assert [c["id"] for c in cases] == list(CASES)
    assert counts == {"n_no_text": 0, "n_no_reference": 0}
    c1 = cases[0]
    assert c1["clinical_history"] == CASES["case01"][0]
    assert c1["final_diagnosis"] == CASES["case01"][1]
    assert c1["caption"] == f"{IMAGES[0]['caption']} {IMAGES[1]['caption']}"  # both images, in data order
    assert c1["filenames"] == ["case0001_001.png", "case0001_002.png"]


def test_radar_nova_rows_delta_and_leakage(nova, nova_index):
    doc = Doctor(initial=_initial, evidence=_evidence, final=_final)
    seen: dict[str, list] = {}
    res = run_radar_nova(
        nova, nova_index, client=client_of(doc), details=True, on_result=lambda m, r: seen.setdefault(m, []).append(r)
    )
    assert res["unit"] == "case"
    assert res["n_cases"] == 4
    assert set(res["rows"]) == {"retrieval-only", "agent", "no-retrieval"}
    ro, ag, nr = (res["rows"][m] for m in ("retrieval-only", "agent", "no-retrieval"))
    # the retrieval-only ranker puts each case's disease first (the copy of case02 is dropped by the guard)
    assert [r["primary"] for r in seen["retrieval-only"]] == [CASES[c][1] for c in CASES]
    assert (ro["top1"], ro["top5"]) == (1.0, 1.0)
    # the agent names its first passage: the disease; the baseline never sees a passage and guesses wrong
    assert (ag["top1"], ag["top5"]) == (1.0, 1.0)
    assert (nr["top1"], nr["top5"]) == (0.0, 0.0)
    assert res["delta"]["top1"] == 1.0
    assert res["delta"]["top5"] == 1.0
    assert ag["judge"] == "exact_synonym"
    assert ag["judge_id"].startswith("exact_synonym:")
    assert [s["id"] for s in ag["per_sample"]] == list(CASES)
    assert ag["per_sample"][1]["predictions"][0] == "Glioblastoma"
    # the leakage guard is on by default and logs the drop of the copied case
    assert res["leakage_guard"]["cosine"] == 0.95
    leak = [d for r in seen["agent"] for d in r["leakage"]]
    assert {d["id"] for d in leak} == {"leak"}
    assert ag["leakage_dropped"] >= 1
    assert ro["leakage_dropped"] == 1
    assert nr["leakage_dropped"] == 0
    assert all(r["retrieved"] == [] for r in seen["no-retrieval"])
    assert "leak" not in [p["id"] for p in seen["agent"][1]["retrieved"]]  # dropped for case02 (it copies it)...
    assert [d["id"] for d in seen["agent"][1]["leakage"]] == ["leak"]
    assert all(r["leakage"] == [] for i, r in enumerate(seen["agent"]) if i != 1)  # ...and only for case02
    assert ag["n_fallback"] == 0
    assert ag["n_invalid_citations"] == 0


def test_radar_nova_without_the_guard_retrieves_the_copy(nova, nova_index):
    res_seen: list = []
    res = run_radar_nova(nova, nova_index, config=AgentConfig(leakage=None), on_result=lambda m, r: res_seen.append(r))
    assert set(res["rows"]) == {"retrieval-only"}
    assert "delta" not in res
    assert res["leakage_guard"] is None
    case02 = res_seen[1]
    assert case02["retrieved"][0]["id"] == "leak"  # what the guard protects against
    guarded = run_radar_nova(nova, nova_index, config=AgentConfig(leakage=LeakageGuard(cosine=None)))
    assert guarded["rows"]["retrieval-only"]["leakage_by_reason"]


def test_rare_hpo_agent_rows_score_names_like_the_ranker(nova_index):
    cases = [
        {"id": "r1", "clinical_history": "Hearing loss and tinnitus.", "caption": "Cerebellopontine angle mass.",
         "final_diagnosis": "Vestibular schwannoma", "diagnosis_id": "vs"},
        {"id": "r2", "clinical_history": "Seizures and headache.", "caption": "Large tumour with oedema.",
         "final_diagnosis": "Glioblastoma", "diagnosis_id": "gbm"},
    ]  # fmt: skip
    doc = Doctor(initial=_initial, final=_final)
    out = rare_hpo_agent_rows(nova_index, cases, client_of(doc), n_bootstrap=0)
    ag, nr = out["rows"]["agent"], out["rows"]["no-retrieval"]
    assert (ag["top1"], ag["mrr"], ag["n"]) == (1.0, 1.0, 2)
    assert (nr["top1"], nr["top5"], nr["mrr"]) == (0.0, 0.0, 0.0)
    assert out["delta"]["top1"] == 1.0
    assert out["delta"]["mrr"] == 1.0
    assert ag["leakage_dropped"] == 0  # the guard is off for rare-hpo
    # a fallback to the ranker is scored by its documents too (here: the gold document is cited)
    broken = Doctor(initial=_initial, final="nope", repair="nope")
    out = rare_hpo_agent_rows(nova_index, cases, client_of(broken), n_bootstrap=0)
    assert out["rows"]["agent"]["n_fallback"] == 2
    assert out["rows"]["agent"]["top1"] == 1.0
