"""Privacy: loopback-only endpoints unless allowed, the API key never leaks, prompts only at DEBUG."""

from __future__ import annotations

import logging
import socket

import pytest
from tests.llm._server import error, free_port, reply

from medlens.llm import (
    LLMConnectionError,
    LLMHTTPError,
    LLMResponseError,
    LLMTimeoutError,
    OpenAIClient,
    RecordingClient,
    RemoteEndpointError,
    is_loopback_host,
    parse_endpoint,
)

SECRET = "sk-medlens-test-9f8e7d6c5b4a3210ZZ"
PATIENT = "PATIENT-7781 presents with a ring-enhancing lesion"
USER = [{"role": "user", "content": PATIENT}]


# --------------------------------------------------------------------------------------------- loopback rule
@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080/v1",
        "http://LOCALHOST:8080",
        "http://localhost.:8080",
        "http://127.0.0.1:11434/v1",
        "http://127.255.0.9",
        "https://127.0.0.1/v1",
        "http://[::1]:8000/v1",
        "http://[::ffff:127.0.0.1]:8000/v1",
    ],
)
def test_loopback_endpoints_are_allowed(url):
    assert parse_endpoint(url).loopback


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/v1",
        "https://api.openai.com/v1",
        "http://10.0.0.5:8000/v1",
        "http://192.168.1.20:11434",
        "http://0.0.0.0:8080",  # the wildcard address is not a destination we trust
        "http://127.1:8080",  # shorthand literals are not parsed as loopback: refused
        "http://2130706433:8080",
        "http://localhost.example.com/v1",
        "http://127.0.0.1.nip.io/v1",
        "http://[::ffff:8.8.8.8]/v1",
        "http://[fe80::1]/v1",
        "http://my-gpu-box:8000/v1",
    ],
)
def test_remote_endpoints_are_refused_without_traffic(url, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network traffic attempted")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(RemoteEndpointError) as ei:
        OpenAIClient(url, "m")
    msg = str(ei.value)
    assert "\n" not in msg
    assert "--allow-remote" in msg
    assert "not this machine" in msg
    assert isinstance(ei.value, ValueError)  # the CLI reports it in one line with exit code 2
    # with the flag the client is built, still without touching the network (connections are lazy)
    client = OpenAIClient(url, "m", allow_remote=True)
    assert not client.endpoint.loopback


def test_is_loopback_host_edge_cases():
    assert is_loopback_host("::1")
    assert is_loopback_host("0:0:0:0:0:0:0:1")
    assert not is_loopback_host("")
    assert not is_loopback_host("::")
    assert not is_loopback_host("localhost6")


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ftp://127.0.0.1/v1", "must be an http"),
        ("127.0.0.1:8080", "must be an http"),
        ("", "must be an http"),
        ("http://user:pw@127.0.0.1:8080/v1", r"must not contain credentials .*\$MEDLENS_LLM_API_KEY"),
        ("http://127.0.0.1:99999/v1", "not a valid URL"),
    ],
)
def test_malformed_base_urls(url, match):
    with pytest.raises(ValueError, match=match):
        parse_endpoint(url)


def test_proxy_variables_are_ignored_for_loopback(llm_server, monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(var, "http://10.255.255.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = OpenAIClient(llm_server.url, "m", cache=False, max_retries=0, timeout=5)
    assert client.chat(USER).text.startswith("echo:")  # reached 127.0.0.1 directly, not the "proxy"


# --------------------------------------------------------------------------------------------- API key
def test_key_precedence_and_bearer_header(llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    OpenAIClient(llm_server.url, "m", cache=False).chat(USER)
    assert llm_server.requests[-1]["headers"]["Authorization"] == "Bearer sk-openai"
    monkeypatch.setenv("MEDLENS_LLM_API_KEY", "sk-medlens")
    c = OpenAIClient(llm_server.url, "m", cache=False)
    c.chat(USER)
    assert llm_server.requests[-1]["headers"]["Authorization"] == "Bearer sk-medlens"
    assert c.api_key_source == "MEDLENS_LLM_API_KEY"
    monkeypatch.setenv("MY_SERVER_KEY", "sk-custom")
    OpenAIClient(llm_server.url, "m", cache=False, api_key_env="MY_SERVER_KEY").chat(USER)
    assert llm_server.requests[-1]["headers"]["Authorization"] == "Bearer sk-custom"
    OpenAIClient(llm_server.url, "m", cache=False, api_key_env=None).chat(USER)
    assert "Authorization" not in llm_server.requests[-1]["headers"]


def test_empty_key_variable_falls_back(llm_server, monkeypatch):
    monkeypatch.setenv("MEDLENS_LLM_API_KEY", "  ")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback")
    OpenAIClient(llm_server.url, "m", cache=False).chat(USER)
    assert llm_server.requests[-1]["headers"]["Authorization"] == "Bearer sk-fallback"


def _all_log_text(records) -> str:
    parts = []
    for rec in records:
        parts += [rec.getMessage(), repr(rec.args), str(rec.exc_info), str(getattr(rec, "exc_text", ""))]
    return "\n".join(parts)


def test_api_key_never_logged_cached_recorded_or_in_errors(llm_server, monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("MEDLENS_LLM_API_KEY", SECRET)
    for name in ("", "httpx", "httpcore", "medlens", "medlens.llm"):
        caplog.set_level(logging.DEBUG, logger=name or None)
    cache_dir = tmp_path / "cache"
    client = OpenAIClient(llm_server.url, "tiny-chat", cache=cache_dir, backoff=0.01, max_retries=1, timeout=0.5)
    recorder = RecordingClient(client, tmp_path / "fixture.jsonl")
    errors: list[BaseException] = []

    def attempt(*actions, seed):
        llm_server.push(*actions)
        try:
            recorder.chat(USER, seed=seed)
        except Exception as exc:  # noqa: BLE001 - collected and inspected below
            errors.append(exc)

    attempt(reply("fine"), seed=1)  # success (cached, recorded)
    attempt(error(500, f"internal error with {SECRET}"), reply("fine"), seed=2)  # retried
    attempt(error(401, f"Incorrect API key provided: {SECRET}"), seed=3)  # a server echoing the key
    attempt({"status": 200, "body": f"oops {SECRET}".encode()}, seed=4)  # malformed body echoing it
    attempt({"status": 200, "json": {"error": f"bad key {SECRET}"}}, seed=5)
    attempt({"delay": 1.0, **reply("late")}, {"delay": 1.0, **reply("late")}, seed=6)  # timeout
    assert [type(e) for e in errors] == [LLMHTTPError, LLMResponseError, LLMResponseError, LLMTimeoutError]
    try:
        OpenAIClient(f"http://127.0.0.1:{free_port()}/v1", "m", cache=False, max_retries=0).chat(USER)
    except LLMConnectionError as exc:
        errors.append(exc)

    # the key was really sent ...
    assert all(r["headers"].get("Authorization") == f"Bearer {SECRET}" for r in llm_server.requests)
    # ... and appears nowhere else
    assert caplog.records, "expected debug logs from medlens and httpx"
    assert SECRET not in caplog.text
    assert SECRET not in _all_log_text(caplog.records)
    assert SECRET[-12:] not in caplog.text
    for exc in errors:
        assert SECRET not in str(exc)
        assert SECRET not in repr(exc)
        assert SECRET not in str(exc.args)
        assert SECRET[-12:] not in str(exc)
        assert exc.__cause__ is None or SECRET not in str(exc.__cause__)
    assert "***" in str(errors[0])  # the echoed key was redacted, the rest of the message kept
    assert SECRET not in repr(client)
    assert SECRET not in str(vars(client))
    for path in [*cache_dir.rglob("*"), tmp_path / "fixture.jsonl"]:
        if path.is_file():
            assert SECRET not in path.read_text(encoding="utf-8")


def test_prompts_and_responses_only_at_debug(llm_server, caplog, tmp_path):
    llm_server.push(error(503, "busy"), reply(f"answer about {PATIENT}"))
    with caplog.at_level(logging.INFO):
        OpenAIClient(llm_server.url, "m", cache=tmp_path / "c", backoff=0.01).chat(USER)
    assert caplog.records  # the endpoint line at INFO, the retry at WARNING
    assert "PATIENT-7781" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="medlens.llm"):
        OpenAIClient(llm_server.url, "m", cache=tmp_path / "c").chat(USER)  # a cache hit
        OpenAIClient(llm_server.url, "m", cache=False).chat(USER, seed=9)
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and "PATIENT-7781" in r.getMessage()]
    assert debug  # visible when asked for
    assert all(r.levelno == logging.DEBUG for r in caplog.records if "PATIENT-7781" in r.getMessage())
