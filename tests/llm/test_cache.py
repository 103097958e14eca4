"""ResponseCache: hits and misses through a real client, keys, atomic writes under concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading

import pytest
from tests.llm._server import reply

from medlens.llm import CallableClient, ChatResponse, OpenAIClient, ResponseCache, default_cache_root

USER = [{"role": "user", "content": "Name the sequence."}]


def test_hit_and_miss_through_the_http_client(llm_server, tmp_path):
    llm_server.push(reply("FLAIR"), reply("T1"), reply("T2"))
    c = OpenAIClient(llm_server.url, "tiny-chat")  # cache=True: $MEDLENS_CACHE/llm
    first = c.chat(USER)
    again = c.chat(USER)
    assert (first.text, first.cached) == ("FLAIR", False)
    assert (again.text, again.cached) == ("FLAIR", True)
    assert again.usage == first.usage
    assert again.finish_reason == "stop"
    assert again.raw == first.raw
    assert len(llm_server.requests) == 1
    assert c.chat(USER, seed=1).text == "T1"  # another seed is another request
    assert c.chat(USER, max_tokens=5).text == "T2"
    assert len(llm_server.requests) == 3
    # a new client (a new process, a rerun) shares the cache; another model does not
    assert OpenAIClient(llm_server.url, "tiny-chat").chat(USER).cached
    assert not OpenAIClient(llm_server.url, "other-model").chat(USER).cached
    files = list((tmp_path / "medlens-cache" / "llm").rglob("*.json"))
    assert len(files) == 4
    assert default_cache_root() == tmp_path / "medlens-cache" / "llm"


def test_cache_false_writes_nothing(llm_server, tmp_path):
    c = OpenAIClient(llm_server.url, "m", cache=False)
    c.chat(USER)
    c.chat(USER)
    assert len(llm_server.requests) == 2
    assert not (tmp_path / "medlens-cache").exists()


def test_entries_hold_the_response_and_parameters_but_not_the_prompt(tmp_path):
    cache = ResponseCache(tmp_path / "c")
    client = CallableClient(lambda m, **p: "the answer", model="rules", cache=cache)
    client.chat([{"role": "user", "content": "SECRET-PATIENT-TEXT"}], seed=3)
    (path,) = (tmp_path / "c").rglob("*.json")
    entry = json.loads(path.read_text())
    assert entry["response"]["text"] == "the answer"
    assert entry["request"] == {
        "kind": "callable",
        "model": "rules",
        "params": {"temperature": 0.0, "seed": 3, "max_tokens": None, "response_format": None},
    }
    assert "SECRET-PATIENT-TEXT" not in path.read_text()
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o700  # only the owner can read cached responses
    assert path.name == f"{entry['key']}.json"
    assert path.parent.name == entry["key"][:2]


def test_unreadable_entries_are_misses_and_get_rewritten(tmp_path, caplog):
    cache = ResponseCache(tmp_path)
    calls = []
    client = CallableClient(lambda m, **p: calls.append(1) or "fresh", model="m", cache=cache)
    client.chat(USER)
    (path,) = tmp_path.rglob("*.json")
    for broken in ('{"key": "trunc', '{"key": "0000", "response": {"text": "x"}}', "[]"):
        path.write_text(broken)
        r = client.chat(USER)
        assert (r.text, r.cached) == ("fresh", False)
        assert "ignoring unreadable LLM cache entry" in caplog.text
        assert client.chat(USER).cached  # rewritten
    assert len(calls) == 4


def test_cache_api(tmp_path):
    cache = ResponseCache(tmp_path)
    key = "0f" * 32
    assert cache.get(key) is None
    assert key not in cache
    cache.put(key, ChatResponse(text="a", model="m", usage={"total_tokens": 3}, finish_reason="length"))
    hit = cache.get(key)
    assert key in cache
    assert hit.cached
    assert hit.usage == {"total_tokens": 3}
    assert hit.finish_reason == "length"
    assert cache.clear() == 1
    assert cache.get(key) is None
    with pytest.raises(ValueError, match="64-character lowercase SHA-256"):
        cache.get("../../etc/passwd")
    with pytest.raises(TypeError, match="cache must be True, False, a folder path or a ResponseCache"):
        CallableClient(lambda m, **p: "", cache=3)


def _hammer(root: str, key: str, worker: int, n: int) -> None:
    cache = ResponseCache(root)
    for i in range(n):
        # entries of very different sizes make a torn write easy to detect
        cache.put(
            key, ChatResponse(text=f"w{worker}-{i}-" + "x" * (1 + (i * 7919 + worker * 104729) % 20000), model="m")
        )


def test_concurrent_writers_never_expose_a_partial_entry(tmp_path):
    key = "ab" * 32
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), key, w, 60)) for w in range(3)]
    stop = threading.Event()
    seen, bad = [], []

    def writer_thread():
        _hammer(str(tmp_path), key, 9, 60)

    def reader():
        cache = ResponseCache(tmp_path)
        while not stop.is_set():
            r = cache.get(key)
            if r is not None:
                seen.append(r.text)
                head, _, tail = r.text.rpartition("-")
                if not head.startswith("w") or set(tail) != {"x"}:
                    bad.append(r.text[:40])

    for p in procs:  # fork before this process starts threads
        p.start()
    t_read = threading.Thread(target=reader)
    t_write = threading.Thread(target=writer_thread)
    t_read.start()
    t_write.start()
    for p in procs:
        p.join(60)
    t_write.join(60)
    stop.set()
    t_read.join(10)
    assert all(p.exitcode == 0 for p in procs)
    assert not bad
    assert seen  # the reader did see entries while they were being replaced
    assert ResponseCache(tmp_path).get(key) is not None
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".json")]
    assert leftovers == []  # no temporary files left behind
    assert not any(p.name.startswith(".") for p in tmp_path.rglob("*"))
    assert os.listdir(tmp_path / key[:2]) == [f"{key}.json"]
