"""``medlens encoders list`` and ``medlens encode``: files written, JSON summaries, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.cli.test_cli import PROVENANCE_KEYS, assert_user_error


@pytest.fixture(scope="module")
def timm_dir(tmp_path_factory):
    """A 2-block ViT in timm's hub layout."""
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    from timm.models import save_for_hf

    torch.manual_seed(0)
    model = timm.create_model(
        "vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, embed_dim=32, num_heads=2, num_classes=0
    )
    folder = tmp_path_factory.mktemp("timm_vit")
    save_for_hf(model, str(folder), safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    (root / "sub").mkdir()
    rng = np.random.default_rng(0)
    for i, name in enumerate(["b.png", "a.jpg", "sub/c.png"]):
        Image.fromarray((rng.random((30 + i, 40, 3)) * 255).astype(np.uint8)).save(root / name)
    (root / "notes.txt").write_text("not an image")
    return root


def test_help_has_examples(cli):
    for args in (("encoders", "list"), ("encode",)):
        res = cli(*args, "--help")
        assert res.rc == 0, res.err
        assert "Example" in res.out, args


def test_encoders_list_json(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    res = cli("encoders", "list", "--json")
    assert res.rc == 0, res.err
    d = json.loads(res.out)
    assert d["schema_version"] == "1.0"
    assert set(d["provenance"]) >= PROVENANCE_KEYS
    assert d["provenance"]["command"] == "encoders list"
    assert d["hf_cache"] == str(tmp_path / "cache")
    rows = {r["name"]: r for r in d["encoders"]}
    assert rows["minilm"]["available"] is True
    assert rows["biomedclip"] == rows["biomedclip"] | {
        "family": "open_clip",
        "modality": "image-text",
        "source": "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
        "available": False,
        "path": None,
        "license": "MIT",
    }
    res = cli("encoders", "list")
    assert res.rc == 0, res.err
    assert "clip-vit-b16" in res.out


def test_encode_texts_with_minilm(cli, tmp_path):
    texts = tmp_path / "findings.txt"
    texts.write_text("small left pleural effusion\nenlarged cardiac silhouette\nno acute disease\n")
    out = tmp_path / "feats" / "findings.npy"
    res = cli("encode", "--encoder", "minilm", "--texts", texts, "--out", out, "--batch-size", "2", "--json")
    assert res.rc == 0, res.err
    d = json.loads(res.out)
    x = np.load(out)
    assert x.shape == (3, 384)
    assert x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert (tmp_path / "feats" / "findings.ids.txt").read_text().splitlines() == ["1", "2", "3"]
    assert (d["n"], d["dim"], d["modality"], d["batch_size"]) == (3, 384, "text", 2)
    assert d["encoder"]["name"] == "minilm"
    assert d["encoder"]["source"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert set(d["timing"]) == {"load_s", "encode_s", "items_per_s"}
    prov = d["provenance"]
    assert prov["command"] == "encode"
    assert prov["model_ids"] == {"encoder": "sentence-transformers/all-MiniLM-L6-v2"}
    assert len(prov["input_hashes"]["texts"]["sha256"]) == 64


def test_encode_images_folder(cli, tmp_path, timm_dir, image_dir):
    out = tmp_path / "img.npy"
    res = cli("encode", "-e", timm_dir, "--images", image_dir, "--out", out, "--no-normalize", "--json")
    assert res.rc == 0, res.err
    d = json.loads(res.out)
    x = np.load(out)
    assert x.shape == (3, 32)
    assert not np.allclose(np.linalg.norm(x, axis=1), 1.0)
    assert out.with_suffix(".ids.txt").read_text().splitlines() == ["a.jpg", "b.png", "sub/c.png"]
    assert d["normalized"] is False
    assert d["encoder"]["family"] == "timm"
    h = d["provenance"]["input_hashes"]["images"]
    assert (h["n"], len(h["sha256"])) == (3, 64)
    # same images, same hash; a changed image, another hash
    again = json.loads(cli("encode", "-e", timm_dir, "--images", image_dir, "--out", out, "--json").out)
    assert again["provenance"]["input_hashes"]["images"]["sha256"] == h["sha256"]
    res = cli("encode", "-e", timm_dir, "--images", image_dir, "--out", tmp_path / "plain.npy")
    assert res.rc == 0, res.err
    assert "wrote" in res.out
    assert "3 x 32" in res.out


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--encoder", "minilm", "--out", "x.npy"], ["exactly one of --images DIR or --texts FILE"]),
        (["--encoder", "minilm", "--texts", "t.txt", "--images", ".", "--out", "x.npy"], ["exactly one of"]),
        (["--encoder", "minilm", "--texts", "t.txt", "--out", "x.csv"], ["use --out NAME.npy"]),
        (
            ["--encoder", "minilm", "--texts", "t.txt", "--out", "x.npy", "--batch-size", "0"],
            ["'--batch-size'", "[1, inf)"],
        ),
        (["--encoder", "minilm", "--texts", "missing.txt", "--out", "x.npy"], ["missing.txt: no such file"]),
        (["--encoder", "minilm", "--images", "IMAGES", "--out", "x.npy"], ["encodes text only, not images"]),
        (["--encoder", "clip-vit-b61", "--texts", "t.txt", "--out", "x.npy"], ["Did you mean: 'clip-vit-b16'"]),
        (["--encoder", "dinov2-small", "--images", "IMAGES", "--out", "x.npy"], ["never downloads weights"]),
        (["--encoder", "minilm", "--texts", "t.txt", "--out", "x.npy", "--device", "tpu"], ["unknown device 'tpu'"]),
        (["--encoder", "minilm", "--texts", "t.txt", "--out", "x.npy", "--dtype", "int8"], ["unknown dtype 'int8'"]),
    ],
)
def test_encode_errors_are_one_line(cli, tmp_path, monkeypatch, image_dir, args, fragments):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "t.txt").write_text("effusion\n")
    args = [str(image_dir) if a == "IMAGES" else a for a in args]
    assert_user_error(cli("encode", *args), *fragments)
    assert not (tmp_path / "x.npy").exists()
