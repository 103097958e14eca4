"""Finding knowledge bases, real box statistics and prompt renderers."""

from __future__ import annotations

import gzip
import importlib.util

import numpy as np
import pandas as pd
import pytest

from medlens._validation import InputError
from medlens.grounding import (
    ATTRIBUTES,
    derive_attributes,
    fleiss_kappa_binary,
    load_knowledge,
    nih_box_statistics,
    reader_agreement,
    render_prompt,
    task_prompt,
    validate_knowledge,
    vindr_box_statistics,
)

HAS_DATA = importlib.util.find_spec("torchxrayvision") is not None
needs_data = pytest.mark.skipif(
    not HAS_DATA, reason='needs the torchxrayvision data files: pip install "medlens[data]"'
)

VINDR_22 = {
    "pleural thickening", "aortic enlargement", "pulmonary fibrosis", "cardiomegaly", "nodule or mass",
    "lung opacity", "other lesion", "pleural effusion", "ild", "infiltration", "calcification", "consolidation",
    "atelectasis", "rib fracture", "mediastinal shift", "enlarged pa", "pneumothorax", "emphysema", "lung cavity",
    "lung cyst", "clavicle fracture", "edema",
}  # fmt: skip
UNSEEN = {"infiltration", "mediastinal shift", "pneumothorax", "emphysema", "lung cyst", "edema"}


def test_builtin_kbs_have_the_findings_and_the_split():
    kb = load_knowledge("vindr-cxr")
    assert set(kb.names) == VINDR_22
    assert kb.version == "1.0.0"
    assert {f.name for f in kb.findings if f.split == "unseen"} == UNSEEN
    pk = load_knowledge("padchest")
    assert len(pk.findings) == 24
    assert len(set(pk.names)) == 24
    assert validate_knowledge("vindr-cxr") == []
    assert validate_knowledge("padchest-gr") == []
    for f in (*kb.findings, *pk.findings):
        assert f.definition
        assert set(f.attributes) == set(ATTRIBUTES)


def test_lookup_by_synonym_and_did_you_mean():
    kb = load_knowledge("vindr")
    assert kb.get("Pleural  Effusion").name == "pleural effusion"
    assert kb.get("Nodule/Mass").name == "nodule or mass"
    with pytest.raises(InputError, match="Did you mean: 'pneumothorax'"):
        kb.get("pneumothorx")


def _write(tmp_path, text):
    p = tmp_path / "kb.yaml"
    p.write_text(text, encoding="utf-8")
    return p


GOOD = """name: t
version: 0.1.0
dataset: toy
source: test
findings:
  - name: spot
    split: seen
    definition: A spot.
    attributes: {shape: round}
"""


def test_validator_lists_every_problem_with_finding_and_field(tmp_path):
    assert load_knowledge(_write(tmp_path, GOOD)).names == ["spot"]
    bad = GOOD.replace("version: 0.1.0", "version: one").replace("split: seen", "split: maybe")
    bad = (
        bad.replace("{shape: round}", "{shap: round}")
        + "  - name: Spot\n    split: seen\n    definition: x\n    attributes: {size: big}\n    statistics: {nih: [Effusionn]}\n"
    )
    problems = validate_knowledge(_write(tmp_path, bad))
    text = "\n".join(problems)
    assert "version must look like 1.0.0" in text
    assert "finding 1 ('spot'): field 'split' must be one of ['seen', 'unseen']; got 'maybe'" in text
    assert "unknown attribute 'shap'" in text
    assert "Did you mean: 'shape'" in text
    assert "statistics.nih has class 'Effusionn'" in text
    with pytest.raises(InputError, match="more problems"):
        load_knowledge(_write(tmp_path, bad))


def test_validator_duplicate_names_equivalents_and_yaml_errors(tmp_path):
    dup = (
        GOOD + "  - name: blob\n    synonyms: [spot]\n    split: seen\n    definition: x\n    attributes: {size: big}\n"
    )
    assert any("names both 'spot' and 'blob'" in p for p in validate_knowledge(_write(tmp_path, dup)))
    eq = GOOD.replace("split: seen", "split: seen\n    equivalent: pneumothorax")
    assert any("set split: unseen" in p for p in validate_knowledge(_write(tmp_path, eq)))
    with pytest.raises(InputError, match="not valid YAML at line"):
        load_knowledge(_write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(InputError, match="unknown knowledge base 'vindr-cx'. Did you mean: 'vindr-cxr'"):
        load_knowledge("vindr-cx")


def test_renderers_are_deterministic_and_canonical():
    f = load_knowledge("vindr").get("pneumothorax")
    assert render_prompt(f, "name_only") == "pneumothorax"
    assert (
        render_prompt(f, "definition")
        == "pneumothorax means air in the pleural space separating the lung from the chest wall."
    )
    a = render_prompt(f, "attributes", attributes="location,shape")
    assert a == render_prompt(f, "attributes", attributes=["shape", "location"])
    assert a == (
        "pneumothorax: shape: thin visceral pleural line parallel to the chest wall; "
        "location: pleural space, apical and lateral when the patient is upright."
    )
    m = render_prompt(f, "attributes", attributes="size", measured={"size": "median 2% of the image area"})
    assert m.endswith("(measured: median 2% of the image area).")
    assert task_prompt("pneumothorax") == "<CAPTION_TO_PHRASE_GROUNDING>pneumothorax"
    with pytest.raises(InputError, match="unknown attribute 'colour'"):
        render_prompt(f, "attributes", attributes="colour")
    with pytest.raises(InputError, match="only to mode 'attributes'"):
        render_prompt(f, "definition", attributes="shape")


def test_box_statistics_by_hand():
    nih = pd.DataFrame(
        {"image_id": ["a", "b", "c"], "label": ["X"] * 3,
         "x1": [0.0, 700, 100], "y1": [0.0, 800, 0], "x2": [100.0, 800, 1000], "y2": [100.0, 1000, 1024]}
    )  # fmt: skip
    s = nih_box_statistics(nih)["X"]
    assert s["n_boxes"] == 3
    assert s["side"] == {"bilateral": 1 / 3, "left": 1 / 3, "right": 1 / 3}
    assert s["zone"] == {"lower": 1 / 3, "middle": 1 / 3, "upper": 1 / 3}
    areas = np.array([100 * 100, 100 * 200, 900 * 1024]) / 1024**2
    assert s["area_fraction"]["median"] == pytest.approx(np.median(areas))
    vin = pd.DataFrame(
        {"image_id": ["i", "i", "i", "j"], "class_name": ["Y", "Y", "Y", "No finding"], "rad_id": ["R1", "R1", "R2", "R1"],
         "x_min": [0.0, 10, 0, np.nan], "y_min": [0.0, 10, 0, np.nan], "x_max": [10.0, 30, 10, np.nan], "y_max": [20.0, 20, 20, np.nan]}
    )  # fmt: skip
    v = vindr_box_statistics(vin)["Y"]
    assert v["n_boxes"] == 3
    assert v["n_images"] == 1
    assert v["boxes_per_reading_median"] == 1.5
    assert v["width_px"]["median"] == 10
    assert v["height_px"]["median"] == 20


def test_fleiss_kappa_and_reader_agreement_by_hand():
    assert fleiss_kappa_binary(np.array([3, 0, 3, 0]), 3) == pytest.approx(1.0)
    # 2 images x 3 readers; finding Y: image i marked by R1 (box A) and R2 (box A shifted: IoU 0.5 exactly? no, 1/3)
    rows = pd.DataFrame(
        {"image_id": ["i", "i", "i", "j", "j", "j"], "class_name": ["Y", "Y", "No finding", "No finding", "No finding", "Y"],
         "rad_id": ["R1", "R2", "R3", "R1", "R2", "R3"],
         "x_min": [0.0, 0, np.nan, np.nan, np.nan, 0], "y_min": [0.0, 0, np.nan, np.nan, np.nan, 0],
         "x_max": [10.0, 10, np.nan, np.nan, np.nan, 5], "y_max": [10.0, 5, np.nan, np.nan, np.nan, 5]}
    )  # fmt: skip
    r = reader_agreement(rows)["Y"]
    assert r["n_images_marked"] == 2
    assert r["readers_1"] == 1
    assert r["readers_2"] == 1
    assert r["readers_3"] == 0
    # pairs: image i (R1,R2): IoU 0.5 -> 1 TP, (R1,R3): 1 FN, (R2,R3): 1 FN; image j: (R1,R2) nothing,
    # (R1,R3) 1 FP, (R2,R3) 1 FP. TP=1, gold boxes = 1+1+1 = 3, predictions = 1+1+1 = 3 -> F1 = 1/3
    assert r["pairwise_f1_50"] == pytest.approx(1 / 3)
    # best IoU: box R1@i vs R2: 0.5, vs R3: 0; R2@i vs R1: 0.5, vs R3: 0; R3@j vs R1, R2: 0, 0 -> 1/6
    assert r["pairwise_mean_best_iou"] == pytest.approx(1 / 6)
    marks = np.array([2, 1])
    assert r["fleiss_kappa"] == pytest.approx(fleiss_kappa_binary(marks, 3))


@needs_data
def test_real_statistics_recomputed_from_the_csv():
    from medlens.grounding import locate_data_file

    with gzip.open(locate_data_file("vinbigdata-train.csv.gz"), "rt") as fh:
        raw = pd.read_csv(fh)
    assert raw["image_id"].nunique() == 15_000
    assert raw["rad_id"].nunique() == 17
    stats = vindr_box_statistics()
    assert len(stats) == 14
    for name, s in stats.items():
        sub = raw[raw["class_name"] == name]
        assert s["n_boxes"] == len(sub)
        assert s["width_px"]["median"] == pytest.approx(float((sub.x_max - sub.x_min).median()))
    nih = nih_box_statistics()
    assert sum(s["n_boxes"] for s in nih.values()) == 984
    assert len(nih) == 8
    d = derive_attributes(load_knowledge("vindr"))
    assert set(d.without_statistics) == {
        "clavicle fracture", "edema", "emphysema", "enlarged pa", "lung cavity", "lung cyst", "mediastinal shift", "rib fracture",
    }  # fmt: skip
    assert "NIH, 153 boxes" in d.attributes["pleural effusion"]["location"]
    assert "VinDr, 2476 boxes" in d.attributes["pleural effusion"]["size"]
    assert "NIH, 164 boxes" in d.attributes["nodule or mass"]["size"]  # Nodule 79 + Mass 85 pooled
