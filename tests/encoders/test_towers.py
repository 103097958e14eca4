"""The Tower contract every adapter keeps: unnormalised, differentiable features; real blocks, head and LoRA targets."""

from __future__ import annotations

import numpy as np
import pytest

from medlens._validation import InputError

torch = pytest.importorskip("torch")

CASES = [
    ("clip", "text"),
    ("clip", "image"),
    ("siglip", "text"),
    ("siglip", "image"),
    ("dinov2", "image"),
    ("convnext", "image"),
    ("bert", "text"),
    ("open_clip", "text"),
    ("open_clip", "image"),
    ("biomedclip_like", "text"),
    ("biomedclip_like", "image"),
    ("timm", "image"),
    ("minilm", "text"),
]
IDS = [f"{k}-{m}" for k, m in CASES]


def _load(key, model_dirs, tmp_path_factory, **kw):
    from medlens.encoders import load_encoder

    if key == "minilm":
        return load_encoder("minilm", cache_dir=tmp_path_factory.mktemp("emb"), **kw)
    return load_encoder(model_dirs[key], **kw)


@pytest.fixture(scope="module")
def loaded(model_dirs, tmp_path_factory):
    cache = {}

    def get(key):
        if key not in cache:
            cache[key] = _load(key, model_dirs, tmp_path_factory)
        return cache[key]

    return get


def _items(modality, texts, imgs):
    return texts if modality == "text" else imgs


@pytest.mark.parametrize(("key", "modality"), CASES, ids=IDS)
def test_encode_is_the_normalised_tower_forward(loaded, texts, imgs, key, modality):
    enc = loaded(key)
    items = _items(modality, texts, imgs)
    encode = enc.encode_texts if modality == "text" else enc.encode_images
    out = encode(items, batch_size=2)
    tw = enc.tower(modality)
    assert out.shape == (len(items), enc.config.embedding_dim) == (len(items), tw.dim)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    with torch.no_grad():
        raw = tw.forward(tw.prepare(items)).float()
    assert not torch.allclose(raw.norm(dim=-1), torch.ones(len(items)), atol=1e-3)  # the tower keeps lengths
    np.testing.assert_allclose(out, torch.nn.functional.normalize(raw, dim=-1).numpy(), atol=1e-5)
    assert encode([]).shape == (0, enc.config.embedding_dim)


@pytest.mark.parametrize(("key", "modality"), CASES, ids=IDS)
def test_gradients_reach_the_last_block_and_the_head(loaded, texts, imgs, key, modality):
    enc = loaded(key)
    tw = enc.tower(modality)
    assert tw.blocks, "no transformer blocks found"
    params = dict(tw.module.named_parameters())
    assert params, "the tower module owns no parameters"
    tw.module.zero_grad(set_to_none=True)
    out = tw.forward(tw.prepare(_items(modality, texts, imgs)[:2]))
    assert out.requires_grad
    out.float().pow(2).sum().backward()
    owned = {id(p) for p in params.values()}
    for part in [tw.blocks[-1], *tw.head]:
        ps = list(part.parameters())
        assert ps, f"{type(part).__name__} has no parameters"
        assert all(id(p) in owned for p in ps), f"{type(part).__name__} is not part of the tower module"
        assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in ps), type(part).__name__
    tw.module.zero_grad(set_to_none=True)


@pytest.mark.parametrize(("key", "modality"), CASES, ids=IDS)
def test_lora_targets_are_real_linear_layers_that_peft_can_adapt(
    model_dirs, tmp_path_factory, texts, imgs, key, modality
):
    peft = pytest.importorskip("peft")
    enc = _load(key, model_dirs, tmp_path_factory)  # fresh: LoRA injection edits the model in place
    tw = enc.tower(modality)
    assert tw.lora_targets
    linear = [n for n, m in tw.module.named_modules() if isinstance(m, torch.nn.Linear)]
    last = {id(m) for m in tw.blocks[-1].modules()}
    for t in tw.lora_targets:
        hits = [n for n in linear if n == t or n.endswith("." + t)]
        assert hits, f"no Linear layer named *.{t}"
        assert any(id(tw.module.get_submodule(n)) in last for n in hits), f"{t} is not in the last block"
    peft.inject_adapter_in_model(peft.LoraConfig(r=2, target_modules=list(tw.lora_targets)), tw.module)
    lora = {n: p for n, p in tw.module.named_parameters() if "lora_" in n}
    assert lora
    out = tw.forward(tw.prepare(_items(modality, texts, imgs)[:2]))
    out.float().pow(2).sum().backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in lora.values())


@pytest.mark.parametrize(
    ("key", "missing"), [("dinov2", "text"), ("timm", "text"), ("bert", "image"), ("minilm", "image")]
)
def test_modality_errors(loaded, texts, imgs, key, missing):
    enc = loaded(key)
    with pytest.raises(InputError, match=f"encodes {enc.config.modality} only, not {missing}s"):
        enc.tower(missing)
    with pytest.raises(InputError, match=f"not {missing}s; use --"):
        (enc.encode_texts if missing == "text" else enc.encode_images)(_items(missing, texts, imgs))


def test_no_normalize_returns_the_raw_features(model_dirs, tmp_path_factory, imgs, loaded):
    raw = _load("timm", model_dirs, tmp_path_factory, normalize=False)
    assert raw.config.normalized is False
    out = raw.encode_images(imgs)
    np.testing.assert_allclose(
        out / np.linalg.norm(out, axis=1, keepdims=True), loaded("timm").encode_images(imgs), atol=1e-5
    )
    assert not np.allclose(np.linalg.norm(out, axis=1), 1.0)


def test_batch_size_must_be_positive(loaded, imgs):
    with pytest.raises(InputError, match="batch size must be >= 1"):
        loaded("timm").encode_images(imgs, batch_size=0)
