"""Errors of the LLM layer.

Bad configuration or input (a remote endpoint without ``allow_remote``, malformed messages) raises
:class:`~medlens._validation.InputError` subclasses, like the rest of medlens. Failures of an endpoint or a
model (HTTP errors, timeouts, unusable bodies, a request missing from a replay fixture) raise
:class:`LLMError` subclasses. No message ever contains an API key.
"""

from __future__ import annotations

from medlens._validation import InputError

__all__ = [
    "LLMError",
    "LLMHTTPError",
    "LLMTimeoutError",
    "LLMConnectionError",
    "LLMResponseError",
    "LLMContextLengthError",
    "ReplayMissError",
    "JSONAnswerError",
    "RemoteEndpointError",
]


class RemoteEndpointError(InputError):
    """An endpoint is not on this machine (not loopback) and remote endpoints were not allowed."""


class LLMError(RuntimeError):
    """An LLM endpoint or model failed (after any retries)."""


class LLMHTTPError(LLMError):
    """The endpoint answered with an HTTP error status.

    Attributes
    ----------
    status : int
        The HTTP status code.
    server_message : str
        The server's own error message (API keys redacted), or ``""``.
    url : str
        The URL that was requested.
    """

    def __init__(self, message: str, *, status: int, server_message: str = "", url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message
        self.url = url


class LLMTimeoutError(LLMError):
    """The endpoint did not answer within the timeout (after any retries)."""


class LLMConnectionError(LLMError):
    """The endpoint could not be reached (after any retries)."""


class LLMResponseError(LLMError):
    """The endpoint answered, but the body is not a usable chat completion."""


class LLMContextLengthError(LLMError):
    """A prompt does not fit the local model's context window (no token could be generated after it).

    Attributes
    ----------
    n_prompt : int
        Tokens in the prompt.
    limit : int
        The model's context length (``max_position_embeddings`` of its text config).
    """

    def __init__(self, message: str, *, n_prompt: int, limit: int) -> None:
        super().__init__(message)
        self.n_prompt = n_prompt
        self.limit = limit


class ReplayMissError(LLMError, LookupError):
    """A :class:`~medlens.llm.ReplayClient` has no recorded response for a request."""


class JSONAnswerError(LLMError, ValueError):
    """A JSON answer could not be parsed or validated, even after the repair retry (``strict=True`` only)."""
