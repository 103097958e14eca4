"""JSON-Schema validation of LLM answers: the `jsonschema` library (Draft 2020-12) checks, medlens words the errors.

:func:`validate_json` returns every violation as a ``"$.path: what was expected; got what"`` message (ordered as
the answer reads, one line per problem), which :func:`~medlens.llm.chat_json` shows the model when it asks for a
repair. Schemas are limited to a documented subset, checked by :func:`check_schema`: ``type`` (``object``,
``array``, ``string``, ``number``, ``integer``, ``boolean``, ``null``, or a list of them), ``properties``,
``required``, ``additionalProperties`` (bool or schema), ``items``, ``minItems``, ``maxItems``,
``uniqueItems``, ``enum``, ``const``, ``minimum``, ``maximum``, ``minLength``, ``maxLength``, ``pattern``,
``anyOf``; annotations (``title``, ``description``, ``default``, ``examples``, ``$schema``, ``$id``) are ignored.
Any other keyword is refused, so every error an answer can have is one medlens words clearly (and a schema never
relies on a keyword its author assumed was checked). As in JSON Schema, ``integer`` accepts ``3.0``, booleans are
not numbers, ``true`` does not equal ``1`` in ``enum``/``const``, and ``[1, 1.0]`` are not unique items.

Why the library (decided on measurements for issue 9; 2 shared cores at load ~10, so absolute times are
inflated): the hand-written validator it replaces took ``true`` for ``1`` and ``false`` for ``0`` in ``enum`` /
``const`` and ``[1, 1.0]`` as unique items; on 20,000 random schema/answer pairs of this subset the two agree
on every message except such pairs. Cost is no reason to keep it: on the diagnosis schema of ``tests/llm``
one answer takes 0.30-0.37 ms valid and 0.79-0.81 ms with four errors here, against 0.07-0.10 and 0.14-0.16 ms
hand-written, next to seconds per LLM call (the validator is built per call: a cached one saves about 10%);
``import jsonschema`` costs 0.18-0.26 s on top of ``import medlens.llm`` (0.63 s), so it is imported on the
first validation, not with :mod:`medlens.llm`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from medlens._optional import require
from medlens._validation import InputError

__all__ = ["check_schema", "validate_json"]

_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
_KEYWORDS = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "enum",
    "const",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "anyOf",
}
_ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$comment"}


def check_schema(schema: Any, *, path: str = "schema") -> None:
    """Raise :class:`InputError` if ``schema`` uses anything outside the supported subset, or is not a valid
    JSON Schema (a negative ``minItems``, a ``minimum`` that is not a number, ...)."""
    _check_subset(schema, path)
    jsonschema = _jsonschema()
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "".join(f"[{p!r}]" for p in exc.absolute_path)
        raise InputError(f"{path}{where} is not valid JSON Schema: {exc.message}.") from None


def _check_subset(schema: Any, path: str) -> None:
    if not isinstance(schema, Mapping):
        raise TypeError(f"{path} must be a dict (a JSON Schema); got {type(schema).__name__}.")
    unknown = set(schema) - _KEYWORDS - _ANNOTATIONS
    if unknown:
        raise InputError(
            f"{path} uses unsupported JSON-Schema keyword(s) {sorted(unknown)}; supported: {sorted(_KEYWORDS)}."
        )
    types = schema.get("type")
    for t in [types] if isinstance(types, str) else (types or []):
        if t not in _TYPES:
            raise InputError(f"{path}['type'] must be one of {_TYPES} (or a list of them); got {t!r}.")
    for name, sub in (schema.get("properties") or {}).items():
        _check_subset(sub, f"{path}['properties'][{name!r}]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        _check_subset(schema["additionalProperties"], f"{path}['additionalProperties']")
    if "items" in schema:
        _check_subset(schema["items"], f"{path}['items']")
    for i, sub in enumerate(schema.get("anyOf") or []):
        _check_subset(sub, f"{path}['anyOf'][{i}]")
    if "pattern" in schema:
        try:
            re.compile(schema["pattern"])
        except re.error as exc:
            raise InputError(f"{path}['pattern'] is not a valid regular expression: {exc}.") from None
    req = schema.get("required", [])
    if not isinstance(req, list) or not all(isinstance(r, str) for r in req):
        raise InputError(f"{path}['required'] must be a list of property names; got {req!r}.")


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "integer" if isinstance(value, int) else "number"
    )


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsonschema() -> Any:
    return require("jsonschema", extra="llm", purpose="validating JSON answers")


# keyword order of the messages at one place in the answer
_ORDER = {
    k: i
    for i, k in enumerate(
        ("type", "const", "enum", "anyOf", "required", "additionalProperties", "minItems", "maxItems", "uniqueItems")
        + ("minLength", "maxLength", "pattern", "minimum", "maximum")
    )
}


def _where(root: str, parts: tuple) -> str:
    out = root
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(p)):
            out += f".{p}"
        else:
            out += f"[{json.dumps(p)}]"
    return out


def _problems(error: Any) -> Iterator[tuple[tuple, str]]:
    """``(place in the answer, what is wrong there)`` for one ``jsonschema`` error."""
    at, v, kw, want = tuple(error.absolute_path), error.instance, error.validator, error.validator_value
    if kw == "type":
        allowed = [want] if isinstance(want, str) else list(want)
        yield at, f"expected {' or '.join(allowed)}; got {_type_name(v)} {_short(v)}"
    elif kw == "const":
        yield at, f"expected {_short(want)}; got {_short(v)}"
    elif kw == "enum":
        yield at, f"expected one of {_short(want)}; got {_short(v)}"
    elif kw == "anyOf":
        yield at, f"matches none of the {len(want)} allowed forms (anyOf); got {_short(v)}"
    elif kw == "required":
        yield at, f"missing required key(s) {[k for k in want if k not in v]}; got keys {sorted(v)}"
    elif kw == "additionalProperties":  # only False reports here; a schema reports at the key itself
        props = error.schema.get("properties") or {}
        for k in v:
            if k not in props:
                yield (*at, k), f"unexpected key (allowed: {sorted(props)})"
    elif kw in ("minItems", "maxItems"):
        yield at, f"expected at {'least' if kw == 'minItems' else 'most'} {want} items; got {len(v)}"
    elif kw == "uniqueItems":
        yield at, "expected unique items; got duplicates"
    elif kw in ("minLength", "maxLength"):
        yield at, f"expected at {'least' if kw == 'minLength' else 'most'} {want} characters; got {len(v)}"
    elif kw == "pattern":
        yield at, f"expected text matching {want!r}; got {_short(v)}"
    elif kw == "minimum":
        yield at, f"expected >= {want}; got {v}"
    elif kw == "maximum":
        yield at, f"expected <= {want}; got {v}"
    else:  # pragma: no cover - check_schema admits no other keyword
        yield at, error.message


def _reading_order(value: Any) -> dict[tuple, int]:
    """Every place in ``value`` (a path of keys and indices), numbered in the order the answer reads."""
    order: dict[tuple, int] = {}
    stack: list[tuple[tuple, Any]] = [((), value)]
    while stack:
        at, v = stack.pop()
        order[at] = len(order)
        if isinstance(v, dict):
            stack += [((*at, k), x) for k, x in reversed(list(v.items()))]
        elif isinstance(v, list):
            stack += [((*at, i), x) for i, x in reversed(list(enumerate(v)))]
    return order


def validate_json(value: Any, schema: Mapping[str, Any], *, path: str = "$") -> list[str]:
    """Every violation of ``schema`` by ``value``, as ``"$.path: what was expected; got what"`` messages.

    Messages follow the answer's reading order; where a value has the wrong type, that is the one message
    about it (and what lies inside it).

    >>> schema = {"type": "object", "required": ["primary", "differentials"],
    ...           "properties": {"primary": {"type": "string"},
    ...                          "differentials": {"type": "array", "items": {"type": "string"}, "minItems": 4}}}
    >>> validate_json({"primary": "glioma", "differentials": ["a", "b", "c", "d"]}, schema)
    []
    >>> validate_json({"primary": 3, "differentials": ["a"]}, schema)
    ['$.primary: expected string; got integer 3', '$.differentials: expected at least 4 items; got 1']
    """
    errors = list(_jsonschema().Draft202012Validator(schema).iter_errors(value))
    if not errors:
        return []
    wrong_type = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    found: dict[tuple, str] = {}
    for e in errors:
        at = tuple(e.absolute_path)
        if any(at[:n] in wrong_type for n in range(len(at))) or (at in wrong_type and e.validator != "type"):
            continue
        for where, problem in _problems(e):
            found.setdefault((where, problem), e.validator)
    order = _reading_order(value)
    ranked = sorted(found.items(), key=lambda item: (order[item[0][0]], _ORDER.get(item[1], len(_ORDER))))
    return [f"{_where(path, where)}: {problem}" for (where, problem), _ in ranked]
