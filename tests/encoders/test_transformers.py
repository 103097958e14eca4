"""transformers adapter: features equal the library's own calls (CLIP, SigLIP, DINOv2, ConvNeXt, BERT)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from medlens._validation import InputError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
F = torch.nn.functional

pytestmark = pytest.mark.reference


def _normed(out) -> np.ndarray:
    feats = out if isinstance(out, torch.Tensor) else out.pooler_output  # transformers 5 returns an output object
    return F.normalize(feats.float(), dim=-1).numpy()


def _pixels(folder, imgs):
    from PIL import Image

    proc = transformers.AutoImageProcessor.from_pretrained(str(folder))
    return proc(images=[Image.fromarray(a) for a in imgs], return_tensors="pt")["pixel_values"]


@pytest.fixture(scope="module")
def encoders(model_dirs):
    from medlens.encoders import load_encoder

    return {
        "clip": load_encoder(model_dirs["clip"]),
        "siglip": load_encoder(model_dirs["siglip"]),
        "dinov2": load_encoder(model_dirs["dinov2"]),
        "dinov2_mean": load_encoder(model_dirs["dinov2"], pooling="mean"),
        "dinov2_reg_mean": load_encoder(model_dirs["dinov2_reg"], pooling="mean"),
        "convnext": load_encoder(model_dirs["convnext"]),
        "bert": load_encoder(model_dirs["bert"]),
        "bert_cls": load_encoder(model_dirs["bert"], pooling="cls"),
    }


def test_clip_equals_get_text_and_image_features(encoders, model_dirs, texts, imgs):
    enc, folder = encoders["clip"], model_dirs["clip"]
    model = transformers.CLIPModel.from_pretrained(str(folder)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    with torch.no_grad():
        ref_t = _normed(model.get_text_features(**tok(texts, padding=True, truncation=True, return_tensors="pt")))
        ref_i = _normed(model.get_image_features(pixel_values=_pixels(folder, imgs)))
    np.testing.assert_allclose(enc.encode_texts(texts, batch_size=2), ref_t, atol=1e-5)
    np.testing.assert_allclose(enc.encode_images(imgs, batch_size=2), ref_i, atol=1e-5)
    assert enc.logit_scale == pytest.approx(float(model.logit_scale.detach().exp()))
    assert enc.logit_bias is None
    c = enc.config
    assert (c.family, c.modality, c.embedding_dim, c.max_length) == ("transformers", "image-text", 24, 16)
    assert c.input_size == (32, 32)
    assert c.interpolation == "bicubic"
    assert c.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))


def test_siglip_equals_get_features_with_max_length_padding_and_exposes_bias(encoders, model_dirs, texts, imgs):
    enc, folder = encoders["siglip"], model_dirs["siglip"]
    model = transformers.SiglipModel.from_pretrained(str(folder)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    batch = tok(texts, padding="max_length", max_length=16, truncation=True, return_tensors="pt")
    assert set(batch) == {"input_ids"}  # SigLIP attends to its padding, as trained
    with torch.no_grad():
        ref_t = _normed(model.get_text_features(**batch))
        ref_i = _normed(model.get_image_features(pixel_values=_pixels(folder, imgs)))
    np.testing.assert_allclose(enc.encode_texts(texts), ref_t, atol=1e-5)
    np.testing.assert_allclose(enc.encode_images(imgs), ref_i, atol=1e-5)
    assert enc.logit_scale == pytest.approx(10.0)
    assert enc.logit_bias == pytest.approx(-2.5)
    assert enc.config.embedding_dim == 32


def test_dinov2_cls_token_and_mean_of_patch_tokens(encoders, model_dirs, imgs):
    for key, folder_key, registers in (("dinov2_mean", "dinov2", 0), ("dinov2_reg_mean", "dinov2_reg", 2)):
        model = transformers.AutoModel.from_pretrained(str(model_dirs[folder_key])).eval()
        with torch.no_grad():
            out = model(pixel_values=_pixels(model_dirs[folder_key], imgs))
        patches = out.last_hidden_state[:, 1 + registers :].mean(1)
        np.testing.assert_allclose(encoders[key].encode_images(imgs), _normed(patches), atol=1e-5)
        if key == "dinov2_mean":
            np.testing.assert_allclose(encoders["dinov2"].encode_images(imgs), _normed(out.pooler_output), atol=1e-5)
            torch.testing.assert_close(out.pooler_output, out.last_hidden_state[:, 0])  # CLS after the final norm
    c = encoders["dinov2"].config
    assert (c.pooling, c.modality, c.embedding_dim, c.input_size) == ("cls", "image", 32, (32, 32))
    assert c.mean == pytest.approx((0.485, 0.456, 0.406))
    assert encoders["dinov2"].logit_scale is None


def test_other_image_models_use_the_pooler_and_refuse_token_pooling(encoders, model_dirs, imgs):
    from medlens.encoders import load_encoder

    model = transformers.AutoModel.from_pretrained(str(model_dirs["convnext"])).eval()
    with torch.no_grad():
        ref = _normed(model(pixel_values=_pixels(model_dirs["convnext"], imgs)).pooler_output)
    enc = encoders["convnext"]
    assert enc.config.pooling == "pooler"
    assert enc.config.embedding_dim == 16
    np.testing.assert_allclose(enc.encode_images(imgs), ref, atol=1e-5)
    cls = load_encoder(model_dirs["convnext"], pooling="cls")
    with pytest.raises(InputError, match="returns feature maps"):
        cls.encode_images(imgs[:1])


def test_text_automodel_mean_pooling_equals_sentence_transformers(encoders, model_dirs, texts):
    st = pytest.importorskip("sentence_transformers")
    from sentence_transformers.base.modules.normalize import Normalize
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules.pooling import Pooling

    word = Transformer(str(model_dirs["bert"]), max_seq_length=64)
    peer = st.SentenceTransformer(modules=[word, Pooling(32, pooling_mode="mean"), Normalize()], device="cpu")
    ref = peer.encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(encoders["bert"].encode_texts(texts, batch_size=2), ref, atol=1e-5)
    c = encoders["bert"].config
    assert (c.modality, c.pooling, c.max_length, c.embedding_dim) == ("text", "mean", 64, 32)

    model = transformers.AutoModel.from_pretrained(str(model_dirs["bert"])).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(model_dirs["bert"]))
    with torch.no_grad():
        first = model(**tok(texts, padding=True, return_tensors="pt")).last_hidden_state[:, 0]
    np.testing.assert_allclose(encoders["bert_cls"].encode_texts(texts), _normed(first), atol=1e-5)


def test_max_length_truncates(model_dirs, texts):
    from medlens.encoders import load_encoder

    enc = load_encoder(model_dirs["bert"], max_length=8)
    assert enc.config.max_length == 8
    batch = enc.tower("text").prepare(texts)
    assert batch["input_ids"].shape[1] == 8


def test_modality_is_read_from_the_folder_or_given(model_dirs, tmp_path):
    from medlens.encoders import load_encoder

    both = tmp_path / "both"
    shutil.copytree(model_dirs["bert"], both)
    shutil.copy(model_dirs["dinov2"] / "preprocessor_config.json", both / "preprocessor_config.json")
    with pytest.raises(InputError, match="cannot tell whether.*pass modality='text' or 'image'"):
        load_encoder(both)
    assert load_encoder(both, modality="text").config.modality == "text"
    with pytest.raises(InputError, match="'modality' parameter must be one of"):
        load_encoder(both, modality="audio")


def test_pooling_options_are_checked(model_dirs):
    from medlens.encoders import load_encoder

    with pytest.raises(InputError, match="'pooling' parameter must be one of .* Did you mean: 'mean'"):
        load_encoder(model_dirs["dinov2"], pooling="maen")
    with pytest.raises(InputError, match="clip pools inside the model"):
        load_encoder(model_dirs["clip"], pooling="mean")


def test_other_vision_language_model_types_are_refused(model_dirs, tmp_path):
    from medlens.encoders import load_encoder

    other = tmp_path / "align"
    shutil.copytree(model_dirs["clip"], other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["model_type"] = "align"
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="'align' is a vision-language model without a medlens adapter"):
        load_encoder(other)
