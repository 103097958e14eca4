"""Translators recover the maps they claim to, pad between dimensions, invert, and survive a save/load."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlens._validation import InputError
from medlens.stitching import METHODS, PRE_TRANSFORMS, Translator, load_translator, underdetermined


def _orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.mark.parametrize("pre", ["none", "center"])
def test_procrustes_recovers_a_random_orthogonal_map(rng, pre):
    x = rng.normal(size=(300, 16))
    q = _orthogonal(16, rng)
    shift = 0.0 if pre == "none" else rng.normal(size=16)
    tr = Translator("ortho", pre=pre).fit(x, x @ q + shift)
    assert np.abs(tr.matrix - q).max() < 1e-6
    new = rng.normal(size=(20, 16))
    assert np.abs(tr.transform(new) - (new @ q + shift)).max() < 1e-6


def test_similarity_procrustes_recovers_the_scale(rng):
    x = rng.normal(size=(300, 12))
    q = _orthogonal(12, rng)
    tr = Translator("sim", pre="center").fit(x, 2.5 * x @ q - 1.0)
    assert tr._state["scale"] == pytest.approx(2.5, abs=1e-9)
    assert np.abs(tr.matrix - 2.5 * q).max() < 1e-6
    # plain Procrustes cannot express the scale: its fit is worse
    plain = Translator("ortho", pre="center").fit(x, 2.5 * x @ q - 1.0)
    err_plain = np.abs(plain.transform(x) - (2.5 * x @ q - 1.0)).max()
    assert err_plain > 0.5
    assert np.abs(tr.transform(x) - (2.5 * x @ q - 1.0)).max() < 1e-6


@pytest.mark.parametrize("pre", PRE_TRANSFORMS[:2] + ("none",))
def test_least_squares_recovers_an_affine_map(rng, pre):
    x = rng.normal(size=(200, 10))
    a = rng.normal(size=(10, 7))
    b = rng.normal(size=7)
    y = x @ a + b
    tr = Translator("linear", pre=pre).fit(x, y)
    new = rng.normal(size=(15, 10))
    expected = new @ a + b
    if pre == "none":  # no centring: a linear map cannot add the offset
        assert np.abs(tr.transform(new) - expected).max() > 1e-3
    else:
        assert np.abs(tr.transform(new) - expected).max() < 1e-8


def test_lortho_is_orthogonal_and_equals_ortho_on_an_exact_rotation(rng):
    x = rng.normal(size=(100, 8))
    q = _orthogonal(8, rng)
    lo = Translator("lortho", pre="center").fit(x, x @ q)
    assert np.allclose(lo.matrix @ lo.matrix.T, np.eye(8), atol=1e-10)
    assert np.abs(lo.matrix - q).max() < 1e-8


def test_ridge_equals_sklearn_ridge_without_intercept(rng):
    from sklearn.linear_model import Ridge

    x = rng.normal(size=(40, 6))
    y = x @ rng.normal(size=(6, 6)) + 0.1 * rng.normal(size=(40, 6))
    tr = Translator("ridge", pre="standard", ridge_alpha=3.0).fit(x, y)
    px, py = tr._state["px"], tr._state["py"]
    ref = Ridge(alpha=3.0, fit_intercept=False).fit(px.forward(x), py.forward(y))
    assert np.allclose(tr.matrix, ref.coef_.T, atol=1e-10)


def test_affine_sgd_lowers_the_error_and_is_seeded(rng):
    x = rng.normal(size=(256, 8))
    y = x @ rng.normal(size=(8, 5)) + 2.0
    short = Translator("affine", pre="standard", steps=20, lr=1e-2).fit(x, y)
    long = Translator("affine", pre="standard", steps=600, lr=1e-2).fit(x, y)
    err = [np.mean((t.transform(x) - y) ** 2) for t in (short, long)]
    assert err[1] < 0.05 * err[0]
    again = Translator("affine", pre="standard", steps=20, lr=1e-2).fit(x, y)
    assert np.array_equal(again.transform(x), short.transform(x))
    other = Translator("affine", pre="standard", steps=20, lr=1e-2, seed=1).fit(x, y)
    assert not np.array_equal(other.transform(x), short.transform(x))


def test_absolute_only_pads_or_truncates(rng):
    x = rng.normal(size=(5, 3))
    up = Translator("absolute").fit(x, rng.normal(size=(5, 6)))
    assert np.array_equal(up.transform(x), np.hstack([x, np.zeros((5, 3))]))
    down = Translator("absolute").fit(x, rng.normal(size=(5, 2)))
    assert np.array_equal(down.transform(x), x[:, :2])


@pytest.mark.parametrize(("d1", "d2"), [(6, 10), (10, 6)])
def test_dimension_mismatch_is_zero_padded(rng, d1, d2):
    """A rotation of the smaller space embedded in the larger one is recovered in either direction."""
    d = min(d1, d2)
    z = rng.normal(size=(200, d))
    q = _orthogonal(d, rng)
    x = np.hstack([z, np.zeros((200, d1 - d))]) if d1 > d else z
    y = np.hstack([z @ q, np.zeros((200, d2 - d))]) if d2 > d else z @ q
    tr = Translator("ortho", pre="center").fit(x, y)
    out = tr.transform(x)
    assert out.shape == (200, d2)
    assert np.abs(out - y).max() < 1e-8


@pytest.mark.parametrize("method", ["ortho", "sim", "lortho", "linear", "ridge", "affine"])
@pytest.mark.parametrize("d2", [9, 12])
def test_inverse_undoes_the_forward_map(rng, method, d2):
    """Exact whenever d1 <= d2: nothing is truncated away (affine: its learned map is invertible here)."""
    x = rng.normal(size=(120, 9))
    y = np.hstack([x @ _orthogonal(9, rng) * 1.7 + 0.3, rng.normal(size=(120, d2 - 9))])
    tr = Translator(method, pre="standard", ridge_alpha=0.01, steps=50).fit(x, y)
    new = rng.normal(size=(10, 9))
    assert np.abs(tr.inverse_transform(tr.transform(new)) - new).max() < 1e-6


def test_inverse_is_a_projection_when_the_source_is_wider(rng):
    x = rng.normal(size=(120, 9))
    tr = Translator("ortho", pre="center").fit(x, x[:, :5])
    back = tr.inverse_transform(tr.transform(x))
    assert back.shape == x.shape
    assert np.abs(tr.transform(back) - tr.transform(x)).max() < 1e-8  # idempotent on the image


def test_underdetermined_least_squares_is_refused_with_advice(rng):
    assert underdetermined("linear", 10, 10)
    assert not underdetermined("linear", 11, 10)
    assert not underdetermined("ridge", 3, 10)
    with pytest.raises(InputError, match="use method 'ortho' or 'ridge'"):
        Translator("linear").fit(rng.normal(size=(8, 10)), rng.normal(size=(8, 4)))
    # ortho and ridge work with few anchors
    Translator("ortho").fit(rng.normal(size=(8, 10)), rng.normal(size=(8, 4)))
    Translator("ridge").fit(rng.normal(size=(8, 10)), rng.normal(size=(8, 4)))


@pytest.mark.parametrize(
    ("x", "y", "words"),
    [
        (np.zeros((3, 2)), np.zeros((4, 2)), "pair row for row"),
        (np.array([[1.0, np.nan], [0, 1], [1, 1]]), np.zeros((3, 2)), "row 0 holds NaN"),
        (np.zeros(3), np.zeros((3, 2)), "2-D array"),
        (np.zeros((1, 2)), np.zeros((1, 2)), "at least 2 anchors"),
    ],
)
def test_bad_anchors_are_clear_errors(x, y, words):
    with pytest.raises(InputError, match=words):
        Translator("ortho").fit(x, y)


def test_ridge_needs_a_positive_penalty_and_pre_none_needs_one_anchor_less(rng):
    with pytest.raises(InputError, match="ridge_alpha must be > 0"):
        Translator("ridge", ridge_alpha=0.0)
    x = rng.normal(size=(6, 6))
    with pytest.raises(InputError, match="at least 7 anchors"):
        Translator("linear").fit(x, x)
    assert np.allclose(Translator("linear", pre="none").fit(x, 2 * x).transform(x), 2 * x)


def test_bad_options_and_unfitted_use():
    with pytest.raises(InputError, match="method"):
        Translator("procrustes")
    with pytest.raises(InputError, match="pre"):
        Translator("ortho", pre="whiten")
    with pytest.raises(InputError, match="not fitted"):
        Translator().transform(np.zeros((1, 2)))
    tr = Translator().fit(np.eye(3), np.eye(3))
    with pytest.raises(InputError, match="fitted on 3"):
        tr.transform(np.zeros((2, 4)))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("pre", PRE_TRANSFORMS)
def test_save_and_load_round_trip(tmp_path, rng, method, pre):
    x = rng.normal(size=(40, 5))
    y = rng.normal(size=(40, 7))
    tr = Translator(method, pre=pre, steps=5, metadata={"note": "x"}).fit(x, y)
    path = tr.save(tmp_path / "tr.npz")
    back = load_translator(path)
    assert back.config() == tr.config()
    assert back.metadata == {"note": "x"}
    new = rng.normal(size=(6, 5))
    assert np.array_equal(back.transform(new), tr.transform(new))
    # the file holds no pickles
    with np.load(path, allow_pickle=False) as z:
        assert "metadata" in z.files


def test_load_refuses_other_files(tmp_path):
    with pytest.raises(InputError, match="no such translator"):
        load_translator(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(InputError, match="not a medlens translator"):
        load_translator(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a translator .npz"):
        load_translator(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(InputError, match="single array"):
        load_translator(tmp_path / "single.npz")
    # a translator whose matrix does not fit its stated dimensions
    rng = np.random.default_rng(0)
    good = Translator().fit(rng.normal(size=(5, 3)), rng.normal(size=(5, 3))).save(tmp_path / "good.npz")
    with np.load(good, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["r"] = np.zeros((2, 2))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match="corrupt translator, array shapes do not match its dimensions: r "):
        load_translator(tmp_path / "bad.npz")


@settings(max_examples=25, deadline=None)
@given(d=st.integers(2, 8), n_extra=st.integers(0, 20), seed=st.integers(0, 2**16), scale=st.floats(0.1, 10))
def test_property_procrustes_is_exact_on_rotated_scaled_copies(d, n_extra, seed, scale):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(d + 2 + n_extra, d))
    q = _orthogonal(d, rng)
    tr = Translator("sim", pre="center").fit(x, scale * x @ q)
    assert np.allclose(tr.transform(x), scale * x @ q, atol=1e-7 * scale)
