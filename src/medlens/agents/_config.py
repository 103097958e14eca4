"""The RADAR agent's settings (:class:`AgentConfig`) and the validation of one case (:func:`check_case`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from medlens._validation import InputError, check_option
from medlens.retrieval import RETRIEVERS, RRF_K, LeakageGuard

__all__ = ["AgentConfig", "check_case"]


@dataclass(frozen=True)
class AgentConfig:
    """Settings of :class:`RadarAgent` (all written into run configs and provenance).

    Parameters
    ----------
    rounds : int
        Retrieval + evidence rounds, 1 (default) to 3; a round without new hypotheses ends the loop early.
    top_k : int
        Units retrieved per query (after the leakage guard).
    max_passages : int
        Passages kept after fusing all queries' rankings (reciprocal rank fusion, constant ``rrf_k``).
    n_hypotheses, n_differentials : int
        Hypotheses asked of the initial doctor; differentials kept from the final answer.
    retriever : {"auto", "fused", "bm25", "dense", "ontology", "hybrid"}
        As for :meth:`~medlens.retrieval.RetrievalIndex.search` (``ontology`` and ``hybrid`` need the hpo index).
    passage_chars : int
        A passage's text is cut to this many characters in prompts.
    ranker_depth : int
        Units the retrieval-only ranker groups into candidates.
    temperature, seed, max_tokens
        Sampling parameters of every LLM call (greedy and seeded by default).
    retrieval : bool
        ``False``: the no-retrieval baseline.
    leakage : LeakageGuard, None or "auto"
        The guard applied to every retrieval; ``"auto"`` (default): on unless the index's corpus is ``hpo``
        (whose documents describe diseases, not cases).
    constrained : bool
        Send each step's JSON Schema as ``response_format`` (``json_schema``), bounded by
        :func:`~medlens.agents._prompts.decoding_schema` (arrays to the hypotheses or differentials asked for,
        strings to 120 characters, passage ids to the passages shown): the local transformers client then decodes
        under its grammar, so a reply that ends is valid and cites only shown passages; a server applies it if it
        supports it (vLLM, llama.cpp, SGLang do; ``transformers serve`` ignores it). Off by default.
    """

    rounds: int = 1
    top_k: int = 5
    max_passages: int = 20
    n_hypotheses: int = 5
    n_differentials: int = 4
    retriever: str = "auto"
    rrf_k: float = RRF_K
    passage_chars: int = 1200
    ranker_depth: int = 50
    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int | None = 1024
    retrieval: bool = True
    leakage: LeakageGuard | None | str = "auto"
    constrained: bool = False

    def check(self) -> AgentConfig:
        """Validate the settings; returns ``self``."""
        ints = {"rounds": (1, 3), "top_k": (1, 100), "max_passages": (1, 200), "n_hypotheses": (1, 20)}
        ints |= {"n_differentials": (0, 20), "passage_chars": (50, 100_000), "ranker_depth": (1, 10_000)}
        for name, (lo, hi) in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise InputError(f"AgentConfig.{name} must be an integer in [{lo}, {hi}]; got {v!r}.")
        check_option(self.retriever, RETRIEVERS, name="retriever")
        if not isinstance(self.leakage, LeakageGuard) and self.leakage not in (None, "auto"):
            raise InputError(f"AgentConfig.leakage must be a LeakageGuard, None or 'auto'; got {self.leakage!r}.")
        if not self.rrf_k > 0:
            raise InputError(f"AgentConfig.rrf_k must be > 0; got {self.rrf_k}.")
        if not isinstance(self.constrained, bool):
            raise InputError(f"AgentConfig.constrained must be True or False; got {self.constrained!r}.")
        return self

    def to_dict(self) -> dict[str, Any]:
        out = asdict(replace(self, leakage=None))
        if not self.constrained:  # unconstrained runs keep the config hash they had before the option existed
            del out["constrained"]
        g = self.leakage
        out["leakage"] = g.to_dict() if isinstance(g, LeakageGuard) else g
        return out


def check_case(case: Any, *, where: str = "case") -> dict[str, Any]:
    """A validated copy of a case: ``id`` (text), ``clinical_history`` and ``caption`` (text, one non-empty).

    Other fields (``final_diagnosis``, ``url``, ...) are kept. Numeric ids become text.
    """
    if not isinstance(case, Mapping):
        raise InputError(
            f"{where}: expected a JSON object with clinical_history and caption; got {type(case).__name__}."
        )
    out = dict(case)
    cid = out.get("id")
    if isinstance(cid, int | float) and not isinstance(cid, bool):
        cid = str(cid)
    if cid is not None and (not isinstance(cid, str) or not cid.strip()):
        raise InputError(f"{where}: field 'id' must be a non-empty string; got {cid!r}.")
    out["id"] = cid.strip() if isinstance(cid, str) else None
    for key in ("clinical_history", "caption"):
        v = out.get(key)
        if v is not None and not isinstance(v, str):
            raise InputError(f"{where}: field {key!r} must be a string; got {type(v).__name__}.")
        out[key] = v or ""
    if not (out["clinical_history"].strip() or out["caption"].strip()):
        raise InputError(f"{where}: clinical_history and caption are both empty; a case needs some text.")
    return out
