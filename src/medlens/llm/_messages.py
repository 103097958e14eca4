"""Chat messages in the OpenAI format: validation, images as base64 data URLs, and request keys.

A message is ``{"role": "system" | "user" | "assistant" | "tool", "content": str | [part, ...]}`` where a
part is ``{"type": "text", "text": str}`` or ``{"type": "image_url", "image_url": {"url": "data:..."}}``.
Images (local paths, raw bytes, PIL images or uint8 arrays) are embedded as base64 data URLs, never as
remote links: nothing asks the server to fetch anything.

Request keys (for the on-disk cache and the replay fixtures) are the SHA-256 of a canonical JSON form of
``(client kind, model, messages, params)`` in which every embedded image is replaced by the SHA-256 of its
bytes, so keys are short, stable and do not depend on how the image was passed.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medlens._validation import InputError

__all__ = [
    "ImageInput",
    "attach_images",
    "canonical_messages",
    "check_messages",
    "image_to_data_url",
    "message_text",
    "request_key",
]

ROLES = ("system", "user", "assistant", "tool", "developer")

ImageInput = Any  # str | os.PathLike | bytes | PIL.Image.Image | numpy.ndarray (uint8)

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def _sniff_mime(data: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _encoded_image(image: ImageInput) -> tuple[bytes, str]:
    """Return ``(bytes, mime)`` of one image input."""
    if isinstance(image, bytes | bytearray | memoryview):
        data = bytes(image)
        mime = _sniff_mime(data)
        if mime is None:
            raise InputError(
                f"image bytes ({len(data)} bytes, starting {data[:8]!r}) are not PNG, JPEG, GIF, WEBP or BMP; "
                "convert the image (e.g. a DICOM or NIfTI slice) to PNG first."
            )
        return data, mime
    if isinstance(image, str | os.PathLike):
        text = os.fspath(image)
        if isinstance(text, str) and text.lower().startswith(("http://", "https://")):
            raise InputError(
                f"image {text!r} is a URL; medlens only sends local images (embedded as base64). "
                "Download it yourself and pass the local path."
            )
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"image file {path} does not exist (or is not a file).")
        data = path.read_bytes()
        mime = _sniff_mime(data)
        if mime is None:
            raise InputError(f"image file {path} is not PNG, JPEG, GIF, WEBP or BMP; convert it to PNG first.")
        return data, mime
    if hasattr(image, "save") and hasattr(image, "mode"):  # a PIL image
        return _pil_png(image), "image/png"
    if hasattr(image, "__array_interface__") or hasattr(image, "__array__"):
        return _array_png(image), "image/png"
    raise TypeError(f"an image must be a path, bytes, a PIL image or a uint8 array; got {type(image).__name__}.")


def _pil_png(img: Any) -> bytes:
    buf = io.BytesIO()
    try:
        img.save(buf, format="PNG")
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(
            f"a PIL image of mode {img.mode!r} cannot be written as PNG ({exc}); convert it with "
            "img.convert('L') or img.convert('RGB') first."
        ) from None
    return buf.getvalue()


def _array_png(arr: Any) -> bytes:
    import numpy as np

    from medlens._optional import require

    a = np.asarray(arr)
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4))):
        raise InputError(
            f"an image array must be uint8 of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got dtype {a.dtype} "
            f"and shape {a.shape}. Window and scale it to 0-255 first."
        )
    pil = require("PIL.Image", extra="vision", purpose="sending image arrays to a vision model")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return _pil_png(pil.fromarray(a))


def image_to_data_url(image: ImageInput) -> str:
    """Encode one image as a ``data:<mime>;base64,...`` URL.

    Parameters
    ----------
    image : path, bytes, PIL image or uint8 array
        Paths and bytes are sent as they are (PNG, JPEG, GIF, WEBP or BMP); PIL images and arrays are
        written as PNG.

    Examples
    --------
    >>> png = bytes.fromhex(
    ...     "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    ...     "3a7e9b550000000a49444154789c63600000000200015e2f61b90000000049454e44ae426082")
    >>> image_to_data_url(png)[:30]
    'data:image/png;base64,iVBORw0K'
    """
    if isinstance(image, str) and image.startswith("data:image/"):
        _decode_data_url(image)  # validates
        return image
    data, mime = _encoded_image(image)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _decode_data_url(url: str) -> tuple[str, bytes]:
    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        raise InputError(f"an image data URL must look like 'data:image/png;base64,...'; got {url[:40]!r}...")
    try:
        return head[5:-7], base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"the image data URL {url[:40]!r}... does not hold valid base64.") from None


def check_messages(messages: Any) -> list[dict[str, Any]]:
    """Validate OpenAI-format messages and return them as a new list of plain dicts (deep-copied)."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise TypeError(
            "messages must be a non-empty list of {'role': ..., 'content': ...} dicts; "
            f"got {type(messages).__name__}{'' if not isinstance(messages, Sequence) else ' of length 0'}."
        )
    out = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping):
            raise TypeError(f"messages[{i}] must be a dict with 'role' and 'content'; got {type(msg).__name__}.")
        role, content = msg.get("role"), msg.get("content")
        if role not in ROLES:
            raise InputError(f"messages[{i}]['role'] must be one of {', '.join(ROLES)}; got {role!r}.")
        if isinstance(content, str):
            pass
        elif isinstance(content, Sequence) and not isinstance(content, bytes):
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, Mapping) else None
                if kind == "text" and isinstance(part.get("text"), str):
                    continue
                if kind == "image_url" and isinstance(part.get("image_url"), Mapping):
                    url = part["image_url"].get("url")
                    if not (isinstance(url, str) and url.startswith("data:image/")):
                        raise InputError(
                            f"messages[{i}]['content'][{j}] must embed its image as a base64 data URL "
                            "(medlens never sends remote image links); pass images=[...] to chat() instead."
                        )
                    continue
                raise InputError(
                    f"messages[{i}]['content'][{j}] must be {{'type': 'text', 'text': str}} or "
                    f"{{'type': 'image_url', 'image_url': {{'url': 'data:...'}}}}; got {part!r:.80}."
                )
        elif content is None and role == "assistant":
            pass
        else:
            raise TypeError(
                f"messages[{i}]['content'] must be a string or a list of content parts; got {type(content).__name__}."
            )
        out.append(copy.deepcopy(dict(msg)))
    return out


def attach_images(messages: Sequence[Mapping[str, Any]], images: Sequence[ImageInput] | None) -> list[dict[str, Any]]:
    """Return a copy of ``messages`` with ``images`` appended to the last user message as ``image_url`` parts.

    The text of that message comes first, then the images in the order given (the OpenAI convention).
    ``images=None`` or ``[]`` returns a validated copy unchanged.
    """
    msgs = check_messages(messages)
    if images is None:
        return msgs
    if isinstance(images, str | bytes | os.PathLike) or hasattr(images, "mode"):
        images = [images]  # one image passed on its own
    images = list(images)
    if not images:
        return msgs
    idx = next((i for i in range(len(msgs) - 1, -1, -1) if msgs[i]["role"] == "user"), None)
    if idx is None:
        raise InputError("images need a user message to attach to; the messages hold none.")
    content = msgs[idx]["content"]
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    parts += [{"type": "image_url", "image_url": {"url": image_to_data_url(im)}} for im in images]
    msgs[idx]["content"] = parts
    return msgs


def canonical_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages with every embedded image replaced by ``{"type": "image", "sha256": ..., "mime": ...}``.

    This is what request keys hash and what replay fixtures store: no base64 payloads.
    """
    out = []
    for msg in messages:
        m = {k: v for k, v in msg.items()}
        content = m.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if part.get("type") == "image_url":
                    mime, data = _decode_data_url(part["image_url"]["url"])
                    parts.append({"type": "image", "mime": mime, "sha256": hashlib.sha256(data).hexdigest()})
                else:
                    parts.append(dict(part))
            m["content"] = parts
        out.append(m)
    return out


def message_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """A readable one-string rendering of (canonical) messages, for logs at DEBUG and replay diagnostics."""
    lines = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):
            bits = []
            for part in content:
                if part.get("type") == "text":
                    bits.append(part["text"])
                elif part.get("type") == "image":
                    bits.append(f"<image {part['sha256'][:12]}>")
                else:
                    bits.append("<image>")
            content = " ".join(bits)
        lines.append(f"{msg.get('role')}: {content or ''}")
    return "\n".join(lines)


def request_key(kind: str, model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> str:
    """SHA-256 hex key of ``(kind, model, canonical messages, params)``; dict key order does not matter.

    ``messages`` may hold data-URL images or already be canonical (see :func:`canonical_messages`).
    """
    needs = any(
        isinstance(m.get("content"), list) and any(p.get("type") == "image_url" for p in m["content"]) for m in messages
    )
    msgs = canonical_messages(messages) if needs else list(messages)
    blob = json.dumps(
        {"kind": kind, "model": model, "messages": msgs, "params": dict(params)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
