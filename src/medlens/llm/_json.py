"""JSON answers from chat models: tolerant extraction, validation, and one repair retry.

Local models wrap JSON in prose and code fences, leave trailing commas, use single quotes or Python's
``True``/``None``, or think aloud in ``<think>`` blocks first. :func:`extract_json` undoes those, in this
order of candidates: the whole answer, each fenced code block, then each balanced ``{...}`` object from
left to right (the first one that parses, and validates when a schema is given, wins).

:func:`chat_json` asks, extracts and validates; on failure it makes exactly one repair request that shows
the model its own reply and the error. It never raises on model nonsense unless ``strict=True``: the
result says whether it worked (``ok``), whether repair was used, and why it failed, so a runner can count
parse failures. Endpoint errors (HTTP, timeouts) do raise: they are not the model's answer.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medlens.llm._base import ChatClient, ChatResponse
from medlens.llm._errors import JSONAnswerError
from medlens.llm._messages import ImageInput, attach_images
from medlens.llm._schema import check_schema, validate_json

__all__ = ["JSONAnswer", "chat_json", "extract_json", "iter_json_candidates", "parse_json_answer"]

log = logging.getLogger("medlens.llm")

_FENCE = re.compile(r"```[ \t]*(?:json5?|JSON|javascript|js)?[ \t]*\n?(.*?)```", re.DOTALL)
_PY_LITERALS = {"True": "true", "False": "false", "None": "null"}
_CLOSER_AHEAD = re.compile(r"\s*(?://[^\n]*\n\s*|/\*.*?\*/\s*)*[}\]]", re.DOTALL)
_WORD = re.compile(r"[A-Za-z_$][\w$-]*")
_COLON_AHEAD = re.compile(r"\s*:")
_MAX_CANDIDATES = 64
_DEFAULT_SCHEMA = {"type": ["object", "array"]}


def _think_bodies(text: str) -> list[tuple[str, bool]]:
    """The parts of a reply to search for the answer, in order, each with whether thinking was removed.

    Reasoning models open their reply with ``<think>...</think>``: only what follows the first closing
    tag is the answer, and a reply cut off before it holds no answer. A closing tag elsewhere (the server
    dropped the opening one, or thinking came after some prose) makes the text after it the first place
    to look, and the whole reply the second; a tag inside a balanced ``{...}`` is data, not a boundary.
    """
    low = text.lower()
    close = low.find("</think>")
    if low.lstrip().startswith("<think>"):
        return [(text[close + len("</think>") :], True)] if close >= 0 else [("", True)]
    if close >= 0 and not _inside_object(text, close):
        return [(text[close + len("</think>") :], True), (text, False)]
    return [(text, False)]


def _inside_object(text: str, pos: int) -> bool:
    """Whether ``text[pos]`` lies within a balanced ``{...}`` that opens before it (a tag that is data)."""
    for tried, m in enumerate(re.finditer(r"\{", text[:pos])):
        if tried >= _MAX_CANDIDATES:
            break
        if _balanced_end(text, m.start()) > pos:
            return True
    return False


def _string_end(s: str, i: int) -> int:
    """Index of the quote closing the string that opens at ``s[i]``, or -1."""
    quote, j = s[i], i + 1
    while j < len(s):
        if s[j] == "\\":
            j += 2
            continue
        if s[j] == quote:
            return j
        j += 1
    return -1


def _normalize(s: str) -> tuple[str, list[str]]:
    """Rewrite JSON-ish text (single quotes, trailing commas, comments, bare keys, Python literals) as JSON."""
    out: list[str] = []
    fixes: list[str] = []
    i, n = 0, len(s)

    def fix(name: str) -> None:
        if name not in fixes:
            fixes.append(name)

    while i < n:
        c = s[i]
        if c in "\"'":
            j = _string_end(s, i)
            if j < 0:
                out.append(s[i:])
                break
            if c == '"':
                out.append(s[i : j + 1])
            else:
                inner = s[i + 1 : j].replace("\\'", "'")
                inner = re.sub(r'(?<!\\)"', r"\"", inner)
                out.append(f'"{inner}"')
                fix("single_quotes")
            i = j + 1
        elif s.startswith("//", i):
            k = s.find("\n", i)
            i = n if k < 0 else k
            fix("comments")
        elif s.startswith("/*", i):
            k = s.find("*/", i + 2)
            i = n if k < 0 else k + 2
            fix("comments")
        elif c == ",":
            if _CLOSER_AHEAD.match(s, i + 1):
                fix("trailing_comma")
            else:
                out.append(c)
            i += 1
        elif c.isalpha() or c in "_$":
            m = _WORD.match(s, i)
            word = m.group(0) if m else c
            if _COLON_AHEAD.match(s, i + len(word)):
                out.append(json.dumps(word))
                fix("unquoted_keys")
            elif word in _PY_LITERALS:
                out.append(_PY_LITERALS[word])
                fix("python_literals")
            else:
                out.append(word)
            i += len(word)
        else:
            out.append(c)
            i += 1
    return "".join(out), fixes


def _loads(s: str) -> tuple[Any, list[str]]:
    """``json.loads`` and, when that fails, the same on the normalised text (raises ``ValueError``)."""
    try:
        return json.loads(s), []
    except ValueError as strict_error:
        fixed, fixes = _normalize(s)
        if not fixes:
            raise strict_error from None
        return json.loads(fixed), fixes


def _balanced_end(s: str, start: int) -> int:
    """Index of the bracket closing the object/array opening at ``s[start]`` (strings skipped), or -1."""
    stack: list[str] = []
    i = start
    pairs = {"}": "{", "]": "["}
    while i < len(s):
        c = s[i]
        if c in "\"'":
            j = _string_end(s, i)
            if j < 0:
                return -1
            i = j
        elif c in "{[":
            stack.append(c)
        elif c in "}]":
            if not stack or stack.pop() != pairs[c]:
                return -1
            if not stack:
                return i
        i += 1
    return -1


def iter_json_candidates(text: str) -> Iterator[tuple[Any, list[str]]]:
    """Yield ``(value, fixes)`` for every JSON value found in ``text``, most likely first.

    ``fixes`` names what had to be undone: ``think_block``, ``code_fence``, ``extracted`` (prose around
    it), ``single_quotes``, ``trailing_comma``, ``comments``, ``unquoted_keys``, ``python_literals``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}.")
    seen: set[str] = set()

    def attempt(chunk: str, fixes: list[str]) -> Iterator[tuple[Any, list[str]]]:
        chunk = chunk.strip()
        if not chunk or chunk in seen:
            return
        seen.add(chunk)
        try:
            value, normalised = _loads(chunk)
        except ValueError:
            return
        yield value, fixes + normalised

    for body, thought in _think_bodies(text):
        pre = ["think_block"] if thought else []
        yield from attempt(body, pre)
        for m in _FENCE.finditer(body):
            yield from attempt(m.group(1), [*pre, "code_fence"])
        tried = 0
        for start in (m.start() for m in re.finditer(r"\{", body)):
            end = _balanced_end(body, start)
            if end < 0:
                continue
            tried += 1
            if tried > _MAX_CANDIDATES:
                break
            yield from attempt(body[start : end + 1], [*pre, "extracted"])


def extract_json(text: str) -> Any:
    """The first JSON object (or whole-answer JSON value) in a model's reply; ``ValueError`` if none.

    >>> extract_json('Sure! Here it is:\\n```json\\n{"primary": "glioma", "differentials": ["a", "b",],}\\n```')
    {'primary': 'glioma', 'differentials': ['a', 'b']}
    >>> extract_json("<think>{maybe}</think> {'answer': True, 'score': None}")
    {'answer': True, 'score': None}
    """
    for value, _ in iter_json_candidates(text):
        return value
    raise ValueError(_no_json_message(text))


def _no_json_message(text: str) -> str:
    stripped = _think_bodies(text)[0][0]
    if not stripped.strip():
        return "the reply is empty (no JSON object)"
    if "{" in stripped and _balanced_end(stripped, stripped.index("{")) < 0:
        return "the reply holds no complete JSON object (unbalanced braces: cut off, or a quote left open?)"
    if "{" not in stripped:
        return f"the reply holds no JSON object (no '{{' in {len(stripped)} characters of text)"
    return "the reply holds no JSON object that parses"


def parse_json_answer(text: str, schema: Mapping[str, Any] | None = None) -> tuple[Any, list[str], str | None]:
    """``(value, fixes, None)`` for the first candidate that parses and validates, else ``(None, [], error)``.

    Without a schema an object or array is expected.
    """
    schema = _DEFAULT_SCHEMA if schema is None else schema
    first_error = None
    for value, fixes in iter_json_candidates(text):
        errors = validate_json(value, schema)
        if not errors:
            return value, fixes, None
        if first_error is None:
            more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
            first_error = "the JSON does not match the schema: " + "; ".join(errors[:5]) + more
    return None, [], first_error or _no_json_message(text)


@dataclass(frozen=True)
class JSONAnswer:
    """The outcome of :func:`chat_json`.

    Attributes
    ----------
    value : object or None
        The parsed, validated JSON (``None`` when ``ok`` is false).
    ok : bool
        Whether a valid answer was obtained.
    repaired : bool
        Whether the repair retry was used (whatever its outcome).
    error : str or None
        Why the final reply was unusable (``None`` when ``ok``).
    first_error : str or None
        Why the first reply was unusable (``None`` when it was fine).
    fixes : tuple of str
        The tolerant fixes applied to the reply that was used (see :func:`iter_json_candidates`).
    responses : tuple of ChatResponse
        One response, or two when repair was used.
    """

    value: Any
    ok: bool
    repaired: bool
    error: str | None
    first_error: str | None
    fixes: tuple[str, ...]
    responses: tuple[ChatResponse, ...]

    @property
    def text(self) -> str:
        """The text of the last reply."""
        return self.responses[-1].text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record for run logs (the replies' texts are kept as ``raw``)."""
        return {
            "value": self.value,
            "ok": self.ok,
            "repaired": self.repaired,
            "error": self.error,
            "first_error": self.first_error,
            "fixes": list(self.fixes),
            "raw": [r.text for r in self.responses],
        }


def repair_messages(
    messages: Sequence[Mapping[str, Any]], reply: ChatResponse, error: str, schema: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The conversation for the repair retry: the original, the model's reply, and what was wrong with it."""
    want = "JSON object" if schema is None or schema.get("type") in (None, "object") else "JSON value"
    lines = [f"Your previous reply could not be used: {error}."]
    if reply.finish_reason == "length":
        lines.append("It was cut off at the token limit; answer more briefly.")
    if schema is not None:
        lines.append(f"Reply with only the corrected {want}, matching this JSON Schema:")
        lines.append(json.dumps(schema, ensure_ascii=False))
        lines.append("No prose and no code fences.")
    else:
        lines.append(f"Reply with only the corrected {want}: no prose and no code fences.")
    return [
        *[dict(m) for m in messages],
        {"role": "assistant", "content": reply.text},
        {"role": "user", "content": "\n".join(lines)},
    ]


def chat_json(
    client: ChatClient,
    messages: Sequence[Mapping[str, Any]],
    schema: Mapping[str, Any] | None = None,
    *,
    repair: bool = True,
    strict: bool = False,
    temperature: float = 0.0,
    seed: int | None = 0,
    max_tokens: int | None = None,
    response_format: Mapping[str, Any] | None = None,
    images: Sequence[ImageInput] | None = None,
) -> JSONAnswer:
    """Ask ``client`` for a JSON answer, extract it tolerantly, validate it, and repair once if needed.

    Parameters
    ----------
    client : ChatClient
    messages : list of dict
        OpenAI-format messages; the prompt should ask for JSON.
    schema : dict, optional
        A JSON Schema in the subset of :func:`~medlens.llm.validate_json` (e.g. ``required`` keys and their
        ``type``). Without one, any JSON object or array is accepted.
    repair : bool
        Make one repair request when the first reply is unusable.
    strict : bool
        Raise :class:`~medlens.llm.JSONAnswerError` instead of returning ``ok=False``.
    temperature, seed, max_tokens, response_format, images
        Passed to ``client.chat`` (images are attached once, to the original last user message).

    Returns
    -------
    JSONAnswer
    """
    if schema is not None:
        check_schema(schema)
    msgs = attach_images(messages, images)  # the repair turn must not move the images
    kwargs = {"temperature": temperature, "seed": seed, "max_tokens": max_tokens, "response_format": response_format}
    first = client.chat(msgs, **kwargs)
    value, fixes, error = parse_json_answer(first.text, schema)
    if error is None:
        return JSONAnswer(value, True, False, None, None, tuple(fixes), (first,))
    log.debug("JSON answer unusable (%s)%s", error, "; asking once for a repair" if repair else "")
    responses = (first,)
    final_error = error
    if repair:
        second = client.chat(repair_messages(msgs, first, error, schema), **kwargs)
        responses = (first, second)
        value, fixes, final_error = parse_json_answer(second.text, schema)
        if final_error is None:
            return JSONAnswer(value, True, True, None, error, tuple(fixes), responses)
        log.debug("JSON answer still unusable after repair (%s)", final_error)
    if strict:
        raise JSONAnswerError(
            f"no usable JSON answer from {client.model!r}"
            + (" even after one repair retry" if repair else "")
            + f": {final_error}."
        )
    return JSONAnswer(None, False, repair, final_error, error, (), responses)
