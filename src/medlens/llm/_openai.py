"""A client for OpenAI-compatible ``/v1/chat/completions`` servers (llama.cpp, Ollama, vLLM, hosted APIs).

Retries: HTTP 429 and 5xx, timeouts and connection errors are retried with exponential backoff and jitter
(``backoff * 2**attempt`` seconds, capped at ``max_backoff``, then scaled by a random factor in [0.5, 1]);
a ``Retry-After`` header is honoured (a wait longer than ``max_backoff`` is not attempted: the error says
how long the server asked for). Other 4xx answers are not retried: the error names the status and the
server's own message. Redirects are not followed.

Privacy: the host must be loopback unless ``allow_remote=True``. For loopback endpoints the proxy
environment variables are ignored (``trust_env=False``), so a request to ``127.0.0.1`` cannot be routed
through a proxy elsewhere. The API key comes only from the environment and never appears in logs, cache
entries, ``repr`` or error messages.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

from medlens._optional import require
from medlens._validation import InputError
from medlens.executors import RateLimiter
from medlens.llm._base import BaseChatClient, ChatResponse
from medlens.llm._cache import ResponseCache, resolve_cache
from medlens.llm._endpoint import DEFAULT_KEY_ENV, parse_endpoint, redact, redact_reply, resolve_api_key
from medlens.llm._errors import LLMConnectionError, LLMHTTPError, LLMResponseError, LLMTimeoutError

__all__ = ["OpenAIClient"]

log = logging.getLogger("medlens.llm")


class _Secret:
    """Holds a string that must not be printed (``repr`` and ``str`` show ``***``)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or ``None``.

    >>> parse_retry_after("3"), parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=4.0), parse_retry_after("soon")
    (3.0, 6.0, None)
    """
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _server_message(resp: Any) -> str:
    """The error message inside an error body (OpenAI, llama.cpp, Ollama, vLLM, FastAPI shapes) or its text."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    msg: Any = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            msg = err.get("message") or err.get("msg")
        elif isinstance(err, str):
            msg = err
        msg = msg or data.get("message") or data.get("detail")
    if msg is None:
        try:
            msg = resp.text
        except UnicodeDecodeError:  # pragma: no cover - httpx decodes leniently
            msg = ""
    msg = " ".join(str(msg).split())
    return msg[:500] + ("…" if len(msg) > 500 else "")


class OpenAIClient(BaseChatClient):
    """Chat with an OpenAI-compatible endpoint.

    Parameters
    ----------
    base_url : str
        E.g. ``http://127.0.0.1:8080/v1`` (llama.cpp), ``http://localhost:11434/v1`` (Ollama),
        ``http://localhost:8000/v1`` (vLLM). ``http://host:port`` gets ``/v1`` appended.
    model : str
        The model name the server expects.
    api_key_env : str or sequence of str or None
        Environment variables to read the API key from, first non-empty wins; default
        ``("MEDLENS_LLM_API_KEY", "OPENAI_API_KEY")``. ``None`` sends no key.
    timeout : float
        Seconds to wait for an answer (local models on CPU can be slow; the default is 300).
    connect_timeout : float
        Seconds to wait for a connection.
    max_retries : int
        Retries after the first attempt for 429/5xx, timeouts and connection errors.
    backoff, max_backoff : float
        Base and cap of the exponential backoff in seconds; ``Retry-After`` longer than ``max_backoff`` fails.
    allow_remote : bool
        Allow a host that is not this machine (the CLI's ``--allow-remote``).
    cache : bool, path or ResponseCache
        ``True`` (default): ``$MEDLENS_CACHE/llm``; ``False``: no cache; a path: a cache in that folder.
    rate_limit : float or RateLimiter, optional
        At most this many HTTP requests per second from this client, across threads (the CLI's ``--rate-limit``);
        every attempt counts, retries included; answers from the cache do not.
    """

    kind = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | Sequence[str] | None = DEFAULT_KEY_ENV,
        timeout: float = 300.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        allow_remote: bool = False,
        cache: ResponseCache | bool | str | None = True,
        rate_limit: float | RateLimiter | None = None,
    ) -> None:
        self.endpoint = parse_endpoint(base_url, allow_remote=allow_remote)  # refuses before anything else
        if not isinstance(model, str) or not model.strip():
            raise InputError(f"model must be the non-empty name the server expects; got {model!r}.")
        for name, val in (("timeout", timeout), ("connect_timeout", connect_timeout)):
            if isinstance(val, bool) or not isinstance(val, int | float) or not val > 0:
                raise InputError(f"{name} must be a positive number of seconds; got {val!r}.")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InputError(f"max_retries must be an int >= 0; got {max_retries!r}.")
        if not (backoff >= 0 and max_backoff >= 0):
            raise InputError(f"backoff and max_backoff must be >= 0; got {backoff!r} and {max_backoff!r}.")
        self.model = model
        self.base_url = self.endpoint.base_url
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.cache = resolve_cache(cache)
        self.rate_limiter = rate_limit if isinstance(rate_limit, RateLimiter) or rate_limit is None else None
        if rate_limit is not None and self.rate_limiter is None:
            self.rate_limiter = RateLimiter(rate_limit)
        key, source = resolve_api_key(api_key_env)
        self._key = _Secret(key) if key else None
        self.api_key_source = source  # the variable's name, never its value
        self._http: Any = None
        self._lock = threading.Lock()
        self._rng = random.Random()
        log.info(
            "LLM endpoint %s, model %s (%s, API key %s)",
            self.base_url,
            model,
            "loopback" if self.endpoint.loopback else "REMOTE",
            f"from ${source}" if source else "not set",
        )

    def __repr__(self) -> str:
        key = f"from ${self.api_key_source}" if self.api_key_source else "none"
        return f"OpenAIClient(base_url={self.base_url!r}, model={self.model!r}, api_key={key})"

    def describe(self) -> dict[str, Any]:
        """Provenance of this client (never the key)."""
        return {"kind": self.kind, "model": self.model, "base_url": self.base_url}

    def _key_extra(self) -> dict[str, Any]:
        # Two servers may serve different weights under one model name: a cached answer is only reused for the
        # endpoint that gave it.
        return {"endpoint": self.base_url}

    # -- HTTP ---------------------------------------------------------------------------------------------
    def _client(self) -> Any:
        with self._lock:
            if self._http is None:
                httpx = require("httpx", extra="llm", purpose="the OpenAI-compatible LLM client")
                from medlens import __version__

                headers = {"User-Agent": f"medlens/{__version__}", "Accept": "application/json"}
                if self._key is not None:
                    headers["Authorization"] = f"Bearer {self._key.reveal()}"
                self._http = httpx.Client(
                    timeout=httpx.Timeout(self.timeout, connect=min(self.connect_timeout, self.timeout)),
                    headers=headers,
                    follow_redirects=False,
                    trust_env=not self.endpoint.loopback,
                )
            return self._http

    def close(self) -> None:
        """Close the connection pool (a later request opens a new one)."""
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def __enter__(self) -> OpenAIClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _redact(self, text: str) -> str:
        return redact(text, self._key.reveal() if self._key is not None else None)

    def _complete(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> ChatResponse:
        httpx = require("httpx", extra="llm", purpose="the OpenAI-compatible LLM client")
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": params["temperature"],
            "stream": False,
        }
        for name in ("seed", "max_tokens", "response_format"):
            if params[name] is not None:
                body[name] = params[name]
        url = self.endpoint.chat_url
        client = self._client()
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            retry_after = None
            if self.rate_limiter is not None:
                self.rate_limiter.wait()
            try:
                resp = client.post(url, json=body)
            except httpx.TimeoutException as exc:
                failure = f"timed out after {self.timeout:g} s ({type(exc).__name__})"
                if attempt + 1 == attempts:
                    raise LLMTimeoutError(
                        f"the LLM endpoint {url} did not answer within {self.timeout:g} s ({attempts} attempt(s)); "
                        "a large local model may need a longer timeout."
                    ) from None
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {self._redact(str(exc))}"
                if attempt + 1 == attempts:
                    raise LLMConnectionError(
                        f"could not reach the LLM endpoint {url} ({failure}) after {attempts} attempt(s); "
                        "is the server running, and is the URL right?"
                    ) from None
            else:
                status = resp.status_code
                if 200 <= status < 300:
                    return self._parse(resp, url)
                if status != 429 and status < 500:
                    raise self._http_error(resp, url, attempts=attempt + 1)
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
                if attempt + 1 == attempts or (retry_after is not None and retry_after > self.max_backoff):
                    raise self._http_error(resp, url, attempts=attempt + 1, retry_after=retry_after)
                failure = f"HTTP {status}"
            delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + 0.5 * self._rng.random())
            if retry_after is not None:
                delay = retry_after  # the server said when; honour it exactly
            log.warning(
                "LLM request to %s failed (%s; attempt %d/%d); retrying in %.2f s",
                url,
                failure,
                attempt + 1,
                attempts,
                delay,
            )
            time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _http_error(self, resp: Any, url: str, *, attempts: int, retry_after: float | None = None) -> LLMHTTPError:
        status = resp.status_code
        server = self._redact(_server_message(resp))
        reason = resp.reason_phrase or ""
        msg = f"the LLM endpoint {url} answered HTTP {status} {reason}".rstrip()
        msg += f": {server}" if server else " (no error message in the body)"
        if 300 <= status < 400:
            msg += f"; medlens does not follow redirects (Location: {resp.headers.get('location', '?')}); use the final URL."
        elif status in (401, 403):
            msg += (
                f"; check the API key in ${self.api_key_source}."
                if self.api_key_source
                else "; no API key was sent: set $MEDLENS_LLM_API_KEY."
            )
        elif status == 404:
            msg += f"; check the base URL (most servers expect .../v1) and the model name {self.model!r}."
        elif status in (400, 413, 422):
            msg += (
                "; the server rejected the request (a prompt longer than the model's context, or a parameter "
                "it does not support such as seed or response_format?)."
            )
        elif status == 429 and retry_after is not None and retry_after > self.max_backoff:
            msg += f"; rate limited: the server asks to wait {retry_after:.0f} s (more than max_backoff={self.max_backoff:g} s)."
        if status == 429 or status >= 500:
            msg += f" Gave up after {attempts} attempt(s)."
        return LLMHTTPError(msg, status=status, server_message=server, url=url)

    def _parse(self, resp: Any, url: str) -> ChatResponse:
        try:
            # the key never gets past here: not into the parsed answer, the cache, or any output file
            data = redact_reply(resp.json(), self._key.reveal() if self._key is not None else None)
        except ValueError:
            ctype = resp.headers.get("content-type", "?")
            head = self._redact(resp.content[:80].decode("utf-8", "replace"))
            raise LLMResponseError(
                f"the LLM endpoint {url} answered HTTP {resp.status_code} but the body is not JSON (content-type "
                f"{ctype}, {len(resp.content)} bytes, starting {head!r}); is this an OpenAI-compatible server?"
            ) from None
        choices = data.get("choices") if isinstance(data, dict) else None
        message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
        if not isinstance(message, dict):
            err = data.get("error") if isinstance(data, dict) else None
            got = f"keys {sorted(data)}" if isinstance(data, dict) else type(data).__name__
            detail = f"; the body says: {self._redact(str(err))[:300]}" if err else ""
            raise LLMResponseError(
                f"the LLM endpoint {url} answered HTTP {resp.status_code} without a chat completion "
                f"(expected {{'choices': [{{'message': ...}}]}}; got {got}){detail}."
            )
        content = message.get("content")
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return ChatResponse(
            text=content if isinstance(content, str) else "",
            model=str(data.get("model") or self.model),
            usage=usage,
            raw=data,
            finish_reason=choices[0].get("finish_reason"),
        )
