"""open_clip adapter: features equal open_clip's own local-dir model, tokenizer and transform."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from medlens._validation import InputError

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

pytestmark = pytest.mark.reference


def _reference(folder, texts, imgs):
    """open_clip's own path: create_model_and_transforms + get_tokenizer on 'local-dir:FOLDER'."""
    from PIL import Image

    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    model.eval()
    with torch.no_grad():
        t = model.encode_text(tokenizer(texts), normalize=True).numpy()
        x = torch.stack([preprocess(Image.fromarray(a)) for a in imgs])
        i = model.encode_image(x, normalize=True).numpy()
    return model, t, i


@pytest.mark.parametrize("key", ["open_clip", "open_clip_st", "biomedclip_like"])
def test_features_equal_open_clip(model_dirs, texts, imgs, key):
    from medlens.encoders import load_encoder
    from medlens.encoders._open_clip import OpenClipEncoder

    enc = load_encoder(model_dirs[key])
    assert isinstance(enc, OpenClipEncoder)
    model, ref_t, ref_i = _reference(model_dirs[key], texts, imgs)
    np.testing.assert_allclose(enc.encode_texts(texts, batch_size=2), ref_t, atol=1e-5)
    np.testing.assert_allclose(enc.encode_images(imgs, batch_size=2), ref_i, atol=1e-5)
    assert enc.logit_scale == pytest.approx(float(model.logit_scale.detach().exp()))
    assert enc.logit_bias is None
    c = enc.config
    assert (c.family, c.modality, c.embedding_dim, c.max_length) == ("open_clip", "image-text", 16, 16)
    assert c.input_size == (32, 32)
    assert c.mean == pytest.approx((0.485, 0.456, 0.406))
    assert c.interpolation == "bicubic"


def test_siglip_style_bias_is_exposed(model_dirs, tmp_path):
    from medlens.encoders import load_encoder

    folder = tmp_path / "sig"
    shutil.copytree(model_dirs["open_clip"], folder)
    cfg = json.loads((folder / "open_clip_config.json").read_text())
    cfg["model_cfg"]["init_logit_bias"] = -10.0
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    state = torch.load(folder / "open_clip_pytorch_model.bin", weights_only=True)
    state["logit_bias"] = torch.tensor(-7.0)
    torch.save(state, folder / "open_clip_pytorch_model.bin")
    enc = load_encoder(folder)
    assert enc.logit_bias == pytest.approx(-7.0)


def _edit(src, dst, edit):
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "open_clip_config.json").read_text())
    edit(cfg)
    (dst / "open_clip_config.json").write_text(json.dumps(cfg))
    return dst


def test_hf_references_must_resolve_locally(model_dirs, tmp_path, monkeypatch):
    from medlens.encoders import load_encoder

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    hub_text = _edit(
        model_dirs["biomedclip_like"],
        tmp_path / "hub_text",
        lambda c: c["model_cfg"]["text_cfg"].update(
            hf_model_name="microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
        ),
    )
    with pytest.raises(InputError, match=r"text_cfg.hf_model_name 'microsoft/BiomedNLP.*hf download microsoft/"):
        load_encoder(hub_text)
    no_tok = tmp_path / "no_tokenizer"
    shutil.copytree(model_dirs["biomedclip_like"], no_tok)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (no_tok / name).unlink()
    with pytest.raises(InputError, match=r"text_cfg.hf_tokenizer_name .* never downloads"):
        load_encoder(no_tok)


def test_hf_text_tower_resolves_from_the_cache(model_dirs, tmp_path, monkeypatch):
    """A hub id in text_cfg (as BiomedCLIP has) loads from the local cache."""
    from medlens.encoders import load_encoder

    cache = tmp_path / "hub"
    snap = cache / "models--microsoft--tiny-bert" / "snapshots" / "abc123"
    shutil.copytree(model_dirs["bert"], snap)
    (cache / "models--microsoft--tiny-bert" / "refs").mkdir()
    (cache / "models--microsoft--tiny-bert" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    folder = _edit(
        model_dirs["biomedclip_like"],
        tmp_path / "cached_text",
        lambda c: c["model_cfg"]["text_cfg"].update(hf_model_name="microsoft/tiny-bert"),
    )
    ref = load_encoder(model_dirs["biomedclip_like"]).encode_texts(["effusion"])
    np.testing.assert_allclose(load_encoder(folder).encode_texts(["effusion"]), ref, atol=1e-6)


def test_bad_folders_are_clear_errors(model_dirs, tmp_path):
    from medlens.encoders import load_encoder

    no_weights = tmp_path / "no_weights"
    shutil.copytree(model_dirs["open_clip"], no_weights)
    (no_weights / "open_clip_pytorch_model.bin").unlink()
    with pytest.raises(InputError, match="without weights; expected one of open_clip_model.safetensors"):
        load_encoder(no_weights)
    wrong = _edit(model_dirs["open_clip"], tmp_path / "wrong", lambda c: c["model_cfg"].update(embed_dim=8))
    with pytest.raises(InputError, match="the weights do not match open_clip_config.json"):
        load_encoder(wrong)
    coca = _edit(model_dirs["open_clip"], tmp_path / "coca", lambda c: c["model_cfg"].update(multimodal_cfg={}))
    with pytest.raises(InputError, match="CoCa"):
        load_encoder(coca)
    broken = _edit(model_dirs["open_clip"], tmp_path / "broken", lambda c: c.pop("model_cfg"))
    with pytest.raises(InputError, match="expected JSON with model_cfg"):
        load_encoder(broken)


def test_max_length_shortens_separate_text_towers_only(model_dirs, texts):
    from medlens.encoders import load_encoder

    short = load_encoder(model_dirs["biomedclip_like"], max_length=8)
    assert short.config.max_length == 8
    assert tuple(short.tower("text").prepare(texts).shape) == (3, 8)
    assert short.encode_texts(texts).shape == (3, 16)
    assert load_encoder(model_dirs["open_clip"], max_length=128).config.max_length == 16
    with pytest.raises(InputError, match="reads exactly 16 tokens; max_length=8 cannot shorten it"):
        load_encoder(model_dirs["open_clip"], max_length=8)
