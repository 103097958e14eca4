"""Constrained decoding for the in-process transformers clients: ``response_format`` becomes a token mask.

A local model asked for JSON is free to answer with prose, code fences or a half-closed object; the agent then
spends a repair request (and sometimes still gets nothing). With ``response_format`` set, the local clients
mask, at every step, the tokens that cannot continue a valid answer, so a reply that ends (rather than
running out of ``max_tokens``) parses and matches the schema:

- ``{"type": "json_object"}``: any JSON object (as OpenAI: not an array or a scalar);
- ``{"type": "json_schema", "json_schema": {"schema": {...}}}`` (the OpenAI form; ``name`` and ``strict`` are
  accepted and ignored): an object matching the schema;
- ``{"type": "text"}`` or ``None``: no constraint.

The grammar engine is `xgrammar <https://github.com/mlc-ai/xgrammar>`_ (an optional dependency of the ``llm``
extra; imported on first use): the schema is compiled once per client and schema, and each generation gets a
fresh matcher. Replies are compact (no whitespace between tokens), which also saves tokens. Servers are sent
``response_format`` as is: vLLM, llama.cpp and SGLang honour it; ``transformers serve`` ignores it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from medlens._optional import require
from medlens._validation import InputError

__all__ = ["GrammarConstraint", "grammar_of"]

_TYPES = ("text", "json_object", "json_schema")


def grammar_of(response_format: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """What ``response_format`` asks of a local model: ``None`` (free text), ``("json", "")`` or
    ``("schema", canonical schema JSON)``; a malformed value raises :class:`InputError` naming the fix."""
    if response_format is None:
        return None
    kind = response_format.get("type")
    if kind not in _TYPES:
        raise InputError(
            f"response_format type must be one of {', '.join(_TYPES)}; got {kind!r} "
            '(e.g. {"type": "json_schema", "json_schema": {"schema": {...}}}).'
        )
    if kind == "text":
        return None
    if kind == "json_object":
        return ("json", "")
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, Mapping):
        raise InputError(
            'response_format {"type": "json_schema"} needs "json_schema": {"schema": {...}} with the JSON Schema '
            "as an object."
        )
    return ("schema", json.dumps(schema, sort_keys=True, separators=(",", ":")))


class GrammarConstraint:
    """Compiled grammars of one tokenizer, turned into a fresh logits processor per generation.

    Parameters
    ----------
    tokenizer
        The model's (fast or slow) transformers tokenizer.
    vocab_size : int
        Rows of the model's output layer (may exceed the tokenizer's vocabulary: padded embeddings).
    stop_token_ids : list of int
        Tokens that end a reply (the generation config's ``eos_token_id``); allowed only where the grammar may end.
    """

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: list[int]) -> None:
        xgr = require("xgrammar", extra="llm", purpose="constrained decoding (response_format) of a local model")
        self._xgr = xgr
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids)
        self._compiler = xgr.GrammarCompiler(info, max_threads=1)
        self._compiled: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def compiled(self, grammar: tuple[str, str]) -> Any:
        """The compiled grammar for :func:`grammar_of`'s result (cached)."""
        with self._lock:
            if grammar not in self._compiled:
                kind, schema = grammar
                try:
                    # json_object: any object (xgrammar's built-in JSON grammar would also allow arrays and
                    # scalars); a schema in strict mode: properties it does not name are not generated (still valid)
                    self._compiled[grammar] = self._compiler.compile_json_schema(
                        '{"type":"object"}' if kind == "json" else schema,
                        any_whitespace=False,
                        separators=(",", ":"),
                        strict_mode=kind != "json",
                    )
                except (RuntimeError, ValueError) as exc:
                    raise InputError(
                        f"response_format: xgrammar cannot compile this JSON Schema ({exc}); simplify it or drop "
                        "response_format."
                    ) from None
            return self._compiled[grammar]

    def logits_processors(self, grammar: tuple[str, str]) -> list[Any]:
        """A new processor list for one ``generate`` call (xgrammar's matcher keeps per-generation state)."""
        return [self._xgr.contrib.hf.LogitsProcessor(self.compiled(grammar))]
