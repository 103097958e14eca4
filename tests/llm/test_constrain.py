"""Constrained decoding (response_format) in the local transformers client, on a tiny random model.

A randomly initialised model writes noise; under a JSON Schema's grammar every reply that ends must still parse
and validate, and a closed schema (enums only) must end within a few tokens whatever the weights are.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("xgrammar")

import torch  # noqa: E402

from medlens._validation import InputError  # noqa: E402
from medlens.agents import AgentConfig  # noqa: E402
from medlens.llm import TransformersClient, chat_json, validate_json  # noqa: E402
from medlens.llm._constrain import grammar_of  # noqa: E402

CORPUS = [
    '{"answer": "yes", "dx": ["glioma", "meningioma"], "score": 0.5, "ok": true}',
    "The patient has a ring enhancing lesion in the left frontal lobe.",
    '[{"id": "a1"}, {"id": "b2"}] null false 12345',
]
CLOSED = {
    "type": "object",
    "required": ["answer", "dx"],
    "properties": {
        "answer": {"enum": ["yes", "no"]},
        "dx": {"type": "array", "items": {"enum": ["glioma", "meningioma", "abscess"]}, "maxItems": 2},
    },
    "additionalProperties": False,
}
OPEN = {
    "type": "object",
    "required": ["hypotheses"],
    "properties": {"hypotheses": {"type": "array", "items": {"type": "string"}}},
}
MSGS = [{"role": "user", "content": "Is there a lesion? Answer in JSON."}]


def _save_byte_level_lm(folder: Path, seed: int) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    eos = fast.convert_tokens_to_ids("<|endoftext|>")
    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=len(fast), n_positions=512, n_embd=32, n_layer=2, n_head=2, bos_token_id=eos, eos_token_id=eos
    )
    folder.mkdir(parents=True)
    GPT2LMHeadModel(cfg).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def byte_lm(tmp_path_factory) -> Path:
    return _save_byte_level_lm(tmp_path_factory.mktemp("lm") / "tiny-bytes", seed=0)


def _fmt(schema):
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}


def test_grammar_of_reads_the_openai_forms_and_names_the_fix():
    assert grammar_of(None) is None
    assert grammar_of({"type": "text"}) is None
    assert grammar_of({"type": "json_object"}) == ("json", "")
    kind, schema = grammar_of(_fmt({"type": "object", "required": ["a"]}))
    assert kind == "schema"
    assert json.loads(schema) == {"type": "object", "required": ["a"]}
    with pytest.raises(InputError, match="must be one of text, json_object, json_schema"):
        grammar_of({"type": "regex"})
    with pytest.raises(InputError, match='needs "json_schema": {"schema"'):
        grammar_of({"type": "json_schema", "json_schema": {"name": "x"}})


def test_random_model_under_a_closed_schema_always_ends_with_a_valid_answer(byte_lm):
    client = TransformersClient(byte_lm, cache=False)
    free = client.chat(MSGS, max_tokens=40)
    with pytest.raises(json.JSONDecodeError, match="Expecting|Extra data"):
        json.loads(free.text)  # the random model writes noise when unconstrained
    for seed in range(4):
        r = client.chat(MSGS, temperature=1.0, seed=seed, max_tokens=60, response_format=_fmt(CLOSED))
        assert r.finish_reason == "stop", r.text
        value = json.loads(r.text)
        assert validate_json(value, CLOSED) == [], r.text
        assert " " not in r.text  # compact: no whitespace between tokens


def test_open_schema_and_json_object_replies_that_end_are_valid(byte_lm):
    client = TransformersClient(byte_lm, cache=False)
    ended = 0
    for seed in range(6):
        for fmt, schema in ((_fmt(OPEN), OPEN), ({"type": "json_object"}, {"type": "object"})):
            r = client.chat(MSGS, temperature=1.0, seed=seed, max_tokens=80, response_format=fmt)
            if r.finish_reason == "stop":  # a cut reply (max_tokens) may be unfinished JSON: only ended ones count
                ended += 1
                value = json.loads(r.text)
                assert isinstance(value, dict), r.text
                assert validate_json(value, schema) == [], r.text
            else:
                assert r.usage["completion_tokens"] == 80
    assert ended > 0


def test_greedy_constrained_decoding_is_deterministic_and_cached_apart_from_free_text(byte_lm, tmp_path):
    client = TransformersClient(byte_lm, cache=tmp_path / "cache")
    a = client.chat(MSGS, max_tokens=60, response_format=_fmt(CLOSED))
    b = TransformersClient(byte_lm, cache=False).chat(MSGS, max_tokens=60, response_format=_fmt(CLOSED))
    assert a.text == b.text
    assert not a.cached
    assert client.chat(MSGS, max_tokens=60, response_format=_fmt(CLOSED)).cached
    assert not client.chat(MSGS, max_tokens=60).cached  # free text is another request


def test_chat_json_needs_no_repair_under_the_schema(byte_lm):
    client = TransformersClient(byte_lm, cache=False)
    ans = chat_json(client, MSGS, CLOSED, max_tokens=60, response_format=_fmt(CLOSED))
    assert ans.ok
    assert not ans.repaired
    assert len(ans.responses) == 1


def test_schema_xgrammar_cannot_compile_is_one_input_error(byte_lm):
    client = TransformersClient(byte_lm, cache=False)
    with pytest.raises(InputError, match="xgrammar cannot compile this JSON Schema"):
        client.chat(
            MSGS, max_tokens=5, response_format=_fmt({"type": "object", "properties": {"a": {"$ref": "#/nope"}}})
        )


def test_decoding_schema_admits_only_answers_the_step_schema_admits_and_cites_shown_passages():
    from medlens.agents._prompts import EVIDENCE_SCHEMA, FINAL_SCHEMA, INITIAL_SCHEMA, decoding_schema

    ids = ["d2", "d1"]
    ev = decoding_schema(EVIDENCE_SCHEMA, max_items=3, max_chars=20, ids=ids)
    a = ev["properties"]["assessments"]
    assert a["maxItems"] == 3
    assert a["items"]["properties"]["supporting"]["items"] == {"enum": ["d1", "d2"]}
    assert a["items"]["properties"]["note"]["maxLength"] == 20
    fin = decoding_schema(FINAL_SCHEMA, max_items=5, ids=ids)
    assert fin["properties"]["citations"]["additionalProperties"]["items"] == {"enum": ["d1", "d2"]}
    assert fin["properties"]["citations"]["maxProperties"] == 5
    assert "maxLength" not in fin["properties"]["confidence"]  # only strings are bounded
    assert decoding_schema(FINAL_SCHEMA, max_items=5, ids=[])["properties"]["differentials"]["items"] == {
        "type": "string",
        "maxLength": 120,
    }
    assert INITIAL_SCHEMA["properties"]["hypotheses"].get("maxItems") is None  # the prompt's schema is untouched
    good = {"assessments": [{"dx": "x", "supporting": ["d1"], "note": "short"}]}
    bad = {"assessments": [{"dx": "x", "supporting": ["d9"]}]}
    assert validate_json(good, ev) == []
    assert validate_json(good, EVIDENCE_SCHEMA) == []
    assert validate_json(bad, ev) != []


def test_agent_config_sends_each_steps_schema_only_when_constrained():
    seen = []

    class Recorder:
        kind, model = "scripted", "recorder"

        def chat(self, messages, **params):
            seen.append(params["response_format"])
            raise RuntimeError("stop here")

    from medlens.agents._agent import RadarAgent

    for constrained in (False, True):
        agent = RadarAgent(None, Recorder(), AgentConfig(retrieval=False, leakage=None, constrained=constrained))
        with pytest.raises(RuntimeError, match="stop here"):
            agent.diagnose({"id": "c", "clinical_history": "ataxia", "caption": "molar tooth sign"})
    assert seen[0] is None
    assert seen[1]["type"] == "json_schema"
    sent = seen[1]["json_schema"]["schema"]
    assert sent["required"] == ["hypotheses"]
    assert sent["properties"]["hypotheses"]["maxItems"] == AgentConfig().n_hypotheses  # bounded for the budget
    assert "constrained" not in AgentConfig().to_dict()  # the unconstrained config hash is unchanged
    assert AgentConfig(constrained=True).to_dict()["constrained"] is True
    with pytest.raises(InputError, match="constrained must be True or False"):
        AgentConfig(constrained="yes").check()
