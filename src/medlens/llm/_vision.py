"""A chat client for a local vision-language model (transformers), offline and deterministic.

The folder must hold what ``AutoProcessor`` and ``AutoModelForImageTextToText`` load (LLaVA, Qwen2-VL,
Idefics, PaliGemma, Gemma 3, ... in transformers 5.x). Messages arrive in the OpenAI format, images as base64
data URLs (what :func:`~medlens.llm.attach_images` makes); each image part becomes ``{"type": "image"}`` in
the Hugging Face chat format and the decoded image is passed to the processor, in message order.

The prompt is the processor's chat template (``add_generation_prompt=True``) when it has one. Otherwise it is
the plain format of :func:`~medlens.llm.plain_prompt` with the processor's image token (``processor.image_token``)
written once per image before the text of its message; a processor with neither is refused. Decoding,
sampling with ``seed`` and the weights fingerprint in cache keys work as in
:class:`~medlens.llm.TransformersClient`. Weights load from a local folder only (hub libraries set offline,
``local_files_only=True``, no remote code).
"""

from __future__ import annotations

import io
import logging
import os
from typing import Any

from medlens._optional import require
from medlens._validation import InputError
from medlens.llm._base import ChatResponse
from medlens.llm._cache import ResponseCache
from medlens.llm._messages import _decode_data_url
from medlens.llm._transformers import _ROLE_NAMES, TransformersClient

__all__ = ["TransformersVLMClient"]

log = logging.getLogger("medlens.llm")


class TransformersVLMClient(TransformersClient):
    """Chat with a local vision-language model (``AutoModelForImageTextToText`` + ``AutoProcessor``).

    Parameters
    ----------
    model_path : path
        A folder written by ``model.save_pretrained`` and ``processor.save_pretrained``. Nothing is downloaded.
    device : {"cpu", "cuda", "cuda:N", "mps", "auto"}
    dtype : {"float32", "bfloat16", "float16"}
    max_new_tokens : int
        Reply length limit when a call gives no ``max_tokens``.
    image_mode : str or None
        Convert every image to this PIL mode before the processor sees it (default ``"RGB"``: grey-scale MRI
        slices become three equal channels, which every vision tower expects); ``None`` keeps them as they are.
    cache : bool, path or ResponseCache
        As for :class:`~medlens.llm.OpenAIClient`; keys include a fingerprint of the folder's files.

    Examples
    --------
    >>> client = TransformersVLMClient("models/llava-tiny")                     # doctest: +SKIP
    >>> client.chat([{"role": "user", "content": "Describe the finding."}], images=["scan.png"]).text  # doctest: +SKIP
    """

    kind = "transformers-vlm"
    _label = "VLM"
    _saved_with = "processor"
    _what = "vision-language model"
    _auto_class = "AutoModelForImageTextToText"

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        max_new_tokens: int = 512,
        image_mode: str | None = "RGB",
        cache: ResponseCache | bool | str | None = True,
    ) -> None:
        self.image_mode = image_mode
        super().__init__(model_path, device=device, dtype=dtype, max_new_tokens=max_new_tokens, cache=cache)

    def _check_config(self, transformers: Any) -> None:
        require("PIL.Image", extra="vision", purpose="the local transformers VLM client")
        if getattr(transformers, "AutoModelForImageTextToText", None) is None:  # pragma: no cover - < 4.46
            raise ImportError(
                "TransformersVLMClient needs transformers >= 4.46 (AutoModelForImageTextToText); "
                'upgrade with pip install -U "medlens[hf]".'
            )
        super()._check_config(transformers)

    def _load_tokenizer(self, transformers: Any) -> None:
        try:
            self.processor = transformers.AutoProcessor.from_pretrained(str(self.path), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(
                f"could not load the processor of a vision-language model from {self.path}: {exc}"
            ) from None
        self.tokenizer = getattr(self.processor, "tokenizer", None)
        if self.tokenizer is None:
            raise InputError(
                f"the processor in {self.path} has no tokenizer; save a processor with one (processor.save_pretrained)."
            )
        self.has_chat_template = bool(getattr(self.processor, "chat_template", None))
        self.image_token = getattr(self.processor, "image_token", None)
        if not self.has_chat_template and not self.image_token:
            raise InputError(
                f"the processor in {self.path} has neither a chat template nor an image token; medlens cannot tell "
                "where the images go in the prompt. Save a processor with a chat_template."
            )

    def __repr__(self) -> str:
        return f"TransformersVLMClient({self.model!r}, device={self.device!r})"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "image_mode": self.image_mode}

    def _key_extra(self) -> dict[str, Any]:
        return {**super()._key_extra(), "image_mode": self.image_mode}

    # -- prompt ---------------------------------------------------------------------------------------------
    def _split(self, messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Any]]:
        """Hugging Face chat messages (image parts as ``{"type": "image"}``) and the decoded images, in order."""
        pil = require("PIL.Image", extra="vision")
        hf: list[dict[str, Any]] = []
        images: list[Any] = []
        for m in messages:
            content = m.get("content")
            if not isinstance(content, list):
                hf.append({"role": m["role"], "content": [{"type": "text", "text": content or ""}]})
                continue
            parts = []
            for p in content:
                if p.get("type") == "image_url":
                    _, data = _decode_data_url(p["image_url"]["url"])
                    try:
                        img = pil.open(io.BytesIO(data))
                        img.load()
                    except Exception as exc:  # noqa: BLE001 - PIL raises several types for broken images
                        raise InputError(f"an image of messages could not be decoded ({exc}).") from None
                    images.append(img.convert(self.image_mode) if self.image_mode else img)
                    parts.append({"type": "image"})
                else:
                    parts.append({"type": "text", "text": p["text"]})
            hf.append({"role": m["role"], "content": parts})
        return hf, images

    def _plain(self, hf: list[dict[str, Any]]) -> str:
        blocks = []
        for m in hf:
            n_img = sum(1 for p in m["content"] if p["type"] == "image")
            text = "\n".join(p["text"] for p in m["content"] if p["type"] == "text").strip()
            blocks.append(f"{_ROLE_NAMES[m['role']]}: {(self.image_token + chr(10)) * n_img}{text}")
        return "\n\n".join([*blocks, "Assistant:"])

    def format_prompt(self, messages: list[dict[str, Any]]) -> str:
        """The exact text the model is conditioned on (images appear as the template's image placeholders)."""
        return self._prompt(self._split(messages)[0])

    def _prompt(self, hf: list[dict[str, Any]]) -> str:
        if self.has_chat_template:
            return self.processor.apply_chat_template(hf, add_generation_prompt=True, tokenize=False)
        return self._plain(hf)

    # -- generation -----------------------------------------------------------------------------------------
    def _complete(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> ChatResponse:
        torch = require("torch", extra="torch")
        hf, images = self._split(messages)
        kwargs: dict[str, Any] = {"text": self._prompt(hf), "return_tensors": "pt"}
        if images:
            kwargs["images"] = images
        try:
            enc = self.processor(**kwargs)
        except (ValueError, TypeError) as exc:
            raise InputError(f"the processor of {self.path.name} rejected the prompt and images: {exc}") from None
        enc = {k: (v.to(self.device) if hasattr(v, "to") else v) for k, v in dict(enc).items()}
        if "pixel_values" in enc and torch.is_floating_point(enc["pixel_values"]):
            enc["pixel_values"] = enc["pixel_values"].to(self.dtype)
        return self._generate(enc, params)
