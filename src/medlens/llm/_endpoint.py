"""Endpoint privacy: which base URLs count as this machine, and where the API key comes from.

Patient data must not leave the machine by accident, so only loopback endpoints are allowed by default:
the host ``localhost`` and the literal addresses 127.0.0.0/8 and ``::1`` (also as IPv4-mapped IPv6). Any
other host name counts as remote (no DNS lookup is made to decide), as do shorthand literals such as
``127.1`` and the wildcard ``0.0.0.0``. Remote endpoints need ``allow_remote=True`` (``--allow-remote``).

The API key is read only from the environment (``$MEDLENS_LLM_API_KEY``, then ``$OPENAI_API_KEY``), sent
as a Bearer header, and never logged, cached or put in an error message.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from medlens._validation import InputError
from medlens.llm._errors import RemoteEndpointError

__all__ = ["DEFAULT_KEY_ENV", "Endpoint", "is_loopback_host", "parse_endpoint", "resolve_api_key"]

DEFAULT_KEY_ENV = ("MEDLENS_LLM_API_KEY", "OPENAI_API_KEY")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (as in a URL, IPv6 without brackets) is this machine, decided without DNS.

    >>> [is_loopback_host(h) for h in ("localhost", "127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1")]
    [True, True, True, True, True]
    >>> [is_loopback_host(h) for h in ("10.0.0.2", "0.0.0.0", "127.1", "localhost.example.com", "example.com")]
    [False, False, False, False, False]
    """
    h = host.strip().lower().rstrip(".") if host else ""
    if h == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        return False  # a host name: remote (we do not resolve it)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


@dataclass(frozen=True)
class Endpoint:
    """A parsed OpenAI-compatible base URL."""

    base_url: str  # e.g. http://127.0.0.1:8080/v1 (no trailing slash)
    host: str
    loopback: bool

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"


def parse_endpoint(base_url: str, *, allow_remote: bool = False) -> Endpoint:
    """Validate ``base_url`` and refuse a non-loopback host unless ``allow_remote``.

    ``http://host:port`` gets ``/v1`` appended; a URL with a path is used as given (``/api/v1``), and a
    trailing ``/chat/completions`` is dropped.

    >>> parse_endpoint("http://localhost:8080").chat_url
    'http://localhost:8080/v1/chat/completions'
    >>> parse_endpoint("http://llm.example.org/v1")
    Traceback (most recent call last):
    ...
    medlens.llm._errors.RemoteEndpointError: refusing to send requests to 'llm.example.org', which is not this machine (only localhost, 127.0.0.0/8 and ::1 are allowed by default); pass --allow-remote (allow_remote=True) if sending data there is intended.
    """
    if not isinstance(base_url, str) or not base_url.strip():
        raise InputError(f"base_url must be an http(s) URL such as http://127.0.0.1:8080/v1; got {base_url!r}.")
    try:
        parts = urlsplit(base_url.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InputError(f"base_url {base_url!r} is not a valid URL ({exc}).") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InputError(
            f"base_url must be an http(s) URL with a host, such as http://127.0.0.1:8080/v1; got {base_url!r}."
        )
    if parts.username is not None or parts.password is not None:
        raise InputError(
            "base_url must not contain credentials (user:password@); put the API key in $MEDLENS_LLM_API_KEY."
        )
    loopback = is_loopback_host(host)
    if not loopback and not allow_remote:
        raise RemoteEndpointError(
            f"refusing to send requests to {host!r}, which is not this machine (only localhost, 127.0.0.0/8 and "
            "::1 are allowed by default); pass --allow-remote (allow_remote=True) if sending data there is intended."
        )
    path = parts.path.rstrip("/")
    if path.endswith("/chat/completions"):
        path = path[: -len("/chat/completions")]
    if not path:
        path = "/v1"
    base = urlunsplit((parts.scheme, parts.netloc, path, parts.query, "")).rstrip("/")
    return Endpoint(base_url=base, host=host, loopback=loopback)


def resolve_api_key(env: str | Sequence[str] | None = DEFAULT_KEY_ENV) -> tuple[str | None, str | None]:
    """``(key, name of the variable it came from)`` from the first non-empty variable in ``env``."""
    if env is None:
        return None, None
    names = [env] if isinstance(env, str) else list(env)
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value, name
    return None, None


_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")


def redact_reply(obj: Any, secret: str | None) -> Any:
    """A server's reply with the configured key and every ``Bearer <token>`` removed from all of its strings.

    Applied to every reply before it is parsed, cached or written: a server that echoes the request headers
    must not get the key into predictions, results or the cache.

    >>> redact_reply({"echo": ["Authorization: Bearer sk-abcdefghijklmnop", "ok"]}, "sk-abcdefghijklmnop")
    {'echo': ['Authorization: Bearer ***', 'ok']}
    """
    if isinstance(obj, str):
        return _BEARER.sub(r"\1 ***", redact(obj, secret))
    if isinstance(obj, dict):
        return {redact_reply(k, secret): redact_reply(v, secret) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_reply(v, secret) for v in obj]
    return obj


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` (and of its long tail) replaced by ``***``."""
    if not secret or not text:
        return text
    out = text.replace(secret, "***")
    if len(secret) >= 16:  # a server may echo the key cut short: its last 12 characters are removed as well
        tail = secret[-12:]
        out = out.replace(tail, "***")
    return out
