"""OpenAIClient against a scripted server on 127.0.0.1: request shape, retries, timeouts and errors."""

from __future__ import annotations

import logging

import pytest
from tests.llm._server import completion, error, free_port, reply

from medlens.llm import (
    LLMConnectionError,
    LLMHTTPError,
    LLMResponseError,
    LLMTimeoutError,
    OpenAIClient,
)
from medlens.llm._openai import parse_retry_after

USER = [{"role": "user", "content": "Which sequence shows the lesion best?"}]


def client_for(server, **kw) -> OpenAIClient:
    kw.setdefault("cache", False)
    kw.setdefault("backoff", 0.01)
    return OpenAIClient(server.url, "tiny-chat", **kw)


# ------------------------------------------------------------------------------------------------ request shape
def test_request_body_and_response_fields(llm_server):
    llm_server.push(reply("T2 FLAIR", usage={"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}))
    c = client_for(llm_server)
    r = c.chat(USER, seed=7, max_tokens=32, response_format={"type": "json_object"})
    assert (r.text, r.model, r.cached, r.finish_reason) == ("T2 FLAIR", "tiny-chat", False, "stop")
    assert r.usage["total_tokens"] == 13
    assert r.raw["object"] == "chat.completion"
    assert r.latency_s > 0
    req = llm_server.requests[-1]
    assert req["path"] == "/v1/chat/completions"
    assert req["body"] == {
        "model": "tiny-chat",
        "messages": USER,
        "temperature": 0.0,
        "stream": False,
        "seed": 7,
        "max_tokens": 32,
        "response_format": {"type": "json_object"},
    }
    assert "authorization" not in {k.lower() for k in req["headers"]}  # no key in the environment


def test_defaults_send_temperature_zero_and_seed_zero_and_omit_unset(llm_server):
    client_for(llm_server).chat(USER)
    body = llm_server.requests[-1]["body"]
    assert body["temperature"] == 0.0
    assert body["seed"] == 0
    assert "max_tokens" not in body
    assert "response_format" not in body


@pytest.mark.parametrize(
    ("suffix", "expected_path"),
    [
        ("", "/v1/chat/completions"),
        ("/v1/", "/v1/chat/completions"),
        ("/v1/chat/completions", "/v1/chat/completions"),
        ("/api/v1", "/api/v1/chat/completions"),
    ],
)
def test_base_url_forms(llm_server, suffix, expected_path):
    c = OpenAIClient(f"http://127.0.0.1:{llm_server.port}{suffix}", "m", cache=False)
    c.chat(USER)
    assert llm_server.requests[-1]["path"] == expected_path


def test_content_parts_and_null_content(llm_server):
    parts = completion("")
    parts["choices"][0]["message"]["content"] = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    null = completion("")
    null["choices"][0]["message"]["content"] = None
    llm_server.push({"status": 200, "json": parts}, {"status": 200, "json": null})
    c = client_for(llm_server)
    assert c.chat(USER).text == "ab"
    assert c.chat(USER, seed=1).text == ""


def test_repr_and_describe_name_no_secret(llm_server):
    c = client_for(llm_server)
    assert "tiny-chat" in repr(c)
    assert "api_key=none" in repr(c)
    assert c.describe() == {"kind": "openai", "model": "tiny-chat", "base_url": llm_server.url}


# ------------------------------------------------------------------------------------------------ retries
def test_500_then_success_retries_and_warns_without_content(llm_server, caplog):
    llm_server.push(error(500, "model crashed"), reply("ok"))
    with caplog.at_level(logging.WARNING, logger="medlens.llm"):
        r = client_for(llm_server, max_retries=2).chat(USER)
    assert r.text == "ok"
    assert len(llm_server.requests) == 2
    warnings = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "HTTP 500" in warnings[0]
    assert "attempt 1/3" in warnings[0]
    assert "lesion" not in caplog.text  # prompts never at WARNING


def test_5xx_exhausts_retries_with_clear_error(llm_server):
    llm_server.push(*[error(503, "loading model")] * 3)
    with pytest.raises(LLMHTTPError) as ei:
        client_for(llm_server, max_retries=2).chat(USER)
    e = ei.value
    assert e.status == 503
    assert e.server_message == "loading model"
    assert "HTTP 503" in str(e)
    assert "loading model" in str(e)
    assert "Gave up after 3 attempt(s)" in str(e)
    assert len(llm_server.requests) == 3


@pytest.fixture
def sleeps(monkeypatch):
    """The client's back-off waits, recorded instead of slept (no wall-clock assertions)."""
    import time
    import types

    import medlens.llm._openai as client_module

    waits: list[float] = []
    clock = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if not n.startswith("_")})
    clock.sleep = waits.append  # only the client's module sees this clock; the test server keeps the real one
    monkeypatch.setattr(client_module, "time", clock)
    return waits


def test_429_honours_retry_after(llm_server, sleeps):
    llm_server.push(error(429, "slow down", headers={"Retry-After": "1"}), reply("ok"))
    r = client_for(llm_server, max_retries=1).chat(USER)
    assert r.text == "ok"
    assert sleeps == [1.0]  # waited what the server asked, not the 0.01 s backoff
    assert len(llm_server.requests) == 2


def test_429_retry_after_beyond_max_backoff_fails_at_once(llm_server, sleeps):
    llm_server.push(error(429, "quota exceeded", headers={"Retry-After": "3600"}))
    with pytest.raises(LLMHTTPError, match=r"asks to wait 3600 s") as ei:
        client_for(llm_server, max_retries=3, max_backoff=5).chat(USER)
    assert sleeps == []  # no wait at all
    assert ei.value.status == 429
    assert len(llm_server.requests) == 1


def test_retry_after_parsing():
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=4.0) == pytest.approx(6.0)
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=20.0) == 0.0


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (401, r"no API key was sent: set \$MEDLENS_LLM_API_KEY"),
        (403, r"no API key was sent"),
        (400, r"rejected the request"),
        (404, r"check the base URL .* model name 'tiny-chat'"),
        (422, r"rejected the request"),
    ],
)
def test_other_4xx_are_not_retried(llm_server, status, hint):
    llm_server.push(error(status, "bad things"))
    with pytest.raises(LLMHTTPError, match=hint) as ei:
        client_for(llm_server, max_retries=3).chat(USER)
    assert ei.value.status == status
    assert f"HTTP {status}" in str(ei.value)
    assert "bad things" in str(ei.value)
    assert len(llm_server.requests) == 1


def test_401_names_the_key_variable_when_a_key_was_sent(llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-the-right-one")
    llm_server.push(error(401, "Invalid API key"))
    with pytest.raises(
        LLMHTTPError, match=r"HTTP 401 Unauthorized: Invalid API key; check the API key in \$OPENAI_API_KEY"
    ):
        client_for(llm_server).chat(USER)


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"message": "from openai"}},  # OpenAI, llama.cpp
        {"error": "from ollama"},  # Ollama
        {"object": "error", "message": "from vllm"},  # vLLM
        {"detail": "from fastapi"},
    ],
)
def test_server_error_message_shapes(llm_server, body):
    llm_server.push({"status": 400, "json": body})
    with pytest.raises(LLMHTTPError, match=r"from (openai|ollama|vllm|fastapi)"):
        client_for(llm_server).chat(USER)


def test_redirects_are_not_followed(llm_server):
    llm_server.push({"status": 307, "body": b"", "headers": {"Location": "http://example.com/v1/chat/completions"}})
    with pytest.raises(LLMHTTPError, match="does not follow redirects"):
        client_for(llm_server).chat(USER)
    assert len(llm_server.requests) == 1


# ------------------------------------------------------------------------------------------------ timeouts
def test_timeout_raises_after_retries(llm_server):
    llm_server.push({"delay": 1.5, **reply("late")}, {"delay": 1.5, **reply("late")})
    with pytest.raises(LLMTimeoutError, match=r"did not answer within 0.3 s \(2 attempt\(s\)\)"):
        client_for(llm_server, timeout=0.3, max_retries=1).chat(USER)
    assert len(llm_server.requests) == 2


def test_timeout_then_success(llm_server):
    llm_server.push({"delay": 1.5, **reply("late")}, reply("on time"))
    assert client_for(llm_server, timeout=0.3, max_retries=1).chat(USER).text == "on time"


def test_dropped_connection_is_retried(llm_server):
    llm_server.push({"drop": True}, reply("second try"))
    assert client_for(llm_server, max_retries=1).chat(USER).text == "second try"
    assert len(llm_server.requests) == 2


def test_connection_refused_names_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(
        LLMConnectionError,
        match=r"could not reach .*/v1/chat/completions .*after 2 attempt\(s\); is the server running",
    ):
        OpenAIClient(url, "m", cache=False, max_retries=1, backoff=0.01).chat(USER)


# ------------------------------------------------------------------------------------------------ bad bodies
def test_malformed_json_body_is_a_clear_error_without_retry(llm_server):
    llm_server.push({"status": 200, "body": b"<html>proxy login</html>", "content_type": "text/html"})
    with pytest.raises(
        LLMResponseError,
        match=r"HTTP 200 but the body is not JSON \(content-type text/html, 24 bytes, starting '<html>proxy",
    ):
        client_for(llm_server, max_retries=3).chat(USER)
    assert len(llm_server.requests) == 1


def test_truncated_json_body(llm_server):
    llm_server.push(
        {"status": 200, "body": b'{"choices": [{"message": {"content": "hal', "content_type": "application/json"}
    )
    with pytest.raises(LLMResponseError, match="not JSON"):
        client_for(llm_server).chat(USER)


def test_json_without_choices(llm_server):
    llm_server.push({"status": 200, "json": {"error": "model 'x' not found"}})
    with pytest.raises(
        LLMResponseError, match=r"without a chat completion .*got keys \['error'\].*model 'x' not found"
    ):
        client_for(llm_server).chat(USER)


# ------------------------------------------------------------------------------------------------ parameters
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"temperature": 3}, ValueError, r"temperature must be in \[0, 2\]"),
        ({"temperature": "0"}, TypeError, "temperature must be a finite number"),
        ({"seed": 1.5}, TypeError, "seed must be an int or None"),
        ({"max_tokens": 0}, ValueError, "max_tokens must be a positive int"),
        ({"response_format": "json"}, TypeError, "response_format must be None"),
    ],
)
def test_bad_parameters(llm_server, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        client_for(llm_server).chat(USER, **kwargs)
    assert llm_server.requests == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"max_retries": -1}, "max_retries must be an int >= 0"),
        ({"backoff": -1.0}, "backoff and max_backoff must be >= 0"),
    ],
)
def test_bad_client_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OpenAIClient("http://127.0.0.1:9/v1", "m", **kwargs)


def test_bad_messages_are_refused_before_any_request(llm_server):
    c = client_for(llm_server)
    with pytest.raises(TypeError, match="messages must be a non-empty list"):
        c.chat("hello")
    with pytest.raises(ValueError, match=r"messages\[0\]\['role'\] must be one of"):
        c.chat([{"role": "patient", "content": "x"}])
    with pytest.raises(TypeError, match=r"messages\[0\]\['content'\] must be a string or a list"):
        c.chat([{"role": "user", "content": 3}])
    assert llm_server.requests == []


# ------------------------------------------------------------------------------------------------ CLI
class _RaisingCommand:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def main(self, **kwargs):
        raise self.exc


def _refused() -> BaseException:
    try:
        OpenAIClient("http://example.org/v1", "m")
    except ValueError as exc:
        return exc
    raise AssertionError("a remote endpoint was not refused")


@pytest.mark.parametrize(
    ("make_exc", "code"),
    [
        (lambda: LLMHTTPError("the LLM endpoint X answered HTTP 401: bad key;\n  check it", status=401), 1),
        (lambda: LLMTimeoutError("the LLM endpoint X did not answer within 5 s"), 1),
        (_refused, 2),  # bad input: a remote endpoint without --allow-remote
    ],
    ids=["http-error", "timeout", "remote-refused"],
)
def test_cli_reports_llm_failures_in_one_line(monkeypatch, capsys, make_exc, code):
    import medlens.cli as cli

    monkeypatch.setattr(cli.typer.main, "get_command", lambda app: _RaisingCommand(make_exc()))
    assert cli.main([]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("medlens: error: ")
    assert "internal error" not in err


def test_rate_limit_spaces_http_attempts_and_spares_cache_hits(llm_server, monkeypatch):
    from medlens._validation import InputError
    from medlens.executors import RateLimiter, fan_out

    waits = []

    class Recording(RateLimiter):
        def wait(self):
            waits.append(self.reserve())  # the slot taken; no sleeping in the test

    limiter = Recording(10.0)
    llm_server.push(error(503, "busy"), reply("a"), reply("b"), reply("c"))
    with OpenAIClient(llm_server.url, "tiny-chat", backoff=0, rate_limit=limiter) as client:
        assert client.rate_limiter is limiter
        assert client.chat([{"role": "user", "content": "one"}]).text == "a"  # a retry is an attempt: two slots
        assert len(waits) == 2
        assert client.chat([{"role": "user", "content": "one"}]).cached  # from the cache: no slot
        assert len(waits) == 2
        list(fan_out(["two", "three"], lambda t: client.chat([{"role": "user", "content": t}]), workers=2))
    assert len(waits) == 4
    assert len(llm_server.requests) == 4
    spaced = OpenAIClient(llm_server.url, "tiny-chat", rate_limit=4)
    assert spaced.rate_limiter.interval == 0.25
    with pytest.raises(InputError, match="--rate-limit must be a positive number"):
        OpenAIClient(llm_server.url, "tiny-chat", rate_limit=0)
