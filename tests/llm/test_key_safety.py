"""The API key never leaves the request: a server that echoes it gets it redacted before anything sees the reply;
cached answers are keyed by the endpoint too."""

from __future__ import annotations

import json

import pytest
from tests.llm._server import ScriptedServer, completion

from medlens.llm import OpenAIClient, chat_json
from medlens.llm._endpoint import redact_reply

KEY = "sk-test-0123456789abcdefghij"


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("MEDLENS_LLM_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def _echo_headers(server: ScriptedServer, text: str) -> None:
    """The next answer quotes the key in the content and everywhere else in the body."""
    body = completion(text)
    body["echo"] = {"Authorization": f"Bearer {KEY}", "nested": [f"token={KEY}"]}
    server.push({"status": 200, "json": body})


def test_echoed_key_is_redacted_from_text_raw_and_cache(llm_server, keyed, tmp_path):
    client = OpenAIClient(llm_server.url, "tiny-chat", cache=tmp_path / "cache")
    _echo_headers(llm_server, f"your header was Authorization: Bearer {KEY}")
    r = client.chat([{"role": "user", "content": "hi"}])
    assert llm_server.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"  # it was sent
    assert KEY not in r.text
    assert r.text == "your header was Authorization: Bearer ***"
    assert KEY not in json.dumps(r.raw)
    stored = "".join(p.read_text(errors="replace") for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert stored
    assert KEY not in stored
    assert KEY[-12:] not in stored  # nor its tail


def test_echoed_key_inside_json_answers_is_redacted(llm_server, keyed):
    client = OpenAIClient(llm_server.url, "tiny-chat", cache=False)
    _echo_headers(llm_server, json.dumps({"caption": f"key {KEY}", "note": f"Bearer {KEY}"}))
    schema = {"type": "object", "properties": {"caption": {"type": "string"}, "note": {"type": "string"}}}
    answer = chat_json(client, [{"role": "user", "content": "describe"}], schema=schema)
    assert KEY not in json.dumps(answer.value)
    assert answer.value["caption"] == "key ***"
    assert answer.value["note"] == "Bearer ***"


def test_bearer_tokens_are_redacted_even_without_a_configured_key():
    assert redact_reply("Authorization: bearer abcdefgh12345678", None) == "Authorization: bearer ***"
    assert redact_reply(["Bearer short"], None) == ["Bearer short"]  # too short to be a token
    assert redact_reply({"n": 3, "x": None}, "k" * 20) == {"n": 3, "x": None}


def test_the_cache_does_not_answer_for_another_endpoint(tmp_path):
    a, b = ScriptedServer(), ScriptedServer()
    try:
        a.push({"status": 200, "json": completion("from a")})
        b.push({"status": 200, "json": completion("from b")})
        msgs = [{"role": "user", "content": "same prompt"}]
        ra = OpenAIClient(a.url, "same-model", cache=tmp_path).chat(msgs)
        rb = OpenAIClient(b.url, "same-model", cache=tmp_path).chat(msgs)
        again = OpenAIClient(a.url, "same-model", cache=tmp_path).chat(msgs)
    finally:
        a.close()
        b.close()
    assert (ra.text, rb.text) == ("from a", "from b")
    assert (len(a.requests), len(b.requests)) == (1, 1)
    assert again.cached
    assert again.text == "from a"
