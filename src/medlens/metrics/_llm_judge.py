"""The LLM diagnosis judge: an OpenAI-compatible model decides whether two names denote the same disease.

NOVA scores diagnosis with an LLM (GPT-4o in the paper) asked whether a predicted diagnosis matches the gold one.
Its prompt is not public in a form we could check, so this judge uses its own, documented prompt
(:data:`JUDGE_SYSTEM`, :data:`JUDGE_USER`), and its numbers are comparable with NOVA's only as far as two careful
LLM judges agree. Report the judge id with every number.

Votes
-----
Each (prediction, gold) pair is asked ``votes`` times (default 3) at temperature 0 with different seeds
(``seeds``, default ``0, 1, ..., votes-1``); on servers that honour the seed this gives independent greedy
samples where decoding is not deterministic, and identical votes where it is. A vote is the ``same`` field of
the JSON reply ``{"same": true|false, "reason": "..."}``, read tolerantly with one repair request
(:func:`~medlens.llm.chat_json`); a reply that stays unusable is an *invalid* vote. The decision is a match when
more than half of all votes say ``same`` (invalid votes count against a match); its score is the share of
``same`` votes.

Caching and logs
----------------
Every reply is cached by the client (``$MEDLENS_CACHE/llm``); every vote is stored in ``vote_cache`` (a
:class:`~medlens.metrics.JudgeCache`, under the judge id plus ``#vote:seed=N``) and the decision by
:func:`~medlens.metrics.run_judge` in the same kind of cache under the judge id, so a rerun asks nothing. Votes
are logged at DEBUG; the judge id is the model, the votes, the seeds, the temperature and the prompt's hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from medlens._validation import InputError
from medlens.metrics._judges import BaseJudge, JudgeCache, Judgement

__all__ = ["JUDGE_SCHEMA", "JUDGE_SYSTEM", "JUDGE_USER", "LLMJudge"]

log = logging.getLogger(__name__)

JUDGE_SYSTEM = (
    "You check diagnoses for a radiology benchmark. Decide whether a predicted diagnosis names the same disease "
    "or condition as the gold diagnosis. Count as the same: synonyms, abbreviations, eponyms, British/American "
    "spellings, an older or newer name of the same entity, and a more specific form of the gold disease. Count as "
    "different: another disease, a related but distinct condition, and a broader category that does not name the "
    "gold disease (for example 'brain tumour' for 'glioblastoma')."
)
JUDGE_USER = (
    "Gold diagnosis: {gold}\nPredicted diagnosis: {prediction}\n\n"
    'Do they name the same disease? Reply with only a JSON object {{"same": true or false, "reason": "<one '
    'sentence>"}}.'
)
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["same"],
    "properties": {"same": {"type": "boolean"}, "reason": {"type": ["string", "null"]}},
}


class LLMJudge(BaseJudge):
    """Majority vote of an LLM on "same disease?" (see the module notes).

    Parameters
    ----------
    client : ChatClient, optional
        Any chat client (:class:`~medlens.llm.OpenAIClient`, :class:`~medlens.llm.CallableClient`, ...).
    llm_url, model : str, optional
        Build an :class:`~medlens.llm.OpenAIClient` instead (``client``, both of these, or ``model_path`` is
        required).
    model_path : str or path, optional
        Local weights instead: a transformers folder, a GGUF file or a registered name such as ``smollm2-135m``
        (:func:`~medlens.llm.resolve_local_model`; that tiny model is for wiring checks, not for real judging).
    device : str
        Where ``model_path`` runs (default ``"cpu"``).
    allow_remote : bool
        Allow an ``llm_url`` that is not this machine.
    votes : int
        Votes per pair (default 3; odd numbers avoid ties).
    seeds : sequence of int, optional
        One seed per vote (default ``range(votes)``).
    temperature : float
        Default 0.
    max_tokens : int, optional
        Reply length limit per vote.
    repair : bool
        One repair request per unusable reply.
    vote_cache : JudgeCache, optional
        Where each vote is stored and looked up (``medlens nova evaluate`` passes its judgement cache).
    cache : bool or path
        The response cache of a client built from ``llm_url`` (default ``$MEDLENS_CACHE/llm``).

    Examples
    --------
    >>> from medlens.llm import CallableClient
    >>> judge = LLMJudge(CallableClient(lambda m, **p: '{"same": true, "reason": "synonyms"}', model="yes-man"))
    >>> judge.judge("acoustic neuroma", "vestibular schwannoma")
    Judgement(match=True, score=1.0, rationale='3/3 votes same (seeds 0, 1, 2: yes, yes, yes): synonyms')
    """

    name = "llm"
    analysis_only = False

    def __init__(
        self,
        client: Any = None,
        *,
        llm_url: str | None = None,
        model: str | None = None,
        model_path: Any = None,
        device: str = "cpu",
        allow_remote: bool = False,
        votes: int = 3,
        seeds: Sequence[int] | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        repair: bool = True,
        vote_cache: JudgeCache | None = None,
        cache: Any = True,
    ) -> None:
        if client is None:
            if model_path is None and (not llm_url or not model):
                raise InputError(
                    "the llm judge needs an endpoint and a model: --llm-url URL --model M (LLMJudge(llm_url=..., "
                    "model=...)), local weights --model-path PATH|NAME (LLMJudge(model_path=...)) or a client "
                    "(LLMJudge(client))."
                )
            from medlens.llm import client_from_options

            client = client_from_options(
                llm_url=llm_url,
                model=model,
                model_path=model_path,
                allow_remote=allow_remote,
                vision=False,
                device=device,
                cache=cache,
            )
        elif llm_url is not None or model is not None or model_path is not None:
            raise InputError("give the llm judge either a client, or llm_url and model, or model_path; not several.")
        if isinstance(votes, bool) or not isinstance(votes, int) or votes < 1:
            raise InputError(f"votes must be a positive int; got {votes!r}.")
        seeds = list(range(votes)) if seeds is None else list(seeds)
        if len(seeds) != votes or len(set(seeds)) != votes or not all(isinstance(s, int) for s in seeds):
            raise InputError(f"seeds must be {votes} different ints (one per vote); got {seeds!r}.")
        from medlens.llm import normalize_params

        normalize_params(temperature, 0, max_tokens, None)  # validates
        self.client = client
        self.votes = votes
        self.seeds = seeds
        self.temperature = float(temperature)
        self.max_tokens = max_tokens
        self.repair = repair
        self.vote_cache = vote_cache
        self.prompt_sha256 = hashlib.sha256(
            json.dumps([JUDGE_SYSTEM, JUDGE_USER, JUDGE_SCHEMA], sort_keys=True).encode()
        ).hexdigest()

    @property
    def judge_id(self) -> str:
        seeds = ",".join(str(s) for s in self.seeds)
        return (
            f"llm:{self.client.kind}:{self.client.model}:votes={self.votes}:seeds={seeds}:t={self.temperature:g}"
            f":max_tokens={self.max_tokens}:repair={int(self.repair)}:prompt={self.prompt_sha256[:12]}"
        )

    def vote_id(self, seed: int) -> str:
        """The cache id of the votes made with ``seed``."""
        return f"{self.judge_id}#vote:seed={seed}"

    def messages(self, prediction: str, gold: str) -> list[dict[str, str]]:
        user = JUDGE_USER.format(gold=gold.strip(), prediction=prediction.strip())
        return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]

    def _vote(self, prediction: str, gold: str, seed: int) -> Judgement:
        """One vote: ``match`` True/False, ``score`` 1/0, or ``score`` None for an invalid reply."""
        from medlens.llm import chat_json

        vid = self.vote_id(seed)
        if self.vote_cache is not None:
            hit = self.vote_cache.get(vid, prediction, gold)
            if hit is not None:
                return hit
        ans = chat_json(
            self.client,
            self.messages(prediction, gold),
            JUDGE_SCHEMA,
            repair=self.repair,
            temperature=self.temperature,
            seed=seed,
            max_tokens=self.max_tokens,
        )
        if ans.ok:
            same = bool(ans.value["same"])
            reason = " ".join(str(ans.value.get("reason") or "").split())[:300]
            vote = Judgement(same, 1.0 if same else 0.0, reason)
        else:
            vote = Judgement(False, None, f"invalid reply: {ans.error}")
        if self.vote_cache is not None:
            self.vote_cache.put(vid, prediction, gold, vote)
        return vote

    def decide(self, votes: Sequence[Judgement]) -> Judgement:
        """The majority decision of ``votes`` (invalid votes count against a match)."""
        yes = sum(1 for v in votes if v.score is not None and v.match)
        words = [
            "yes" if (v.score is not None and v.match) else ("invalid" if v.score is None else "no") for v in votes
        ]
        match = yes > len(votes) / 2
        reason = next((v.rationale for v in votes if v.score is not None and v.match == match and v.rationale), "")
        seeds = ", ".join(str(s) for s in self.seeds)
        rationale = f"{yes}/{len(votes)} votes same (seeds {seeds}: {', '.join(words)})" + (
            f": {reason}" if reason else ""
        )
        return Judgement(match, yes / len(votes), rationale)

    def judge_batch(self, pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
        out = []
        for prediction, gold in pairs:
            votes = [self._vote(prediction, gold, s) for s in self.seeds]
            for s, v in zip(self.seeds, votes, strict=True):
                log.debug("llm judge vote seed=%d: %r vs %r -> %s (%s)", s, prediction, gold, v.match, v.rationale)
            out.append(self.decide(votes))
        return out

    def describe(self) -> dict[str, Any]:
        client = getattr(self.client, "describe", None)
        return {
            **super().describe(),
            "model": client() if callable(client) else {"kind": self.client.kind, "model": self.client.model},
            "votes": self.votes,
            "seeds": list(self.seeds),
            "temperature": self.temperature,
            "decision": "match when more than half of the votes say same (invalid votes count against)",
            "prompt_sha256": self.prompt_sha256,
            "note": "our own prompt, not NOVA's (which is not public in checkable form); report the judge id",
        }
