"""ZeroShotScorer and prompt tables, hand-computed with a fake encoder whose vectors are set by hand.

Taxonomy (toy_tree): root → Lung{Pneumonia, Edema}, Pleura{Effusion}.
Node order: root, Lung, Pleura, Pneumonia, Edema, Effusion.  Leaves: Pneumonia, Edema, Effusion.
Prompts are one string per node whose vector is a unit axis (Lung's lies between its two children).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.hierarchy import PlattScaler, ZeroShotScorer, build_prompt_table, read_prompt_file
from medlens.taxonomy import Taxonomy

S2 = math.sqrt(2.0)
PROMPTS = {
    "Pneumonia": ["p:pneu"],
    "Edema": ["p:edema"],
    "Effusion": ["p:eff"],
    "Lung": ["p:lung"],
    "Pleura": ["p:pleura"],
}
VECTORS = {
    "p:pneu": [1, 0, 0],
    "p:edema": [0, 1, 0],
    "p:eff": [0, 0, 1],
    "p:lung": [1 / S2, 1 / S2, 0],
    "p:pleura": [0, 0, 1],
    "x": [0.6, 0.8, 0.0],  # cos to the leaves: 0.6, 0.8, 0
    "y": [0.0, 0.0, 2.0],  # not unit length: the scorer normalises inputs; cos to Effusion = 1
}


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


@pytest.fixture
def enc(fake_encoder_cls):
    return fake_encoder_cls(VECTORS)


def col(tax: Taxonomy, node: str) -> int:
    return tax.index[node]


# --------------------------------------------------------------------------------------------------- softmax
def test_softmax_over_leaves_with_sum_aggregation(enc, toy_tree):
    s = ZeroShotScorer(enc, toy_tree, prompts=PROMPTS, temperature=0.1)  # scale 10
    assert s.internal == "sum"
    assert s.scored_nodes == ("Pneumonia", "Edema", "Effusion")
    sim = s.similarity_texts(["x", "y"])  # (2 texts, 3 leaves)
    np.testing.assert_allclose(sim, [[0.6, 0.8, 0.0], [0.0, 0.0, 1.0]], atol=1e-7)
    p = s.score_texts(["x", "y"])  # (2, 6) in taxonomy order
    z = math.exp(6) + math.exp(8) + math.exp(0)
    pneu, edema, eff = math.exp(6) / z, math.exp(8) / z, 1 / z  # 0.119168, 0.880537, 0.000295
    np.testing.assert_allclose(p[0], [1.0, pneu + edema, eff, pneu, edema, eff], rtol=1e-6)
    z2 = 2 + math.exp(10)
    np.testing.assert_allclose(p[1], [1.0, 2 / z2, math.exp(10) / z2, 1 / z2, 1 / z2, math.exp(10) / z2], rtol=1e-6)
    info = s.method_info()
    assert (info["method"], info["internal"], info["scale"], info["scale_source"]) == (
        "softmax",
        "sum",
        10.0,
        "temperature",
    )
    assert info["temperature"] == pytest.approx(0.1)
    assert info["bias"] is None


def test_softmax_scale_from_encoder_then_default(fake_encoder_cls, toy_tree):
    scaled = ZeroShotScorer(fake_encoder_cls(VECTORS, logit_scale=5.0), toy_tree, prompts=PROMPTS)
    assert (scaled.scale, scaled.scale_source) == (5.0, "encoder")
    z = math.exp(3) + math.exp(4) + 1
    np.testing.assert_allclose(scaled.score_texts(["x"])[0, 3:], [math.exp(3) / z, math.exp(4) / z, 1 / z], rtol=1e-6)
    # an explicit temperature wins over the encoder's logit_scale
    assert (
        ZeroShotScorer(fake_encoder_cls(VECTORS, logit_scale=5.0), toy_tree, prompts=PROMPTS, temperature=0.5).scale
        == 2.0
    )
    default = ZeroShotScorer(fake_encoder_cls(VECTORS), toy_tree, prompts=PROMPTS)
    assert (default.scale, default.scale_source) == (100.0, "default")


@pytest.mark.parametrize("internal", ["max", "noisy_or"])
def test_softmax_with_max_and_noisy_or(enc, toy_tree, internal):
    p = ZeroShotScorer(enc, toy_tree, prompts=PROMPTS, temperature=0.1, internal=internal).score_texts(["x"])[0]
    pneu, edema = p[col(toy_tree, "Pneumonia")], p[col(toy_tree, "Edema")]
    expect = max(pneu, edema) if internal == "max" else 1 - (1 - pneu) * (1 - edema)
    assert p[col(toy_tree, "Lung")] == pytest.approx(expect, rel=1e-12)
    assert p[0] == 1.0


# --------------------------------------------------------------------------------------------------- sigmoid
def test_sigmoid_internal_by_own_prompts_uses_encoder_bias(fake_encoder_cls, toy_tree):
    enc = fake_encoder_cls(VECTORS, logit_scale=10.0, logit_bias=-5.0)
    s = ZeroShotScorer(enc, toy_tree, prompts=PROMPTS, method="sigmoid")
    assert s.internal == "prompt"
    assert s.scored_nodes == ("Lung", "Pleura", "Pneumonia", "Edema", "Effusion")
    p = s.score_texts(["x"])[0]
    lung_cos = (0.6 + 0.8) / S2  # 0.98995
    expect = [1.0, sig(10 * lung_cos - 5), sig(-5), sig(6 - 5), sig(8 - 5), sig(-5)]
    np.testing.assert_allclose(p, expect, rtol=1e-6)
    info = s.method_info()
    assert (info["bias"], info["bias_source"], info["scale_source"]) == (-5.0, "encoder", "encoder")


@pytest.mark.parametrize("internal", ["sum", "max", "noisy_or"])
def test_sigmoid_with_aggregated_internal_nodes(enc, toy_tree, internal):
    s = ZeroShotScorer(enc, toy_tree, prompts=PROMPTS, method="sigmoid", internal=internal, temperature=0.1, bias=-5)
    assert s.scored_nodes == ("Pneumonia", "Edema", "Effusion")  # internal prompts are not needed
    p = s.score_texts(["x"])[0]
    a, b, c = sig(1.0), sig(3.0), sig(-5.0)  # σ(10·0.6 − 5), σ(10·0.8 − 5), σ(10·0 − 5)
    lung = {"sum": min(1.0, a + b), "max": b, "noisy_or": 1 - (1 - a) * (1 - b)}[internal]
    np.testing.assert_allclose(p, [1.0, lung, c, a, b, c], rtol=1e-6)
    assert s.method_info()["bias_source"] == "user"


def test_sigmoid_without_any_bias_warns(enc, toy_tree, caplog):
    with caplog.at_level(logging.WARNING, logger="medlens"):
        s = ZeroShotScorer(enc, toy_tree, prompts=PROMPTS, method="sigmoid", temperature=1.0)
    assert "without a logit bias" in caplog.text
    assert (s.bias, s.bias_source) == (0.0, "default")
    assert s.score_texts(["x"])[0, col(toy_tree, "Pneumonia")] == pytest.approx(sig(0.6))


# ------------------------------------------------------------------------------------------------------ platt
def test_platt_fit_on_similarities_matches_sklearn(enc, toy_tree):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    sim = rng.uniform(-0.2, 0.6, size=(60, 5))  # columns: Lung, Pleura, Pneumonia, Edema, Effusion
    leaf = np.array(["Pneumonia", "Edema", "Effusion"])[rng.integers(0, 3, 60)]
    s = ZeroShotScorer(enc, toy_tree, prompts=PROMPTS, method="platt").fit(sim, list(leaf))
    p = s.probabilities(sim)
    # Pneumonia: positive when the label is Pneumonia; Lung: when the label is Pneumonia or Edema (closure)
    for j, node, pos in [(2, "Pneumonia", leaf == "Pneumonia"), (0, "Lung", leaf != "Effusion")]:
        ref = LogisticRegression(C=100.0).fit(sim[:, j : j + 1], pos)
        np.testing.assert_allclose(p[:, col(toy_tree, node)], ref.predict_proba(sim[:, j : j + 1])[:, 1], rtol=1e-6)
        info = s.method_info()["platt"]
        assert info["coef"][node] == pytest.approx(ref.coef_[0, 0], rel=1e-6)
        assert info["intercept"][node] == pytest.approx(ref.intercept_[0], rel=1e-6)
    assert s.method_info()["platt"]["n_samples"] == 60
    assert (s.scale, s.bias) == (None, None)


def test_platt_fit_on_texts_with_aggregation_and_single_class_column(fake_encoder_cls, toy_tree, caplog):
    text_only = fake_encoder_cls(VECTORS, modality="text")  # strings are then texts without kind=
    s = ZeroShotScorer(text_only, toy_tree, prompts=PROMPTS, method="platt", internal="max")
    texts = ["x", "y", "x", "y"]
    with caplog.at_level(logging.WARNING, logger="medlens"):
        s.fit(texts, ["Edema", "Effusion", "Edema", "Effusion"])  # Pneumonia never positive
    assert "single class" in caplog.text
    p = s.score_texts(["x"])[0]
    # no positive Pneumonia in 4 samples: the smoothed prevalence (0 + 0.5) / (4 + 1)
    assert p[col(toy_tree, "Pneumonia")] == pytest.approx(0.1)
    assert p[col(toy_tree, "Lung")] == pytest.approx(max(p[col(toy_tree, "Pneumonia")], p[col(toy_tree, "Edema")]))
    ref = PlattScaler().fit(s.similarity_texts(texts), np.array([[0, 1, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]]))
    np.testing.assert_allclose(p[3:], ref.transform(s.similarity_texts(["x"]))[0])


def test_platt_errors(enc, toy_tree):
    s = ZeroShotScorer(enc, toy_tree, prompts=PROMPTS, method="platt")
    with pytest.raises(InputError, match="needs a fit on labelled data"):
        s.score_texts(["x"])
    with pytest.raises(InputError, match=r"shape \(n, 5\)"):
        s.fit(np.zeros((3, 2)), ["Edema"] * 3)
    with pytest.raises(InputError, match="same length"):
        s.fit(np.zeros((3, 5)), ["Edema"] * 2)
    with pytest.raises(InputError, match="needs no fit"):
        ZeroShotScorer(enc, toy_tree, prompts=PROMPTS).fit(np.zeros((3, 3)), ["Edema"] * 3)
    with pytest.raises(InputError, match="say kind='texts' or kind='images'"):
        s.fit(["x", "y"], ["Edema", "Effusion"])  # strings are ambiguous for an image-text encoder
    with pytest.raises(InputError, match="do not apply to method 'platt'"):
        ZeroShotScorer(enc, toy_tree, prompts=PROMPTS, method="platt", temperature=0.1)


# ------------------------------------------------------------------------------------------------- prompts
def test_prompt_ensemble_normalises_each_prompt_then_the_mean(fake_encoder_cls, toy_tree):
    vectors = {"a": [2, 0, 0], "b": [0, 1, 0], "q": [1, 0, 0], "p:edema": [0, 1, 0], "p:eff": [0, 0, 1]}
    enc = fake_encoder_cls(vectors)
    prompts = {"Pneumonia": ["a", "b"], "Edema": ["p:edema"], "Effusion": ["p:eff"]}
    s = ZeroShotScorer(enc, toy_tree, prompts=prompts)
    np.testing.assert_allclose(s.prompt_embeddings()[0], [1 / S2, 1 / S2, 0])  # not (2, 1, 0)/√5
    assert s.similarity_texts(["q"])[0, 0] == pytest.approx(1 / S2)
    # prompts are embedded once, in one call
    s.similarity_texts(["q"])
    assert enc.text_calls[0] == ["a", "b", "p:edema", "p:eff"]
    assert sum(len(c) == 4 for c in enc.text_calls) == 1


def test_prompt_table_sources_templates_synonyms_and_overrides():
    tax = Taxonomy(
        {"root": ["Lung", "Pleura"], "Lung": ["Lung_Opacity"], "Pleura": ["Pleural Effusion"]},
        labels={"Pleural Effusion": ["effusion", "Pleural effusion"], "Lung_Opacity": ["COPD-like opacity"]},
        prompts={"Pleural Effusion": ["There is a pleural effusion."]},
    )
    t = build_prompt_table(tax, templates=["x-ray: {}", "{}."])
    assert t.nodes == ("Lung", "Pleura", "Lung_Opacity", "Pleural Effusion")
    assert t.prompts["Pleural Effusion"] == ["There is a pleural effusion."]
    assert t.prompts["Lung_Opacity"] == [
        "x-ray: lung opacity",
        "lung opacity.",
        "x-ray: copd-like opacity",
        "copd-like opacity.",
    ]
    assert t.sources == {
        "Lung": "templates",
        "Pleura": "templates",
        "Lung_Opacity": "templates",
        "Pleural Effusion": "taxonomy",
    }
    both = build_prompt_table(tax, templates=["{}"], source="both", synonyms=False)
    assert both.prompts["Pleural Effusion"] == ["There is a pleural effusion.", "pleural effusion"]
    assert both.sources["Pleural Effusion"] == "both"
    only = build_prompt_table(tax, templates=["{}"], source="templates")
    assert only.prompts["Pleural Effusion"] == ["pleural effusion", "effusion"]  # synonyms de-duplicated
    over = build_prompt_table(tax, nodes=["Lung"], overrides={"Lung": ["lungs!", "lungs!"]})
    assert (over.nodes, over.prompts, over.sources) == (("Lung",), {"Lung": ["lungs!"]}, {"Lung": "override"})
    assert len(t) == 4 + 2 + 2 + 1
    assert len(t.rows()) == len(t)
    assert t.rows()[0] == {"node": "Lung", "prompt": "x-ray: lung", "source": "templates"}
    assert t.sha256() != only.sha256()
    with pytest.raises(InputError, match=r"has no prompts for node\(s\) \['Lung', 'Pleura', 'Lung_Opacity'\]"):
        build_prompt_table(tax, source="taxonomy")
    with pytest.raises(InputError, match="exactly one '{}'"):
        build_prompt_table(tax, templates=["no placeholder"])
    with pytest.raises(InputError, match="unknown node 'Lungs'.*Did you mean: 'Lung'"):
        build_prompt_table(tax, overrides={"Lungs": ["x"]})
    with pytest.raises(InputError, match="override of 'Lung' is empty"):
        build_prompt_table(tax, overrides={"Lung": [" "]})


def test_node_without_a_usable_name_is_named_in_the_error(enc):
    tax = Taxonomy({"root": ["_", "Edema"]})
    with pytest.raises(InputError, match=r"nor a usable name .* node\(s\) \['_'\]"):
        build_prompt_table(tax)
    with pytest.raises(InputError, match=r"\['_'\]"):
        ZeroShotScorer(enc, tax, prompts={"Edema": ["p:edema"]})


def test_read_prompt_file(tmp_path):
    (tmp_path / "t.txt").write_text("# comment\na chest x-ray showing {}.\n\n{}\n")
    assert read_prompt_file(tmp_path / "t.txt") == (("a chest x-ray showing {}.", "{}"), None)
    (tmp_path / "l.json").write_text('["photo of {}"]')
    assert read_prompt_file(tmp_path / "l.json") == (("photo of {}",), None)
    (tmp_path / "d.json").write_text('{"Lung": ["lungs"]}')
    assert read_prompt_file(tmp_path / "d.json") == (None, {"Lung": ["lungs"]})
    (tmp_path / "bad.txt").write_text("ok {}\nmissing placeholder\n")
    with pytest.raises(InputError, match=r"line 2 .* exactly one '\{\}'"):
        read_prompt_file(tmp_path / "bad.txt")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(InputError, match="not valid JSON"):
        read_prompt_file(tmp_path / "bad.json")
    with pytest.raises(InputError, match="does not exist"):
        read_prompt_file(tmp_path / "missing.txt")


def test_templates_fill_node_names_when_taxonomy_has_no_prompts(fake_encoder_cls, toy_tree):
    vectors = {"pneumonia": [1, 0, 0], "edema": [0, 1, 0], "effusion": [0, 0, 1], "x": [0.6, 0.8, 0]}
    s = ZeroShotScorer(fake_encoder_cls(vectors), toy_tree, templates=["{}"], temperature=0.1)
    assert s.prompt_table.prompts == {"Pneumonia": ["pneumonia"], "Edema": ["edema"], "Effusion": ["effusion"]}
    assert s.score_texts(["x"])[0, col(toy_tree, "Edema")] == pytest.approx(
        math.exp(8) / (math.exp(6) + math.exp(8) + 1)
    )


# -------------------------------------------------------------------------------------------------- images
def test_score_images_from_png_folder(fake_encoder_cls, toy_tree, tmp_path):
    pil = pytest.importorskip("PIL.Image")
    from medlens.io import list_images

    (tmp_path / "sub").mkdir()
    pil.new("RGB", (4, 4), (255, 0, 0)).save(tmp_path / "red.png")  # → (1, 0, 0): Pneumonia
    pil.new("RGB", (4, 4), (0, 0, 255)).save(tmp_path / "sub" / "blue.png")  # → (0, 0, 1): Effusion
    ids, paths = list_images(tmp_path)
    assert ids == ["red.png", "sub/blue.png"]
    s = ZeroShotScorer(fake_encoder_cls(VECTORS), toy_tree, prompts=PROMPTS, temperature=0.1)
    sim = s.similarity_images(paths)
    np.testing.assert_allclose(sim, [[1, 0, 0], [0, 0, 1]], atol=1e-7)
    p = s.score_images(paths)
    z = math.exp(10) + 2
    np.testing.assert_allclose(p[0], [1, (math.exp(10) + 1) / z, 1 / z, math.exp(10) / z, 1 / z, 1 / z], rtol=1e-6)
    np.testing.assert_allclose(p[1, col(toy_tree, "Pleura")], math.exp(10) / z, rtol=1e-6)


def test_image_errors(fake_encoder_cls, toy_tree, tmp_path):
    text_only = fake_encoder_cls(VECTORS, modality="text")
    with pytest.raises(InputError, match="encodes text only, not images"):
        ZeroShotScorer(text_only, toy_tree, prompts=PROMPTS).score_images([np.zeros((2, 2, 3), np.uint8)])
    with pytest.raises(InputError, match="encodes image only, but zero-shot scoring embeds text prompts"):
        ZeroShotScorer(fake_encoder_cls(VECTORS, modality="image"), toy_tree, prompts=PROMPTS)
    wide = fake_encoder_cls(VECTORS, image_dim=5)  # image space ≠ text space
    with pytest.raises(InputError, match="joint image-text embedding space"):
        ZeroShotScorer(wide, toy_tree, prompts=PROMPTS).score_images([np.full((2, 2, 3), 255, np.uint8)])
    with pytest.raises(TypeError, match="single path"):
        ZeroShotScorer(fake_encoder_cls(VECTORS), toy_tree, prompts=PROMPTS).score_images(str(tmp_path))


# -------------------------------------------------------------------------------------------------- errors
def test_configuration_errors(enc, fake_encoder_cls, toy_tree):
    with pytest.raises(InputError, match="'softmax' is a distribution over the leaves"):
        ZeroShotScorer(enc, toy_tree, prompts=PROMPTS, internal="prompt")
    with pytest.raises(InputError, match="'method' parameter must be one of"):
        ZeroShotScorer(enc, toy_tree, method="softmx")
    with pytest.raises(InputError, match="'internal' parameter must be one of"):
        ZeroShotScorer(enc, toy_tree, method="sigmoid", internal="mean", bias=0)
    with pytest.raises(InputError, match="'temperature' parameter must be in the range"):
        ZeroShotScorer(enc, toy_tree, prompts=PROMPTS, temperature=0)
    with pytest.raises(InputError, match="shift-invariant"):
        ZeroShotScorer(enc, toy_tree, prompts=PROMPTS, bias=1.0)
    with pytest.raises(InputError, match="logit_scale must be positive"):
        ZeroShotScorer(fake_encoder_cls(VECTORS, logit_scale=-1.0), toy_tree, prompts=PROMPTS)
    with pytest.raises(TypeError, match="Encoder protocol"):
        ZeroShotScorer(object(), toy_tree)
    with pytest.raises(TypeError, match="must be a Taxonomy"):
        ZeroShotScorer(enc, "toy_tree")
    with pytest.raises(TypeError, match="list of strings"):
        ZeroShotScorer(enc, toy_tree, prompts=PROMPTS).score_texts("x")
    with pytest.raises(InputError, match=r"shape \(n, 3\)"):
        ZeroShotScorer(enc, toy_tree, prompts=PROMPTS).probabilities(np.zeros((2, 5)))


def test_unused_overrides_and_templates_are_reported(enc, toy_tree, caplog):
    with caplog.at_level(logging.WARNING, logger="medlens"):
        ZeroShotScorer(enc, toy_tree, prompts=PROMPTS, templates=["{}"])
    assert "overrides for ['Lung', 'Pleura'] are not used" in caplog.text
    assert "given templates are not used" in caplog.text


def test_empty_input_and_repr(enc, toy_tree):
    s = ZeroShotScorer(enc, toy_tree, prompts=PROMPTS)
    assert s.score_texts([]).shape == (0, 6)
    assert "3 scored nodes" in repr(s)


# --------------------------------------------------------------------------------------------------- contrast
def test_contrast_is_a_two_way_softmax_of_positive_and_negative_prompts(fake_encoder_cls, toy_tree):
    """CheXzero's rule: P(node) = softmax(scale·[cos+, cos-])[0] with "no {node}" prompts as the negatives."""
    vectors = dict(VECTORS)
    # each node's negative prompt ("no <id>") points along the opposite axis mix, set by hand
    for node in PROMPTS:
        vectors[f"no {node.lower()}"] = [0.0, 0.0, -1.0] if node in ("Effusion", "Pleura") else [-1.0, 0.0, 0.0]
    s = ZeroShotScorer(
        fake_encoder_cls(vectors),
        toy_tree,
        prompts=PROMPTS,
        method="contrast",
        temperature=0.5,
        negative_templates=["no {}"],
        synonyms=False,
    )
    assert s.internal == "prompt"
    assert s.bias is None
    sim = s.similarity_texts(["x"])[0]  # x = (0.6, 0.8, 0): cos+ - cos-
    cols = {n: i for i, n in enumerate(s.scored_nodes)}
    assert sim[cols["Pneumonia"]] == pytest.approx(0.6 - (-0.6))
    assert sim[cols["Effusion"]] == pytest.approx(0.0 - 0.0)
    p = s.score_texts(["x"])[0]
    assert p[col(toy_tree, "Pneumonia")] == pytest.approx(sig(2 * 1.2))
    two_way = math.exp(2 * 0.6) / (math.exp(2 * 0.6) + math.exp(2 * -0.6))
    assert p[col(toy_tree, "Pneumonia")] == pytest.approx(two_way)
    assert p[col(toy_tree, "Effusion")] == pytest.approx(0.5)
    info = s.method_info()
    assert info["method"] == "contrast"
    assert info["n_negative_prompts"] == 5
    assert "negative" in info["similarity"]
    # precomputed embeddings (e.g. translated features) give the same similarities as the texts
    assert np.allclose(s.similarity_embeddings(np.array([[0.6, 0.8, 0.0]])), s.similarity_texts(["x"]))


def test_contrast_options_are_checked(enc, toy_tree):
    with pytest.raises(InputError, match="negative templates apply to method 'contrast' only"):
        ZeroShotScorer(enc, toy_tree, prompts=PROMPTS, negative_templates=["no {}"])
    with pytest.raises(InputError, match="a bias has no effect on method 'contrast'"):
        ZeroShotScorer(enc, toy_tree, prompts=PROMPTS, method="contrast", bias=1.0)
    with pytest.raises(InputError, match="has no negative prompts"):
        ZeroShotScorer(enc, toy_tree, prompts=PROMPTS).negative_embeddings()
