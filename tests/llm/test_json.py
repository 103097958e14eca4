"""JSON answers: tolerant extraction, the schema subset, and chat_json's single repair retry."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.llm._server import error, reply, tiny_png

from medlens.llm import (
    CallableClient,
    ChatResponse,
    JSONAnswerError,
    LLMHTTPError,
    OpenAIClient,
    chat_json,
    check_schema,
    extract_json,
    iter_json_candidates,
    parse_json_answer,
    validate_json,
)

DX_SCHEMA = {
    "type": "object",
    "required": ["primary", "differentials"],
    "properties": {
        "primary": {"type": "string", "minLength": 1},
        "differentials": {"type": "array", "items": {"type": "string"}, "minItems": 4, "maxItems": 4},
        "confidence": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
    },
}
GOOD = {"primary": "glioblastoma", "differentials": ["metastasis", "abscess", "lymphoma", "tumefactive MS"]}


# ---------------------------------------------------------------------------------------------- extraction
@pytest.mark.parametrize(
    ("text", "expected", "fixes"),
    [
        ('{"a": 1}', {"a": 1}, []),
        ("  [1, 2]\n", [1, 2], []),
        ('```json\n{"a": 1}\n```', {"a": 1}, ["code_fence"]),
        ('Here you go:\n```\n{"a": [1, 2]}\n```\nHope that helps!', {"a": [1, 2]}, ["code_fence"]),
        ('The answer is {"a": {"b": "}"}} as requested.', {"a": {"b": "}"}}, ["extracted"]),
        ('{"a": 1,}', {"a": 1}, ["trailing_comma"]),
        ('{"a": [1, 2, ], "b": {"c": 3 ,} , }', {"a": [1, 2], "b": {"c": 3}}, ["trailing_comma"]),
        ("{'a': 'it is \"quoted\"', 'b': 'x'}", {"a": 'it is "quoted"', "b": "x"}, ["single_quotes"]),
        (
            "{'ok': True, 'none': None, 'no': False}",
            {"ok": True, "none": None, "no": False},
            ["single_quotes", "python_literals"],
        ),
        ('{primary: "glioma", "n": 2}', {"primary": "glioma", "n": 2}, ["unquoted_keys"]),
        ('{\n  "a": 1, // the answer\n  /* note */ "b": 2\n}', {"a": 1, "b": 2}, ["comments"]),
        ('<think>Maybe {"a": 0}? No.</think>\n{"a": 1}', {"a": 1}, ["think_block"]),
        ('reasoning without an opening tag</think>{"a": 2}', {"a": 2}, ["think_block"]),
        ("Result: {'': '<THINK>'}", {"": "<THINK>"}, ["single_quotes"]),  # tags inside strings are data
        ('{"note": "a </think> tag"}', {"note": "a </think> tag"}, []),
        ('<think>hmm</think>{"note": "<think>x</think>"}', {"note": "<think>x</think>"}, ["think_block"]),
        (
            '{"text": "apostrophe\'s fine", "x": "{not a brace}"}',
            {"text": "apostrophe's fine", "x": "{not a brace}"},
            [],
        ),
        ('{"broken": } then {"good": 1}', {"good": 1}, ["extracted"]),
        ('Example: {"a": "..."}; answer: {"a": "b"}', {"a": "..."}, ["extracted"]),  # the first one wins
    ],
)
def test_extraction_cases(text, expected, fixes):
    value, applied = next(iter_json_candidates(text))
    assert value == expected
    assert set(fixes) <= set(applied)
    assert extract_json(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the reply is empty"),
        ("<think>still thinking {", "the reply is empty"),
        ("I cannot answer that.", r"no JSON object \(no '\{' in 21 characters"),
        ('{"primary": "glioma", "differentials": ["a", "b"', "no complete JSON object .*cut off"),
        ("{this is not json}", "no JSON object that parses"),
    ],
)
def test_extraction_failures_say_why(text, message):
    with pytest.raises(ValueError, match=message):
        extract_json(text)


def test_schema_picks_the_first_candidate_that_validates():
    text = 'Format: {"primary": "...", "differentials": []}\nAnswer: ' + json.dumps(GOOD)
    value, fixes, err = parse_json_answer(text, DX_SCHEMA)
    assert err is None
    assert value == GOOD
    assert "extracted" in fixes
    value, _, err = parse_json_answer('{"primary": "x", "differentials": ["a"]}', DX_SCHEMA)
    assert value is None
    assert err.startswith("the JSON does not match the schema: $.differentials: expected at least 4")
    # without a schema a bare scalar is not an answer
    assert parse_json_answer("42")[2] is not None


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=5)
prose = st.text(alphabet=st.characters(blacklist_characters="{}[]\"'`<>", blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=100, deadline=None)
@given(obj=json_objects, before=prose, after=prose, fence=st.booleans(), indent=st.sampled_from([None, 2]))
def test_roundtrip_through_prose_and_fences(obj, before, after, fence, indent):
    body = json.dumps(obj, indent=indent, ensure_ascii=False)
    if fence:
        body = f"```json\n{body}\n```"
    assert extract_json(f"{before}{body}{after}") == obj


def _with_trailing_commas(v) -> str:
    if isinstance(v, dict):
        return "{" + "".join(f"{json.dumps(k)}: {_with_trailing_commas(x)}, " for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + "".join(f"{_with_trailing_commas(x)}," for x in v) + "]"
    return json.dumps(v)


@settings(max_examples=100, deadline=None)
@given(obj=json_objects)
def test_trailing_commas_everywhere(obj):
    assert extract_json(_with_trailing_commas(obj)) == obj


printable = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters="\\"), max_size=12)
py_scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | printable
py_objects = st.dictionaries(printable, py_scalars | st.lists(py_scalars, max_size=3), min_size=1, max_size=5)


@settings(max_examples=100, deadline=None)
@given(obj=py_objects)
def test_python_repr_is_understood(obj):
    """Models that answer with Python's dict repr: single quotes (or double when needed), True/None."""
    assert extract_json(f"Result: {obj!r}") == obj


# ---------------------------------------------------------------------------------------------- schema
def test_validate_json_messages():
    assert validate_json(GOOD, DX_SCHEMA) == []
    assert validate_json({**GOOD, "confidence": None}, DX_SCHEMA) == []
    errs = validate_json({"primary": "", "differentials": ["a", 2, "c", "d", "e"], "confidence": 1.5}, DX_SCHEMA)
    assert errs == [
        "$.primary: expected at least 1 characters; got 0",
        "$.differentials: expected at most 4 items; got 5",
        "$.differentials[1]: expected string; got integer 2",
        "$.confidence: expected <= 1; got 1.5",
    ]
    assert validate_json([], DX_SCHEMA) == ["$: expected object; got array []"]
    assert validate_json({}, DX_SCHEMA) == ["$: missing required key(s) ['primary', 'differentials']; got keys []"]


def test_validate_json_keywords():
    assert validate_json(3.0, {"type": "integer"}) == []
    assert validate_json(True, {"type": "integer"}) == ["$: expected integer; got boolean true"]
    assert validate_json(True, {"type": "number"}) != []
    assert validate_json("YES", {"enum": ["YES", "NO"]}) == []
    assert validate_json("maybe", {"enum": ["YES", "NO"]}) == ['$: expected one of ["YES", "NO"]; got "maybe"']
    assert validate_json("x", {"const": "y"}) == ['$: expected "y"; got "x"']
    assert validate_json("HP:0001250", {"type": "string", "pattern": r"^HP:\d{7}$"}) == []
    assert validate_json([1, 1], {"uniqueItems": True}) == ["$: expected unique items; got duplicates"]
    closed = {"type": "object", "properties": {"a": {}}, "additionalProperties": False}
    assert validate_json({"a": 1, "b c": 2}, closed) == ["$[\"b c\"]: unexpected key (allowed: ['a'])"]
    typed = {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}
    assert validate_json({"glioma": ["d1"], "x": [3]}, typed) == ["$.x[0]: expected string; got integer 3"]
    either = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    assert validate_json(["a"], either) == []
    assert validate_json(3, either) != []


def test_validate_json_equality_is_json_schema_equality():
    """Booleans are not the numbers 0 and 1, and 1 equals 1.0 (the hand-written validator got these wrong)."""
    assert validate_json(True, {"const": 1}) == ["$: expected 1; got true"]
    assert validate_json(False, {"enum": [0, 1]}) == ["$: expected one of [0, 1]; got false"]
    assert validate_json(1, {"enum": [True, False]}) == ["$: expected one of [true, false]; got 1"]
    assert validate_json([1, 1.0], {"uniqueItems": True}) == ["$: expected unique items; got duplicates"]
    assert validate_json([0, False], {"uniqueItems": True}) == []
    assert validate_json(1.0, {"const": 1}) == []


def test_validate_json_orders_messages_as_the_answer_reads():
    schema = {
        "type": "object",
        "properties": {"b": {"type": "string"}, "a": {"type": "integer"}},
        "required": ["c"],
        "additionalProperties": False,
    }
    assert validate_json({"a": "x", "z": 1, "b": 2}, schema) == [
        "$: missing required key(s) ['c']; got keys ['a', 'b', 'z']",
        '$.a: expected integer; got string "x"',
        "$.z: unexpected key (allowed: ['a', 'b'])",
        "$.b: expected string; got integer 2",
    ]
    # a value of the wrong type gets one message, not one per keyword applied inside it
    assert validate_json({"a": 1}, {"type": "array", "properties": {"a": {"type": "string"}}}) == [
        '$: expected array; got object {"a": 1}'
    ]


@pytest.mark.parametrize(
    ("schema", "match"),
    [
        ({"type": "object", "minItems": -1}, r"schema\['minItems'\] is not valid JSON Schema"),
        ({"type": "object", "oneOf": []}, r"unsupported JSON-Schema keyword\(s\) \['oneOf'\]"),
        ({"type": "dict"}, "must be one of"),
        ({"properties": {"a": {"format": "date"}}}, r"schema\['properties'\]\['a'\] uses unsupported"),
        ({"pattern": "("}, "not a valid regular expression"),
        ({"required": "a"}, "must be a list of property names"),
    ],
)
def test_check_schema_refuses_what_it_cannot_check(schema, match):
    with pytest.raises(ValueError, match=match):
        check_schema(schema)


# ---------------------------------------------------------------------------------------------- chat_json
class Scripted:
    """A callable backend that returns scripted replies and records each conversation it was sent."""

    def __init__(self, *replies: str, finish_reason: str = "stop") -> None:
        self.replies = list(replies)
        self.seen: list[list[dict]] = []
        self.params: list[dict] = []
        self.finish_reason = finish_reason

    def __call__(self, messages, **params):
        self.seen.append(messages)
        self.params.append(params)
        return ChatResponse(text=self.replies.pop(0), model="scripted", finish_reason=self.finish_reason)


PROMPT = [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "Case: ring-enhancing lesion."}]


def test_valid_first_reply_needs_no_repair():
    fn = Scripted("```json\n" + json.dumps(GOOD) + "\n```")
    ans = chat_json(CallableClient(fn), PROMPT, DX_SCHEMA)
    assert (ans.ok, ans.repaired, ans.value, ans.error, ans.first_error) == (True, False, GOOD, None, None)
    assert ans.fixes == ("code_fence",)
    assert len(ans.responses) == 1
    assert len(fn.seen) == 1


def test_repair_shows_the_model_its_reply_and_the_error():
    bad = '{"primary": "glioblastoma", "differentials": ["metastasis"]}'
    fn = Scripted(bad, json.dumps(GOOD))
    ans = chat_json(CallableClient(fn), PROMPT, DX_SCHEMA, seed=5, temperature=0)
    assert ans.ok
    assert ans.repaired
    assert ans.value == GOOD
    assert ans.first_error.startswith("the JSON does not match the schema: $.differentials: expected at least 4 items")
    repair = fn.seen[1]
    assert repair[:2] == PROMPT
    assert repair[2] == {"role": "assistant", "content": bad}
    assert repair[3]["role"] == "user"
    assert "expected at least 4 items; got 1" in repair[3]["content"]
    assert json.dumps(DX_SCHEMA) in repair[3]["content"]
    assert fn.params[0] == fn.params[1]
    assert fn.params[0]["seed"] == 5
    assert ans.to_dict()["raw"] == [bad, json.dumps(GOOD)]


def test_repair_mentions_truncation():
    fn = Scripted('{"primary": "gli', json.dumps(GOOD), finish_reason="length")
    chat_json(CallableClient(fn), PROMPT, DX_SCHEMA)
    assert "cut off at the token limit" in fn.seen[1][-1]["content"]


def test_failed_repair_is_reported_not_raised():
    fn = Scripted("I think it is a glioma.", "Still prose, sorry.")
    ans = chat_json(CallableClient(fn), PROMPT, DX_SCHEMA)
    assert (ans.ok, ans.repaired, ans.value) == (False, True, None)
    assert "no JSON object" in ans.error
    assert "no JSON object" in ans.first_error
    assert ans.text == "Still prose, sorry."
    assert len(ans.responses) == 2


def test_strict_raises_and_repair_false_makes_one_call():
    with pytest.raises(JSONAnswerError, match=r"no usable JSON answer from 'callable' even after one repair retry"):
        chat_json(CallableClient(Scripted("nope", "nope")), PROMPT, strict=True)
    fn = Scripted("nope")
    ans = chat_json(CallableClient(fn), PROMPT, repair=False)
    assert not ans.ok
    assert not ans.repaired
    assert len(fn.seen) == 1
    with pytest.raises(JSONAnswerError):
        chat_json(CallableClient(Scripted("nope")), PROMPT, repair=False, strict=True)


def test_bad_schema_fails_before_any_call():
    fn = Scripted("{}")
    with pytest.raises(ValueError, match="unsupported JSON-Schema keyword"):
        chat_json(CallableClient(fn), PROMPT, {"type": "object", "$ref": "#/x"})
    assert fn.seen == []


def test_images_stay_on_the_original_message_during_repair():
    fn = Scripted("not json", '{"boxes": []}')
    ans = chat_json(CallableClient(fn), [{"role": "user", "content": "Locate the lesion."}], images=[tiny_png()])
    assert ans.ok
    assert ans.repaired
    first_user = fn.seen[1][0]["content"]
    assert [p["type"] for p in first_user] == ["text", "image_url"]
    assert isinstance(fn.seen[1][-1]["content"], str)  # the repair instruction carries no image


def test_endpoint_errors_are_not_swallowed(llm_server):
    llm_server.push(error(401, "no key"))
    with pytest.raises(LLMHTTPError):
        chat_json(OpenAIClient(llm_server.url, "m", cache=False), PROMPT, DX_SCHEMA)


def test_chat_json_over_http_with_repair_and_cache(llm_server):
    llm_server.push(reply("Sure! {'primary': 'glioma', 'differentials': ['a','b','c'],}"), reply(json.dumps(GOOD)))
    client = OpenAIClient(llm_server.url, "m")
    ans = chat_json(client, PROMPT, DX_SCHEMA, response_format={"type": "json_object"})
    assert ans.ok
    assert ans.repaired
    assert ans.value == GOOD
    assert llm_server.requests[0]["body"]["response_format"] == {"type": "json_object"}
    again = chat_json(client, PROMPT, DX_SCHEMA, response_format={"type": "json_object"})
    assert again.value == GOOD
    assert all(r.cached for r in again.responses)
    assert len(llm_server.requests) == 2
