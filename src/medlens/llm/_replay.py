"""Record real chat responses to a JSONL fixture, and replay them in tests without any model.

Each fixture line is ``{"key", "kind", "model", "messages", "params", "response"}``: the request key is the
one the cache uses (:func:`~medlens.llm.request_key` of kind, model, messages with images replaced by
their SHA-256, and sampling parameters), and ``messages`` are stored in that canonical form so a fixture
never holds base64 images. A replayed request that was never recorded raises
:class:`~medlens.llm.ReplayMissError` showing the closest recorded prompt and where it differs.
"""

from __future__ import annotations

import difflib
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medlens._validation import InputError
from medlens.io import read_jsonl, to_json
from medlens.llm._base import ChatClient, ChatResponse, normalize_params
from medlens.llm._errors import ReplayMissError
from medlens.llm._messages import ImageInput, attach_images, canonical_messages, message_text, request_key

__all__ = ["RecordingClient", "ReplayClient"]

FIXTURE_FIELDS = ("key", "kind", "model", "messages", "params", "response")


class RecordingClient:
    """Wrap a real client and append every request and its response to a JSONL fixture.

    Parameters
    ----------
    client : ChatClient
        The client that answers (its cache still applies).
    path : path
        The fixture file (created if missing; appended to otherwise).
    """

    def __init__(self, client: ChatClient, path: str | os.PathLike) -> None:
        if not isinstance(client, ChatClient):
            raise TypeError(f"client must be a ChatClient (with kind, model and chat()); got {type(client).__name__}.")
        self.client = client
        self.kind = client.kind
        self.model = client.model
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RecordingClient({self.client!r}, path={str(self.path)!r})"

    def describe(self) -> dict[str, Any]:
        inner = getattr(self.client, "describe", None)
        return {**(inner() if inner else {"kind": self.kind, "model": self.model}), "recording_to": str(self.path)}

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float = 0.0,
        seed: int | None = 0,
        max_tokens: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        images: Sequence[ImageInput] | None = None,
    ) -> ChatResponse:
        msgs = attach_images(messages, images)
        params = normalize_params(temperature, seed, max_tokens, response_format)
        resp = self.client.chat(msgs, **params)
        record = {
            "key": request_key(self.kind, self.model, msgs, params),
            "kind": self.kind,
            "model": self.model,
            "messages": canonical_messages(msgs),
            "params": params,
            "response": resp.to_dict(),
        }
        line = (to_json(record, indent=None) + "\n").encode("utf-8")
        with self._lock:  # one write() per line on an O_APPEND descriptor: lines never interleave
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return resp


class ReplayClient:
    """Answer from a fixture written by :class:`RecordingClient`; no model, no network.

    Parameters
    ----------
    path : path
        The JSONL fixture.
    model : str, optional
        Which recorded model to replay when the fixture holds several.

    Responses come back with ``cached=True``. When a request was recorded more than once, the last
    recording wins.
    """

    def __init__(self, path: str | os.PathLike, *, model: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"replay fixture {self.path} does not exist; record one by wrapping a real client in "
                "RecordingClient(client, path)."
            )
        records = []
        for i, rec in enumerate(read_jsonl(self.path), 1):
            missing = [f for f in FIXTURE_FIELDS if f not in rec]
            if missing:
                raise InputError(
                    f"{self.path}: record {i} lacks field(s) {missing}; was it written by RecordingClient?"
                )
            records.append(rec)
        idents = sorted({(r["kind"], r["model"]) for r in records})
        if model is not None:
            idents = [x for x in idents if x[1] == model]
        if not idents:
            have = sorted({r["model"] for r in records})
            raise InputError(
                f"replay fixture {self.path} holds no responses"
                + (f" of model {model!r}; it holds {have}." if model is not None and have else ".")
            )
        if len(idents) > 1:
            raise InputError(
                f"replay fixture {self.path} holds responses of several clients {idents}; pass model=... to pick one."
            )
        self.kind, self.model = idents[0]
        self._records = [r for r in records if (r["kind"], r["model"]) == (self.kind, self.model)]
        self._by_key = {r["key"]: r for r in self._records}

    def __repr__(self) -> str:
        return f"ReplayClient({str(self.path)!r}, model={self.model!r}, {len(self._by_key)} responses)"

    def __len__(self) -> int:
        return len(self._by_key)

    def describe(self) -> dict[str, Any]:
        return {"kind": "replay", "recorded_kind": self.kind, "model": self.model, "fixture": str(self.path)}

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float = 0.0,
        seed: int | None = 0,
        max_tokens: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        images: Sequence[ImageInput] | None = None,
    ) -> ChatResponse:
        t0 = time.perf_counter()
        msgs = attach_images(messages, images)
        params = normalize_params(temperature, seed, max_tokens, response_format)
        key = request_key(self.kind, self.model, msgs, params)
        rec = self._by_key.get(key)
        if rec is None:
            raise ReplayMissError(self._miss_message(canonical_messages(msgs), params))
        return ChatResponse.from_dict(rec["response"], cached=True, latency_s=time.perf_counter() - t0)

    def _miss_message(self, msgs: list[dict[str, Any]], params: dict[str, Any]) -> str:
        want = message_text(msgs)
        head = (
            f"no recorded response in {self.path} for this request (model {self.model!r}, "
            f"{len(self._by_key)} recorded responses)"
        )
        if not self._records:
            return head + "."
        scored = [(difflib.SequenceMatcher(None, want, message_text(r["messages"])).ratio(), r) for r in self._records]
        score, best = max(scored, key=lambda x: x[0])
        got = message_text(best["messages"])
        if got == want:
            diff = {k: (best["params"].get(k), v) for k, v in params.items() if best["params"].get(k) != v}
            detail = ", ".join(f"{k} recorded {a!r}, requested {b!r}" for k, (a, b) in diff.items())
            return (
                f"{head}; the same messages were recorded with other parameters ({detail}). Use the recorded "
                "parameters, or re-record the fixture with RecordingClient."
            )
        at = next((i for i, (a, b) in enumerate(zip(want, got, strict=False)) if a != b), min(len(want), len(got)))
        lo = max(0, at - 60)
        return (
            f"{head}. The closest recorded prompt (similarity {score:.2f}) first differs at character {at}:\n"
            f"  recorded:  ...{got[lo : at + 80]!r}\n"
            f"  requested: ...{want[lo : at + 80]!r}\n"
            "Re-record the fixture with RecordingClient if the prompt changed on purpose."
        )
