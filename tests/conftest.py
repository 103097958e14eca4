"""Shared fixtures: two tiny taxonomies every hierarchy test can reason about by hand."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from medlens.taxonomy import Taxonomy

# CI runs the property tests on a fixed, reproducible set of examples (a red CI must be reproducible); a local
# `make test` explores new examples on every run. HYPOTHESIS_PROFILE=ci selects the fixed set.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


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


class FakeEncoder:
    """A deterministic stand-in for an image-text encoder, with hand-set vectors.

    Texts are looked up in ``vectors`` (an unknown text is a test bug: KeyError). Images (paths, PIL images or
    arrays) embed as their mean (R, G, B) / 255, padded with zeros to ``dim``: a pure red image is (1, 0, 0).
    """

    def __init__(
        self,
        vectors: dict[str, list[float]],
        *,
        modality: str = "image-text",
        logit_scale: float | None = None,
        logit_bias: float | None = None,
        image_dim: int | None = None,
    ) -> None:
        import numpy as np

        from medlens.encoders import EncoderConfig

        self.vectors = {k: np.asarray(v, dtype=np.float32) for k, v in vectors.items()}
        dim = len(next(iter(self.vectors.values())))
        self.image_dim = image_dim or dim
        self.config = EncoderConfig(name="fake", source="tests", modality=modality, embedding_dim=dim, family="fake")
        self.model_id = "tests/fake-encoder"
        self.logit_scale = logit_scale
        self.logit_bias = logit_bias
        self.text_calls: list[list[str]] = []

    def encode_texts(self, texts, *, batch_size: int = 64, progress: bool = False):
        import numpy as np

        self.text_calls.append(list(texts))
        return np.stack([self.vectors[t] for t in texts]) if texts else np.zeros((0, self.config.embedding_dim))

    def encode_images(self, images, *, batch_size: int = 32, progress: bool = False):
        import numpy as np

        from medlens.io import load_image

        out = np.zeros((len(images), self.image_dim), dtype=np.float32)
        for i, im in enumerate(images):
            rgb = np.asarray(load_image(im), dtype=np.float64).reshape(-1, 3).mean(axis=0) / 255.0
            out[i, :3] = rgb
        return out


@pytest.fixture
def fake_encoder_cls():
    """The :class:`FakeEncoder` class (build one with hand-set vectors)."""
    return FakeEncoder
