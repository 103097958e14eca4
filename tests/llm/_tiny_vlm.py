"""A tiny randomly initialised LLaVA (CLIP vision tower + Llama) with a locally built tokenizer and processor.

Saved with ``save_pretrained`` and loaded back by path, exactly as users load real weights. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

WORDS = [
    "the",
    "a",
    "an",
    "of",
    "in",
    "with",
    "and",
    "is",
    "no",
    "yes",
    "lesion",
    "mass",
    "cyst",
    "tumor",
    "glioma",
    "edema",
    "left",
    "right",
    "brain",
    "image",
    "shows",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"',
    "boxes",
    "scores",
    "primary",
    "differentials",
    "caption",
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    ".",
    "?",
    "describe",
    "finding",
    "diagnosis",
    "history",
]
SPECIALS = ["<unk>", "<pad>", "</s>", "<s>", "<image>", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {% if m['content'] is string %}{{ m['content'] }} {% else %}"
    "{% for p in m['content'] %}{% if p['type'] == 'image' %}<image> {% else %}{{ p['text'] }} {% endif %}"
    "{% endfor %}{% endif %}</s> {% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def save_tiny_llava(folder: Path, *, chat_template: str | None = CHAT_TEMPLATE, seed: int = 0) -> Path:
    """Write a ~50 kB LLaVA to ``folder`` (vision 28x28 px, 2x2 patches, one layer each) and return it."""
    import torch
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {t: i for i, t in enumerate(dict.fromkeys(SPECIALS + WORDS))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>", bos_token="<s>"
    )
    fast.add_special_tokens({"additional_special_tokens": ["<image>", "<|system|>", "<|user|>", "<|assistant|>"]})
    vision = transformers.CLIPVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14
    )
    text = transformers.LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["</s>"],
        bos_token_id=vocab["<s>"],
    )
    cfg = transformers.LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=vocab["<image>"],
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(seed)
    model = transformers.LlavaForConditionalGeneration(cfg)
    with torch.no_grad():  # make the end-of-sequence token unlikely so replies are not empty
        model.get_output_embeddings().weight[vocab["</s>"]].zero_()
    processor = transformers.LlavaProcessor(
        image_processor=transformers.CLIPImageProcessor(
            size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
        ),
        tokenizer=fast,
        patch_size=14,
        vision_feature_select_strategy="default",
        chat_template=chat_template,
        image_token="<image>",
        num_additional_image_tokens=1,
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
