"""Evaluating anomaly maps: thresholds by healthy FPR / validation / oracle, image AUROC, strata, bootstrap CIs."""

from __future__ import annotations

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.diffusion._evaluate import ORACLE_LABEL, evaluate_localization
from medlens.hierarchy import bootstrap_counts

skm = pytest.importorskip("sklearn.metrics")


def _case(n: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, 1, 12, 12), np.uint8)
    for i in range(n // 2):
        r = 1 + i % 3
        masks[i, 0, 4 : 4 + r, 5 : 5 + r] = 1
    maps = rng.uniform(0, 0.5, masks.shape) + 0.6 * masks * rng.uniform(0.5, 1, masks.shape)
    healthy = rng.uniform(0, 0.5, (6, 1, 12, 12))
    return maps, masks, healthy


def test_metrics_equal_scikit_learn_and_the_healthy_threshold_is_the_default() -> None:
    maps, masks, healthy = _case()
    doc = evaluate_localization(maps, masks, healthy_maps=healthy, fpr=0.05, n_bootstrap=50)
    assert doc["auprc"]["value"] == pytest.approx(skm.average_precision_score(masks.ravel(), maps.ravel()))
    assert doc["auroc"]["value"] == pytest.approx(skm.roc_auc_score(masks.ravel(), maps.ravel()))
    labels = masks.reshape(10, -1).any(1)
    assert doc["image_auroc"]["value"] == pytest.approx(skm.roc_auc_score(labels, maps.reshape(10, -1).mean(1)))
    assert doc["threshold_method"] == "healthy_fpr"
    tau = doc["threshold"]
    assert (healthy > tau).mean() <= 0.05
    pred = maps > tau
    assert doc["dice"]["value"] == pytest.approx(skm.f1_score(masks.ravel(), pred.ravel()))
    assert doc["fpr"]["value"] == pytest.approx((pred & (masks == 0)).sum() / (masks == 0).sum())
    assert doc["thresholds"]["oracle"]["label"] == ORACLE_LABEL
    assert doc["thresholds"]["oracle"]["dice"] >= doc["dice"]["value"]
    for key in ("auprc", "auroc", "image_auroc", "dice", "dice_per_image", "fpr"):
        lo, hi = doc[key]["ci"]
        assert lo <= hi
    assert doc["n_images"] == 10
    assert doc["n_lesion_images"] == 5


def test_bootstrap_resamples_whole_images() -> None:
    maps, masks, _ = _case()
    doc = evaluate_localization(maps, masks, n_bootstrap=40, seed=7, ci=0.9)
    draws = []
    for chunk in bootstrap_counts(10, n_bootstrap=40, seed=7):
        for w in chunk:
            idx = np.repeat(np.arange(10), w.astype(int))
            if not masks[idx].any():
                continue  # AUPRC is undefined without a lesion: such resamples are dropped, not scored 0
            draws.append(skm.average_precision_score(masks[idx].ravel(), maps[idx].ravel()))
    assert doc["auprc"]["ci"] == pytest.approx([np.quantile(draws, 0.05), np.quantile(draws, 0.95)])


def test_validation_threshold_without_healthy_maps_and_strata() -> None:
    maps, masks, _ = _case()
    vmaps, vmasks, _ = _case(seed=1)
    doc = evaluate_localization(maps, masks, val_maps=vmaps, val_masks=vmasks, n_bootstrap=10)
    assert doc["threshold_method"] == "validation"
    assert "healthy_fpr" not in doc["thresholds"]
    assert set(doc["strata"]) >= {"small", "large", "edges_px"}
    assert sum(doc["strata"][k]["n_images"] for k in ("small", "medium", "large") if k in doc["strata"]) == 5
    only = evaluate_localization(maps, masks, n_bootstrap=10)
    assert only["threshold_method"] == "oracle"


def test_bad_inputs() -> None:
    maps, masks, healthy = _case()
    with pytest.raises(InputError, match="same shape"):
        evaluate_localization(maps, masks[:, :, :6])
    with pytest.raises(InputError, match="no mask has a lesion"):
        evaluate_localization(maps, np.zeros_like(masks))
    with pytest.raises(InputError, match="healthy maps"):
        evaluate_localization(maps, masks, healthy_maps=healthy[:, :, :5])
    with pytest.raises(InputError, match="both"):
        evaluate_localization(maps, masks, val_maps=maps)
