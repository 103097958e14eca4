"""Label spellings of a taxonomy: the normalisation every lookup uses and the check of ``{node: [str]}`` fields."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from medlens._validation import InputError

__all__: list[str] = []


def _norm(text: str) -> str:
    return re.sub(r"[\s_\-/,]+", " ", str(text).strip().lower()).strip()


def _string_lists(value: Mapping[str, Sequence[str]] | None, field: str, name: str) -> dict[str, list[str]]:
    """Validate ``{node: [str, ...]}`` (a bare string would silently split into characters)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"taxonomy {name!r}: '{field}' must map node ids to lists of strings; got {value!r}.")
    out = {}
    for k, v in value.items():
        if isinstance(v, str) or not isinstance(v, Sequence) or not all(isinstance(x, str) for x in v):
            raise InputError(
                f"taxonomy {name!r}: '{field}' of {k!r} must be a list of strings; got {v!r}. "
                f'Write it as ["{v}"] if it is one entry.'
                if isinstance(v, str)
                else f"taxonomy {name!r}: '{field}' of {k!r} must be a list of strings; got {v!r}."
            )
        out[str(k)] = list(v)
    return out
