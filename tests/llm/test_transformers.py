"""TransformersClient on a tiny randomly initialised GPT-2 saved to disk and loaded by path, as users do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch  # noqa: E402
from tests.llm._server import tiny_png  # noqa: E402

from medlens.llm import TransformersClient, plain_prompt  # noqa: E402

WORDS = [
    "System",
    "User",
    "Assistant",
    "Tool",
    ":",
    ".",
    ",",
    "?",
    "!",
    "the",
    "a",
    "lesion",
    "mass",
    "cyst",
    "edema",
    "tumor",
    "glioma",
    "meningioma",
    "abscess",
    "brain",
    "left",
    "right",
    "frontal",
    "temporal",
    "lobe",
    "white",
    "matter",
    "enhancing",
    "ring",
    "T1",
    "T2",
    "FLAIR",
    "DWI",
    "yes",
    "no",
    "<",
    ">",
    "/",
    "|",
    "be",
    "brief",
    "answer",
    "patient",
    "case",
    "with",
    "and",
    "of",
    "in",
    "is",
    "has",
    "enhancing",
]
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def _save_tiny_lm(folder: Path, *, chat_template: str | None) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    specials = ["<unk>", "<pad>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(specials + WORDS))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    fast.add_special_tokens({"additional_special_tokens": ["<|system|>", "<|user|>", "<|assistant|>"]})
    if chat_template:
        fast.chat_template = chat_template
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=len(vocab),
        n_positions=256,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=vocab["</s>"],
        eos_token_id=vocab["</s>"],
        pad_token_id=vocab["<pad>"],
    )
    model = GPT2LMHeadModel(cfg)
    with torch.no_grad():  # make the end-of-sequence token unlikely so replies have a predictable length
        model.lm_head.weight[vocab["</s>"]].zero_()
        model.transformer.wte.weight[vocab["</s>"]].zero_()
    folder.mkdir(parents=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    return _save_tiny_lm(tmp_path_factory.mktemp("lm") / "tiny-gpt2", chat_template=None)


@pytest.fixture(scope="module")
def tiny_chat_lm(tmp_path_factory) -> Path:
    return _save_tiny_lm(tmp_path_factory.mktemp("lm") / "tiny-gpt2-chat", chat_template=TEMPLATE)


MSGS = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "the patient has a ring enhancing lesion in the left frontal lobe ?"},
]


def test_greedy_is_deterministic_and_matches_plain_generate(tiny_lm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    client = TransformersClient(tiny_lm, max_new_tokens=8, cache=False)
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # loading set the hub libraries offline
    assert client.has_chat_template is False
    prompt = client.format_prompt(MSGS)
    assert prompt == "System: be brief\n\nUser: " + MSGS[1]["content"] + "\n\nAssistant:"
    a, b = client.chat(MSGS), client.chat(MSGS)
    assert a.text == b.text
    assert a.text
    assert a.usage["completion_tokens"] == 8
    assert a.finish_reason == "length"
    # the same folder through plain transformers, greedy
    tok = AutoTokenizer.from_pretrained(str(tiny_lm))
    assert tok.unk_token_id not in tok(prompt)["input_ids"]  # every word of the prompt is in the tiny vocabulary
    assert a.usage["prompt_tokens"] == len(tok(prompt)["input_ids"]) == 21
    lm = AutoModelForCausalLM.from_pretrained(str(tiny_lm)).eval()
    ids = tok(prompt, return_tensors="pt")
    out = lm.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    assert a.text == tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def test_seeded_sampling_is_reproducible_and_leaves_global_rng_alone(tiny_lm):
    client = TransformersClient(tiny_lm, max_new_tokens=12, cache=False)
    state = torch.get_rng_state()
    s1 = client.chat(MSGS, temperature=1.5, seed=1).text
    assert torch.equal(torch.get_rng_state(), state)
    assert client.chat(MSGS, temperature=1.5, seed=1).text == s1
    others = {client.chat(MSGS, temperature=1.5, seed=s).text for s in (2, 3, 4)}
    assert others - {s1}  # other seeds give other samples
    assert client.chat(MSGS, temperature=0, seed=1).text == client.chat(MSGS, temperature=0, seed=2).text


def test_max_tokens_overrides_and_cache_applies(tiny_lm, tmp_path):
    client = TransformersClient(tiny_lm, max_new_tokens=8, cache=tmp_path / "cache")
    r = client.chat(MSGS, max_tokens=3)
    assert r.usage["completion_tokens"] == 3
    assert not r.cached
    hit = client.chat(MSGS, max_tokens=3)
    assert hit.cached
    assert hit.text == r.text
    assert client.describe()["prompt_format"] == "plain"
    assert len(client.describe()["fingerprint"]) == 16


def test_chat_template_is_used_when_present(tiny_chat_lm):
    client = TransformersClient(tiny_chat_lm, max_new_tokens=5, cache=False)
    assert client.has_chat_template
    prompt = client.format_prompt(MSGS)
    assert prompt.startswith("<|system|> be brief </s> <|user|> the patient")
    assert prompt.endswith("<|assistant|> ")
    r = client.chat(MSGS)
    assert r.usage["completion_tokens"] == 5
    assert r.text == client.chat(MSGS).text


def test_plain_prompt_cuts_a_reply_at_the_next_user_turn():
    assert plain_prompt(
        [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    ) == ("User: a\nb\n\nAssistant:")


def test_images_and_bad_paths_are_refused(tiny_lm, tmp_path):
    client = TransformersClient(tiny_lm, cache=False)
    with pytest.raises(ValueError, match="text-only causal LM; send images to an OpenAI-compatible vision endpoint"):
        client.chat(MSGS, images=[tiny_png()])
    with pytest.raises(ValueError, match="not a folder holding a transformers model"):
        TransformersClient(tmp_path / "missing")
    with pytest.raises(ValueError, match="max_new_tokens must be a positive int"):
        TransformersClient(tiny_lm, max_new_tokens=0)
    with pytest.raises(ValueError, match="float16 inference is not supported on CPU"):
        TransformersClient(tiny_lm, dtype="float16")
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="could not load a causal LM"):
        TransformersClient(empty)
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    for f in Path(tiny_lm).iterdir():
        if f.suffix not in (".safetensors", ".bin"):
            (no_weights / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ValueError, match="holds no weights"):
        TransformersClient(no_weights)


def test_weights_load_at_the_first_reply_only(tiny_lm, tmp_path):
    """A client that only describes itself (a Ray driver) or answers from its cache never loads the weights."""
    client = TransformersClient(tiny_lm, max_new_tokens=4, cache=tmp_path / "cache")
    described = client.describe()
    assert client._lm is None
    first = client.chat(MSGS)
    assert client._lm is not None
    again = TransformersClient(tiny_lm, max_new_tokens=4, cache=tmp_path / "cache")
    hit = again.chat(MSGS)
    assert hit.cached
    assert hit.text == first.text
    assert again._lm is None
    assert again.describe() == described
    assert again.lm is again.lm  # loaded once


def test_context_window_cuts_new_tokens_and_refuses_prompts_that_do_not_fit(tiny_lm):
    """n_positions is 256: a reply is cut to what fits; a prompt of 256+ tokens is a clear LLMContextLengthError."""
    from medlens.llm import LLMContextLengthError
    from medlens.llm._transformers import context_length

    client = TransformersClient(tiny_lm, max_new_tokens=8, cache=False)
    assert context_length(client.lm.config) == 256
    n_prompt = client.chat(MSGS).usage["prompt_tokens"]
    words = "lesion " * (256 - n_prompt - 3)  # leaves exactly 3 positions for the reply
    long_msgs = [MSGS[0], {"role": "user", "content": MSGS[1]["content"] + " " + words}]
    r = client.chat(long_msgs)
    assert r.usage["prompt_tokens"] + r.usage["completion_tokens"] == 256
    assert r.usage["completion_tokens"] == 3
    assert r.finish_reason == "length"
    too_long = [MSGS[0], {"role": "user", "content": "lesion " * 300}]
    with pytest.raises(LLMContextLengthError, match=r"reads at most 256") as info:
        client.chat(too_long)
    assert info.value.limit == 256
    assert info.value.n_prompt > 256
