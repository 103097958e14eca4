"""``nova run``, ``rag diagnose --cases`` and ``fair run`` with a local model on Ray (``--executor ray --workers 2``) against the
same commands in this process: one local Ray (2 CPUs) for the module, a tiny random GPT-2 saved to disk.

Greedy decoding is deterministic, so the rows are the same (compared sorted by id: they arrive in block-completion
order), and a run folder started in this process resumes on Ray with every id written once. Each actor imports
torch and loads its model (tens of seconds on 2 busy cores), so the module is marked slow and keeps to six Ray
jobs.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ray")
pytest.importorskip("ray.data")
pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = pytest.mark.slow

from tests.benchmarks.conftest import FILENAMES, write_v1  # noqa: E402
from tests.cli.conftest import cli_runner  # noqa: E402
from tests.llm.test_transformers import _save_tiny_lm  # noqa: E402

DOCS = [
    {"id": "joubert", "title": "Joubert syndrome", "text": "molar tooth sign, cerebellar vermis hypoplasia, ataxia"},
    {"id": "dandy", "title": "Dandy-Walker malformation", "text": "cystic fourth ventricle, enlarged posterior fossa"},
    {"id": "tsc", "title": "Tuberous sclerosis", "text": "cortical tubers, subependymal nodules, seizures"},
]
CASES = [
    {"id": "a", "clinical_history": "Ataxia and hypotonia.", "caption": "Molar tooth sign."},
    {"id": "b", "clinical_history": "Seizures.", "caption": "Cortical tubers and subependymal nodules."},
    {"id": "c", "clinical_history": "Macrocephaly.", "caption": "Cystic fourth ventricle, large posterior fossa."},
    {"id": "d", "clinical_history": "A lesion in the left frontal lobe.", "caption": "Ring enhancing lesion."},
]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return _save_tiny_lm(tmp_path_factory.mktemp("lm") / "tiny-gpt2", chat_template=None)


@pytest.fixture
def cli(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))  # this process's runs: a cache of their own
    run = cli_runner(capsys)

    def ok(*args):
        res = run(*args, "--json")
        assert res.rc == 0, res.err
        return json.loads(res.out)

    return ok


def lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_nova_run_on_ray_equals_local_and_resumes_a_local_run(ray_cluster, tiny_lm, tmp_path, cli):
    data = write_v1(tmp_path / "nova")
    base = ["nova", "run", "--data", data, "--task", "diagnosis", "--setting", "text", "--model-path", tiny_lm]
    base += ["--max-tokens", "4", "--no-cache"]  # every reply generated, here and on the actors
    local = cli(*base, "--executor", "local", "--out", tmp_path / "local")
    dist = cli(*base, "--executor", "ray", "--workers", "2", "--out", tmp_path / "ray")
    assert local["executor"] == {"name": "local"}
    assert (dist["executor"]["name"], dist["executor"]["workers"]) == ("ray", 2)
    assert dist["provenance"]["config_hash"] == local["provenance"]["config_hash"]  # the executor is not config
    assert dist["counts"] == local["counts"]
    want = sorted(lines(tmp_path / "local" / "predictions.jsonl"), key=lambda r: r["filename"])
    assert [r["filename"] for r in want] == FILENAMES
    assert all(r["raw"] for r in want)  # the tiny model wrote something, so equal rows compare real replies
    assert sorted(lines(tmp_path / "ray" / "predictions.jsonl"), key=lambda r: r["filename"]) == want
    # a run stopped after 2 images in this process (its last line half-written), resumed on Ray
    part = tmp_path / "part"
    cli(*base, "--limit", "2", "--out", part)
    with (part / "predictions.jsonl").open("a") as fh:
        fh.write('{"filename": "case0002_001.png", "task": "diag')
    resumed = cli(*base, "--executor", "ray", "--workers", "2", "--out", part)
    assert (resumed["counts"]["done"], resumed["counts"]["remaining"]) == (5, 0)
    rows = lines(part / "predictions.jsonl")
    assert sorted(r["filename"] for r in rows) == FILENAMES  # each image exactly once
    assert sorted(rows, key=lambda r: r["filename"]) == want


def test_rag_diagnose_on_ray_equals_local_and_resumes_a_local_run(ray_cluster, tiny_lm, tmp_path, cli):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    idx = tmp_path / "idx"
    cli("rag", "index", "--corpus", corpus, "--out", idx, "--encoder", "hashing:64")
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps(c) + "\n" for c in CASES))
    base = ["rag", "diagnose", "--index", idx, "--cases", cases, "--model-path", tiny_lm, "--max-tokens", "6"]
    local = cli(*base, "--out", tmp_path / "local")
    dist = cli(*base, "--executor", "ray", "--workers", "2", "--out", tmp_path / "ray")
    assert (local["executor"], dist["executor"]["name"]) == ({"name": "local"}, "ray")
    assert dist["config_hash"] == local["config_hash"]
    assert (dist["n_done"], dist["n_llm_calls"]) == (4, local["n_llm_calls"])
    want = sorted(lines(tmp_path / "local" / "results.jsonl"), key=lambda r: r["id"])
    assert all(r["trace"]["n_calls"] > 0 for r in want)
    assert sorted(lines(tmp_path / "ray" / "results.jsonl"), key=lambda r: r["id"]) == want
    # a local run of the first two cases, resumed on Ray with all four; another reply length, so that no answer
    # comes from the actors' cache of the run above
    base[-1] = "5"
    part, whole = tmp_path / "part", tmp_path / "whole"
    first = tmp_path / "first.jsonl"
    first.write_text("".join(json.dumps(c) + "\n" for c in CASES[:2]))
    cli(*[first if a == cases else a for a in base], "--out", part)
    resumed = cli(*base, "--executor", "ray", "--workers", "2", "--out", part)
    assert (resumed["n_done"], resumed["n_skipped"]) == (2, 2)
    cli(*base, "--out", whole)
    rows = lines(part / "results.jsonl")
    assert sorted(r["id"] for r in rows) == ["a", "b", "c", "d"]  # each case exactly once
    assert sorted(rows, key=lambda r: r["id"]) == sorted(lines(whole / "results.jsonl"), key=lambda r: r["id"])


def test_fair_run_on_ray_equals_local_and_resumes_a_local_run(ray_cluster, tiny_lm, tmp_path, cli):
    items = tmp_path / "Q.jsonl"
    qs = ["Is the rim thin?", "Is the cup large?", "Any hemorrhage?", "Is there glaucoma?", "Is the disc pale?"]
    rows = [{"id": f"q{i}", "question": q, "reference": "System User Assistant", "race": ["Asian", "White"][i % 2]}
            for i, q in enumerate(qs)]  # fmt: skip
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = ["fair", "run", "--data", items, "--task", "vqa", "--text-only", "--model-path", tiny_lm]
    base += ["--max-tokens", "4", "--no-cache", "--metrics", "bleu1"]  # every reply generated, here and on the actors
    local = cli(*base, "--out", tmp_path / "local")
    dist = cli(*base, "--executor", "ray", "--workers", "2", "--out", tmp_path / "ray")
    assert (local["executor"], dist["executor"]["name"], dist["executor"]["workers"]) == ({"name": "local"}, "ray", 2)
    assert dist["provenance"]["config_hash"] == local["provenance"]["config_hash"]  # the executor is not config
    assert (dist["counts"], dist["mean"]) == (local["counts"], local["mean"])
    want = sorted(lines(tmp_path / "local" / "predictions.jsonl"), key=lambda r: r["id"])
    assert [r["id"] for r in want] == [f"q{i}" for i in range(5)]
    assert all(r["prediction"] for r in want)  # the tiny model wrote something, so equal rows compare real replies
    assert sorted(lines(tmp_path / "ray" / "predictions.jsonl"), key=lambda r: r["id"]) == want
    assert (tmp_path / "ray" / "scores.csv").read_text() == (tmp_path / "local" / "scores.csv").read_text()
    # a run of the first two items in this process (its last line half-written by a kill), resumed on Ray
    part = tmp_path / "part"
    cli(*base, "--limit", "2", "--out", part)
    with (part / "predictions.jsonl").open("a") as fh:
        fh.write('{"id": "q2", "task": "vq')
    resumed = cli(*base, "--executor", "ray", "--workers", "2", "--out", part)
    assert (resumed["counts"]["resumed"], resumed["counts"]["answered"], resumed["counts"]["done"]) == (2, 3, 5)
    got = lines(part / "predictions.jsonl")
    assert sorted(r["id"] for r in got) == [f"q{i}" for i in range(5)]  # each item exactly once
    assert sorted(got, key=lambda r: r["id"]) == want
