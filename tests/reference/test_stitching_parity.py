"""Translators and relative projections equal latentis's (and scipy's / numpy's) on the same anchors."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.stitching import Translator, relative_projection

pytestmark = pytest.mark.reference


@pytest.fixture
def spaces():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 12)) * rng.uniform(0.5, 3, size=12) + rng.normal(size=12)
    y = np.hstack([x[:, :8] @ np.linalg.qr(rng.normal(size=(8, 8)))[0], rng.normal(size=(300, 8))])
    y += 0.1 * rng.normal(size=y.shape)
    return x, y, rng.normal(size=(25, 12)) * 2


def test_procrustes_equals_scipy_orthogonal_procrustes(spaces):
    from scipy.linalg import orthogonal_procrustes

    x, y, _ = spaces
    tr = Translator("ortho", pre="center").fit(x, y[:, :12])
    a, b = x - x.mean(0), y[:, :12] - y[:, :12].mean(0)
    r, _ = orthogonal_procrustes(a, b)
    assert np.allclose(tr.matrix, r, atol=1e-10)


def test_linear_equals_numpy_lstsq(spaces):
    x, y, new = spaces
    tr = Translator("linear", pre="none").fit(x, y)
    w = np.linalg.lstsq(np.hstack([x, np.zeros((300, 8))]), y, rcond=None)[0]
    assert np.allclose(tr.transform(new), np.hstack([new, np.zeros((25, 8))]) @ w, atol=1e-10)


def _latentis_translator(kind: str):
    torch = pytest.importorskip("torch")
    latentis = pytest.importorskip("latentis", reason="latentis (reference extra) not installed")
    del latentis, torch
    from latentis.transform.base import Centering, StandardScaling
    from latentis.transform.dim_matcher import ZeroPadding
    from latentis.transform.translate.aligner import MatrixAligner
    from latentis.transform.translate.aligner import Translator as LTranslator
    from latentis.transform.translate.functional import lstsq_align_state, lstsq_ortho_align_state, svd_align_state

    state = {"ortho": svd_align_state, "linear": lstsq_align_state, "lortho": lstsq_ortho_align_state}[kind[0]]
    pre = {"standard": StandardScaling, "center": Centering}[kind[1]]
    return LTranslator(
        aligner=MatrixAligner(name=kind[0], align_fn_state=state),
        x_transform=pre(),
        y_transform=pre(),
        dim_matcher=ZeroPadding(),
    )


@pytest.mark.parametrize("method", ["ortho", "linear", "lortho"])
@pytest.mark.parametrize("pre", ["standard", "center"])
def test_translators_equal_latentis(spaces, method, pre):
    import torch

    x, y, new = spaces
    ref = _latentis_translator((method, pre))
    ref.fit(torch.tensor(x), torch.tensor(y))
    expected = ref.transform(torch.tensor(new))[0].numpy()
    ours = Translator(method, pre=pre).fit(x, y).transform(new)
    assert np.allclose(ours, expected, atol=1e-8)


@pytest.mark.parametrize("method", ["cosine", "angular", "euclidean", "l1", "cob"])
def test_relative_projections_equal_latentis(spaces, method):
    torch = pytest.importorskip("torch")
    pytest.importorskip("latentis", reason="latentis (reference extra) not installed")
    from latentis.transform import projection as P

    x, _, new = spaces
    fn = {
        "cosine": P.cosine_proj,
        "angular": P.angular_proj,
        "euclidean": P.euclidean_proj,
        "l1": P.l1_proj,
        "cob": P.change_of_basis_proj,
    }[method]
    anchors = x[:10]
    out = fn(torch.tensor(new), anchors=torch.tensor(anchors))
    expected = (out.x if hasattr(out, "x") else out).numpy()
    assert np.allclose(relative_projection(new, anchors, method), expected, atol=1e-8)
