"""Stamped JSON documents behind ``medlens ground kb list | show | validate`` (the CLI only prints them)."""

from __future__ import annotations

import hashlib
import json
from os import PathLike
from typing import Any

from medlens._provenance import provenance, stamp
from medlens._validation import InputError
from medlens.grounding._kb import BUILTIN_KNOWLEDGE, KnowledgeBase, load_knowledge, validate_knowledge
from medlens.grounding._prompts import PROMPT_MODES, render_prompt

__all__ = [
    "ceiling_document",
    "knowledge_list_document",
    "knowledge_provenance",
    "knowledge_show_document",
    "knowledge_validate_document",
]


def knowledge_provenance(kb: KnowledgeBase) -> dict[str, str]:
    """Name, version and content hash of a KB, for a document's provenance."""
    text = json.dumps(kb.to_dict(), sort_keys=True, ensure_ascii=False)
    return {"name": kb.name, "version": kb.version, "sha256": hashlib.sha256(text.encode()).hexdigest()}


def _summary(kb: KnowledgeBase) -> dict[str, Any]:
    return {
        "name": kb.name,
        "version": kb.version,
        "dataset": kb.dataset,
        "n_findings": len(kb.findings),
        "n_seen": sum(f.split == "seen" for f in kb.findings),
        "n_unseen": sum(f.split == "unseen" for f in kb.findings),
        "n_with_box_statistics": sum(bool(f.statistics) for f in kb.findings),
    }


def knowledge_list_document() -> dict[str, Any]:
    """The built-in knowledge bases with their finding counts: what ``ground kb list --json`` prints."""
    kbs = [_summary(load_knowledge(name)) for name in BUILTIN_KNOWLEDGE]
    prov = provenance(command="ground kb list")
    return stamp({"knowledge_bases": kbs}, prov)


def knowledge_show_document(
    source: str | PathLike[str] = "vindr-cxr",
    *,
    finding: str | None = None,
    attributes: str | None = None,
    measured: bool = False,
) -> dict[str, Any]:
    """A KB's summary and findings, or one finding with its prompt in every mode (``finding``).

    ``attributes`` (``"shape,location"``) chooses the attribute subset of the ``attributes`` prompt; ``measured``
    adds the size/location measured on the NIH and VinDr boxes (needs the ``data`` extra).
    """
    kb = load_knowledge(source)
    prov = provenance(command="ground kb show", extra={"knowledge": knowledge_provenance(kb)})
    derived = None
    if measured:
        from medlens.grounding._stats import derive_attributes

        derived = derive_attributes(kb)
    if finding is None:
        if attributes is not None:
            raise InputError("--attributes needs --finding: it chooses the attributes of one finding's prompt.")
        payload: dict[str, Any] = {**_summary(kb), "source": kb.source, "findings": [f.to_dict() for f in kb.findings]}
        if derived is not None:
            payload["measured"] = derived.to_dict()
        return stamp({**payload}, prov)
    f = kb.get(finding)
    m = derived.attributes.get(f.name) if derived is not None else None
    prompts = {
        mode: render_prompt(f, mode, attributes=attributes if mode == "attributes" else None, measured=m)  # type: ignore[arg-type]
        for mode in PROMPT_MODES
    }
    payload = {"knowledge": kb.name, "finding": f.to_dict(), "prompts": prompts}
    if derived is not None:
        payload["measured"] = m
        payload["derivation"] = derived.derivation
    return stamp({**payload}, prov)


def knowledge_validate_document(file: str | PathLike[str]) -> dict[str, Any]:
    """Check a KB file; an :class:`InputError` lists every problem on one line, else the stamped summary."""
    problems = validate_knowledge(file)
    if problems:
        more = f"{len(problems)} problems: " if len(problems) > 1 else ""
        raise InputError(more + " | ".join(problems))
    kb = load_knowledge(file)
    prov = provenance(
        command="ground kb validate", inputs={"knowledge": file}, extra={"knowledge": knowledge_provenance(kb)}
    )
    return stamp({"valid": True, **_summary(kb)}, prov)


def ceiling_document(
    truth: str | PathLike[str] = "vindr",
    *,
    knowledge: str | PathLike[str] = "vindr-cxr",
    iou: float = 0.55,
    min_readers: int = 1,
) -> dict[str, Any]:
    """The human ceiling table (:func:`medlens.grounding.reader_ceiling`) of ``truth``: ``"vindr"`` (the VinDr-CXR
    training boxes shipped with torchxrayvision, ``data`` extra) or a boxes CSV in the VinDr layout."""
    from medlens.grounding._data import reader_ceiling
    from medlens.grounding._stats import read_vindr_boxes

    kb = load_knowledge(knowledge)
    builtin = str(truth) == "vindr"
    rows = read_vindr_boxes(None if builtin else truth)
    table = reader_ceiling(rows, kb=kb, iou=iou, min_readers=min_readers)
    prov = provenance(
        command="ground ceiling",
        config={"truth": str(truth), "iou": iou, "min_readers": min_readers},
        inputs={} if builtin else {"truth": truth},
        extra={"knowledge": knowledge_provenance(kb)},
    )
    return stamp({"truth": "vindr (torchxrayvision vinbigdata-train.csv.gz)" if builtin else str(truth), **table}, prov)
