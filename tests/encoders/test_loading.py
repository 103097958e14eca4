"""Loading: registered names from the local Hugging Face cache only, folders by layout, clear errors."""

from __future__ import annotations

import shutil

import pytest

from medlens._validation import InputError

pytest.importorskip("torch")

VIT_ID = "timm/vit_small_patch16_224.augreg_in21k_ft_in1k"


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf_cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def _cache_repo(cache, repo_id, src, commit="0123456789abcdef", ref=True):
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(src, repo / "snapshots" / commit)
    if ref:
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(commit + "\n")
    return repo / "snapshots" / commit


def test_registry_entries_are_complete():
    from medlens.encoders import ENCODERS, FAMILIES

    assert {
        "minilm",
        "clip-vit-b16",
        "clip-vit-b32",
        "siglip-base",
        "dinov2-small",
        "dinov2-base",
        "biomedclip",
        "vit-small-patch16",
        "pubmedbert",
    } <= set(ENCODERS.names())
    for name in ENCODERS.names():
        meta = ENCODERS.meta(name)
        assert meta["family"] in FAMILIES
        assert meta["modality"] in ("text", "image", "image-text")
        assert meta["source"].count("/") == 1
        assert meta["license"]
        assert meta["paper"]
        assert meta["description"]
        assert meta["extra"] in ("hf", "vision")


@pytest.mark.parametrize(
    ("key", "cls"),
    [
        ("clip", "TransformersEncoder"),
        ("dinov2", "TransformersEncoder"),
        ("bert", "TransformersEncoder"),
        ("open_clip", "OpenClipEncoder"),
        ("timm", "TimmEncoder"),
    ],
)
def test_folders_are_read_by_layout(model_dirs, key, cls):
    from medlens.encoders import load_encoder

    enc = load_encoder(str(model_dirs[key]))
    assert type(enc).__name__ == cls
    assert enc.model_id == str(model_dirs[key])
    assert enc.config.name == model_dirs[key].name


def test_sentence_transformers_folder(tmp_path):
    from medlens.encoders import load_encoder, minilm_folder

    folder = tmp_path / "st"
    shutil.copytree(minilm_folder(), folder)
    enc = load_encoder(folder, cache_dir=tmp_path / "emb")
    assert type(enc).__name__ == "SentenceTransformerEncoder"
    assert (enc.config.family, enc.config.embedding_dim, enc.config.pooling) == ("sentence-transformers", 384, "mean")


def test_registered_name_loads_from_the_cache(model_dirs, empty_cache):
    from medlens.encoders import list_encoders, load_encoder

    snap = _cache_repo(empty_cache, VIT_ID, model_dirs["timm"])
    enc = load_encoder("vit-small-patch16")
    assert enc.model_id == VIT_ID
    assert enc.revision == "0123456789abcdef"
    assert (enc.config.name, enc.config.source, enc.config.license) == ("vit-small-patch16", VIT_ID, "Apache-2.0")
    rows = {r["name"]: r for r in list_encoders()}
    assert rows["vit-small-patch16"]["available"] is True
    assert rows["vit-small-patch16"]["path"] == str(snap)
    assert rows["clip-vit-b16"]["available"] is False
    assert rows["minilm"]["available"] is True


def test_a_snapshot_without_refs_main_is_still_found(model_dirs, empty_cache):
    from medlens.encoders import load_encoder

    _cache_repo(empty_cache, VIT_ID, model_dirs["timm"], commit="feedbeef", ref=False)
    assert load_encoder("vit-small-patch16").revision == "feedbeef"


def test_missing_weights_say_where_to_put_them(empty_cache):
    from medlens.encoders import load_encoder

    with pytest.raises(InputError) as exc:
        load_encoder("clip-vit-b16")
    msg = str(exc.value)
    for part in (
        "'clip-vit-b16' (openai/clip-vit-base-patch16) is not in the local Hugging Face cache",
        str(empty_cache),
        "medlens never downloads weights",
        "hf download openai/clip-vit-base-patch16",
        "huggingface-cli download openai/clip-vit-base-patch16",
        "models--openai--clip-vit-base-patch16",
        "or pass a local model folder",
    ):
        assert part in msg, part


def test_an_incomplete_snapshot_is_reported(model_dirs, empty_cache):
    from medlens.encoders import list_encoders, load_encoder

    snap = _cache_repo(empty_cache, "facebook/dinov2-small", model_dirs["dinov2"])
    (snap / "model.safetensors").unlink()
    with pytest.raises(InputError, match=r"is incomplete in the local Hugging Face cache .* has no model.safetensors"):
        load_encoder("dinov2-small")
    assert {r["name"]: r["available"] for r in list_encoders()}["dinov2-small"] is False


def test_biomedclip_needs_its_text_config_in_the_cache(model_dirs, empty_cache):
    """list_encoders checks that an open_clip model's Hugging Face text tower resolves too."""
    import json

    from medlens.encoders import list_encoders

    snap = _cache_repo(
        empty_cache, "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224", model_dirs["biomedclip_like"]
    )
    assert {r["name"]: r["available"] for r in list_encoders()}["biomedclip"] is True  # text tower: a local folder
    cfg = json.loads((snap / "open_clip_config.json").read_text())
    cfg["model_cfg"]["text_cfg"]["hf_model_name"] = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
    (snap / "open_clip_config.json").write_text(json.dumps(cfg))
    assert {r["name"]: r["available"] for r in list_encoders()}["biomedclip"] is False


def test_cache_location_follows_the_environment(tmp_path, monkeypatch):
    from medlens.encoders._hub import hf_cache_dir

    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hf_cache_dir() == tmp_path / "home" / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hf_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hf_cache_dir() == tmp_path / "hf" / "hub"
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", str(tmp_path / "legacy"))
    assert hf_cache_dir() == tmp_path / "legacy"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert hf_cache_dir() == tmp_path / "hub"


def test_unknown_names_and_paths(tmp_path, empty_cache):
    from medlens.encoders import load_encoder

    with pytest.raises(InputError, match=r"'clip-vit-b61' is not a registered name .*Did you mean: 'clip-vit-b16'"):
        load_encoder("clip-vit-b61")
    with pytest.raises(InputError, match="is not a folder"):
        load_encoder(tmp_path / "missing")
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"")
    with pytest.raises(InputError, match="is a file, not a model folder"):
        load_encoder(f)


def test_unknown_layout_lists_what_was_expected(tmp_path):
    from medlens.encoders import load_encoder

    folder = tmp_path / "weird"
    folder.mkdir()
    (folder / "weights.pt").write_bytes(b"")
    (folder / "config.json").write_text('{"hidden_size": 8}')
    with pytest.raises(InputError) as exc:
        load_encoder(folder)
    msg = str(exc.value)
    for part in (
        "modules.json",
        "open_clip_config.json",
        "architecture + pretrained_cfg",
        "model_type",
        "Found: config.json, weights.pt",
    ):
        assert part in msg, part
    (folder / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="config.json: not valid JSON"):
        load_encoder(folder)


def test_family_override(model_dirs):
    from medlens.encoders import load_encoder

    with pytest.raises(InputError, match="'family' parameter must be one of .*Did you mean: 'timm'"):
        load_encoder(model_dirs["timm"], family="tim")
    with pytest.raises(InputError, match="expected timm's hub config"):
        load_encoder(model_dirs["clip"], family="timm")
    with pytest.raises(InputError, match="registered sentence-transformers model; family= applies to folders"):
        load_encoder("minilm", family="timm")
    assert type(load_encoder(model_dirs["timm"], family="timm")).__name__ == "TimmEncoder"


def test_transformers_folder_without_weights(model_dirs, tmp_path):
    from medlens.encoders import load_encoder

    folder = tmp_path / "clip"
    shutil.copytree(model_dirs["clip"], folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(
        InputError, match="a transformers model folder without weights; expected one of model.safetensors"
    ):
        load_encoder(folder)


def test_offline_flags_are_set():
    import os

    from medlens.encoders import load_encoder

    with pytest.raises(InputError):
        load_encoder("no-such-encoder")
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"
