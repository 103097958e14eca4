"""timm adapter: pooled pre-logits equal timm's own local-dir model with its eval transform."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from medlens._validation import InputError

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

pytestmark = pytest.mark.reference


def _reference(folder, imgs):
    from PIL import Image

    model = timm.create_model(f"local-dir:{folder}", pretrained=True, num_classes=0).eval()
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model), is_training=False)
    with torch.no_grad():
        feats = model(torch.stack([transform(Image.fromarray(a)) for a in imgs]))
    return torch.nn.functional.normalize(feats, dim=-1).numpy()


@pytest.mark.parametrize("serialization", ["safetensors", "bin"])
def test_features_equal_timm(model_dirs, imgs, tmp_path, serialization):
    from medlens.encoders import load_encoder
    from medlens.encoders._timm import TimmEncoder

    folder = model_dirs["timm"]
    if serialization == "bin":  # pytorch_model.bin, as older hub repos hold
        folder = tmp_path / "bin"
        shutil.copytree(model_dirs["timm"], folder)
        state = timm.models.load_state_dict(str(folder / "model.safetensors"))
        (folder / "model.safetensors").unlink()
        torch.save(state, folder / "pytorch_model.bin")
    enc = load_encoder(folder)
    assert isinstance(enc, TimmEncoder)
    np.testing.assert_allclose(enc.encode_images(imgs, batch_size=2), _reference(folder, imgs), atol=1e-5)
    c = enc.config
    assert (c.family, c.modality, c.embedding_dim, c.input_size) == ("timm", "image", 32, (32, 32))
    assert (c.mean, c.std, c.interpolation) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bicubic")
    assert enc.logit_scale is None


def test_bfloat16_on_cpu(model_dirs, imgs):
    from medlens.encoders import load_encoder

    ref = load_encoder(model_dirs["timm"]).encode_images(imgs)
    half = load_encoder(model_dirs["timm"], dtype="bfloat16")
    assert half.tower("image").module.model.pos_embed.dtype == torch.bfloat16
    out = half.encode_images(imgs)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=0.05)


def test_bad_timm_folders(model_dirs, tmp_path):
    from medlens.encoders import load_encoder

    def edit(name, change):
        folder = tmp_path / name
        shutil.copytree(model_dirs["timm"], folder)
        cfg = json.loads((folder / "config.json").read_text())
        change(cfg)
        (folder / "config.json").write_text(json.dumps(cfg))
        return folder

    with pytest.raises(InputError, match="'vit_made_up' is not a timm model"):
        load_encoder(edit("unknown", lambda c: c.update(architecture="vit_made_up")))
    with pytest.raises(InputError, match="the weights do not match vit_tiny_patch16_224"):
        load_encoder(edit("deeper", lambda c: c["model_args"].update(depth=3)))
    with pytest.raises(InputError, match="expected timm's hub config"):
        load_encoder(edit("no_cfg", lambda c: c.update(pretrained_cfg=None)), family="timm")
    empty = tmp_path / "no_weights"
    shutil.copytree(model_dirs["timm"], empty)
    (empty / "model.safetensors").unlink()
    with pytest.raises(InputError, match="a timm model folder without weights"):
        load_encoder(empty)


def test_max_length_is_accepted_and_text_is_a_modality_error(model_dirs):
    from medlens.encoders import load_encoder

    enc = load_encoder(model_dirs["timm"], max_length=128)
    with pytest.raises(InputError, match="encodes image only, not texts"):
        enc.encode_texts(["effusion"])
