"""The ``ChatClient`` protocol, the ``ChatResponse`` record, and the request flow every client shares.

``chat()`` validates the messages, attaches images (base64 data URLs on the last user message), looks the
request up in the on-disk cache, calls the backend on a miss, stores the answer and returns it. Prompts and
responses are logged at DEBUG only (they hold patient text); nothing about them is logged at INFO.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from medlens._validation import InputError
from medlens.llm._cache import ResponseCache, resolve_cache
from medlens.llm._messages import ImageInput, attach_images, canonical_messages, message_text, request_key

__all__ = ["BaseChatClient", "CallableClient", "ChatClient", "ChatResponse", "normalize_params"]

log = logging.getLogger("medlens.llm")

Messages = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class ChatResponse:
    """One chat completion.

    Attributes
    ----------
    text : str
        The assistant's message (``""`` when the server sent no content).
    model : str
        The model that answered (as the server names it, else the client's model).
    usage : dict
        Token counts (``prompt_tokens``, ``completion_tokens``, ``total_tokens``) when known.
    raw : dict or None
        The backend's response body (OpenAI format), for provenance.
    cached : bool
        Whether this came from the on-disk cache (or a replay fixture) instead of the model.
    latency_s : float
        Seconds this call took (a cache hit takes about a millisecond).
    finish_reason : str or None
        ``"stop"``, ``"length"`` (cut off at ``max_tokens``) or what the server said.
    """

    text: str
    model: str
    usage: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] | None = None
    cached: bool = False
    latency_s: float = 0.0
    finish_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model,
            "usage": dict(self.usage),
            "finish_reason": self.finish_reason,
            "raw": self.raw,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, cached: bool = False, latency_s: float = 0.0) -> ChatResponse:
        return cls(
            text=str(d.get("text", "")),
            model=str(d.get("model", "")),
            usage=dict(d.get("usage") or {}),
            raw=d.get("raw"),
            cached=cached,
            latency_s=latency_s,
            finish_reason=d.get("finish_reason"),
        )


@runtime_checkable
class ChatClient(Protocol):
    """Anything that answers OpenAI-format chat messages.

    ``kind`` (e.g. ``"openai"``, ``"transformers"``) and ``model`` identify the backend in request keys and
    provenance. ``images`` (paths, bytes, PIL images, uint8 arrays) are attached to the last user message as
    base64 ``image_url`` parts. ``temperature=0`` means greedy/deterministic decoding; ``seed`` is passed on.
    """

    kind: str
    model: str

    def chat(
        self,
        messages: Messages,
        *,
        temperature: float = 0.0,
        seed: int | None = 0,
        max_tokens: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        images: Sequence[ImageInput] | None = None,
    ) -> ChatResponse: ...


def normalize_params(
    temperature: float, seed: int | None, max_tokens: int | None, response_format: Any
) -> dict[str, Any]:
    """Check the sampling parameters and return them in the canonical form request keys hash."""
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not math.isfinite(temperature):
        raise TypeError(f"temperature must be a finite number; got {temperature!r}.")
    if not 0 <= temperature <= 2:
        raise InputError(f"temperature must be in [0, 2]; got {temperature}.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None; got {seed!r}.")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise InputError(f"max_tokens must be a positive int or None; got {max_tokens!r}.")
    if response_format == "json_object":
        response_format = {"type": "json_object"}
    if response_format is not None and not isinstance(response_format, Mapping):
        raise TypeError(
            "response_format must be None, 'json_object' or a dict such as {'type': 'json_object'}; "
            f"got {type(response_format).__name__}."
        )
    return {
        "temperature": float(temperature),
        "seed": seed,
        "max_tokens": max_tokens,
        "response_format": dict(response_format) if response_format is not None else None,
    }


class BaseChatClient:
    """Shared request flow; subclasses set ``kind`` and ``model`` and implement :meth:`_complete`.

    ``_complete(messages, params)`` receives validated messages (images already embedded) and the canonical
    parameters, and returns a :class:`ChatResponse`; latency and caching are handled here.
    """

    kind: str = "base"
    model: str = ""
    cache: ResponseCache | None = None

    def describe(self) -> dict[str, Any]:
        """Provenance of this client (what answered): kind and model, never credentials."""
        return {"kind": self.kind, "model": self.model}

    def _key_extra(self) -> dict[str, Any]:
        """Extra fields that make this backend's cache keys unique (e.g. a weights fingerprint)."""
        return {}

    def _complete(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> ChatResponse:
        raise NotImplementedError  # pragma: no cover

    def chat(
        self,
        messages: Messages,
        *,
        temperature: float = 0.0,
        seed: int | None = 0,
        max_tokens: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        images: Sequence[ImageInput] | None = None,
    ) -> ChatResponse:
        """Answer ``messages`` (OpenAI format); see :class:`ChatClient`."""
        msgs = attach_images(messages, images)
        params = normalize_params(temperature, seed, max_tokens, response_format)
        key = request_key(self.kind, self.model, msgs, {**params, **self._key_extra()})
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "LLM request %s to %s %s:\n%s", key[:12], self.kind, self.model, message_text(canonical_messages(msgs))
            )
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                log.debug("LLM cache hit %s: %s", key[:12], hit.text)
                return hit
        t0 = time.perf_counter()
        resp = self._complete(msgs, params)
        resp = dataclasses.replace(resp, cached=False, latency_s=time.perf_counter() - t0)
        log.debug("LLM response %s (%.2f s, %s): %s", key[:12], resp.latency_s, resp.usage or "no usage", resp.text)
        if self.cache is not None:
            self.cache.put(key, resp, meta={"kind": self.kind, "model": self.model, "params": params})
        return resp


class CallableClient(BaseChatClient):
    """A chat client backed by a Python function: rule-based baselines, custom backends, tests.

    Parameters
    ----------
    fn : callable
        ``fn(messages, **params) -> str | ChatResponse`` where ``messages`` are validated OpenAI-format dicts
        (images embedded as data URLs) and ``params`` are ``temperature``, ``seed``, ``max_tokens`` and
        ``response_format``.
    model : str
        The name used in request keys and provenance.
    cache : bool, path or ResponseCache
        Off by default (a function is cheap, and may be stateful).

    Examples
    --------
    >>> client = CallableClient(lambda messages, **p: messages[-1]["content"].upper(), model="shout")
    >>> client.chat([{"role": "user", "content": "hello"}]).text
    'HELLO'
    """

    kind = "callable"

    def __init__(
        self,
        fn: Callable[..., str | ChatResponse],
        *,
        model: str = "callable",
        cache: ResponseCache | bool | str | None = False,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable; got {type(fn).__name__}.")
        self.fn = fn
        self.model = model
        self.cache = resolve_cache(cache)

    def __repr__(self) -> str:
        return f"CallableClient(model={self.model!r})"

    def _complete(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> ChatResponse:
        out = self.fn(messages, **params)
        if isinstance(out, ChatResponse):
            return out
        if not isinstance(out, str):
            raise TypeError(f"CallableClient's function must return a str or ChatResponse; got {type(out).__name__}.")
        return ChatResponse(text=out, model=self.model, finish_reason="stop")
