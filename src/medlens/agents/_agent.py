"""The RADAR agent: initial hypotheses → queries → retrieval → evidence reasoning → final answer.

One case (``{id, clinical_history, caption}``, NOVA's text setting) goes through, in mode

- ``"agent"``: (1) the *initial doctor* lists key findings and up to ``n_hypotheses`` hypotheses; (2) the
  queries are the case summary (history + caption) plus one per hypothesis (its name and the first key
  findings); (3) each query retrieves ``top_k`` units (the leakage guard drops copies of the case first), the
  rankings are fused by reciprocal rank fusion across queries (deduplicated by unit id) and the best
  ``max_passages`` kept; (4) the *evidence reasoner* cites, per hypothesis, supporting and refuting passages
  and may revise the hypotheses, whose new names are searched in the next round (``rounds``, 1 to 3); (5) the
  *final doctor* answers ``{primary, differentials[4], citations{dx: [ids]}, confidence}``;
- ``"no-retrieval"``: the baseline for the gain Δ: the same prompts with retrieval off (steps 1 and 5, the
  passages block saying that retrieval is off, no retrieved text anywhere);
- ``"retrieval-only"``: no LLM; :func:`medlens.retrieval.rank_candidates` over the case summary's hits.

Every LLM step goes through :func:`medlens.llm.chat_json` with a JSON Schema (tolerant parsing plus one
repair request), at ``temperature`` 0 and a fixed ``seed``. Trust checks, all recorded in the result:

- citations must be ids of passages shown to the model: others are removed and listed in
  ``trace.invalid_citations`` (never kept silently); citations of a name that is not in the answer are
  dropped and counted too;
- a step whose reply is unusable after the repair is recorded (``trace.steps[i].ok = false`` with the
  error and the raw replies) and never raises. A failed initial step leaves the agent to search with the
  retrieval-only ranker's candidates; a failed evidence step leaves the final step without assessments; a
  failed final step makes the agent answer with the retrieval-only ranking (``mode = "retrieval-only"``,
  ``fallback`` saying why) and the baseline with its initial hypotheses (or no answer);
- HTTP 400/413/422 answers (a prompt too long for the model, say) count as a failed step of that case;
  other endpoint errors (unreachable, timeouts after retries) raise: the run can be resumed.

References
----------
Kim, Li, Solana, Pirkl, Wiestler, Schnabel, Bercea. Learning to Reason About Rare Diseases through
Retrieval-Augmented Agents. arXiv:2511.04720 (2025). Prompts and loop are a clean-room design
(``shared/design/radar-nova.md`` §3.3).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from medlens._provenance import config_hash
from medlens._validation import InputError
from medlens.agents._config import AgentConfig, check_case
from medlens.agents._prompts import (
    EVIDENCE_SCHEMA,
    FINAL_SCHEMA,
    INITIAL_SCHEMA,
    decoding_schema,
    evidence_messages,
    final_messages,
    initial_messages,
)
from medlens.llm import ChatClient, LLMContextLengthError, LLMHTTPError, chat_json
from medlens.retrieval import (
    LeakageGuard,
    case_query,
    merge_leakage,
    normalize_name,
    rank_candidates,
    reciprocal_rank_fusion,
)

__all__ = ["MODES", "AgentConfig", "RadarAgent", "check_case", "diagnose_case"]

log = logging.getLogger(__name__)

MODES = ("agent", "no-retrieval", "retrieval-only")
"""Result modes: the full agent, the no-retrieval baseline (same prompts, retrieval off), the ranker alone."""
_CASE_STEP_HTTP = (400, 413, 422)
_RAW_CHARS = 2000


def _hit_row(h: Any, score: float | None = None) -> dict[str, Any]:
    return {"id": h.id, "title": h.title, "score": float(h.score if score is None else score)}


class RadarAgent:
    """Diagnose cases with retrieval-augmented LLM reasoning (see the module docstring).

    Parameters
    ----------
    index : RetrievalIndex or None
        The index to search (``None`` only for the no-retrieval baseline).
    client : ChatClient or None
        Any :class:`medlens.llm.ChatClient`; ``None`` gives the retrieval-only ranker.
    config : AgentConfig, optional

    Examples
    --------
    >>> import json
    >>> from medlens.llm import CallableClient
    >>> from medlens.retrieval import Corpus, Document, HashingEmbedder, RetrievalIndex
    >>> docs = [Document("tsc", "Tuberous sclerosis", "cortical tubers, subependymal nodules, seizures"),
    ...         Document("nf1", "Neurofibromatosis type 1", "optic pathway glioma, cafe-au-lait spots")]
    >>> index = RetrievalIndex.build(Corpus(docs, name="toy"), embedder=HashingEmbedder(64), use_cache=False)
    >>> def doctor(messages, **params):  # a scripted model: always the same two answers
    ...     if "initial assessment" in messages[-1]["content"]:
    ...         return json.dumps({"findings": ["tubers"], "hypotheses": [{"dx": "Tuberous sclerosis"}]})
    ...     return json.dumps({"primary": "Tuberous sclerosis", "differentials": ["a", "b", "c", "d"],
    ...                        "citations": {"Tuberous sclerosis": ["tsc", "made-up"]}, "confidence": 0.8})
    >>> agent = RadarAgent(index, CallableClient(doctor), AgentConfig(leakage=None))
    >>> out = agent.diagnose({"id": "c1", "clinical_history": "Seizures.", "caption": "Cortical tubers."})
    >>> out["mode"], out["primary"], out["citations"]["Tuberous sclerosis"], out["trace"]["n_invalid_citations"]
    ('agent', 'Tuberous sclerosis', ['tsc'], 1)
    """

    def __init__(self, index: Any, client: ChatClient | None = None, config: AgentConfig | None = None) -> None:
        self.config = (config or AgentConfig()).check()
        if client is not None and not isinstance(client, ChatClient):
            raise TypeError(f"client must be a medlens.llm ChatClient; got {type(client).__name__}.")
        if index is None and (client is None or self.config.retrieval):
            raise InputError("RadarAgent needs an index, except for the no-retrieval baseline (retrieval=False).")
        self.index = index
        self.client = client
        guard = self.config.leakage
        if guard == "auto":
            corpus = index.manifest["corpus"]["name"] if index is not None else None
            guard = None if corpus == "hpo" else LeakageGuard()
        self.guard: LeakageGuard | None = guard
        # retrieval (query embedding, FAISS, BM25) runs one call at a time; LLM steps of several cases overlap
        self._index_lock = threading.Lock()

    @property
    def mode(self) -> str:
        """What :meth:`diagnose` runs: ``retrieval-only`` without a client, else ``agent`` or ``no-retrieval``."""
        if self.client is None:
            return "retrieval-only"
        return "agent" if self.config.retrieval else "no-retrieval"

    def describe(self) -> dict[str, Any]:
        """The run configuration (mode, settings, leakage guard, client and index identity), for provenance."""
        client = None
        if self.client is not None:
            desc = getattr(self.client, "describe", None)
            client = desc() if desc else {"kind": self.client.kind, "model": self.client.model}
            client = {k: v for k, v in client.items() if k not in ("base_url", "fixture", "recording_to")}
        index = None
        if self.index is not None:
            m = self.index.manifest
            index = {
                "corpus": m["corpus"]["name"],
                "corpus_sha256": m["corpus"]["sha256"],
                "request": m.get("request_hash"),
            }
        cfg = self.config.to_dict()
        cfg["leakage"] = self.guard.to_dict() if self.guard is not None else None
        return {"mode": self.mode, "config": cfg, "client": client, "index": index}

    def config_hash(self) -> str:
        """Hash of :meth:`describe`: results with the same hash come from the same setup."""
        return config_hash(self.describe())

    # ------------------------------------------------------------------------------------------ entry points
    def diagnose(self, case: Mapping[str, Any]) -> dict[str, Any]:
        """Diagnose one case in :attr:`mode`; returns the result record (see :func:`diagnose_case`)."""
        case = check_case(case)
        if self.mode == "retrieval-only":
            return self.retrieval_only(case)
        return self._llm(case, retrieval=self.config.retrieval)

    def retrieval_only(self, case: Mapping[str, Any]) -> dict[str, Any]:
        """The retrieval-only ranking of a case (no LLM): candidates grouped from the guarded hits."""
        case = check_case(case)
        if self.index is None:
            raise InputError("the retrieval-only ranker needs an index.")
        cfg = self.config
        drops: list[dict[str, Any]] = []
        with self._index_lock:
            hits = self.index.search(case_query(case), top_k=cfg.ranker_depth, retriever=cfg.retriever)
            if self.guard is not None:
                hits, drops = self.guard.filter(case, hits, index=self.index)
        cands = rank_candidates(hits)[: 1 + cfg.n_differentials]
        return {
            "id": case["id"],
            **self._phenotypes(case),
            "mode": "retrieval-only",
            "primary": cands[0].name if cands else None,
            "differentials": [c.name for c in cands[1:]],
            "citations": {c.name: list(c.doc_ids) for c in cands},
            "confidence": None,
            "retrieved": [_hit_row(h) for h in hits],
            "fallback": None,
            "leakage": drops,
            "trace": {
                "ranker": {
                    "depth": cfg.ranker_depth,
                    "aggregate": "max",
                    "retriever": self.index.resolve_retriever(cfg.retriever),
                }
            },
        }

    # ------------------------------------------------------------------------------------------- LLM steps
    def _ask(
        self,
        step: str,
        rnd: int,
        messages: list[dict[str, Any]],
        schema: dict[str, Any],
        trace: dict[str, Any],
        *,
        max_items: int,
        ids: Sequence[str] | None = None,
    ) -> Any:
        """One LLM step; ``max_items`` and ``ids`` bound the constrained-decoding schema (see ``decoding_schema``)."""
        cfg = self.config
        rec: dict[str, Any] = {"step": step, "round": rnd}
        fmt = None
        if cfg.constrained:
            bounded = decoding_schema(schema, max_items=max_items, ids=ids)
            fmt = {"type": "json_schema", "json_schema": {"name": step, "schema": bounded}}
        try:
            ans = chat_json(
                self.client,
                messages,
                schema,
                temperature=cfg.temperature,
                seed=cfg.seed,
                max_tokens=cfg.max_tokens,
                response_format=fmt,
            )
        except LLMHTTPError as exc:
            if exc.status not in _CASE_STEP_HTTP:
                raise
            rec.update(ok=False, repaired=False, error=f"HTTP {exc.status}: {exc.server_message or exc}", fixes=[])
            trace["steps"].append(rec)
            return None
        except LLMContextLengthError as exc:  # a local model's context is too short for this case's prompt
            rec.update(ok=False, repaired=False, error=str(exc), fixes=[])
            trace["steps"].append(rec)
            return None
        rec.update(ok=ans.ok, repaired=ans.repaired, error=ans.error, first_error=ans.first_error)
        rec["fixes"] = list(ans.fixes)
        rec["cached"] = all(r.cached for r in ans.responses)
        tokens = sum(int(r.usage.get("total_tokens") or 0) for r in ans.responses)
        if tokens:
            rec["tokens"] = tokens
        if not ans.ok:
            rec["raw"] = [r.text[:_RAW_CHARS] for r in ans.responses]
            log.warning("the %s step gave no usable JSON answer after the repair retry (recorded in the result)", step)
            log.debug("%s step error: %s", step, ans.error)
        trace["steps"].append(rec)
        return ans.value if ans.ok else None

    @staticmethod
    def _valid_ids(ids: Sequence[Any], allowed: set[str], step: str, dx: str, trace: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for raw in ids:
            i = str(raw).strip()
            if i in allowed:
                if i not in out:
                    out.append(i)
            else:
                trace["invalid_citations"].append({"step": step, "dx": dx, "id": i})
        return out

    def _hypotheses(self, value: Any) -> tuple[list[dict[str, str]], list[str]]:
        hyps: list[dict[str, str]] = []
        seen: set[str] = set()
        for h in value.get("hypotheses", []):
            dx, why = (h, "") if isinstance(h, str) else (h["dx"], str(h.get("rationale") or ""))
            dx = " ".join(dx.split())
            key = normalize_name(dx) or dx
            if dx and key not in seen:
                seen.add(key)
                hyps.append({"dx": dx, "rationale": why})
        findings = [" ".join(str(f).split()) for f in value.get("findings", []) if str(f).strip()]
        return hyps[: self.config.n_hypotheses], findings

    def _phenotypes(self, case: Mapping[str, Any]) -> dict[str, Any]:
        """``{"phenotypes": [...]}``: the HPO mentions read from the case summary and their status
        (:meth:`medlens.retrieval._phenotype.OntologyRanker.mentions`) when the index's ontology ranker takes part in
        retrieval (``ontology`` or ``hybrid``, and ``auto`` on an ``hpo`` index); else ``{}``."""
        if self.index is None or self.index.resolve_retriever(self.config.retriever) not in ("ontology", "hybrid"):
            return {}
        with self._index_lock:
            return {"phenotypes": self.index.phenotypes.mentions(case_query(case))}

    def _retrieve(self, case: dict[str, Any], queries: list[str]) -> tuple[list[list[Any]], list[dict[str, Any]]]:
        cfg = self.config
        depth = cfg.top_k * 3 if self.guard is not None else cfg.top_k
        per_query, drops = [], []
        with self._index_lock:
            found = self.index.search_many(queries, top_k=depth, retriever=cfg.retriever)
            for hits in found:
                if self.guard is not None:
                    hits, dropped = self.guard.filter(case, hits, index=self.index)
                    drops += dropped
                per_query.append(hits[: cfg.top_k])
        return per_query, merge_leakage(drops)

    def _llm(self, case: dict[str, Any], *, retrieval: bool) -> dict[str, Any]:
        cfg = self.config
        trace: dict[str, Any] = {"steps": [], "invalid_citations": [], "queries": [], "rounds": 0}
        init = self._ask(
            "initial",
            0,
            initial_messages(case, n_hypotheses=cfg.n_hypotheses),
            INITIAL_SCHEMA,
            trace,
            max_items=cfg.n_hypotheses,
        )
        hyps, findings = self._hypotheses(init) if init is not None else ([], [])
        if init is None and retrieval:
            ranked = self.retrieval_only(case)
            names = [n for n in [ranked["primary"], *ranked["differentials"]] if n]
            hyps = [{"dx": n, "rationale": ""} for n in names[: cfg.n_hypotheses]]
            trace["hypotheses_from"] = "retrieval-only ranker (the initial step failed)"
        trace["initial_hypotheses"] = [h["dx"] for h in hyps]
        passages: list[dict[str, Any]] | None = None
        assessments: list[dict[str, Any]] | None = None
        leakage: list[dict[str, Any]] = []
        pool: dict[str, Any] = {}
        if retrieval:
            passages, assessments, leakage, hyps = self._rounds(case, hyps, findings, trace, pool)
        final = self._ask(
            "final",
            trace["rounds"] + 1 if retrieval else 1,
            final_messages(case, hyps, passages, assessments, max_chars=cfg.passage_chars),
            FINAL_SCHEMA,
            trace,
            max_items=cfg.n_differentials + 1,
            ids=[p["id"] for p in passages or []],
        )
        allowed = {p["id"] for p in passages} if passages else set()
        answer = self._final_answer(final, allowed, trace) if final is not None else None
        retrieved = [{"id": p["id"], "title": p["title"], "score": p["score"]} for p in passages or []]
        if answer is None:
            error = trace["steps"][-1].get("error") or "no usable answer"
            if retrieval:
                out = self.retrieval_only(case)
                out["fallback"] = f"final step failed ({error}); answered with the retrieval-only ranking"
                out["leakage"] = merge_leakage([*leakage, *out["leakage"]])
                out["trace"] = {
                    **self._finish_trace(trace),
                    "ranker": out["trace"]["ranker"],
                    "agent_retrieved": retrieved,
                }
                return out
            names = [h["dx"] for h in hyps]
            answer = {
                "primary": names[0] if names else None,
                "differentials": names[1 : 1 + cfg.n_differentials],
                "citations": {n: [] for n in names[: 1 + cfg.n_differentials]},
                "confidence": None,
            }
            how = "answered with the initial hypotheses" if names else "no answer"
            fallback = f"final step failed ({error}); {how}"
        else:
            fallback = None
        if retrieval and answer["primary"]:
            want = normalize_name(answer["primary"])
            rank = next((i + 1 for i, p in enumerate(passages or []) if normalize_name(p["candidate"]) == want), None)
            trace["primary_evidence_rank"] = rank
        return {
            "id": case["id"],
            **(self._phenotypes(case) if retrieval else {}),
            "mode": "agent" if retrieval else "no-retrieval",
            **answer,
            "retrieved": retrieved,
            "fallback": fallback,
            "leakage": leakage,
            "trace": self._finish_trace(trace),
        }

    def _rounds(
        self,
        case: dict[str, Any],
        hyps: list[dict[str, str]],
        findings: list[str],
        trace: dict[str, Any],
        pool: dict[str, Any],
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, list[dict[str, Any]], list[dict[str, str]]]:
        cfg = self.config
        rankings: list[list[str]] = []
        leakage: list[dict[str, Any]] = []
        queried: set[str] = set()
        passages: list[dict[str, Any]] = []
        assessments: list[dict[str, Any]] | None = None
        key_findings = "; ".join(findings[:3]) if findings else str(case.get("caption") or "").strip()
        for rnd in range(1, cfg.rounds + 1):
            new = [h for h in hyps if (normalize_name(h["dx"]) or h["dx"]) not in queried]
            queries = [case_query(case)] if rnd == 1 else []
            queries += [f"{h['dx']}. {key_findings}".strip() for h in new]
            if not queries:
                break
            queried.update(normalize_name(h["dx"]) or h["dx"] for h in new)
            trace["queries"] += [{"round": rnd, "query": q} for q in queries]
            per_query, drops = self._retrieve(case, queries)
            leakage = merge_leakage([*leakage, *drops])
            for hits in per_query:
                rankings.append([h.id for h in hits])
                for h in hits:
                    pool.setdefault(h.id, h)
            fused = reciprocal_rank_fusion([r for r in rankings if r], rrf_k=cfg.rrf_k)[: cfg.max_passages]
            passages = []
            for doc_id, score in fused:
                unit = self.index.units[doc_id]
                passages.append(
                    {"id": doc_id, "title": unit.title, "text": unit.text, "score": score, "candidate": unit.candidate}
                )
            trace["rounds"] = rnd
            if not passages:
                break
            value = self._ask(
                "evidence",
                rnd,
                evidence_messages(case, hyps, passages, max_chars=cfg.passage_chars),
                EVIDENCE_SCHEMA,
                trace,
                max_items=cfg.n_hypotheses,
                ids=[p["id"] for p in passages],
            )
            if value is None:
                continue
            allowed = {p["id"] for p in passages}
            assessments = []
            for a in value.get("assessments", []):
                dx = " ".join(a["dx"].split())
                assessments.append(
                    {
                        "dx": dx,
                        "supporting": self._valid_ids(a.get("supporting", []), allowed, "evidence", dx, trace),
                        "refuting": self._valid_ids(a.get("refuting", []), allowed, "evidence", dx, trace),
                        "note": str(a.get("note") or ""),
                    }
                )
            trace.setdefault("evidence", []).append({"round": rnd, "assessments": assessments})
            revised = [" ".join(str(n).split()) for n in value.get("revised_hypotheses", []) if str(n).strip()]
            if revised:
                why = {normalize_name(h["dx"]): h["rationale"] for h in hyps}
                seen: set[str] = set()
                hyps = []
                for n in revised:
                    key = normalize_name(n) or n
                    if key not in seen:
                        seen.add(key)
                        hyps.append({"dx": n, "rationale": why.get(key, "")})
                hyps = hyps[: cfg.n_hypotheses]
        return passages, (assessments if assessments is not None else []), leakage, hyps

    def _final_answer(self, value: Any, allowed: set[str], trace: dict[str, Any]) -> dict[str, Any] | None:
        cfg = self.config
        primary = " ".join(value["primary"].split())
        if not primary:
            trace["steps"][-1].update(ok=False, error="the primary diagnosis is blank")
            return None
        names = [primary]
        seen = {normalize_name(primary) or primary}
        dropped_dup = 0
        for d in value.get("differentials", []):
            d = " ".join(d.split())
            key = normalize_name(d) or d
            if not d or key in seen:
                dropped_dup += 1
                continue
            seen.add(key)
            names.append(d)
        diffs = names[1:]
        if len(diffs) != cfg.n_differentials:
            trace["differentials_returned"] = len(diffs)
        if dropped_dup:
            trace["differentials_duplicates_dropped"] = dropped_dup
        diffs = diffs[: cfg.n_differentials]
        by_key = {normalize_name(n) or n: n for n in [primary, *diffs]}
        citations: dict[str, list[str]] = {n: [] for n in [primary, *diffs]}
        unmatched = []
        for dx, ids in (value.get("citations") or {}).items():
            name = by_key.get(normalize_name(dx) or dx)
            valid = self._valid_ids(ids, allowed, "final", dx, trace)
            if name is None:
                if valid:
                    unmatched.append({"dx": dx, "ids": valid})
                continue
            citations[name] += [i for i in valid if i not in citations[name]]
        if unmatched:
            trace["citations_for_names_not_in_answer"] = unmatched
        conf = value.get("confidence")
        return {
            "primary": primary,
            "differentials": diffs,
            "citations": citations,
            "confidence": float(conf) if conf is not None else None,
        }

    @staticmethod
    def _finish_trace(trace: dict[str, Any]) -> dict[str, Any]:
        steps = trace["steps"]
        trace["n_calls"] = sum(1 + bool(s.get("repaired")) for s in steps)
        trace["n_parse_failures"] = sum(not s["ok"] for s in steps)
        trace["n_repaired"] = sum(bool(s.get("repaired")) and s["ok"] for s in steps)
        trace["n_invalid_citations"] = len(trace["invalid_citations"])
        return trace


def diagnose_case(
    case: Mapping[str, Any],
    *,
    index: Any = None,
    client: ChatClient | None = None,
    config: AgentConfig | None = None,
) -> dict[str, Any]:
    """Diagnose one case: the retrieval-only ranker without ``client``, else the agent (or, with
    ``config.retrieval=False``, the no-retrieval baseline).

    Returns
    -------
    dict
        ``{id, mode, primary, differentials, citations, confidence, retrieved, fallback, leakage, trace}``:
        ``primary`` a name (``None`` only when the baseline got no answer at all), ``differentials`` up to
        ``n_differentials`` names, ``citations`` ``{name: [unit ids]}`` (ids among ``retrieved``),
        ``confidence`` a number in [0, 1] or ``None``, ``retrieved`` ``[{id, title, score}]`` (the passages
        the model saw, or the ranker's hits), ``fallback`` ``None`` or why the answer is not the model's
        final one, ``leakage`` the units the guard dropped (``{id, title, reason, value, threshold}``) and
        ``trace`` the steps (ok, repaired, errors), queries, removed citations and counts. When the index's
        ontology ranker retrieves (``ontology``, ``hybrid``, or ``auto`` on an ``hpo`` index), ``phenotypes`` too:
        the HPO mentions read from the case summary (``{term, name, status, text, by}``; status ``present``,
        ``negated``, ``uncertain`` or ``family``): what the retrieval-only ranking rests on, and the agent's first
        query (its hypothesis queries are read the same way).
    """
    return RadarAgent(index, client, config).diagnose(case)
