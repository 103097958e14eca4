"""``medlens grounding kb list | show | validate`` print stamped documents."""

from __future__ import annotations

import json

from medlens.cli import main


def _run(capsys, *args):
    code = main(list(args))
    return code, capsys.readouterr()


def test_kb_list_and_show_json(capsys):
    code, out = _run(capsys, "grounding", "kb", "list", "--json")
    assert code == 0
    doc = json.loads(out.out)
    assert [k["name"] for k in doc["knowledge_bases"]] == ["vindr-cxr", "padchest-gr"]
    assert doc["knowledge_bases"][0]["n_unseen"] == 6
    assert doc["provenance"]["command"] == "grounding kb list"
    code, out = _run(
        capsys, "grounding", "kb", "show", "padchest", "--finding", "NSG tube", "--attributes", "location", "--json"
    )
    assert code == 0
    doc = json.loads(out.out)
    assert doc["finding"]["name"] == "nasogastric tube"
    assert doc["prompts"] == {
        "name_only": "nasogastric tube",
        "definition": "nasogastric tube means a tube passed through the nose and oesophagus into the stomach.",
        "attributes": "nasogastric tube: location: midline through the chest, below the diaphragm into the stomach.",
    }
    assert doc["provenance"]["knowledge"]["name"] == "padchest-gr"
    assert len(doc["provenance"]["knowledge"]["sha256"]) == 64


def test_kb_validate_and_human_output(capsys, tmp_path):
    p = tmp_path / "kb.yaml"
    p.write_text(
        "name: t\nversion: 1.0.0\ndataset: d\nsource: s\nfindings:\n"
        "  - name: spot\n    split: seen\n    definition: A spot.\n    attributes: {shape: round}\n",
        encoding="utf-8",
    )
    code, out = _run(capsys, "grounding", "kb", "validate", str(p))
    assert code == 0
    assert "valid (1 findings, version 1.0.0)" in out.out
    code, out = _run(capsys, "grounding", "kb", "show", "vindr", "--finding", "ptx")
    assert code == 0
    assert "pneumothorax [unseen] in vindr-cxr" in out.out
    assert "name_only: pneumothorax" in out.out
