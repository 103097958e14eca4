"""Mapping a file of free-text answers to taxonomy nodes: the pipeline behind ``hier map-answers``.

Checks the options, reads the answers (and an optional synonyms file), loads a text encoder for the embedding
method only, writes the prediction CSV and ``PRED.matches.jsonl`` beside it, and returns the stamped summary.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from medlens._provenance import provenance, stamp
from medlens._validation import InputError, check_option, read_text_file
from medlens.hierarchy._answers import ANSWER_METHODS, map_answers
from medlens.hierarchy._tables import write_label_table
from medlens.io import atomic_write_text, read_texts
from medlens.taxonomy import Taxonomy, load_taxonomy

__all__ = ["run_map_answers"]


def _read_synonyms(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"synonyms file {path} does not exist; give a JSON {{node: [phrases]}} file.")
    try:
        syn = json.loads(read_text_file(path, what="synonyms file"))
    except json.JSONDecodeError as e:
        raise InputError(f"synonyms file {path} is not valid JSON ({e.msg}, line {e.lineno}).") from None
    if not isinstance(syn, dict):
        raise InputError(f"synonyms file {path} must hold a {{node: [phrases]}} mapping; got {type(syn).__name__}.")
    return syn


def run_map_answers(
    answers: str | os.PathLike,
    taxonomy: str | Taxonomy,
    out: str | os.PathLike,
    *,
    method: str,
    synonyms: str | os.PathLike | None = None,
    min_similarity: float | None = None,
    negation: bool = True,
    encoder: str | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Map the free-text ``answers`` (a .txt, .csv or .jsonl file) to nodes of ``taxonomy`` with ``method``
    (exact | synonym | embedding); write the prediction CSV ``out`` (the root = no match) and ``out.matches.jsonl``;
    return the stamped summary (what ``hier map-answers --json`` prints).

    ``encoder`` (default minilm) and ``min_similarity`` (default 0.5) apply to the embedding method only.
    """
    out = Path(out)
    check_option(method, ANSWER_METHODS, name="--method")
    if method != "embedding" and (encoder is not None or min_similarity is not None):
        raise InputError(
            f"--encoder and --embedding-threshold apply to --method embedding only; got --method {method}."
        )
    tax = load_taxonomy(taxonomy)
    syn = _read_synonyms(Path(synonyms)) if synonyms is not None else None
    ids, texts = read_texts(answers, allow_empty=True)
    if not ids:
        raise InputError(f"{answers}: no answers found.")
    embed = None
    model_id = None
    if method == "embedding":
        from medlens.encoders import load_encoder

        enc = load_encoder(encoder or "minilm", device=device)
        model_id = getattr(enc, "model_id", enc.config.name)
        embed = enc
    similarity = 0.5 if min_similarity is None else min_similarity
    res = map_answers(
        texts, tax, method=method, synonyms=syn, embed=embed, min_similarity=similarity, negation=negation
    )
    labels = [r.nodes[0] if len(r.nodes) == 1 else list(r.nodes) for r in res]
    write_label_table(out, ids, labels)
    details = out.with_suffix(".matches.jsonl")
    atomic_write_text(
        details,
        "".join(json.dumps({"id": i, **r.to_dict()}, ensure_ascii=False) + "\n" for i, r in zip(ids, res, strict=True)),
    )
    counts = Counter(r.status for r in res)
    status_counts = {s: counts.get(s, 0) for s in ("matched", "unmatched", "negated", "abstained", "empty")}
    summary = {
        "n": len(ids),
        "method": method,
        "negation": negation,
        "min_similarity": similarity if method == "embedding" else None,
        "status_counts": status_counts,
        "unmatched": status_counts["unmatched"],
        "abstained": status_counts["abstained"],
        "root_predictions": sum(1 for r in res if r.status != "matched"),
        "multi_node": sum(1 for r in res if len(r.nodes) > 1),
        "node_counts": dict(Counter(n for r in res if r.status == "matched" for n in r.nodes).most_common()),
        "out": str(out),
        "matches": str(details),
    }
    config = {
        "taxonomy": tax.name,
        "method": method,
        "negation": negation,
        "min_similarity": summary["min_similarity"],
        "encoder": model_id,
    }
    inputs: dict[str, Any] = {"answers": answers}
    if synonyms is not None:
        inputs["synonyms"] = synonyms
    prov = provenance(
        command="hier map-answers",
        config=config,
        inputs=inputs,
        models={"encoder": model_id} if model_id else None,
        taxonomy=tax,
    )
    return stamp(summary, prov)
