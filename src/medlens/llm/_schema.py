"""A minimal JSON-Schema validator for LLM answers (a documented subset; no dependency).

Supported keywords: ``type`` (``object``, ``array``, ``string``, ``number``, ``integer``, ``boolean``,
``null``, or a list of them), ``properties``, ``required``, ``additionalProperties`` (bool or schema),
``items``, ``minItems``, ``maxItems``, ``uniqueItems``, ``enum``, ``const``, ``minimum``, ``maximum``,
``minLength``, ``maxLength``, ``pattern``, ``anyOf``; annotations (``title``, ``description``,
``default``, ``examples``, ``$schema``, ``$id``) are ignored. Any other keyword is refused when the schema
is checked, so a schema never silently validates less than its author thinks. As in JSON Schema,
``integer`` accepts ``3.0`` and booleans are not numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

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
    """Raise :class:`InputError` if ``schema`` uses anything outside the supported subset."""
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
        check_schema(sub, path=f"{path}['properties'][{name!r}]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        check_schema(schema["additionalProperties"], path=f"{path}['additionalProperties']")
    if "items" in schema:
        check_schema(schema["items"], path=f"{path}['items']")
    for i, sub in enumerate(schema.get("anyOf") or []):
        check_schema(sub, path=f"{path}['anyOf'][{i}]")
    if "pattern" in schema:
        try:
            re.compile(schema["pattern"])
        except re.error as exc:
            raise InputError(f"{path}['pattern'] is not a valid regular expression: {exc}.") from None
    req = schema.get("required", [])
    if not isinstance(req, list) or not all(isinstance(r, str) for r in req):
        raise InputError(f"{path}['required'] must be a list of property names; got {req!r}.")


def _is_type(value: Any, t: str) -> bool:
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if t == "number":
        return isinstance(value, int | float)
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())  # integer


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "integer" if isinstance(value, int) else "number"
    )


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_json(value: Any, schema: Mapping[str, Any], *, path: str = "$") -> list[str]:
    """Every violation of ``schema`` by ``value``, as ``"$.path: what was expected; got what"`` messages.

    >>> schema = {"type": "object", "required": ["primary", "differentials"],
    ...           "properties": {"primary": {"type": "string"},
    ...                          "differentials": {"type": "array", "items": {"type": "string"}, "minItems": 4}}}
    >>> validate_json({"primary": "glioma", "differentials": ["a", "b", "c", "d"]}, schema)
    []
    >>> validate_json({"primary": 3, "differentials": ["a"]}, schema)
    ['$.primary: expected string; got integer 3', '$.differentials: expected at least 4 items; got 1']
    """
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, t) for t in allowed):
            errors.append(f"{path}: expected {' or '.join(allowed)}; got {_type_name(value)} {_short(value)}")
            return errors
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: expected {_short(schema['const'])}; got {_short(value)}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: expected one of {_short(schema['enum'])}; got {_short(value)}")
    if "anyOf" in schema and not any(not validate_json(value, s, path=path) for s in schema["anyOf"]):
        errors.append(f"{path}: matches none of the {len(schema['anyOf'])} allowed forms (anyOf); got {_short(value)}")
    if isinstance(value, dict):
        errors += _validate_object(value, schema, path)
    elif isinstance(value, list):
        errors += _validate_array(value, schema, path)
    elif isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{path}: expected at least {schema['minLength']} characters; got {len(value)}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: expected at most {schema['maxLength']} characters; got {len(value)}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: expected text matching {schema['pattern']!r}; got {_short(value)}")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: expected >= {schema['minimum']}; got {value}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: expected <= {schema['maximum']}; got {value}")
    return errors


def _validate_object(value: dict, schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    props = schema.get("properties") or {}
    missing = [k for k in schema.get("required", []) if k not in value]
    if missing:
        errors.append(f"{path}: missing required key(s) {missing}; got keys {sorted(value)}")
    extra = schema.get("additionalProperties", True)
    for k, v in value.items():
        sub = f"{path}.{k}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(k)) else f"{path}[{json.dumps(k)}]"
        if k in props:
            errors += validate_json(v, props[k], path=sub)
        elif extra is False:
            errors.append(f"{sub}: unexpected key (allowed: {sorted(props)})")
        elif isinstance(extra, Mapping):
            errors += validate_json(v, extra, path=sub)
    return errors


def _validate_array(value: list, schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(f"{path}: expected at least {schema['minItems']} items; got {len(value)}")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{path}: expected at most {schema['maxItems']} items; got {len(value)}")
    if schema.get("uniqueItems"):
        seen = [json.dumps(v, sort_keys=True) for v in value]
        if len(set(seen)) != len(seen):
            errors.append(f"{path}: expected unique items; got duplicates")
    if "items" in schema:
        for i, v in enumerate(value):
            errors += validate_json(v, schema["items"], path=f"{path}[{i}]")
    return errors
