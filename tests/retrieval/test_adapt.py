"""The ontology self-alignment map (:mod:`medlens.retrieval._adapt`) on a toy label table with the hashing
embedder: it separates siblings, is deterministic, is cached, and sees only the indexed half of hp.obo."""

from __future__ import annotations

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.retrieval import HashingEmbedder
from medlens.retrieval._adapt import (
    AdapterSettings,
    ConceptAdapter,
    cached_concept_adapter,
    train_concept_adapter,
    training_anchors,
)
from medlens.retrieval._concepts import ConceptRecognizer

# Two sibling concepts that share their modifiers ("small", "tiny", "reduced"): only the organ word tells them
# apart, and the frozen hashing vectors weigh the modifier as much as the organ.
LABELS = [
    ("HEAD", "small head"),
    ("HEAD", "tiny skull"),
    ("HEAD", "reduced cranium"),
    ("HEAD", "small cranium"),
    ("JAW", "small jaw"),
    ("JAW", "tiny mandible"),
    ("JAW", "reduced chin"),
    ("JAW", "small mandible"),
    ("EYE", "small eye"),
    ("EYE", "tiny globe"),
    ("EYE", "reduced eyeball"),
    ("EYE", "small globe"),
]
FAST = AdapterSettings(steps=150, batch=8, lr=0.05, scale=10.0, hard_negatives=4, random_negatives=4)


def _vectors(emb: HashingEmbedder) -> np.ndarray:
    return emb.embed([x for _, x in LABELS])


def _margin(adapter: ConceptAdapter | None, emb: HashingEmbedder, text: str, own: str, other: str) -> float:
    """Best cosine of ``text`` to ``own``'s labels minus its best cosine to ``other``'s."""
    vecs, q = _vectors(emb), emb.embed([text])
    if adapter is not None:
        vecs, q = adapter.transform(vecs), adapter.transform(q)
    sims = (q @ vecs.T)[0]
    terms = np.array([t for t, _ in LABELS])
    return float(sims[terms == own].max() - sims[terms == other].max())


def test_after_adaptation_a_held_out_synonym_is_closer_to_its_concept_than_to_its_sibling():
    emb = HashingEmbedder(dim=256)
    adapter = train_concept_adapter(LABELS, _vectors(emb), FAST, base=emb.model_id)
    # "tiny cranium" and "reduced mandible" are in no label: unseen wordings of HEAD and JAW
    for text, own, other in [("tiny cranium", "HEAD", "JAW"), ("reduced mandible", "JAW", "HEAD")]:
        before, after = _margin(None, emb, text, own, other), _margin(adapter, emb, text, own, other)
        assert before <= 0.0 < after, (text, before, after)
    assert adapter.spec()["base"] == emb.model_id
    assert adapter.spec()["steps"] == FAST.steps
    assert adapter.spec()["seed"] == 0
    assert np.isfinite(adapter.spec()["final_loss"])


def test_the_same_seed_gives_the_same_map_and_another_seed_another():
    emb = HashingEmbedder(dim=64)
    short = AdapterSettings(**{**FAST.__dict__, "steps": 20})
    a = train_concept_adapter(LABELS, _vectors(emb), short)
    b = train_concept_adapter(LABELS, _vectors(emb), short)
    c = train_concept_adapter(LABELS, _vectors(emb), AdapterSettings(**{**short.__dict__, "seed": 1}))
    assert np.array_equal(a.weight, b.weight)
    assert not np.array_equal(a.weight, c.weight)


def test_a_rebuild_loads_the_cached_map(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path))
    emb = HashingEmbedder(dim=64)
    first, status1 = cached_concept_adapter(LABELS, _vectors(emb), emb, FAST)
    second, status2 = cached_concept_adapter(LABELS, _vectors(emb), emb, FAST)
    assert (status1, status2) == ("miss", "hit")
    assert np.array_equal(first.weight, second.weight)
    assert second.spec()["data_sha256"] == first.spec()["data_sha256"]
    assert list((tmp_path / "retrieval" / "adapters").glob("*.npz"))
    # another label table is another map
    _, status3 = cached_concept_adapter(LABELS[:-1], _vectors(emb)[:-1], emb, FAST)
    assert status3 == "miss"


def test_the_recogniser_matches_through_the_map():
    emb = HashingEmbedder(dim=256)
    vecs = _vectors(emb)
    adapter = train_concept_adapter(LABELS, vecs, FAST)
    plain = ConceptRecognizer(LABELS, vecs, emb, threshold=0.3)
    adapted = ConceptRecognizer(LABELS, vecs, emb, threshold=0.3, adapter=adapter)
    assert [t for t, *_ in adapted.match("The child has a tiny cranium.")] == ["HEAD"]
    assert plain.spec()["adapter"] is None
    assert adapted.spec()["adapter"]["n_anchors"] == len(LABELS)


def test_only_the_indexed_half_of_hp_obo_is_trained_on(tmp_path, monkeypatch):
    """The leakage guard: the held-out half of the synonyms and definitions never enters a training pair."""
    import medlens.retrieval._adapt as adapt_mod
    import medlens.retrieval._hpo_terms as terms_mod
    from medlens.retrieval._concepts import hpo_concept_recognizer
    from medlens.retrieval._hpo_terms import parse_renderings

    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path))
    lines = ["format-version: 1.2", ""]
    for i in range(1, 6):
        lines += ["[Term]", f"id: HP:{i}", f"name: Finding {i}", f'def: "A description of finding {i}." []']
        lines += [f'synonym: "wording {i} {j}" EXACT []' for j in range(12)]
        lines.append("")
    renderings = parse_renderings(lines)
    held_out = {r.text for rows in renderings.values() for r in rows if r.half == "test"}
    assert held_out  # the fixed hash puts some of them in the test half
    monkeypatch.setattr(terms_mod, "hpo_renderings", lambda: renderings)
    seen: list[list[tuple[str, str]]] = []
    real = adapt_mod.train_concept_adapter

    def spy(labels, vectors, settings=None, **kw):
        seen.append(list(labels))
        return real(labels, vectors, AdapterSettings(steps=2, batch=4), **kw)

    monkeypatch.setattr(adapt_mod, "train_concept_adapter", spy)
    rec = hpo_concept_recognizer(HashingEmbedder(dim=32), sorted(renderings))
    assert len(seen) == 1
    trained = {x for _, x in seen[0]}
    assert trained
    assert not trained & held_out
    assert trained == {x for _, x in zip(rec.terms, rec.texts, strict=True)}
    assert rec.adapter is not None


def test_bad_settings_and_shapes_are_refused():
    with pytest.raises(InputError, match="steps"):
        AdapterSettings(steps=-1).check()
    with pytest.raises(InputError, match="lr"):
        AdapterSettings(lr=0).check()
    with pytest.raises(InputError, match="square"):
        ConceptAdapter(np.zeros((2, 3)))
    with pytest.raises(InputError, match="label vectors"):
        train_concept_adapter(LABELS, np.zeros((2, 8)))
    assert training_anchors([("A", "x")])[1].tolist() == []
