"""``fair run`` on an executor (``--executor ray``): the items still to do travel as JSON, each worker loads one model.

:func:`item_payload` is what one item's prompt needs (its id, the question of a VQA item, and the SLO image as an
absolute path when images are sent), as JSON. :class:`FairTask` is the picklable task of :mod:`medlens.executors`:
``task()`` builds the client once (a Ray actor from the task's :class:`~medlens.llm.ClientFactory`; the local
executor reuses the client it was given) and returns a function of one block of payloads that returns one
prediction row per item, made by :func:`~medlens.fairness._runner.answer_row`, the very function the in-process run
uses, so the rows are the same whichever runs them. The driver alone appends them to ``predictions.jsonl``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from medlens.io import to_json
from medlens.llm import ClientTask

__all__ = ["FairTask", "item_payload"]


def item_payload(item: Mapping[str, Any], images: bool) -> dict[str, Any]:
    """One item's prompt inputs as JSON: ``id``, ``question`` (``None`` for a report) and ``image`` (an absolute
    path, since a worker may start in another folder; ``None`` for a text-only run)."""
    image = os.path.abspath(item["image"]) if images and item.get("image") is not None else None
    return {"id": item["id"], "question": item.get("question"), "image": image}


class FairTask(ClientTask):
    """A picklable task: ``task()`` returns ``fn(payloads) -> [prediction row, ...]`` (one row per item, in order).

    ``client`` (the local executor) is used as it is and never pickled; a Ray actor builds its own with
    ``client_factory``.
    """

    what = "a fair run task"

    def __init__(
        self,
        client_factory: Callable[[], Any] | None,
        *,
        task: str,
        images: bool,
        generation: Mapping[str, Any],
        client: Any = None,
    ) -> None:
        super().__init__(client_factory, client=client)
        self.task = str(task)
        self.images = bool(images)
        self.generation = dict(generation)

    def __call__(self) -> Callable[[list], list]:
        from medlens.fairness._runner import answer_row

        client = self.own_client()

        def run(payloads: list) -> list:
            rows = []
            for p in payloads:
                row = answer_row(client, p, task=self.task, images=self.images, generation=self.generation)
                rows.append(json.loads(to_json(row, indent=None)))  # as the run log will write it
            return rows

        return run
