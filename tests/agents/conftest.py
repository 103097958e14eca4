"""A tiny corpus and index (hashing embedder, no model), a case, and a scripted "doctor" chat model."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

DOCS = [
    {
        "id": "joubert",
        "title": "Joubert syndrome",
        "text": "Molar tooth sign on MRI, cerebellar vermis hypoplasia, hypotonia, ataxia, abnormal breathing.",
    },
    {
        "id": "dandy",
        "title": "Dandy-Walker malformation",
        "text": "Cystic dilatation of the fourth ventricle, enlarged posterior fossa, vermis hypoplasia.",
    },
    {
        "id": "rhombo",
        "title": "Rhombencephalosynapsis",
        "text": "Absent cerebellar vermis with fused cerebellar hemispheres, ataxia and aqueductal stenosis.",
    },
    {
        "id": "tsc",
        "title": "Tuberous sclerosis complex",
        "text": "Cortical tubers, subependymal nodules, seizures and facial angiofibromas.",
    },
    {
        "id": "nf1",
        "title": "Neurofibromatosis type 1",
        "text": "Cafe-au-lait spots, neurofibromas and optic pathway glioma.",
    },
]

CASE = {
    "id": "c1",
    "clinical_history": "A 6-year-old boy with ataxia and hypotonia.",
    "caption": "Axial MRI shows the molar tooth sign with cerebellar vermis hypoplasia.",
}

TASKS = {
    "Task: initial assessment": "initial",
    "Task: weigh the retrieved evidence": "evidence",
    "Task: final diagnosis": "final",
}


def build_index(docs: list[dict] = DOCS, name: str = "toy"):
    from medlens.retrieval import Corpus, Document, HashingEmbedder, RetrievalIndex

    corpus = Corpus([Document.from_dict(d) for d in docs], name=name)
    return RetrievalIndex.build(corpus, embedder=HashingEmbedder(64), use_cache=False)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def index():
    return build_index()


def passage_ids(user_text: str) -> list[str]:
    """The ids of the <passage> blocks in a prompt, in order."""
    return re.findall(r'<passage id="([^"]*)"', user_text)


def passage_titles(user_text: str) -> list[str]:
    return re.findall(r'<passage id="[^"]*" title="([^"]*)"', user_text)


class Doctor:
    """A scripted chat model: answers by the task of the request; records every call.

    ``initial``, ``evidence``, ``final`` and ``repair`` are each a string reply or ``fn(user_text) -> str``.
    ``repair`` answers every repair request (default: the same as the step that is repaired).
    """

    def __init__(
        self,
        *,
        initial: str | Callable[[str], str] | None = None,
        evidence: str | Callable[[str], str] | None = None,
        final: str | Callable[[str], str] | None = None,
        repair: str | Callable[[str], str] | None = None,
    ) -> None:
        self.replies = {"initial": initial, "evidence": evidence, "final": final}
        self.repair = repair
        self.calls: list[dict[str, Any]] = []

    def step_of(self, messages: list[dict[str, Any]]) -> str:
        task_text = messages[1]["content"]
        return next(step for head, step in TASKS.items() if task_text.startswith(head))

    def __call__(self, messages: list[dict[str, Any]], **params: Any) -> str:
        step = self.step_of(messages)
        is_repair = messages[-1]["content"].startswith("Your previous reply could not be used")
        self.calls.append({"step": step, "repair": is_repair, "messages": messages, "params": params})
        reply = self.repair if is_repair and self.repair is not None else self.replies[step]
        if reply is None:
            reply = DEFAULT[step]
        return reply(messages[1]["content"]) if callable(reply) else reply

    def steps(self) -> list[str]:
        return [c["step"] + ("+repair" if c["repair"] else "") for c in self.calls]


def _first_passage_final(user: str) -> str:
    ids, titles = passage_ids(user), passage_titles(user)
    primary = titles[0] if titles else "Joubert syndrome"
    return json.dumps(
        {
            "primary": primary,
            "differentials": ["Dandy-Walker malformation", "Rhombencephalosynapsis", "Meckel syndrome", "COACH"],
            "citations": {primary: ids[:1]},
            "confidence": 0.7,
        }
    )


DEFAULT = {
    "initial": json.dumps(
        {
            "findings": ["molar tooth sign", "vermis hypoplasia"],
            "hypotheses": [
                {"dx": "Joubert syndrome", "rationale": "molar tooth sign"},
                {"dx": "Dandy-Walker malformation", "rationale": "vermis hypoplasia"},
            ],
        }
    ),
    "evidence": json.dumps(
        {"assessments": [{"dx": "Joubert syndrome", "supporting": ["joubert"], "refuting": [], "note": "classic"}]}
    ),
    "final": _first_passage_final,
}


@pytest.fixture
def doctor() -> Doctor:
    return Doctor()


def client_of(doc: Doctor):
    from medlens.llm import CallableClient

    return CallableClient(doc, model="scripted-doctor")
