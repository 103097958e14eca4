"""Vision messages: images become base64 data URLs on the last user message; keys hash the image bytes."""

from __future__ import annotations

import base64
import hashlib
import io

import numpy as np
import pytest
from tests.llm._server import tiny_png

from medlens.llm import OpenAIClient, attach_images, canonical_messages, image_to_data_url, request_key

PARAMS = {"temperature": 0.0, "seed": 0, "max_tokens": None, "response_format": None}


def _decode(url: str) -> tuple[str, bytes]:
    head, payload = url.split(",", 1)
    return head, base64.b64decode(payload)


def test_png_bytes_path_pil_and_array_become_png_data_urls(tmp_path):
    from PIL import Image

    png = tiny_png((255, 0, 0))
    path = tmp_path / "slice.png"
    path.write_bytes(png)
    for image in (png, path, str(path)):
        head, data = _decode(image_to_data_url(image))
        assert head == "data:image/png;base64"
        assert data == png
    head, data = _decode(image_to_data_url(Image.new("L", (3, 2), 128)))
    assert head == "data:image/png;base64"
    assert Image.open(io.BytesIO(data)).size == (3, 2)
    arr = np.zeros((4, 5, 3), dtype=np.uint8)
    arr[..., 1] = 200
    _, data = _decode(image_to_data_url(arr))
    back = np.asarray(Image.open(io.BytesIO(data)))
    assert back.shape == (4, 5, 3)
    assert (back == arr).all()


def test_jpeg_keeps_its_mime(tmp_path):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buf, format="JPEG")
    assert image_to_data_url(buf.getvalue()).startswith("data:image/jpeg;base64,")


def test_attach_images_to_last_user_message():
    msgs = [
        {"role": "system", "content": "You are a radiologist."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "Describe the abnormality."},
    ]
    png_a, png_b = tiny_png((255, 0, 0)), tiny_png((0, 0, 255))
    out = attach_images(msgs, [png_a, png_b])
    assert msgs[-1]["content"] == "Describe the abnormality."  # the input is not modified
    assert out[:3] == msgs[:3]
    parts = out[-1]["content"]
    assert parts[0] == {"type": "text", "text": "Describe the abnormality."}
    assert [p["type"] for p in parts] == ["text", "image_url", "image_url"]
    assert _decode(parts[1]["image_url"]["url"])[1] == png_a
    assert _decode(parts[2]["image_url"]["url"])[1] == png_b
    assert attach_images(msgs, png_a)[-1]["content"][1]["type"] == "image_url"  # a single image on its own


def test_image_request_reaches_the_server_as_base64(llm_server):
    png = tiny_png((10, 20, 30))
    OpenAIClient(llm_server.url, "vlm", cache=False).chat(
        [{"role": "user", "content": "Where is the lesion?"}], images=[png]
    )
    content = llm_server.requests[-1]["body"]["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "Where is the lesion?"}
    assert content[1]["type"] == "image_url"
    assert content[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png).decode()


def test_keys_hash_image_bytes_not_how_they_were_passed(tmp_path):
    png = tiny_png()
    path = tmp_path / "a.png"
    path.write_bytes(png)
    msgs = [{"role": "user", "content": "x"}]
    k_bytes = request_key("openai", "vlm", attach_images(msgs, [png]), PARAMS)
    k_path = request_key("openai", "vlm", attach_images(msgs, [path]), PARAMS)
    k_other = request_key("openai", "vlm", attach_images(msgs, [tiny_png((0, 255, 0))]), PARAMS)
    k_none = request_key("openai", "vlm", msgs, PARAMS)
    assert k_bytes == k_path
    assert len({k_bytes, k_other, k_none}) == 3
    canon = canonical_messages(attach_images(msgs, [png]))
    assert canon[0]["content"][1] == {"type": "image", "mime": "image/png", "sha256": hashlib.sha256(png).hexdigest()}
    assert "base64" not in str(canon)
    assert request_key("openai", "vlm", canon, PARAMS) == k_bytes  # canonical messages key the same


def test_request_key_sensitivity():
    msgs = [{"role": "user", "content": "x"}]
    base = request_key("openai", "m", msgs, PARAMS)
    assert request_key("openai", "m", msgs, dict(reversed(list(PARAMS.items())))) == base  # order-free
    assert request_key("openai", "m", [{"content": "x", "role": "user"}], PARAMS) == base
    variants = [
        request_key("transformers", "m", msgs, PARAMS),
        request_key("openai", "m2", msgs, PARAMS),
        request_key("openai", "m", [{"role": "user", "content": "y"}], PARAMS),
        request_key("openai", "m", msgs, {**PARAMS, "seed": 1}),
        request_key("openai", "m", msgs, {**PARAMS, "temperature": 0.7}),
        request_key("openai", "m", msgs, {**PARAMS, "max_tokens": 5}),
    ]
    assert len({base, *variants}) == 7


@pytest.mark.parametrize(
    ("image", "exc", "match"),
    [
        (b"DICM not an image", ValueError, "not PNG, JPEG, GIF, WEBP or BMP"),
        ("https://example.com/x.png", ValueError, "is a URL; medlens only sends local images"),
        ("/no/such/file.png", FileNotFoundError, "does not exist"),
        (np.zeros((4, 4), dtype=np.float32), ValueError, "must be uint8"),
        (12, TypeError, "must be a path, bytes, a PIL image or a uint8 array"),
    ],
)
def test_bad_images(image, exc, match):
    with pytest.raises(exc, match=match):
        image_to_data_url(image)


def test_unwritable_pil_mode_is_explained():
    from PIL import Image

    with pytest.raises(ValueError, match="cannot be written as PNG.*convert"):
        image_to_data_url(Image.new("CMYK", (2, 2)))


def test_message_structure_errors():
    with pytest.raises(ValueError, match="need a user message"):
        attach_images([{"role": "system", "content": "s"}], [tiny_png()])
    remote = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]
    with pytest.raises(ValueError, match="base64 data URL"):
        attach_images(remote, None)
    with pytest.raises(ValueError, match=r"content'\]\[0\] must be"):
        attach_images([{"role": "user", "content": [{"type": "audio"}]}], None)
    bad_b64 = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]
    with pytest.raises(ValueError, match="valid base64"):
        request_key("openai", "m", bad_b64, PARAMS)
