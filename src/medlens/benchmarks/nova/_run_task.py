"""``nova run`` on an executor (``--executor ray``): the images still to do travel as JSON, each worker loads one model.

:func:`image_payload` is what one image's prompt needs (file name, caption, clinical history, size, and the image
as a path or base64 bytes; no image for the text setting), as JSON. :class:`NovaTask` is the picklable task of
:mod:`medlens.executors`: ``task()`` builds the client once (a Ray actor from the task's
:class:`~medlens.llm.ClientFactory`; the local executor reuses the client it was given) and returns a function of
one block of payloads that returns one prediction row per image, made by the very function the in-process run
uses, so the rows are the same whichever runs them. The driver alone appends them to ``predictions.jsonl``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from medlens.io import to_json
from medlens.llm import ClientTask

if TYPE_CHECKING:  # pragma: no cover
    from medlens.benchmarks.nova._prompts import PromptTemplate
    from medlens.benchmarks.nova._records import NovaDataset, NovaImage

__all__ = ["NovaTask", "image_payload"]


def image_payload(dataset: NovaDataset, im: NovaImage, setting: str) -> dict[str, Any]:
    """One image's prompt inputs as JSON (the image as a path, or its bytes in base64; none for ``text``)."""
    out: dict[str, Any] = {
        "filename": im.filename,
        "caption": im.caption,
        "history": dataset.case_of(im.filename).clinical_history,
        "size": list(im.image_size) if im.image_size is not None else None,
    }
    if setting != "text":
        if im.image_bytes is not None:
            out["image_b64"] = base64.b64encode(im.image_bytes).decode("ascii")
        else:
            out["image_path"] = os.path.abspath(im.image_path)  # a worker may start in another folder
    return out


def _image_of(payload: Mapping[str, Any]) -> Any:
    if payload.get("image_b64") is not None:
        return base64.b64decode(payload["image_b64"])
    return payload.get("image_path")


class NovaTask(ClientTask):
    """A picklable task: ``task()`` returns ``fn(payloads) -> [prediction row, ...]`` (one row per image, in order).

    ``client`` (the local executor) is used as it is and never pickled; a Ray actor builds its own with
    ``client_factory``.
    """

    what = "a NOVA task"

    def __init__(
        self,
        client_factory: Callable[[], Any] | None,
        template: PromptTemplate,
        *,
        box_format: str,
        generation: Mapping[str, Any],
        repair: bool,
        client: Any = None,
    ) -> None:
        super().__init__(client_factory, client=client)
        self.template = template
        self.box_format = str(box_format)
        self.generation = dict(generation)
        self.repair = bool(repair)

    def __call__(self) -> Callable[[list], list]:
        from medlens.benchmarks.nova._run import prediction_row

        client = self.own_client()

        def run(payloads: list) -> list:
            rows = []
            for p in payloads:
                size = tuple(p["size"]) if p.get("size") is not None else None
                row = prediction_row(
                    client,
                    self.template,
                    filename=p["filename"],
                    caption=p["caption"],
                    history=p["history"],
                    size=size,
                    image=_image_of(p),
                    box_format=self.box_format,
                    generation=self.generation,
                    repair=self.repair,
                )
                rows.append(json.loads(to_json(row, indent=None)))  # as the run log will write it
            return rows

        return run
