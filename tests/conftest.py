"""Shared fixtures: two tiny taxonomies every hierarchy test can reason about by hand."""

from __future__ import annotations

import pytest

from medlens.taxonomy import Taxonomy


@pytest.fixture
def toy_tree() -> Taxonomy:
    """root → Lung{Pneumonia, Edema}, Pleura{Effusion}; height 2.

    Node order (breadth first): root, Lung, Pleura, Pneumonia, Edema, Effusion.
    """
    return Taxonomy(
        {"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]},
        name="toy_tree",
        version="1",
    )


@pytest.fixture
def toy_dag() -> Taxonomy:
    """A DAG of height 3 with two multi-parent nodes (Pneumonia and Aspiration under Opacity and LRTI).

    root ─ Lung ─ Opacity ─ {Pneumonia, Edema, Aspiration}
         ─ Infection ─ LRTI ─ {Pneumonia, Aspiration}
                     ─ Sepsis
         ─ Heart ─ Cardiomegaly

    Node order: root, Lung, Infection, Heart, Opacity, LRTI, Sepsis, Cardiomegaly, Pneumonia, Edema, Aspiration.
    Opacity and LRTI share a child, so they are 2 apart although their LCA is the root.
    """
    return Taxonomy(
        {
            "root": ["Lung", "Infection", "Heart"],
            "Lung": ["Opacity"],
            "Infection": ["LRTI", "Sepsis"],
            "Heart": ["Cardiomegaly"],
            "Opacity": ["Pneumonia", "Edema", "Aspiration"],
            "LRTI": ["Pneumonia", "Aspiration"],
        },
        name="toy_dag",
        version="1",
    )
