"""``medlens ground prompt | train | predict | evaluate`` end to end on a tiny random Florence-2 (CSV and COCO)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medlens.cli import main
from medlens.grounding import load_knowledge

KB = load_knowledge("vindr-cxr")


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_prompt_json(capsys):
    doc = _run(capsys, "ground", "prompt", "--finding", "Effusion", "--attributes", "location,shape", "--json")
    assert doc["finding"] == "pleural effusion"
    assert doc["provenance"]["command"] == "ground prompt"
    assert doc["prompts"]["name_only"] == "pleural effusion"
    assert doc["prompts"]["attributes"].startswith("pleural effusion: shape: ")
    assert "; location: " in doc["prompts"]["attributes"]
    assert doc["model_inputs"]["definition"] == "<CAPTION_TO_PHRASE_GROUNDING>" + doc["prompts"]["definition"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    pytest.importorskip("transformers")
    pytest.importorskip("torch")
    from PIL import Image

    from medlens.grounding import write_tiny_florence

    root = tmp_path_factory.mktemp("ground")
    corpus = [f.name for f in KB.findings] + [f.definition for f in KB.findings]
    model = write_tiny_florence(root / "florence", corpus=corpus, seed=0)
    imgs = root / "images"
    imgs.mkdir()
    rng = np.random.default_rng(0)
    rows = ["image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max"]
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "Cardiomegaly"},
                                                             {"id": 2, "name": "Pneumothorax"}]}  # fmt: skip
    for i in range(6):
        w, h = (96, 64) if i % 2 else (64, 80)
        a = (rng.random((h, w)) * 40).astype(np.uint8)
        a[10:30, 8:40] = 230
        Image.fromarray(a).save(imgs / f"p{i}.png")
        rows.append(f"p{i},Cardiomegaly,3,R1,8,10,40,30")
        rows.append(f"p{i},Cardiomegaly,3,R2,9,10,40,31")
        coco["images"].append({"id": i, "file_name": f"p{i}.png", "width": w, "height": h})
        coco["annotations"].append({"id": i, "image_id": i, "category_id": 1, "bbox": [8, 10, 32, 20]})
    (root / "boxes.csv").write_text("\n".join(rows) + "\n")
    (root / "boxes.json").write_text(json.dumps(coco))
    (root / "split.csv").write_text("image_id,split\np0,train\np1,train\np2,train\np3,val\np4,test\np5,test\n")
    return root, model


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_train_predict_evaluate(capsys, dataset, fmt):
    root, model = dataset
    out = root / f"run-{fmt}"
    select = "val_f1" if fmt == "csv" else "val_loss"
    doc = _run(capsys, "ground", "train", "--data", root / f"boxes.{fmt}", "--images", root / "images",
               "--model-path", model, "--out", out, "--split-file", root / "split.csv", "--epochs", 1,
               "--batch-size", 4, "--lr", 1e-3, "--select", select, "--json")  # fmt: skip
    assert doc["provenance"]["command"] == "ground train"
    assert doc["select"] == doc["config"]["select"] == select
    assert doc["selected_on"].startswith(select)
    assert ("val_f1" in doc["history"][0]) == (select == "val_f1")
    assert doc["data_counts"]["train"]["images"] == 3
    assert doc["data_counts"]["val"]["images"] == 1
    assert doc["config"]["data"]["format"] == ("coco" if fmt == "json" else "vindr-csv")
    assert doc["selected_epoch"] == 1
    trained = doc["model_path"]
    lines = []
    for img in ("p4", "p5"):
        for finding in ("cardiomegaly", "pneumothorax"):
            p = _run(capsys, "ground", "predict", "--model-path", trained, "--image", root / "images" / f"{img}.png",
                     "--finding", finding, "--json")  # fmt: skip
            assert p["image_id"] == img
            assert len(p["boxes"]) == len(p["labels"]) == len(p["scores"] or [])
            for b in p["boxes"]:
                assert 0 <= b[0] <= b[2] <= p["width"]
                assert 0 <= b[1] <= b[3] <= p["height"]
            lines.append(json.dumps({k: p[k] for k in ("image_id", "finding", "boxes", "scores")}))
    (root / f"pred-{fmt}.jsonl").write_text("\n".join(lines) + "\n")
    ev = _run(capsys, "ground", "evaluate", "--predictions", root / f"pred-{fmt}.jsonl", "--truth",
              root / f"boxes.{fmt}", "--json")  # fmt: skip
    # p0..p3 have gold cardiomegaly but no prediction line: counted as predicted empty
    assert ev["n_missing_predictions"] == 4
    assert ev["n_positive"] == 6
    assert ev["n_negative"] == 2  # pneumothorax on p4, p5: absent in the truth
    for key in ("map", "map50", "map75", "f1_50", "acc50", "hallucination_rate", "rodeo", "by_size", "by_n_boxes"):
        assert key in ev
