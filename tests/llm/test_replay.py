"""Record real responses through the HTTP client, then replay them with no server."""

from __future__ import annotations

import json

import pytest
from tests.llm._server import reply, tiny_png

from medlens.llm import (
    CallableClient,
    OpenAIClient,
    RecordingClient,
    ReplayClient,
    ReplayMissError,
    chat_json,
)

Q1 = [
    {"role": "system", "content": "You are a neuroradiologist."},
    {"role": "user", "content": "Case 1: cortical tubers."},
]
Q2 = [
    {"role": "system", "content": "You are a neuroradiologist."},
    {"role": "user", "content": "Case 2: hemimegalencephaly."},
]


def test_record_then_replay_without_a_server(llm_server, tmp_path):
    fixture = tmp_path / "fixtures" / "radar.jsonl"
    llm_server.push(reply("tuberous sclerosis"), reply("hemimegalencephaly"), reply('{"dx": "TSC"}'))
    rec = RecordingClient(OpenAIClient(llm_server.url, "tiny-chat", cache=False), fixture)
    live = [rec.chat(Q1).text, rec.chat(Q2, seed=3, max_tokens=20).text, rec.chat(Q1, images=[tiny_png()]).text]
    assert live == ["tuberous sclerosis", "hemimegalencephaly", '{"dx": "TSC"}']
    assert (rec.kind, rec.model) == ("openai", "tiny-chat")
    llm_server.close()  # from here on there is nothing to talk to
    n_requests = len(llm_server.requests)

    replay = ReplayClient(fixture)
    assert (replay.kind, replay.model, len(replay)) == ("openai", "tiny-chat", 3)
    r1 = replay.chat(Q1)
    assert (r1.text, r1.cached, r1.model, r1.finish_reason) == ("tuberous sclerosis", True, "tiny-chat", "stop")
    assert r1.usage == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert replay.chat(Q2, seed=3, max_tokens=20).text == "hemimegalencephaly"
    png_path = tmp_path / "slice.png"
    png_path.write_bytes(tiny_png())
    assert replay.chat(Q1, images=[png_path]).text == '{"dx": "TSC"}'  # the same image, passed as a path
    assert len(llm_server.requests) == n_requests
    assert "base64" not in fixture.read_text()  # images are stored as hashes
    assert replay.describe()["kind"] == "replay"


def test_missing_key_names_the_closest_prompt(tmp_path):
    fixture = tmp_path / "f.jsonl"
    rec = RecordingClient(CallableClient(lambda m, **p: "ok", model="rules"), fixture)
    rec.chat(Q1)
    rec.chat(Q2)
    replay = ReplayClient(fixture)
    changed = [Q2[0], {"role": "user", "content": "Case 2: hemimegalencephaly with seizures."}]
    with pytest.raises(ReplayMissError) as ei:
        replay.chat(changed)
    msg = str(ei.value)
    assert "no recorded response in" in msg
    assert "model 'rules', 2 recorded responses" in msg
    assert "closest recorded prompt (similarity 0." in msg
    assert "hemimegalencephaly.'" in msg
    assert "hemimegalencephaly with seizures" in msg
    assert "Re-record the fixture with RecordingClient" in msg
    assert isinstance(ei.value, LookupError)


def test_missing_key_with_the_same_messages_names_the_parameter(tmp_path):
    fixture = tmp_path / "f.jsonl"
    RecordingClient(CallableClient(lambda m, **p: "ok"), fixture).chat(Q1, seed=0)
    with pytest.raises(
        ReplayMissError, match=r"same messages were recorded with other parameters \(seed recorded 0, requested 1\)"
    ):
        ReplayClient(fixture).chat(Q1, seed=1)


def test_last_recording_wins_and_models_are_separated(tmp_path):
    fixture = tmp_path / "f.jsonl"
    answers = iter(["old", "new"])
    rec_a = RecordingClient(CallableClient(lambda m, **p: next(answers), model="a"), fixture)
    rec_a.chat(Q1)
    rec_a.chat(Q1)
    RecordingClient(CallableClient(lambda m, **p: "from b", model="b"), fixture).chat(Q1)
    assert len(fixture.read_text().splitlines()) == 3
    with pytest.raises(ValueError, match=r"several clients .*pass model=\.\.\."):
        ReplayClient(fixture)
    assert ReplayClient(fixture, model="a").chat(Q1).text == "new"
    assert ReplayClient(fixture, model="b").chat(Q1).text == "from b"
    with pytest.raises(ValueError, match=r"holds no responses of model 'c'; it holds \['a', 'b'\]"):
        ReplayClient(fixture, model="c")


def test_chat_json_repair_conversation_replays(tmp_path):
    fixture = tmp_path / "f.jsonl"
    replies = iter(["The answer is glioma.", '{"dx": "glioma"}'])
    schema = {"type": "object", "required": ["dx"]}
    live = chat_json(RecordingClient(CallableClient(lambda m, **p: next(replies)), fixture), Q1, schema)
    replayed = chat_json(ReplayClient(fixture), Q1, schema)
    assert live.value == replayed.value == {"dx": "glioma"}
    assert live.repaired
    assert replayed.repaired
    assert replayed.first_error == live.first_error


def test_fixture_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="record one by wrapping a real client in RecordingClient"):
        ReplayClient(tmp_path / "none.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"key": "x", "model": "m"}) + "\n")
    with pytest.raises(ValueError, match=r"record 1 lacks field\(s\) \['kind', 'messages', 'params', 'response'\]"):
        ReplayClient(bad)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    with pytest.raises(ValueError, match="line 1 is not valid JSON"):
        ReplayClient(broken)
    with pytest.raises(TypeError, match="client must be a ChatClient"):
        RecordingClient(object(), tmp_path / "x.jsonl")


def test_describe_for_provenance(tmp_path):
    client = CallableClient(lambda m, **p: "x", model="rules")
    assert client.describe() == {"kind": "callable", "model": "rules"}
    rec = RecordingClient(client, tmp_path / "f.jsonl")
    assert rec.describe() == {"kind": "callable", "model": "rules", "recording_to": str(tmp_path / "f.jsonl")}
