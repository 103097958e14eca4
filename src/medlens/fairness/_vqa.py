"""VQA pairs from clinical notes with an LLM, then an LLM self-check that keeps, fixes or rejects each pair.

FMBench generated free-form question-answer pairs from each FairVLMed note with Llama-3.1-70B-Instruct, asking
for three kinds of question (diagnosis; tests and treatment; medical conditions), and filtered them with a
self-check pass (``design/fairness.md`` §3; its prompts are not public, these are ours). Here any
:mod:`medlens.llm` client does both steps at temperature 0 with a fixed seed; its response cache makes a
rerun free and the output deterministic. A reply that is not usable JSON (after one repair request) is a
recorded parse failure: that record, or that pair, yields nothing.

An item is ``{"id": "<record>#<category>", "task": "vqa", "record": ..., "category", "question", "reference",
"image", <attributes>}``: the items file ``medlens fair run --task vqa --data ITEMS.jsonl`` reads.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medlens._provenance import provenance, stamp
from medlens._validation import InputError
from medlens.fairness._fairvlmed import FairVLMedRecord, load_fairvlmed
from medlens.fairness._judges import _client
from medlens.io import atomic_write_text, file_sha256

__all__ = ["VQA_CATEGORIES", "generate_vqa", "run_fair_vqa"]

VQA_CATEGORIES = {
    "diagnosis": "the diagnosis (e.g. is there glaucoma, which type, which eye)",
    "tests_treatment": "tests done or planned and the treatment (e.g. visual field, OCT, eye drops, surgery)",
    "condition": "other medical conditions and findings mentioned in the note (e.g. cup-to-disc ratio, IOP)",
}
"""FMBench's three question categories → what each asks about."""
_GEN_SYSTEM = (
    "You write exam questions about an eye image from the patient's clinical note. Each question must be "
    "answerable by looking at the fundus image and the note's findings, and its answer must be stated in the note."
)
_GEN_USER = (
    "Clinical note:\n{note}\n\nWrite one question-answer pair for each category:\n{categories}\n"
    "Answers are short (a word to one sentence). Reply with only a JSON object "
    '{{"pairs": [{{"category": "<category>", "question": "...", "answer": "..."}}]}}.'
)
_CHECK_USER = (
    "Clinical note:\n{note}\n\nQuestion: {question}\nAnswer: {answer}\n\n"
    "Check this pair against the note. Is the answer correct and fully supported by the note, and is the question "
    "clear without the note? If it can be fixed, fix it. Reply with only a JSON object "
    '{{"keep": true or false, "question": "<the (fixed) question>", "answer": "<the (fixed) answer>"}}.'
)
_GEN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["pairs"],
    "properties": {
        "pairs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["category", "question", "answer"],
                "properties": {
                    "category": {"type": "string"},
                    "question": {"type": "string"},
                    "answer": {"type": "string"},
                },
            },
        }
    },
}
_CHECK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["keep"],
    "properties": {
        "keep": {"type": "boolean"},
        "question": {"type": ["string", "null"]},
        "answer": {"type": ["string", "null"]},
    },
}


def _category(text: str) -> str:
    """A model's category name mapped to ours ("Tests & Treatment" → tests_treatment); else its slug."""
    key = re.sub(r"[^a-z]+", "_", text.lower()).strip("_")
    if key in VQA_CATEGORIES:
        return key
    if key.startswith("diag"):
        return "diagnosis"
    if "test" in key or "treat" in key:
        return "tests_treatment"
    if "condition" in key or "finding" in key:
        return "condition"
    return key


def _ask(client: Any, user: str, schema: dict[str, Any], seed: int, max_tokens: int | None) -> Any:
    from medlens.llm import chat_json

    msgs = [{"role": "system", "content": _GEN_SYSTEM}, {"role": "user", "content": user}]
    return chat_json(client, msgs, schema, repair=True, temperature=0.0, seed=seed, max_tokens=max_tokens)


def generate_vqa(
    records: Sequence[FairVLMedRecord],
    client: Any,
    *,
    categories: Sequence[str] = tuple(VQA_CATEGORIES),
    self_check: bool = True,
    seed: int = 0,
    max_tokens: int | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """VQA items from each record's note (one pair per category), self-checked; (items, counts).

    ``counts``: records, proposed pairs, kept, rejected by the self-check, fixed by it, generation and check
    parse failures, pairs of an unknown or repeated category (dropped).
    """
    cats = list(dict.fromkeys(categories))
    bad = [c for c in cats if c not in VQA_CATEGORIES]
    if bad or not cats:
        raise InputError(f"categories must be among {', '.join(VQA_CATEGORIES)}; got {list(categories)!r}.")
    listing = "\n".join(f"- {c}: {VQA_CATEGORIES[c]}" for c in cats)
    counts = dict.fromkeys(
        ("records", "proposed", "kept", "rejected", "fixed", "generation_failures", "check_failures", "off_category"), 0
    )
    items: list[dict[str, Any]] = []
    for rec in records:
        counts["records"] += 1
        ans = _ask(client, _GEN_USER.format(note=rec.note, categories=listing), _GEN_SCHEMA, seed, max_tokens)
        if not ans.ok:
            counts["generation_failures"] += 1
            continue
        done: set[str] = set()
        for pair in ans.value["pairs"]:
            cat = _category(pair["category"])
            q, a = pair["question"].strip(), pair["answer"].strip()
            if cat not in cats or cat in done or not q or not a:
                counts["off_category"] += 1
                continue
            done.add(cat)
            counts["proposed"] += 1
            fixed = False
            if self_check:
                chk = _ask(
                    client, _CHECK_USER.format(note=rec.note, question=q, answer=a), _CHECK_SCHEMA, seed, max_tokens
                )
                if not chk.ok:
                    counts["check_failures"] += 1
                    continue
                if not chk.value["keep"]:
                    counts["rejected"] += 1
                    continue
                q2 = (chk.value.get("question") or "").strip() or q
                a2 = (chk.value.get("answer") or "").strip() or a
                fixed = (q2, a2) != (q, a)
                q, a = q2, a2
                counts["fixed"] += fixed
            counts["kept"] += 1
            items.append(
                {
                    "id": f"{rec.id}#{cat}",
                    "task": "vqa",
                    "record": rec.id,
                    "category": cat,
                    "question": q,
                    "reference": a,
                    "self_check": "fixed" if fixed else ("kept" if self_check else "off"),
                    "image": None if rec.image_path is None else str(rec.image_path),
                    **rec.attributes,
                }
            )
    return items, counts


def run_fair_vqa(
    data: str | os.PathLike,
    client: Any = None,
    *,
    llm_url: str | None = None,
    model: str | None = None,
    model_path: str | os.PathLike | None = None,
    allow_remote: bool = False,
    device: str = "cpu",
    dtype: str = "float32",
    cache: Any = True,
    out: str | os.PathLike,
    split: str = "test",
    unknown: str = "drop",
    limit: int | None = None,
    categories: Sequence[str] = tuple(VQA_CATEGORIES),
    self_check: bool = True,
    seed: int = 0,
    max_tokens: int | None = None,
) -> dict[str, Any]:
    """Generate VQA items from a FairVLMed folder's notes and write them to the items JSONL ``out``.

    Image paths are written relative to ``out``'s folder when they lie below it, else absolute. Returns the
    stamped summary (counts of :func:`generate_vqa` and of the loader).
    """
    ds = load_fairvlmed(data, split=split, unknown=unknown, limit=limit)
    from medlens.llm import closing_client

    owned = client is None
    client = _client(client, llm_url, model, model_path, allow_remote, device, cache, vision=False, dtype=dtype)
    with closing_client(client if owned else None):
        items, counts = generate_vqa(ds.records, client, categories=categories, self_check=self_check, seed=seed,
                                     max_tokens=max_tokens)  # fmt: skip
    base = Path(out).resolve().parent
    lines = []
    for it in items:
        if it["image"] is not None:
            img = Path(it["image"]).resolve()
            it["image"] = str(img.relative_to(base)) if img.is_relative_to(base) else str(img)
        lines.append(json.dumps(it, ensure_ascii=False) + "\n")
    if not items:
        raise InputError(f"no VQA pair survived ({counts}); check the generator model and its replies.")
    atomic_write_text(out, "".join(lines))
    describe = getattr(client, "describe", None)
    model = describe() if callable(describe) else {"kind": client.kind, "model": client.model}
    config = {"split": split, "unknown": unknown, "categories": list(categories), "self_check": self_check,
              "seed": seed, "model": model, "data": {f.name: file_sha256(f) for f in ds.files}}  # fmt: skip
    doc = {"n_items": len(items), "counts": counts, "data_counts": ds.counts, "model": model, "out": str(out)}
    return stamp(
        doc, provenance(command="fair vqa", config=config, seed=seed, models={"model": str(model.get("model", ""))})
    )
