"""The ``--full`` grounding demo: synthetic chest-like images with findings in real NIH boxes, and a tiny run."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.benchmarks._grounding_full import FULL_FINDINGS, run_full, synthetic_chest
from medlens.grounding import load_knowledge

KB = load_knowledge("vindr-cxr")


def _real():
    # two real-looking boxes per finding (normalised), as _real_boxes gives them from the NIH table
    return {f: np.array([[0.2, 0.3, 0.5, 0.6], [0.55, 0.1, 0.8, 0.35]]) for f in FULL_FINDINGS}


def test_synthetic_images_are_seeded_and_boxes_fit():
    a, boxes_a = synthetic_chest(np.random.default_rng(4), 96, _real())
    b, boxes_b = synthetic_chest(np.random.default_rng(4), 96, _real())
    assert np.array_equal(a, b)
    assert boxes_a == boxes_b
    assert a.shape == (96, 96)
    assert a.dtype == np.uint8
    seen = set()
    for s in range(30):
        img, boxes = synthetic_chest(np.random.default_rng(s), 96, _real())
        for f, bs in boxes.items():
            seen.add(f)
            x1, y1, x2, y2 = bs[0]
            assert 0 <= x1 < x2 <= 96
            assert 0 <= y1 < y2 <= 96
            inside = img[int(np.ceil(y1)) : int(y2), int(np.ceil(x1)) : int(x2)]
            if f == "pneumothorax":  # lucent band without markings (and its pleural line)
                assert (inside <= 12).mean() > 0.5
            else:  # brighter than any lung marking
                assert inside.max() >= 160
    assert seen == set(FULL_FINDINGS)
    assert {f: KB.get(f).split for f in FULL_FINDINGS}["pneumothorax"] == "unseen"


@pytest.mark.slow
def test_tiny_full_run_reports_seen_and_unseen():
    import pandas as pd

    nih = pd.DataFrame(
        [(lab, 200.0, 300.0, 500.0, 600.0) for labels in FULL_FINDINGS.values() for lab in labels],
        columns=["label", "x1", "y1", "x2", "y2"],
    )
    r = run_full(KB, nih, n_train=8, n_val=2, n_test=2, epochs=1, modes=("name_only",))
    row = r["by_mode"]["name_only"]
    assert set(row["by_split"]) == {"seen", "unseen"}
    assert row["overall"]["n_queries"] == 2 * len(FULL_FINDINGS)
    assert row["selected_epoch"] == 1
    assert r["findings"]["pneumothorax"] == "unseen"
