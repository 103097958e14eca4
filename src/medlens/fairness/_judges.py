"""LLM judges of generated reports and answers: GREEN-style error counts and a rubric score (FMBench's two).

Both are :class:`medlens.metrics.BaseJudge` judges of ``(prediction, reference)`` pairs, so they run through
:func:`medlens.metrics.run_judge` with its :class:`~medlens.metrics.JudgeCache` (a rerun asks nothing), on any
:mod:`medlens.llm` chat client (an OpenAI-compatible server, local weights, a scripted
:class:`~medlens.llm.CallableClient` in tests) whose own response cache also holds every reply.

- :class:`GreenJudge` asks for GREEN's error counts (:mod:`medlens.fairness._green`) and scores
  M / (M + Σ significant errors); ``match`` means no clinically significant error.
- :class:`RubricJudge` asks for an integer grade on a documented rubric (FMBench's "LLM score" rubric is not
  public: :data:`DEFAULT_RUBRIC` is ours) and reads it tolerantly (JSON, "Score: 4", "4/5", a lone number);
  ``match`` means grade ≥ ``pass_mark``.

The judgement's ``rationale`` is the judge's raw reply (stored in the cache and in :class:`JudgeScores`), and a
reply that cannot be read gives ``score=None`` (NaN in :func:`judge_scores`), counted as a parse failure.
Temperature 0 by default; the judge id holds the model, the prompt's hash and the generation parameters.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medlens._validation import InputError, check_same_length
from medlens.fairness._green import GREEN_CATEGORIES, parse_green
from medlens.metrics import BaseJudge, JudgeCache, Judgement, run_judge

__all__ = [
    "DEFAULT_RUBRIC",
    "GREEN_SYSTEM",
    "GreenJudge",
    "JudgeScores",
    "RubricJudge",
    "judge_scores",
    "parse_rubric_score",
]

GREEN_SYSTEM = (
    "You are an expert clinician who compares a candidate report with a reference report written by an expert. "
    "Judge only clinical content, not style. Report the errors of the candidate in the format given, with the "
    "count first on each line."
)
_GREEN_USER = (
    "Reference report:\n{reference}\n\nCandidate report:\n{prediction}\n\n"
    "Answer in exactly this format (write 0 when a category has no error):\n"
    "[Explanation]:\n<a short explanation>\n\n[Clinically Significant Errors]:\n{categories}\n\n"
    "[Clinically Insignificant Errors]:\n{categories}\n\n"
    "[Matched Findings]:\n<count>. <finding 1>; <finding 2>; ..."
)
DEFAULT_RUBRIC = (
    "Grade how well the candidate answer agrees with the reference answer in clinical content:\n"
    "5 = fully correct and complete; 4 = correct with minor omissions; 3 = partly correct, a clinically relevant "
    "omission or imprecision; 2 = mostly incorrect or missing the key point; 1 = wrong, contradicts the reference, "
    "or no answer."
)
_RUBRIC_SYSTEM = "You are an expert clinician grading answers against a reference. Follow the rubric exactly."
_RUBRIC_USER = (
    "{rubric}\n\nReference:\n{reference}\n\nCandidate:\n{prediction}\n\n"
    'Reply with only a JSON object {{"score": <an integer from {low} to {high}>, "reason": "<one sentence>"}}.'
)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_SCORE_WORD = re.compile(
    r"\b(?:score|grade|rating)\b[^0-9\n]{0,20}?(-?\d+(?:\.\d+)?)(?:\s*(?:/|out\s+of)\s*(\d+))?", re.IGNORECASE
)
_FRACTION = re.compile(r"(?<![\d.])(-?\d+(?:\.\d+)?)\s*(?:/|out\s+of)\s*(\d+)\b", re.IGNORECASE)
_RANGE = re.compile(r"\s*(?:to|-|–)\s*\d")
_LONE = re.compile(r"^\W*(-?\d+(?:\.\d+)?)\W*$")


def _client(
    client: Any,
    llm_url: Any,
    model: Any,
    model_path: Any,
    allow_remote: bool,
    device: str,
    cache: Any,
    *,
    vision: Any = False,
    dtype: str = "float32",
    rate_limit: float | None = None,
) -> Any:
    """``client`` itself, or the one the LLM options build (exactly one of the two ways)."""
    if client is None:
        from medlens.llm import client_from_options

        return client_from_options(
            llm_url=llm_url,
            model=model,
            model_path=model_path,
            allow_remote=allow_remote,
            vision=vision,
            device=device,
            dtype=dtype,
            cache=cache,
            required=True,
            rate_limit=rate_limit,
        )
    if llm_url is not None or model is not None or model_path is not None:
        raise InputError("give either a client, or llm_url and model, or model_path; not several.")
    return client


class _LLMReportJudge(BaseJudge):
    """Shared plumbing: a client, generation parameters, a prompt hash, the judge id."""

    analysis_only = False
    _prompt_parts: tuple[Any, ...] = ()

    def __init__(
        self,
        client: Any = None,
        *,
        llm_url: str | None = None,
        model: str | None = None,
        model_path: Any = None,
        device: str = "cpu",
        allow_remote: bool = False,
        temperature: float = 0.0,
        seed: int = 0,
        max_tokens: int | None = None,
        cache: Any = True,
    ) -> None:
        from medlens.llm import normalize_params

        normalize_params(temperature, seed, max_tokens, None)  # validates
        self.client = _client(client, llm_url, model, model_path, allow_remote, device, cache)
        self.temperature = float(temperature)
        self.seed = seed
        self.max_tokens = max_tokens

    @property
    def prompt_sha256(self) -> str:
        return hashlib.sha256(json.dumps(self._prompt_parts, sort_keys=True).encode()).hexdigest()

    @property
    def judge_id(self) -> str:
        return (
            f"{self.name}:{self.client.kind}:{self.client.model}:t={self.temperature:g}:seed={self.seed}"
            f":max_tokens={self.max_tokens}:prompt={self.prompt_sha256[:12]}"
        )

    def messages(self, prediction: str, reference: str) -> list[dict[str, str]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _reply(self, prediction: str, reference: str) -> str:
        resp = self.client.chat(
            self.messages(prediction, reference),
            temperature=self.temperature,
            seed=self.seed,
            max_tokens=self.max_tokens,
        )
        return resp.text

    def describe(self) -> dict[str, Any]:
        client = getattr(self.client, "describe", None)
        return {
            **super().describe(),
            "model": client() if callable(client) else {"kind": self.client.kind, "model": self.client.model},
            "temperature": self.temperature,
            "seed": self.seed,
            "prompt_sha256": self.prompt_sha256,
        }


class GreenJudge(_LLMReportJudge):
    """GREEN through any chat client: error counts parsed by :func:`~medlens.fairness.parse_green`.

    The prompt is ours (GREEN's six categories and sections, so a GREEN-tuned model's output parses too).
    ``score`` is GREEN or None when the reply cannot be read; ``match`` is true when it lists no clinically
    significant error; ``rationale`` is the raw reply. Same constructor as :class:`RubricJudge` minus the rubric.

    >>> from medlens.llm import CallableClient
    >>> reply = "[Clinically Significant Errors]:\\n(a) 1. extra haemorrhage\\n[Matched Findings]:\\n1. cupping"
    >>> GreenJudge(CallableClient(lambda m, **p: reply, model="scripted")).judge("cand", "ref").score
    0.5
    """

    name = "green"
    _categories = "\n".join(f"({k}) {v[0].upper()}{v[1:]}: <count>. <errors>" for k, v in GREEN_CATEGORIES.items())
    _prompt_parts = (GREEN_SYSTEM, _GREEN_USER, _categories)

    def messages(self, prediction: str, reference: str) -> list[dict[str, str]]:
        user = _GREEN_USER.format(
            reference=reference.strip(), prediction=prediction.strip(), categories=self._categories
        )
        return [{"role": "system", "content": GREEN_SYSTEM}, {"role": "user", "content": user}]

    def judge_batch(self, pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
        out = []
        for prediction, reference in pairs:
            text = self._reply(prediction, reference)
            g = parse_green(_THINK.sub("", text))
            if g.ok:
                out.append(Judgement(sum(g.significant.values()) == 0, g.score, text))
            else:
                out.append(Judgement(False, None, text))
        return out


def parse_rubric_score(text: str, low: int = 1, high: int = 5) -> tuple[int | None, str | None]:
    """The integer grade in a judge's reply, or ``(None, reason)``; tolerant of real LLM output.

    Tried in order: a JSON object with ``score`` (or ``grade``/``rating``); the last "score: 4" or "Grade 4/5"
    that is not a range ("a rating scale of 1 to 5"); a fraction
    "4/5" or "4 out of 5" on this scale; a reply that is one number. A grade outside [low, high], a fraction on
    another scale or a non-integer grade is a failure.

    >>> parse_rubric_score('```json\\n{"score": 4, "reason": "minor omission"}\\n```')
    (4, None)
    >>> parse_rubric_score("I would give this answer a score of **3** out of 5.")
    (3, None)
    >>> parse_rubric_score("Score: 7")
    (None, 'grade 7 is outside 1..5')
    """
    if not isinstance(text, str) or not text.strip():
        return None, "empty reply"
    body = _THINK.sub("", text).strip()
    found: tuple[str, str | None] | None = None
    if "{" in body:
        from medlens.llm import iter_json_candidates

        for value, _ in iter_json_candidates(body):
            if isinstance(value, dict):
                key = next((k for k in ("score", "grade", "rating") if k in value), None)
                if key is not None:
                    found = (str(value[key]).strip(), None)
                    break
    if found is None:
        # the last "score: N" that is not a range ("a scale of 1 to 5"): models state the scale first, the grade last
        said = [m for m in _SCORE_WORD.finditer(body) if not _RANGE.match(body, m.end())]
        m = (said[-1] if said else None) or _FRACTION.search(body) or _LONE.match(body)
        if m is None:
            return None, "no grade in the reply"
        found = (m.group(1), m.group(2) if m.re is not _LONE else None)
    value, denominator = found
    if denominator is not None and int(denominator) != high:
        return None, f"grade {value}/{denominator} is on another scale than {low}..{high}"
    try:
        f = float(value)
    except ValueError:
        return None, f"grade {value[:20]!r} is not a number"
    if not math.isfinite(f) or f != int(f):
        return None, f"grade {value} is not an integer"
    if not low <= int(f) <= high:
        return None, f"grade {int(f)} is outside {low}..{high}"
    return int(f), None


class RubricJudge(_LLMReportJudge):
    """An integer grade on a rubric (FMBench's "LLM score"; the rubric is configurable and recorded).

    Parameters
    ----------
    client, llm_url, model, model_path, device, allow_remote
        The chat client, or the options that build one (:func:`medlens.llm.client_from_options`).
    rubric : str
        The grading instructions (default :data:`DEFAULT_RUBRIC`, ours).
    scale : (int, int)
        Lowest and highest grade (default 1..5).
    pass_mark : int, optional
        ``match`` when grade ≥ this (default: the top grade).
    temperature, seed, max_tokens
        Generation (greedy by default).
    cache : bool or path
        The response cache of a client built from the options.

    >>> from medlens.llm import CallableClient
    >>> j = RubricJudge(CallableClient(lambda m, **p: "Score: 4/5 - close", model="scripted"), pass_mark=4)
    >>> j.judge("cupping", "glaucomatous cupping")
    Judgement(match=True, score=4.0, rationale='Score: 4/5 - close')
    """

    name = "rubric"

    def __init__(
        self,
        client: Any = None,
        *,
        rubric: str = DEFAULT_RUBRIC,
        scale: tuple[int, int] = (1, 5),
        pass_mark: int | None = None,
        **kwargs: Any,
    ) -> None:
        low, high = scale
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (low, high)) or low >= high:
            raise InputError(f"scale must be two ints (low, high) with low < high; got {scale!r}.")
        if not isinstance(rubric, str) or not rubric.strip():
            raise InputError("rubric must be a non-empty text.")
        pass_mark = high if pass_mark is None else pass_mark
        if not low <= pass_mark <= high:
            raise InputError(f"pass_mark must be within the scale {low}..{high}; got {pass_mark}.")
        self.rubric, self.low, self.high, self.pass_mark = rubric.strip(), low, high, int(pass_mark)
        self._prompt_parts = (_RUBRIC_SYSTEM, _RUBRIC_USER, self.rubric, low, high)
        super().__init__(client, **kwargs)

    @property
    def judge_id(self) -> str:
        return f"{super().judge_id}:scale={self.low}-{self.high}:pass={self.pass_mark}"

    def messages(self, prediction: str, reference: str) -> list[dict[str, str]]:
        user = _RUBRIC_USER.format(
            rubric=self.rubric, reference=reference.strip(), prediction=prediction.strip(), low=self.low, high=self.high
        )
        return [{"role": "system", "content": _RUBRIC_SYSTEM}, {"role": "user", "content": user}]

    def judge_batch(self, pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
        out = []
        for prediction, reference in pairs:
            text = self._reply(prediction, reference)
            grade, _ = parse_rubric_score(text, self.low, self.high)
            out.append(
                Judgement(grade is not None and grade >= self.pass_mark, None if grade is None else float(grade), text)
            )
        return out

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "rubric": self.rubric,
            "scale": [self.low, self.high],
            "pass_mark": self.pass_mark,
        }


@dataclass(frozen=True)
class JudgeScores:
    """Per-sample judge scores (NaN where the reply could not be read) with the raw replies."""

    judge_id: str
    scores: np.ndarray
    matches: np.ndarray
    raw: list[str]
    n_failed: int
    stats: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge_id": self.judge_id,
            "n": int(self.scores.size),
            "n_failed": self.n_failed,
            "mean": float(np.nanmean(self.scores)) if self.n_failed < self.scores.size else None,
            **self.stats,
        }


def judge_scores(
    judge: BaseJudge,
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    questions: Sequence[str | None] | None = None,
    cache: JudgeCache | None = None,
) -> JudgeScores:
    """Score every prediction against its reference with ``judge`` (each distinct pair asked once, cached).

    ``questions`` (VQA) are put in front of the reference ("Question: ...\\nReference answer: ...") so the judge
    sees what was asked. Unreadable replies become NaN and are counted in ``n_failed``.
    """
    n = check_same_length(predictions, references, names=("predictions", "references"))
    if questions is not None:
        check_same_length(predictions, questions, names=("predictions", "questions"))
    golds = [
        f"Question: {q.strip()}\nReference answer: {r}" if questions is not None and q else r
        for r, q in zip(references, questions if questions is not None else [None] * n, strict=True)
    ]
    run = run_judge(judge, [(str(p), str(g)) for p, g in zip(predictions, golds, strict=True)], cache=cache)
    scores = np.array([np.nan if j.score is None else float(j.score) for j in run.judgements], dtype=np.float64)
    matches = np.array([j.match for j in run.judgements], dtype=bool)
    return JudgeScores(
        judge.judge_id, scores, matches, [j.rationale for j in run.judgements], int(np.isnan(scores).sum()), run.stats()
    )
