"""TransformersVLMClient on a tiny randomly initialised LLaVA saved to disk and loaded by path, as users do."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("PIL")

import torch  # noqa: E402
from tests.llm._server import tiny_png  # noqa: E402
from tests.llm._tiny_vlm import save_tiny_llava  # noqa: E402

from medlens.llm import TransformersVLMClient, attach_images, chat_json  # noqa: E402

MSGS = [
    {"role": "system", "content": "describe the finding"},
    {"role": "user", "content": "the image shows a lesion ?"},
]


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    return save_tiny_llava(tmp_path_factory.mktemp("vlm") / "tiny-llava")


@pytest.fixture(scope="module")
def tiny_vlm_plain(tmp_path_factory):
    return save_tiny_llava(tmp_path_factory.mktemp("vlm") / "tiny-llava-plain", chat_template=None)


def test_image_reply_matches_plain_transformers_generate(tiny_vlm):
    import io

    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    client = TransformersVLMClient(tiny_vlm, max_new_tokens=6, cache=False)
    png = tiny_png((200, 30, 30), size=(40, 30))
    r = client.chat(MSGS, images=[png])
    assert r.text
    assert r.usage["completion_tokens"] == 6
    assert r.text == client.chat(MSGS, images=[png]).text  # greedy = deterministic
    client_messages = attach_images(MSGS, [png])
    prompt = client.format_prompt(client_messages)
    assert (
        prompt == "<|system|> describe the finding </s> <|user|> the image shows a lesion ? <image> </s> <|assistant|> "
    )
    assert client_messages[-1]["content"][1]["type"] == "image_url"
    # the same folder through plain transformers
    proc = AutoProcessor.from_pretrained(str(tiny_vlm))
    model = AutoModelForImageTextToText.from_pretrained(str(tiny_vlm)).eval()
    img = Image.open(io.BytesIO(png)).convert("RGB")
    enc = proc(text=prompt, images=[img], return_tensors="pt")
    assert r.usage["prompt_tokens"] == enc["input_ids"].shape[1]
    out = model.generate(**enc, max_new_tokens=6, do_sample=False, pad_token_id=proc.tokenizer.pad_token_id)
    assert r.text == proc.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def test_the_image_reaches_the_model(tiny_vlm):
    client = TransformersVLMClient(tiny_vlm, max_new_tokens=1, cache=False)
    seen = []
    orig = client.lm.generate

    def spy(**kw):
        seen.append(kw["pixel_values"].clone())
        return orig(**kw)

    client.lm.generate = spy
    client.chat(MSGS, images=[tiny_png((255, 255, 255), size=(28, 28))])
    client.chat(MSGS, images=[tiny_png((0, 0, 0), size=(28, 28))])
    assert len(seen) == 2
    assert seen[0].shape == (1, 3, 28, 28)
    assert not torch.equal(seen[0], seen[1])
    import io

    from PIL import Image

    grey = tiny_png((90, 90, 90), size=(28, 28))
    buf = io.BytesIO()
    Image.new("L", (28, 28), 90).save(buf, format="PNG")
    client.chat(MSGS, images=[buf.getvalue()])  # a grey-scale slice is converted to RGB
    client.chat(MSGS, images=[grey])
    assert torch.equal(seen[2], seen[3])


def test_text_only_and_cache_and_sampling(tiny_vlm, tmp_path):
    client = TransformersVLMClient(tiny_vlm, max_new_tokens=4, cache=tmp_path / "cache")
    a = client.chat(MSGS)
    assert not a.cached
    assert client.chat(MSGS).cached
    assert client.describe()["kind"] == "transformers-vlm"
    assert len(client.describe()["fingerprint"]) == 16
    state = torch.get_rng_state()
    s1 = client.chat(MSGS, temperature=1.5, seed=1, max_tokens=8).text
    assert torch.equal(torch.get_rng_state(), state)
    assert (
        TransformersVLMClient(tiny_vlm, max_new_tokens=4, cache=False)
        .chat(MSGS, temperature=1.5, seed=1, max_tokens=8)
        .text
        == s1
    )
    ans = chat_json(client, MSGS, repair=False)  # random weights: not JSON, reported, not raised
    assert not ans.ok
    assert ans.error


def test_plain_prompt_places_the_image_token(tiny_vlm_plain):
    client = TransformersVLMClient(tiny_vlm_plain, max_new_tokens=3, cache=False)
    assert not client.has_chat_template
    msgs = attach_images(MSGS, [tiny_png()])
    assert client.format_prompt(msgs) == (
        "System: describe the finding\n\nUser: <image>\nthe image shows a lesion ?\n\nAssistant:"
    )
    assert client.chat(msgs).usage["completion_tokens"] == 3


def test_bad_folders_are_refused(tmp_path, tiny_vlm):
    with pytest.raises(ValueError, match="not a folder holding a transformers model"):
        TransformersVLMClient(tmp_path / "missing")
    with pytest.raises(ValueError, match="max_new_tokens must be a positive int"):
        TransformersVLMClient(tiny_vlm, max_new_tokens=0)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="could not load a vision-language model"):
        TransformersVLMClient(tmp_path)
