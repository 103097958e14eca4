"""Tiny corpora and an isolated cache for the retrieval tests (no model is loaded here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DOCS = [
    {
        "id": "joubert",
        "title": "Joubert syndrome",
        "text": "Molar tooth sign on MRI, cerebellar vermis hypoplasia, "
        "hypotonia, ataxia, abnormal breathing pattern and oculomotor apraxia.",
        "diagnosis": "Joubert syndrome",
    },
    {
        "id": "dandy",
        "title": "Dandy-Walker malformation",
        "text": "Cystic dilatation of the fourth ventricle, "
        "enlarged posterior fossa and hypoplasia of the cerebellar vermis; hydrocephalus is common.",
    },
    {
        "id": "marfan",
        "title": "Marfan syndrome",
        "text": "Tall stature, arachnodactyly, ectopia lentis and aortic "
        "root dilatation; dural ectasia on spine imaging.",
        "source": "toy",
        "url": "https://example.org/marfan",
    },
    {
        "id": "nf1",
        "title": "Neurofibromatosis type 1",
        "text": "Cafe-au-lait spots, axillary freckling, "
        "neurofibromas, optic pathway glioma and focal areas of signal intensity in the basal ganglia.",
    },
    {
        "id": "tsc",
        "title": "Tuberous sclerosis complex",
        "text": "Cortical tubers, subependymal nodules, "
        "subependymal giant cell astrocytoma, seizures, facial angiofibromas and hypomelanotic macules.",
    },
    {
        "id": "rhombo",
        "title": "Rhombencephalosynapsis",
        "text": "Absent cerebellar vermis with fusion of the "
        "cerebellar hemispheres, ataxia, developmental delay and aqueductal stenosis.",
    },
]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def corpus_file(tmp_path) -> Path:
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    return path


@pytest.fixture
def corpus(corpus_file):
    from medlens.retrieval import read_corpus

    return read_corpus(corpus_file)


class CountingEmbedder:
    """The hashing embedder, counting how many texts it was asked to embed."""

    def __init__(self, dim: int = 64) -> None:
        from medlens.retrieval import HashingEmbedder

        self.inner = HashingEmbedder(dim)
        self.name, self.model_id, self.dim = self.inner.name, self.inner.model_id, self.inner.dim
        self.normalized, self.max_length = True, None
        self.calls = 0

    @property
    def cache_key(self) -> str:
        return self.inner.cache_key

    def embed(self, texts, *, batch_size=64, progress=False):
        self.calls += len(texts)
        return self.inner.embed(texts)


@pytest.fixture
def counting_embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture(autouse=True, scope="session")
def _faiss_single_thread():
    """One OpenMP thread for FAISS in tests (the design notes' advice; spinning threads stall on busy CI)."""
    try:
        import faiss
    except ImportError:
        yield
        return
    old = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(old)
