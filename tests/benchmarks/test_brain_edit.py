"""The brain-edit benchmark: the shipped mask-conditioned checkpoint (sha256, never retrained), the spec's summary
and report on a small document, and (slow) a tiny end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medlens._provenance import file_sha256
from medlens.benchmarks import BENCHMARKS
from medlens.benchmarks.brain_edit._demo import DEMO_EDIT_FILE, DEMO_EDIT_TRAIN, DEMO_EDIT_UNET, demo_edit_record


def test_the_shipped_checkpoint_is_the_recorded_one() -> None:
    rec = demo_edit_record()
    assert DEMO_EDIT_FILE.is_file()
    assert file_sha256(DEMO_EDIT_FILE) == rec["sha256"]
    assert DEMO_EDIT_FILE.stat().st_size == rec["bytes"] <= 5 * 2**20
    assert rec["unet"] == DEMO_EDIT_UNET
    assert rec["train"] == DEMO_EDIT_TRAIN
    assert rec["command"].startswith("PYTHONPATH=src python scripts/train_demo_edit.py")
    assert rec["loss_curve"][-1] < rec["loss_curve"][0]


def _doc(tmp: Path) -> dict:
    row = {"value": 0.5, "ci": [0.4, 0.6]}
    ex = {"input": np.zeros((3, 8, 8)), "mask": np.zeros((3, 8, 8)), "mededit": np.ones((3, 8, 8))}
    np.savez(tmp / "examples.npz", **ex)
    methods = {m: {"fid": row, "kid": row, "preservation_mae": row, "segmenter_dice": row, "nfe": 50,
                   "seconds_per_image": 0.1} for m in ("input", "mededit")}  # fmt: skip
    return {"methods": methods, "data": {"n_images": 3, "n_real": 4, "size": 8, "lesion_pixels_mean": 5.0},
            "max_nfe": 50, "n_bootstrap": 10, "examples": str(tmp / "examples.npz"),
            "model": {"source": "shipped demo checkpoint", "n_parameters": 1000}}  # fmt: skip


def test_spec_is_registered_and_renders(tmp_path: Path) -> None:
    from medlens.benchmarks import DEMO, DEMO_FULL

    assert "brain-edit" in DEMO_FULL
    assert "brain-edit" not in DEMO
    spec = BENCHMARKS.get("brain-edit")
    doc = _doc(tmp_path)
    assert spec.summarize(doc)["mededit"] == {"fid": 0.5, "kid": 0.5, "preservation_mae": 0.5, "segmenter_dice": 0.5,
                                              "nfe": 50}  # fmt: skip
    assert spec.summary_lines(doc)[1].startswith("MedEdit (k = 25): FID 0.500")
    pytest.importorskip("matplotlib")
    body = "".join(spec.report_section(doc).body)
    assert "segmenter Dice" in body
    assert "<img" in body
    assert "fourth baseline, is not run here" in body
    assert "anomaly train --conditioned palette" in body
    # a document of an earlier run, with its Palette-style row, still renders
    doc["methods"]["palette"] = doc["methods"]["mededit"]
    assert any(line.startswith("palette: FID 0.500") for line in spec.summary_lines(doc))
    assert "palette" in "".join(spec.report_section(doc).body)


@pytest.mark.slow
def test_tiny_run_with_the_shipped_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("monai", reason='monai not installed (pip install "medlens[diffusion]")')
    doc = BENCHMARKS.get("brain-edit").run(tmp_path / "b", n_images=2, n_real=4, max_nfe=4, n_bootstrap=5)
    assert set(doc["methods"]) == {"input", "mededit", "repaint", "sdedit"}  # Palette needs its own model
    assert doc["methods"]["mededit"]["preservation_mae"]["value"] == 0.0
    assert doc["methods"]["repaint"]["preservation_mae"]["value"] == 0.0
    assert all(r["nfe"] <= 4 for r in doc["methods"].values())
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["benchmark"] == "brain-edit"
