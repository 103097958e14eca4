"""Shared text processing: normalisation, sentence and clause splitting, and negation scoping.

A layer-0 package (it imports only the core ``medlens._*`` modules) used by answer mapping
(:mod:`medlens.hierarchy`), zero-shot report scoring, keyword F1 (:mod:`medlens.metrics`) and HPO concept
recognition (:mod:`medlens.retrieval`). Each consumer tokenises for its own dictionary; the negation engine
(:class:`NegationDetector`) takes those tokens, the matched mention spans and a :class:`NegationRules`.
"""

from medlens.text._negation import (
    NEGATION_RULE_SETS,
    NegationDetector,
    NegationRules,
    Trigger,
    load_negation_rules,
    longest_matches,
    negation_tokens,
)
from medlens.text._normalize import CLAUSE_WORDS, fold, spelling_table, split_clauses, split_sentences, us_spelling

__all__ = [
    "CLAUSE_WORDS",
    "NEGATION_RULE_SETS",
    "NegationDetector",
    "NegationRules",
    "Trigger",
    "fold",
    "load_negation_rules",
    "longest_matches",
    "negation_tokens",
    "spelling_table",
    "split_clauses",
    "split_sentences",
    "us_spelling",
]
