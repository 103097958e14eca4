"""Prompt templates of ``medlens nova run``: one per (task, input setting), all in this module.

Tasks and input settings
------------------------
=============  =================================  =========================================================
task           settings                           the model sees
=============  =================================  =========================================================
localization   ``image``, ``image+history``       the key image (+ the case's clinical history)
caption        ``image``, ``image+history``       the key image (+ the case's clinical history)
diagnosis      ``image``, ``image+history``,      the key image (+ history); ``text``: no image, the
               ``text``                           clinical history and the radiologist's caption (the
                                                  RADAR setting)
=============  =================================  =========================================================

The gold caption is an *input* only in the diagnosis ``text`` setting; a template of any other (task, setting)
that names ``{caption}`` is refused, so the answer cannot leak into the prompt by accident.

What each task asks for
-----------------------
- localization: a JSON object ``{"boxes": [[x1, y1, x2, y2], ...], "scores": [...]}`` in a stated frame: the
  default ``xyxy_norm1000`` (integers 0-1000 relative to the image, origin top-left: the convention of most
  grounding VLMs) or ``xyxy_pixel`` (pixels of the image, whose size the prompt states). The frame is recorded
  as ``box_format`` in every prediction row.
- caption: free text (the caption only).
- diagnosis: a JSON object ``{"primary": ..., "differentials": [...]}`` with 4 differentials, i.e. 5 names in
  all (top-1 and top-5 as in NOVA and RADAR).

Placeholders
------------
A placeholder is ``{name}`` with a lower-case name; everything else, such as the braces of a JSON example, is
text. Names: ``{history}`` (clinical history), ``{caption}`` (radiologist's caption; diagnosis/text only),
``{box_frame}`` (one sentence describing the requested box frame; localization only), ``{width}`` and
``{height}`` (image size in pixels; image settings only), ``{n_diagnoses}`` (5) and ``{n_differentials}`` (4;
diagnosis only). ``image+history`` templates must use ``{history}``; ``text`` templates must use ``{history}``
and ``{caption}``.

Your own template
-----------------
``--template FILE`` (JSON or YAML): ``{"user": "...", "system": "..." (optional), "name": "..." (optional)}``,
for the run's task and setting. The template's SHA-256 (of task, setting, system and user text) goes into the
run's configuration, so a run folder never mixes answers to different prompts.

Templates are versioned by :data:`PROMPTS_VERSION`; editing a built-in template changes its hash as well.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medlens._validation import InputError, check_option, read_text_file

__all__ = [
    "PROMPTS_VERSION",
    "REQUEST_BOX_FORMATS",
    "RUN_SETTINGS",
    "RUN_TASKS",
    "PromptTemplate",
    "builtin_template",
    "load_template",
]

PROMPTS_VERSION = "nova-prompts/1"
RUN_TASKS = ("localization", "caption", "diagnosis")
RUN_SETTINGS: dict[str, tuple[str, ...]] = {
    "localization": ("image", "image+history"),
    "caption": ("image", "image+history"),
    "diagnosis": ("image", "image+history", "text"),
}
REQUEST_BOX_FORMATS = ("xyxy_norm1000", "xyxy_pixel")
"""Box frames a localisation prompt can ask for (``box_format`` of the rows)."""
N_DIAGNOSES = 5

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_COMMON = {"history"}


def _allowed(task: str, setting: str) -> tuple[set[str], set[str]]:
    """(allowed, required) placeholder names of a (task, setting)."""
    allowed = set(_COMMON)
    required: set[str] = set()
    if setting != "text":
        allowed |= {"width", "height"}
    if task == "localization":
        allowed.add("box_frame")
        required.add("box_frame")
    if task == "diagnosis":
        allowed |= {"n_diagnoses", "n_differentials"}
    if setting == "text":
        allowed.add("caption")
        required |= {"history", "caption"}
    if setting == "image+history":
        required.add("history")
    return allowed, required


SYSTEM = (
    "You are an experienced neuroradiologist reading one key image of a brain MRI examination. "
    "Answer exactly what is asked, in the format requested."
)
_HISTORY = "Clinical history: {history}\n\n"
_LOCALIZATION = (
    "Find every abnormal finding (lesion, mass, haemorrhage, malformation or other pathology) in this brain MRI "
    "image and give one tight bounding box around each.\n{box_frame}\n"
    'Reply with only a JSON object {"boxes": [[x1, y1, x2, y2], ...], "scores": [s1, ...]} with one confidence '
    'score in [0, 1] per box. If you see no abnormality, reply {"boxes": [], "scores": []}.'
)
_CAPTION = (
    "Write the radiology caption of this brain MRI image as in a teaching case: the sequence and plane, then the "
    "abnormal findings (location, signal, enhancement, mass effect). One to three sentences. Reply with the "
    "caption only."
)
_DX_QUESTION = (
    "give the single most likely diagnosis and {n_differentials} differential diagnoses, most likely first. "
    "Use specific disease names. Reply with only a JSON object "
    '{"primary": "<diagnosis>", "differentials": ["<second>", "<third>", "<fourth>", "<fifth>"]}.'
)
_BUILTIN: dict[tuple[str, str], str] = {
    ("localization", "image"): _LOCALIZATION,
    ("localization", "image+history"): _HISTORY + _LOCALIZATION,
    ("caption", "image"): _CAPTION,
    ("caption", "image+history"): _HISTORY + _CAPTION,
    ("diagnosis", "image"): "Based on this brain MRI image, " + _DX_QUESTION,
    ("diagnosis", "image+history"): _HISTORY
    + "Based on the clinical history and this brain MRI image, "
    + _DX_QUESTION,
    ("diagnosis", "text"): _HISTORY
    + "Imaging findings (the radiologist's description of the key image): {caption}\n\n"
    + "Based on the clinical history and the imaging findings, "
    + _DX_QUESTION,
}

BOX_FRAMES = {
    "xyxy_norm1000": (
        "Give each box as [x1, y1, x2, y2] in integers from 0 to 1000 relative to the image: x from the left "
        "edge, y from the top edge, (0, 0) the top-left and (1000, 1000) the bottom-right corner; x1 < x2, y1 < y2."
    ),
    "xyxy_pixel": (
        "Give each box as [x1, y1, x2, y2] in pixels of this {width}x{height} image: x from the left edge, y from "
        "the top edge, (0, 0) the top-left corner; x1 < x2, y1 < y2."
    ),
}


@dataclass(frozen=True)
class PromptTemplate:
    """The system and user text of one (task, setting), with placeholders (see the module notes)."""

    task: str
    setting: str
    user: str
    system: str | None = SYSTEM
    name: str = "builtin"
    source: str = "builtin"

    def __post_init__(self) -> None:
        check_option(self.task, RUN_TASKS, name="task")
        check_option(self.setting, RUN_SETTINGS[self.task], name=f"setting (for task {self.task})")
        allowed, required = _allowed(self.task, self.setting)
        where = f"prompt template {self.name!r} ({self.source})"
        for field_name, text in (("user", self.user), ("system", self.system)):
            if text is None:
                continue
            if not isinstance(text, str) or (field_name == "user" and not text.strip()):
                raise InputError(f"{where}: '{field_name}' must be a non-empty string; got {text!r:.60}.")
            for ph in _PLACEHOLDER.findall(text):
                if ph not in allowed:
                    why = (
                        " (the gold caption is an input only for task diagnosis, setting text)"
                        if ph == "caption"
                        else ""
                    )
                    raise InputError(
                        f"{where}: placeholder {{{ph}}} in '{field_name}' is not available for task {self.task!r}, "
                        f"setting {self.setting!r}{why}; available: {', '.join(sorted(allowed))}."
                    )
        used = self.placeholders()
        missing = required - used
        if missing:
            raise InputError(
                f"{where}: task {self.task!r}, setting {self.setting!r} needs the placeholder(s) "
                f"{', '.join('{' + m + '}' for m in sorted(missing))} in the template."
            )

    def placeholders(self) -> set[str]:
        return set(_PLACEHOLDER.findall(self.user)) | set(_PLACEHOLDER.findall(self.system or ""))

    @property
    def sha256(self) -> str:
        """SHA-256 of the canonical JSON of (task, setting, system, user): what the run configuration records."""
        blob = json.dumps(
            {"task": self.task, "setting": self.setting, "system": self.system, "user": self.user},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def render(self, values: Mapping[str, Any]) -> list[dict[str, str]]:
        """OpenAI-format messages with the placeholders filled from ``values``."""

        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)

        msgs = [{"role": "system", "content": fill(self.system)}] if self.system else []
        msgs.append({"role": "user", "content": fill(self.user)})
        return msgs

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "version": PROMPTS_VERSION if self.source == "builtin" else None,
            "task": self.task,
            "setting": self.setting,
            "sha256": self.sha256,
            "system": self.system,
            "user": self.user,
        }


def builtin_template(task: str, setting: str) -> PromptTemplate:
    """The built-in template of (task, setting).

    >>> t = builtin_template("diagnosis", "text")
    >>> sorted(t.placeholders())
    ['caption', 'history', 'n_differentials']
    """
    check_option(task, RUN_TASKS, name="task")
    check_option(setting, RUN_SETTINGS[task], name=f"setting (for task {task})")
    return PromptTemplate(task, setting, _BUILTIN[(task, setting)], SYSTEM, name=f"{PROMPTS_VERSION}:{task}:{setting}")


def load_template(path: str | os.PathLike, task: str, setting: str) -> PromptTemplate:
    """A user template from a JSON or YAML file ``{"user": ..., "system": ..., "name": ...}``."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"prompt template {p}: no such file; give a JSON or YAML file with a 'user' text.")
    text = read_text_file(p, what="prompt template")
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - json and yaml raise different types
        raise InputError(f"prompt template {p}: cannot parse ({exc}).") from None
    if not isinstance(data, Mapping) or "user" not in data:
        raise InputError(f"prompt template {p}: expected an object with 'user' (and optional 'system', 'name').")
    unknown = set(data) - {"user", "system", "name"}
    if unknown:
        raise InputError(f"prompt template {p}: unknown key(s) {sorted(unknown)}; allowed: user, system, name.")
    return PromptTemplate(
        task,
        setting,
        data["user"],
        data.get("system"),
        name=str(data.get("name") or p.stem),
        source=str(p),
    )


def prompt_values(
    template: PromptTemplate, *, history: str, caption: str, size: tuple[int, int] | None, box_format: str
):
    """The placeholder values of one image (only the ones the template uses must be available)."""
    values: dict[str, Any] = {
        "history": history.strip(),
        "n_diagnoses": N_DIAGNOSES,
        "n_differentials": N_DIAGNOSES - 1,
    }
    if template.setting == "text":
        values["caption"] = caption.strip()
    if size is not None:
        values["width"], values["height"] = size
    if template.task == "localization":
        frame = BOX_FRAMES[box_format]
        if "{width}" in frame and size is None:
            raise InputError("xyxy_pixel boxes need the image size; this image has none (is its file missing?).")
        values["box_frame"] = _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), frame)
    return values
