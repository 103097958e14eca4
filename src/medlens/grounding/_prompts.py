"""Prompt renderers for grounding ablations: name only, definition, or any subset of the structured attributes.

Every renderer is a pure function of the finding (and the options), so the same finding and options always give
the same text. Attributes are always rendered in the canonical order of :data:`ATTRIBUTES`, whatever order the
subset is given in. :func:`task_prompt` prefixes Florence-2's phrase-grounding task token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from medlens._validation import InputError, check_option, did_you_mean
from medlens.grounding._kb import ATTRIBUTES, Finding

__all__ = ["PROMPT_MODES", "GROUNDING_TASK", "parse_attributes", "render_prompt", "task_prompt"]

PROMPT_MODES: tuple[str, ...] = ("name_only", "definition", "attributes")
GROUNDING_TASK = "<CAPTION_TO_PHRASE_GROUNDING>"
"""Florence-2's phrase-grounding task token (the processor expands it to "Locate the phrases in the caption: ")."""


def parse_attributes(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """Attribute names from ``"shape,location"`` or a list, validated and put in canonical order (``None``: all).

    >>> parse_attributes("location, shape")
    ('shape', 'location')
    """
    if spec is None:
        return ATTRIBUTES
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    items = [s for s in items if s]
    if not items:
        raise InputError(f"no attribute given; choose any of {', '.join(ATTRIBUTES)} (comma-separated).")
    for s in items:
        if s not in ATTRIBUTES:
            raise InputError(
                f"unknown attribute {s!r}.{did_you_mean(s, ATTRIBUTES)} Choose from {', '.join(ATTRIBUTES)}."
            )
    return tuple(a for a in ATTRIBUTES if a in items)


def render_prompt(
    finding: Finding,
    mode: Literal["name_only", "definition", "attributes"] = "definition",
    *,
    attributes: str | Iterable[str] | None = None,
    measured: Mapping[str, str] | None = None,
) -> str:
    """The caption for ``finding`` under ``mode``.

    - ``name_only``: ``"pleural effusion"``;
    - ``definition``: ``"pleural effusion means <definition>"`` (the definition's final period kept once);
    - ``attributes``: ``"pleural effusion: shape: …; density: …; location: …."`` with the chosen ``attributes``
      (default: all the finding has). ``measured`` (from :func:`medlens.grounding.derive_attributes`) adds the
      measured phrase to the ``size``/``location`` attributes, in parentheses.

    An attribute the finding lacks is left out; a subset that leaves nothing is an :class:`InputError`.
    """
    check_option(mode, PROMPT_MODES, name="mode")
    if mode == "name_only":
        if attributes is not None:
            raise InputError("attributes apply only to mode 'attributes'; drop them or set mode='attributes'.")
        return finding.name
    if mode == "definition":
        if attributes is not None:
            raise InputError("attributes apply only to mode 'attributes'; drop them or set mode='attributes'.")
        return f"{finding.name} means {finding.definition[0].lower()}{finding.definition[1:]}"
    chosen = parse_attributes(attributes)
    parts = []
    for a in chosen:
        if a not in finding.attributes:
            continue
        text = finding.attributes[a]
        if measured and a in measured:
            text = f"{text} (measured: {measured[a]})"
        parts.append(f"{a}: {text}")
    if not parts:
        raise InputError(
            f"finding {finding.name!r} has none of the attributes {list(chosen)}; it has {list(finding.attributes)}."
        )
    return f"{finding.name}: " + "; ".join(parts) + "."


def task_prompt(caption: str, task: str = GROUNDING_TASK) -> str:
    """The model input: the task token followed by the caption (``"<CAPTION_TO_PHRASE_GROUNDING>pleural effusion"``)."""
    if not caption.strip():
        raise InputError("the caption is empty; render one with render_prompt first.")
    return f"{task}{caption}"
