"""A chat client for a local causal language model (transformers), offline and deterministic.

The prompt is the tokenizer's chat template when it has one (``add_generation_prompt=True``). Otherwise it
is this plain format, one block per message, ending with an open assistant turn::

    System: <system text>

    User: <user text>

    Assistant: <assistant text>

    User: <user text>

    Assistant:

and the reply is cut at the first ``"\\nUser:"`` the model goes on to write. ``temperature=0`` decodes
greedily; a positive temperature samples with ``seed`` (the global torch RNG is left untouched), with the
top-k/top-p the model folder's ``generation_config.json`` sets, if any. Weights
and tokenizer load from a local folder, a GGUF file or a registered name (:func:`~medlens.llm.resolve_local_model`)
only (``local_files_only=True``, hub libraries set offline, no
remote code). The client is text-only: images need an OpenAI-compatible vision endpoint.

``response_format`` (``json_object``, or ``json_schema`` with a schema) constrains decoding with a grammar, so a
reply that ends before ``max_tokens`` is valid JSON matching the schema (:mod:`medlens.llm._constrain`; needs
``xgrammar``, in the ``llm`` extra). Without it the model writes free text.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

from medlens._device import resolve_device, resolve_dtype, set_offline
from medlens._optional import require
from medlens._validation import InputError
from medlens.llm._base import BaseChatClient, ChatResponse
from medlens.llm._cache import ResponseCache, resolve_cache
from medlens.llm._constrain import GrammarConstraint, grammar_of
from medlens.llm._errors import LLMContextLengthError
from medlens.llm._models import gguf_folder, resolve_local_model

__all__ = ["TransformersClient", "plain_prompt"]

log = logging.getLogger("medlens.llm")

_ROLE_NAMES = {"system": "System", "developer": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}
_STOP = "\nUser:"


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if p.get("type") == "text")
    return content or ""


def plain_prompt(messages: list[dict[str, Any]]) -> str:
    """The documented fallback prompt for tokenizers without a chat template.

    >>> plain_prompt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    'System: Be brief.\\n\\nUser: Hi\\n\\nAssistant:'
    """
    blocks = [f"{_ROLE_NAMES[m['role']]}: {_text_of(m['content']).strip()}" for m in messages]
    return "\n\n".join([*blocks, "Assistant:"])


def _fingerprint(path: Path) -> str:
    """SHA-256 over the config/tokenizer files' bytes and the weight files' names and sizes."""
    h = hashlib.sha256()
    for p in sorted(path.iterdir()):
        if not p.is_file():
            continue
        if p.suffix in (".json", ".txt", ".model", ".jinja"):
            h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
        elif p.suffix in (".safetensors", ".bin", ".pt", ".gguf"):
            h.update(f"{p.name}\0{p.stat().st_size}\0".encode())
    return h.hexdigest()[:16]


def context_length(config: Any) -> int | None:
    """The context window of a transformers model config (its text config's ``max_position_embeddings``)."""
    get_text = getattr(config, "get_text_config", None)
    text_cfg = get_text() if callable(get_text) else config
    n = getattr(text_cfg, "max_position_embeddings", None)
    return int(n) if isinstance(n, int) and n > 0 else None


class TransformersClient(BaseChatClient):
    """Chat with a local causal LM (``AutoModelForCausalLM`` + ``AutoTokenizer``) from a folder.

    Parameters
    ----------
    model_path : str or path
        A registered name (``smollm2-135m``, see ``medlens llm list``), a GGUF file, or a folder written by
        ``save_pretrained`` (weights, config and tokenizer). A GGUF file is converted once to a transformers folder
        under ``gguf_cache`` (see :func:`~medlens.llm.gguf_folder`). Nothing is downloaded.
    device : {"cpu", "cuda", "cuda:N", "mps", "auto"}
    dtype : {"float32", "bfloat16", "float16"}
    max_new_tokens : int
        Reply length limit when a call gives no ``max_tokens``.
    cache : bool, path or ResponseCache
        As for :class:`~medlens.llm.OpenAIClient`; keys include a fingerprint of the folder's files.
    gguf_cache : path, optional
        Where GGUF conversions are kept (default ``$MEDLENS_CACHE/llm/models``).
    """

    kind = "transformers"
    _label = "LLM"  # in log lines and errors
    _saved_with = "tokenizer"  # what, beside the model, save_pretrained must have written
    _what = "causal LM"  # in errors about the folder
    _auto_class = "AutoModelForCausalLM"  # the transformers class that loads the weights

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        max_new_tokens: int = 512,
        cache: ResponseCache | bool | str | None = True,
        gguf_cache: str | os.PathLike | None = None,
    ) -> None:
        local = resolve_local_model(model_path)
        if local.gguf_file is not None and self._label != "LLM":
            raise InputError(
                f"--model-path {local.label} is a GGUF file, which medlens reads as a text-only causal LM; a "
                f"{self._label} needs a transformers folder (model.save_pretrained and "
                f"{self._saved_with}.save_pretrained)."
            )
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be a positive int; got {max_new_tokens!r}.")
        set_offline()
        transformers = require("transformers", extra="hf", purpose=f"the local transformers {self._label} client")
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.source = local
        self.path = gguf_folder(local, cache_dir=gguf_cache)  # a GGUF file is converted once, then loads in seconds
        self.model = local.label
        self.max_new_tokens = max_new_tokens
        self.fingerprint = _fingerprint(self.path)
        self.cache = resolve_cache(cache)
        self._transformers = transformers
        self._check_config(transformers)  # a folder that is not this kind of model fails now, not at the first reply
        self._load_tokenizer(transformers)
        if not any(self.path.glob("*.safetensors")) and not any(self.path.glob("*.bin")):
            raise InputError(
                f"{self.path} holds no weights (*.safetensors or *.bin); save the model there with save_pretrained."
            )
        self._lm: Any = None
        self._load_lock = threading.Lock()
        self._lock = threading.Lock()
        self._grammars: GrammarConstraint | None = None
        log.info(
            "local %s %s on %s (%s, %s prompt)",
            self._label,
            self.path.name,
            self.device,
            str(self.dtype).replace("torch.", ""),
            "chat-template" if self.has_chat_template else "plain",
        )

    @property
    def lm(self) -> Any:
        """The model, loaded at first use: a client that only describes itself (the driver of a Ray run, whose
        actors load their own copies) or answers from its cache never loads the weights."""
        if self._lm is None:
            with self._load_lock:
                if self._lm is None:
                    lm = self._load_weights(self._transformers)
                    lm.to(device=self.device, dtype=self.dtype)
                    lm.eval()
                    self._lm = lm
        return self._lm

    def _check_config(self, transformers: Any) -> None:
        """The folder's config must be one ``_auto_class`` loads (a causal LM here, a VLM in the subclass)."""
        auto = getattr(transformers, self._auto_class)
        try:
            config = transformers.AutoConfig.from_pretrained(str(self.path), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"could not load a {self._what} from {self.path}: {exc}") from None
        mapping = getattr(auto, "_model_mapping", None)
        if mapping is not None and type(config) not in mapping:
            raise InputError(
                f"could not load a {self._what} from {self.path}: its config is a {config.model_type!r} model, which "
                f"{self._auto_class} does not load; give a folder of a {self._what}."
            )

    def _load_tokenizer(self, transformers: Any) -> None:
        """Load ``self.tokenizer`` from ``self.path`` and set ``self.has_chat_template``."""
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"could not load the tokenizer of a causal LM from {self.path}: {exc}") from None
        self.has_chat_template = bool(getattr(self.tokenizer, "chat_template", None))

    def _load_weights(self, transformers: Any) -> Any:
        """The model in ``self.path`` (``_auto_class``)."""
        try:
            return getattr(transformers, self._auto_class).from_pretrained(str(self.path), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"could not load a {self._what} from {self.path}: {exc}") from None

    def __repr__(self) -> str:
        return f"TransformersClient({self.model!r}, device={self.device!r})"

    def describe(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "model": self.model,
            "fingerprint": self.fingerprint,
            "prompt_format": "chat_template" if self.has_chat_template else "plain",
        }
        if self.source.gguf_file is not None:
            out["gguf_file"] = self.source.gguf_file
        return out

    def _key_extra(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "max_new_tokens": self.max_new_tokens}

    def format_prompt(self, messages: list[dict[str, Any]]) -> str:
        """The exact text the model is conditioned on (chat template, else :func:`plain_prompt`)."""
        for i, m in enumerate(messages):
            if isinstance(m.get("content"), list) and any(p.get("type") == "image_url" for p in m["content"]):
                raise InputError(
                    f"messages[{i}] holds an image, but TransformersClient runs a text-only causal LM; "
                    "send images to an OpenAI-compatible vision endpoint (OpenAIClient) instead."
                )
        if self.has_chat_template:
            plain = [{"role": m["role"], "content": _text_of(m["content"])} for m in messages]
            return self.tokenizer.apply_chat_template(plain, add_generation_prompt=True, tokenize=False)
        return plain_prompt(messages)

    def _complete(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> ChatResponse:
        prompt = self.format_prompt(messages)
        enc = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=not self.has_chat_template)
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        return self._generate(enc, params)

    def _generate(self, enc: dict[str, Any], params: dict[str, Any]) -> ChatResponse:
        """Generate from encoded inputs (``input_ids`` first) and decode the new tokens into a reply."""
        torch = require("torch", extra="torch")
        n_prompt = int(enc["input_ids"].shape[1])
        max_new = params["max_tokens"] or self.max_new_tokens
        limit = context_length(self.lm.config)
        if limit is not None:
            if n_prompt >= limit:
                raise LLMContextLengthError(
                    f"the prompt is {n_prompt} tokens but {self.model} reads at most {limit}; shorten it (fewer "
                    "retrieved passages, a shorter template) or use a model with a longer context.",
                    n_prompt=n_prompt,
                    limit=limit,
                )
            if n_prompt + max_new > limit:
                log.debug("max new tokens %d cut to %d to fit the %d-token context", max_new, limit - n_prompt, limit)
                max_new = limit - n_prompt
        gen = self._generation_config(params, max_new)
        extra = {}
        grammar = grammar_of(params["response_format"])
        with self._lock, torch.inference_mode():
            if grammar is not None:
                extra["logits_processor"] = self._constraint(gen).logits_processors(grammar)
            if params["temperature"] > 0:
                devices = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(params["seed"] if params["seed"] is not None else 0)
                    out = self.lm.generate(**enc, generation_config=gen, **extra)
            else:
                out = self.lm.generate(**enc, generation_config=gen, **extra)
        new = out[0, n_prompt:]
        n_new = int(new.shape[0])
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        eos = gen.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        finish = "stop" if (n_new < max_new or (n_new and int(new[-1]) in eos_ids)) else "length"
        if not self.has_chat_template and _STOP in text:
            text, finish = text[: text.index(_STOP)], "stop"
        usage = {"prompt_tokens": n_prompt, "completion_tokens": n_new, "total_tokens": n_prompt + n_new}
        return ChatResponse(text=text.strip(), model=self.model, usage=usage, raw=None, finish_reason=finish)

    def _constraint(self, gen: Any) -> GrammarConstraint:
        """The grammar engine for ``response_format`` (built on first use; see :mod:`medlens.llm._constrain`)."""
        if self._grammars is None:
            eos = gen.eos_token_id
            stops = [int(t) for t in (eos if isinstance(eos, list) else [eos]) if t is not None]
            tok = getattr(self.tokenizer, "tokenizer", self.tokenizer)  # a VLM's processor wraps its tokenizer
            vocab = self.lm.get_output_embeddings().weight.shape[0]
            self._grammars = GrammarConstraint(tok, int(vocab), stops)
        return self._grammars

    def _generation_config(self, params: dict[str, Any], max_new: int) -> Any:
        transformers = require("transformers", extra="hf")
        tok = self.tokenizer
        eos = self.lm.generation_config.eos_token_id
        if eos is None:
            eos = tok.eos_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else (eos if not isinstance(eos, list) else eos[0])
        sampling = params["temperature"] > 0
        return transformers.GenerationConfig(
            max_new_tokens=max_new,
            do_sample=sampling,
            temperature=params["temperature"] if sampling else None,
            top_k=None,
            top_p=None,
            num_beams=1,
            eos_token_id=eos,
            pad_token_id=pad if pad is not None else 0,
            bos_token_id=self.lm.generation_config.bos_token_id,
        )
