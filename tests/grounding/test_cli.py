"""``medlens ground kb list | show | validate`` print stamped documents."""

from __future__ import annotations

import json

from medlens.cli import main


def _run(capsys, *args):
    code = main(list(args))
    return code, capsys.readouterr()


def test_kb_list_and_show_json(capsys):
    code, out = _run(capsys, "ground", "kb", "list", "--json")
    assert code == 0
    doc = json.loads(out.out)
    assert [k["name"] for k in doc["knowledge_bases"]] == ["vindr-cxr", "padchest-gr"]
    assert doc["knowledge_bases"][0]["n_unseen"] == 6
    assert doc["provenance"]["command"] == "ground kb list"
    code, out = _run(
        capsys, "ground", "kb", "show", "padchest", "--finding", "NSG tube", "--attributes", "location", "--json"
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
    code, out = _run(capsys, "ground", "kb", "validate", str(p))
    assert code == 0
    assert "valid (1 findings, version 1.0.0)" in out.out
    code, out = _run(capsys, "ground", "kb", "show", "vindr", "--finding", "ptx")
    assert code == 0
    assert "pneumothorax [unseen] in vindr-cxr" in out.out
    assert "name_only: pneumothorax" in out.out


def test_ground_ceiling_on_a_csv(capsys, tmp_path):
    p = tmp_path / "boxes.csv"
    p.write_text(
        "image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max\n"
        "a,Cardiomegaly,3,R1,0,0,10,10\na,Cardiomegaly,3,R2,0,0,10,10\na,No finding,14,R3,,,,\n"
    )
    code, (out, _) = _run(capsys, "ground", "ceiling", "--truth", str(p), "--json")
    assert code == 0
    doc = json.loads(out)
    row = doc["by_finding"]["cardiomegaly"]
    # R1 and R2 each hit the other's box; R3 (nothing) misses the fusion of R1+R2
    assert row["precision50"] == 1.0
    assert row["recall50"] == 2 / 3
    assert doc["provenance"]["command"] == "ground ceiling"
