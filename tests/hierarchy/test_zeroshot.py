"""Zero-shot node scores for texts: sentence splitting, negation, prompt similarity, Platt scaling."""

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.hierarchy._zeroshot import PlattScaler, is_negated, prompt_node_similarity, split_sentences
from medlens.taxonomy import Taxonomy

VOCAB = ["effusion", "pneumonia", "normal", "heart", "clear"]


def bow_embed(texts: list[str]) -> np.ndarray:
    """Bag-of-words over a tiny vocabulary, L2-normalised (a transparent stand-in for a sentence encoder)."""
    out = np.zeros((len(texts), len(VOCAB)))
    for i, t in enumerate(texts):
        for j, w in enumerate(VOCAB):
            out[i, j] = t.lower().count(w)
        out[i] += 1e-3  # no zero vectors
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def tax() -> Taxonomy:
    return Taxonomy(
        {"root": ["Normal", "Lung", "Pleura"], "Normal": ["No Finding"], "Lung": ["Pneumonia"], "Pleura": ["Effusion"]},
        prompts={
            "Normal": ["normal"],
            "No Finding": ["normal"],
            "Lung": ["pneumonia"],
            "Pneumonia": ["pneumonia"],
            "Pleura": ["effusion"],
            "Effusion": ["effusion"],
        },
    )


def test_split_sentences_and_negation():
    assert split_sentences("No effusion. Right pneumonia!\nHeart XXXX normal; ok") == [
        "No effusion.",
        "Right pneumonia!",
        "Heart normal;",
    ]  # "ok" has no word of 3+ letters; XXXX de-identification marks are dropped
    assert is_negated("There is no effusion.")
    assert is_negated("Lungs are clear.")
    assert not is_negated("Right lower lobe pneumonia.")


def test_prompt_similarity_ignores_negated_sentences_for_findings(tax):
    texts = ["Right pneumonia.", "No pneumonia. No effusion."]
    sim, nodes = prompt_node_similarity(texts, taxonomy=tax, embed=bow_embed)
    assert nodes == list(tax.nodes[1:])
    col = {n: j for j, n in enumerate(nodes)}
    # report 0: "right pneumonia." matches the pneumonia prompt exactly (cosine ~ 1)
    assert sim[0, col["Pneumonia"]] == pytest.approx(1.0, abs=1e-4)
    # report 1: every sentence is negated, so no finding node sees a sentence (-1)
    assert sim[1, col["Pneumonia"]] == -1.0
    assert sim[1, col["Effusion"]] == -1.0
    # the normal branch is scored as "nothing abnormal asserted": -max finding similarity
    assert sim[1, col["No Finding"]] == pytest.approx(1.0)
    assert sim[0, col["No Finding"]] == pytest.approx(
        -sim[0, [col[n] for n in ("Lung", "Pleura", "Pneumonia", "Effusion")]].max()
    )


def test_prompt_similarity_with_negation_off_uses_all_sentences(tax):
    sim, nodes = prompt_node_similarity(
        ["No effusion."], taxonomy=tax, embed=bow_embed, negation=False, normal_from_findings=False
    )
    assert sim[0, nodes.index("Effusion")] == pytest.approx(1.0, abs=1e-4)


def test_missing_prompts_is_a_clear_error():
    t = Taxonomy({"root": ["A", "B"]}, prompts={"A": ["a"]})
    with pytest.raises(InputError, match=r"has no prompts for \['B'\]"):
        prompt_node_similarity(["x"], taxonomy=t, embed=bow_embed)


def test_platt_scaler_matches_sklearn_and_handles_single_class_columns():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    y = np.column_stack([(x[:, 0] + 0.5 * rng.normal(size=200)) > 0, np.zeros(200, dtype=bool)])
    p = PlattScaler().fit(x, y).transform(x)
    ref = LogisticRegression(C=100.0).fit(x[:, :1], y[:, 0]).predict_proba(x[:, :1])[:, 1]
    np.testing.assert_allclose(p[:, 0], ref, rtol=1e-6)
    # no positive in column 1: constant smoothed prevalence (0 + 0.5) / (200 + 1)
    np.testing.assert_allclose(p[:, 1], 0.5 / 201)
    with pytest.raises(InputError, match="not fitted"):
        PlattScaler().transform(x)


def test_platt_newton_solver_equals_sklearn_at_tight_tolerance():
    """Same objective (C·Σ log-loss + a²/2, intercept free): the vectorised Newton fit is sklearn's optimum."""
    from sklearn.linear_model import LogisticRegression

    from medlens.hierarchy import PlattScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)) * [0.1, 1, 3, 0.5, 2]
    y = (x + rng.normal(size=x.shape) > [0, 0.5, -1, 0, 3]).astype(int)
    y[:, 4] = 0  # a single-class column: its smoothed prior
    fast = PlattScaler(C=100.0, solver="newton").fit(x, y)
    for j in range(4):
        ref = LogisticRegression(C=100.0, tol=1e-12, max_iter=100_000).fit(x[:, j : j + 1], y[:, j])
        assert fast.coef_[j] == pytest.approx(ref.coef_[0, 0], rel=1e-6, abs=1e-8)
        assert fast.intercept_[j] == pytest.approx(ref.intercept_[0], rel=1e-6, abs=1e-8)
    assert fast.coef_[4] == 0.0
    assert fast.intercept_[4] == pytest.approx(np.log((0.5 / 401) / (1 - 0.5 / 401)))
    slow = PlattScaler(C=100.0).fit(x, y)
    assert np.allclose(fast.transform(x), slow.transform(x), atol=1e-3)
    with pytest.raises(InputError, match="solver"):
        PlattScaler(solver="sag").fit(x, y)
