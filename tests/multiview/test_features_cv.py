"""Frozen encoder, cached view features, patient-level folds, bootstrap metrics and cross-validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import balanced_accuracy_score, matthews_corrcoef, roc_auc_score

from medlens._validation import InputError
from medlens.multiview import binary_metrics, bootstrap_metrics, patient_folds, view_layout

torch = pytest.importorskip("torch")

from medlens.multiview import RandomConvEncoder, cross_validate, encode_views, view_features  # noqa: E402


def _volume(seed=0):
    rng = np.random.default_rng(seed)
    vol = rng.random((12, 14, 10)).astype(np.float32)
    aff = np.diag([2.0, 1.5, 3.0, 1.0])
    aff[:3, 3] = [-10, 5, 2]
    return vol, aff


def test_random_cnn_is_seeded_and_encodes_in_batches():
    s = np.random.default_rng(0).random((5, 32, 32)).astype(np.float32)
    a = RandomConvEncoder(seed=3, size=32)
    f1 = encode_views(a, s, batch_size=2)
    f2 = encode_views(RandomConvEncoder(seed=3, size=32), s, batch_size=5)
    assert f1.shape == (5, a.config.embedding_dim) == (5, 128)
    np.testing.assert_allclose(f1, f2, rtol=1e-5, atol=1e-6)
    assert not np.allclose(f1, encode_views(RandomConvEncoder(seed=4, size=32), s))
    assert a.model_id == "medlens/random-cnn-16-32-64-seed3"
    with pytest.raises(InputError, match="image"):
        a.encode_texts(["x"])


def test_view_layouts():
    n, stack = view_layout("omni", 8)
    assert n.shape == (8, 3)
    assert stack == 1
    assert view_layout("canonical", 99)[0].shape == (3, 3)
    n, stack = view_layout("axial-stack", 5)
    assert n.tolist() == [[0.0, 0.0, 1.0]]
    assert stack == 5


def test_view_features_are_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path))
    vol, aff = _volume()
    enc = RandomConvEncoder(seed=0, size=16)
    a = view_features(vol, aff, enc, views=6, size=16)
    assert not a.cached
    assert a.features.shape == (6, 128)
    assert a.normals.shape == (6, 3)
    assert len(list((tmp_path / "multiview").rglob("*.npz"))) == 1
    b = view_features(vol, aff, enc, views=6, size=16)
    assert b.cached
    assert b.key == a.key
    np.testing.assert_array_equal(a.features, b.features)
    assert view_features(vol, aff, enc, views=7, size=16).key != a.key  # other normals
    assert view_features(vol, aff, RandomConvEncoder(seed=1, size=16), views=6, size=16).key != a.key
    vol2 = vol.copy()
    vol2[0, 0, 0] += 1
    assert view_features(vol2, aff, enc, views=6, size=16).key != a.key
    s = view_features(vol, aff, enc, layout="axial-stack", views=4, spacing_mm=3.0, size=16)
    assert s.features.shape == (4, 128)
    assert np.allclose(s.normals, [0, 0, 1])


def test_patient_folds_keep_patients_together_and_stratify():
    y = np.array([0] * 20 + [1] * 20)
    groups = np.concatenate([np.repeat(np.arange(10), 2), np.repeat(np.arange(10, 20), 2)])
    folds = patient_folds(y, groups, n_folds=5, seed=0)
    seen = np.concatenate([te for _, te in folds])
    assert sorted(seen.tolist()) == list(range(40))
    for tr, te in folds:
        assert not set(groups[tr]) & set(groups[te])
        assert y[te].sum() == 4
        assert (1 - y[te]).sum() == 4
    assert [t.tolist() for _, t in folds] == [t.tolist() for _, t in patient_folds(y, groups, n_folds=5, seed=0)]
    with pytest.raises(InputError, match="patients of each class"):
        patient_folds(y[:12], groups[:12], n_folds=5)


def test_metrics_match_scikit_learn_and_bootstrap_brackets_them():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    p = np.clip(0.3 * y + rng.random(80) * 0.7, 0, 1).round(2)
    m = binary_metrics(y, p)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p >= 0.5))
    assert m["mcc"] == pytest.approx(matthews_corrcoef(y, p >= 0.5))
    b = bootstrap_metrics(y, p, n_bootstrap=400, seed=1)
    for k in m:
        assert b[k]["low"] <= m[k] <= b[k]["high"]
    assert b == bootstrap_metrics(y, p, n_bootstrap=400, seed=1)


def test_cross_validation_learns_a_separable_task_and_is_seeded():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    x = rng.normal(size=(60, 4, 6)).astype(np.float32)
    x[:, :, 0] += 3.0 * y[:, None]
    from medlens.multiview import build_head

    def make():
        return build_head("mean", n_views=4, dim=6, budget=300)

    r = cross_validate(x, y, make, n_folds=3, seed=0, epochs=12, patience=5, lr=0.01)
    assert np.isfinite(r.probabilities).all()
    assert set(r.fold.tolist()) == {0, 1, 2}
    assert binary_metrics(y, r.probabilities)["auroc"] > 0.85
    for f in r.folds:
        assert f["n_train"] + f["n_val"] + f["n_test"] == 60
        assert 1 <= f["best_epoch"] <= f["epochs_run"]
    r2 = cross_validate(x, y, make, n_folds=3, seed=0, epochs=12, patience=5, lr=0.01)
    np.testing.assert_allclose(r.probabilities, r2.probabilities, atol=1e-6)


def test_layout_features_equal_one_layout_at_a_time_and_share_its_cache(tmp_path, monkeypatch):
    from medlens.multiview import layout_features

    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path))
    vol, aff = _volume(1)
    enc = RandomConvEncoder(seed=0, size=16)
    layouts = [("omni", 5), ("canonical", 3), ("axial-stack", 4)]
    both = layout_features(vol, aff, enc, layouts, size=16, spacing_mm=3.0, cache=False)
    assert list(both) == layouts
    assert not list(tmp_path.rglob("*.npz"))  # cache=False writes nothing
    for (lay, nv), f in both.items():
        one = view_features(vol, aff, enc, layout=lay, views=nv, size=16, spacing_mm=3.0)
        assert one.key == f.key
        assert not one.cached
        np.testing.assert_allclose(one.features, f.features, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(one.normals, f.normals)
    again = layout_features(vol, aff, enc, layouts, size=16, spacing_mm=3.0)
    assert all(f.cached for f in again.values())  # the one-layout calls above filled the cache


def test_singleton_patients_use_plain_stratified_folds():
    from sklearn.model_selection import StratifiedKFold

    y = np.array([0, 1] * 15)
    folds = patient_folds(y, n_folds=5, seed=3)
    expect = StratifiedKFold(n_splits=5, shuffle=True, random_state=3).split(np.zeros(30), y)
    assert [t.tolist() for _, t in folds] == [t.tolist() for _, t in expect]
    for _, te in folds:
        assert y[te].sum() == 3


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6)), min_size=2, max_size=40))
@settings(max_examples=60, deadline=None)
def test_fast_auroc_equals_scikit_learn(pairs):
    from medlens.multiview._cv import auroc

    y = np.array([a for a, _ in pairs])
    p = np.array([b / 6 for _, b in pairs])  # few distinct scores: many ties
    if len(set(y.tolist())) < 2:
        assert auroc(y, p) is None
    else:
        assert auroc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
