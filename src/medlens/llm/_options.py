"""One chat client from the CLI's LLM options: ``--llm-url URL --model NAME`` or ``--model-path PATH``.

Every command that talks to a language model builds its client here, so the options mean the same thing
everywhere (ARCHITECTURE.md's one-name table): ``--llm-url`` an OpenAI-compatible server (loopback unless
``--allow-remote``) with ``--model`` the name that server expects, or ``--model-path`` local weights: a
``save_pretrained`` folder, a GGUF file, or a registered name such as ``smollm2-135m`` (``medlens llm list``). A folder whose ``config.json`` has a ``vision_config`` is a vision-language model.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from medlens._validation import InputError

__all__ = ["ClientFactory", "ClientTask", "client_from_options", "closing_client", "is_vision_model"]


def is_vision_model(model_path: str | os.PathLike) -> bool:
    """Whether a local model folder holds a vision-language model (its ``config.json`` has a ``vision_config``)."""
    cfg = Path(model_path).expanduser() / "config.json"
    try:
        return "vision_config" in json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def client_from_options(
    *,
    llm_url: str | None = None,
    model: str | None = None,
    model_path: str | os.PathLike | None = None,
    allow_remote: bool = False,
    vision: bool | Literal["auto"] = "auto",
    device: str = "cpu",
    dtype: str = "float32",
    cache: Any = True,
    required: bool = False,
    rate_limit: float | None = None,
) -> Any:
    """The chat client the LLM options name, or ``None`` when none is given and ``required`` is false.

    Parameters
    ----------
    llm_url, model : str, optional
        An OpenAI-compatible endpoint and the model name it expects (:class:`~medlens.llm.OpenAIClient`); a
        non-loopback URL is refused here, before any connection, unless ``allow_remote``.
    model_path : str or path, optional
        Local weights (a folder, a GGUF file or a registered name, :func:`~medlens.llm.resolve_local_model`): a
        :class:`~medlens.llm.TransformersVLMClient` for a vision-language folder, else a
        :class:`~medlens.llm.TransformersClient`.
    vision : {"auto", True, False}
        ``"auto"`` (default) reads the folder's ``config.json``; ``True`` always loads a VLM (image tasks);
        ``False`` always loads a text-only causal LM.
    device, dtype : str
        Where and in which precision ``model_path`` loads.
    cache : bool or path
        The response cache (``$MEDLENS_CACHE/llm`` by default; ``False`` for none).
    required : bool
        Refuse when neither ``llm_url`` nor ``model_path`` is given (otherwise return ``None``).
    rate_limit : float, optional
        Requests per second to ``llm_url`` (``--rate-limit``); refused without ``llm_url``.

    Raises
    ------
    InputError
        Both or (with ``required``) neither of ``llm_url`` and ``model_path``; ``llm_url`` without ``model``;
        ``model`` without ``llm_url``; a remote URL without ``allow_remote``; a missing model folder.
    """
    if vision not in ("auto", True, False):
        raise InputError(f"vision must be 'auto', True or False; got {vision!r}.")
    if llm_url and model_path is not None:
        raise InputError(
            "give either --llm-url URL (with --model NAME) or --model-path PATH, not both (exactly one of --llm-url "
            "and --model-path)."
        )
    if rate_limit is not None:
        from medlens.executors import check_fan_out_options

        check_fan_out_options(rate_limit=rate_limit, endpoint=bool(llm_url))
    if llm_url:
        if not model:
            raise InputError("--llm-url needs --model NAME (the model name the server expects).")
        from medlens.llm._openai import OpenAIClient

        return OpenAIClient(llm_url, model, allow_remote=allow_remote, cache=cache, rate_limit=rate_limit)
    if model:
        raise InputError(
            "--model goes with --llm-url URL (it names the model the server expects); for local weights use "
            "--model-path PATH."
        )
    if model_path is None:
        if required:
            raise InputError(
                "give --llm-url URL --model NAME, or --model-path PATH (exactly one of --llm-url and --model-path)."
            )
        return None
    if vision == "auto":
        vision = is_vision_model(model_path)
    if vision:
        from medlens.llm._vision import TransformersVLMClient

        return TransformersVLMClient(model_path, device=device, dtype=dtype, cache=cache)
    from medlens.llm._transformers import TransformersClient

    return TransformersClient(model_path, device=device, dtype=dtype, cache=cache)


class ClientFactory:
    """A picklable recipe for the client :func:`client_from_options` builds from ``options``.

    An executor's worker (a Ray actor, :mod:`medlens.executors`) calls it to load its own copy of a
    ``--model-path`` model: the recipe travels, never the weights. Calling it builds a new client each time. A
    ``model_path`` that exists here as a file or folder is kept as an absolute path (a worker may start in
    another working folder; the model's label is the resolved path either way).

    >>> ClientFactory(model_path="smollm2-135m", device="cpu")
    ClientFactory(model_path='smollm2-135m', device='cpu')
    >>> ClientFactory()() is None  # no LLM option: no client
    True
    """

    def __init__(self, **options: Any) -> None:
        self.options = dict(options)
        path = self.options.get("model_path")
        if path is not None and Path(path).expanduser().exists():
            self.options["model_path"] = Path(path).expanduser().resolve()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"ClientFactory({args})"

    def __call__(self) -> Any:
        return client_from_options(**self.options)


class ClientTask:
    """The base of a picklable per-item task that answers with one LLM client (``nova run``, ``fair run`` on an
    executor, :mod:`medlens.executors`): it holds the client given here (the local executor reuses it) or builds
    one from ``client_factory`` (a Ray actor, which never receives the client: :meth:`__getstate__` drops it).
    Subclasses call :meth:`own_client` in their ``__call__``."""

    what = "this task"

    def __init__(self, client_factory: Any = None, *, client: Any = None) -> None:
        if client is None and client_factory is None:
            raise InputError(f"{self.what} needs a client or a client factory (medlens.llm.ClientFactory).")
        self.client_factory = client_factory
        self._client = client

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_client"] = None  # a worker loads its own model
        return state

    def own_client(self) -> Any:
        """The client given, else a new one from the factory (an error if it builds none)."""
        client = self._client if self._client is not None else self.client_factory()
        if client is None:
            raise InputError(f"the client factory of {self.what} built no client (give --model-path).")
        return client


@contextlib.contextmanager
def closing_client(client: Any) -> Iterator[Any]:
    """``with closing_client(client):`` closes a client that holds connections (``OpenAIClient``) when the block
    ends; ``None`` and local clients pass through."""
    try:
        yield client
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()
