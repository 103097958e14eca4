"""Prompt tables for zero-shot scoring: per-node prompts from the taxonomy, templates × names, or a user file.

A node's prompts come from (``source``):

* ``"taxonomy"``: the taxonomy's own ``prompts`` (every node that needs a score must have some);
* ``"templates"``: every template (``"a chest x-ray showing {}."``) filled with every name of the node (its
  id, plus its ``labels`` synonyms when ``synonyms=True``);
* ``"auto"`` (default): the taxonomy's prompts where a node has them, templates × names elsewhere;
* ``"both"``: the union of the two.

A ``{node: [prompts]}`` override replaces a node's prompts whatever the source. Prompts of a node are
embedded one by one, L2-normalised, averaged and renormalised (the CLIP prompt-ensemble convention).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medlens._validation import InputError, check_option, did_you_mean, read_text_file
from medlens.taxonomy import Taxonomy

__all__ = [
    "DEFAULT_TEMPLATES",
    "PROMPT_SOURCES",
    "PromptTable",
    "build_prompt_table",
    "ensemble_embeddings",
    "node_names",
    "read_prompt_file",
]

DEFAULT_TEMPLATES = (
    "a chest x-ray showing {}.",
    "a chest radiograph with {}.",
    "findings consistent with {}.",
    "{}.",
)
PROMPT_SOURCES = ("auto", "taxonomy", "templates", "both")
PromptSource = Literal["auto", "taxonomy", "templates", "both"]


def _check_templates(templates: Sequence[str], where: str = "templates") -> tuple[str, ...]:
    if isinstance(templates, str) or not isinstance(templates, Sequence):
        raise InputError(f"{where} must be a list of strings with one '{{}}' each; got {templates!r}.")
    if not templates:
        raise InputError(f"{where} is empty; give at least one template such as 'a chest x-ray showing {{}}.'.")
    out = []
    for k, t in enumerate(templates):
        if not isinstance(t, str) or t.count("{}") != 1:
            raise InputError(
                f"{where}: template {k + 1} ({t!r}) must be a string with exactly one '{{}}' where the node name "
                "goes, e.g. 'a chest x-ray showing {}.'."
            )
        out.append(t)
    return tuple(dict.fromkeys(out))


def _display(name: str) -> str:
    """A node id or synonym as it reads in a sentence: ``Pleural_Effusion`` → ``pleural effusion``.

    Underscores become spaces; words are lower-cased except acronyms (``COPD``, ``PICC``).
    """
    words = str(name).replace("_", " ").split()
    return " ".join(w if (len(w) > 1 and w.isupper()) else w.lower() for w in words)


def node_names(taxonomy: Taxonomy, node: str, *, synonyms: bool = True) -> list[str]:
    """The names of ``node`` used in templates: its id, then its ``labels`` synonyms (de-duplicated).

    >>> t = Taxonomy({"root": ["Pleural_Effusion"]}, labels={"Pleural_Effusion": ["effusion", "Pleural effusion"]})
    >>> node_names(t, "Pleural_Effusion")
    ['pleural effusion', 'effusion']
    """
    taxonomy.check_node(node)
    raw = [node, *(taxonomy.labels.get(node, []) if synonyms else [])]
    seen: dict[str, str] = {}
    for r in raw:
        d = _display(r)
        key = d.lower()
        if d and key not in seen:
            seen[key] = d
    return list(seen.values())


@dataclass(frozen=True)
class PromptTable:
    """The prompts of every scored node, in ``taxonomy.nodes`` order.

    Attributes
    ----------
    nodes : tuple of str
        The nodes that have prompts (the scored nodes), in taxonomy order.
    prompts : dict of str to list of str
        ``{node: [prompt, ...]}``.
    sources : dict of str to str
        Where each node's prompts come from: ``taxonomy``, ``templates``, ``both`` or ``override``.
    """

    nodes: tuple[str, ...]
    prompts: dict[str, list[str]]
    sources: dict[str, str]

    def __len__(self) -> int:
        return sum(len(v) for v in self.prompts.values())

    def flat(self) -> tuple[list[str], np.ndarray]:
        """``(prompts, owner)``: every prompt, and the index (into :attr:`nodes`) of the node it belongs to."""
        texts = [p for n in self.nodes for p in self.prompts[n]]
        owner = np.repeat(np.arange(len(self.nodes)), [len(self.prompts[n]) for n in self.nodes])
        return texts, owner

    def rows(self) -> list[dict[str, str]]:
        """One ``{"node", "prompt", "source"}`` row per prompt (easy to print or to load into a DataFrame)."""
        return [{"node": n, "prompt": p, "source": self.sources[n]} for n in self.nodes for p in self.prompts[n]]

    def sha256(self) -> str:
        """Hash of the table (recorded in provenance so a score file names its exact prompts)."""
        blob = json.dumps([[n, self.prompts[n]] for n in self.nodes], separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def build_prompt_table(
    taxonomy: Taxonomy,
    *,
    nodes: Sequence[str] | None = None,
    templates: Sequence[str] | None = None,
    source: PromptSource = "auto",
    synonyms: bool = True,
    overrides: Mapping[str, Sequence[str]] | None = None,
) -> PromptTable:
    """Build the prompts of each node (see the module docstring for the rules).

    Parameters
    ----------
    taxonomy : Taxonomy
    nodes : sequence of str, optional
        The nodes that need prompts; default every node but the root.
    templates : sequence of str, optional
        Templates with one ``{}`` each; default :data:`DEFAULT_TEMPLATES`.
    source : {"auto", "taxonomy", "templates", "both"}
    synonyms : bool
        Fill templates with the node's ``labels`` synonyms too, not only its id.
    overrides : mapping of str to list of str, optional
        ``{node: [prompt, ...]}`` that replaces those nodes' prompts.

    Returns
    -------
    PromptTable

    Examples
    --------
    >>> t = Taxonomy({"root": ["Lung", "Heart"]}, prompts={"Lung": ["The lungs are abnormal."]})
    >>> table = build_prompt_table(t, templates=["a chest x-ray showing {}."])
    >>> table.prompts
    {'Lung': ['The lungs are abnormal.'], 'Heart': ['a chest x-ray showing heart.']}
    >>> table.sources
    {'Lung': 'taxonomy', 'Heart': 'templates'}
    """
    check_option(source, PROMPT_SOURCES, name="prompt source")
    tmpl = _check_templates(DEFAULT_TEMPLATES if templates is None else templates)
    wanted = list(taxonomy.nodes[1:] if nodes is None else nodes)
    for n in wanted:
        taxonomy.check_node(n)
    over = _check_overrides(overrides or {}, taxonomy)
    prompts: dict[str, list[str]] = {}
    sources: dict[str, str] = {}
    missing = []
    for n in wanted:
        if n in over:
            prompts[n], sources[n] = over[n], "override"
            continue
        own = [p for p in taxonomy.prompts.get(n, []) if p.strip()]
        names = node_names(taxonomy, n, synonyms=synonyms)
        filled = [t.replace("{}", name) for name in names for t in tmpl]
        if source == "taxonomy" or (source == "auto" and own):
            chosen, src = own, "taxonomy"
        elif source == "templates" or (source == "auto" and not own):
            chosen, src = filled, "templates"
        else:  # both
            chosen, src = own + filled, "both" if own else "templates"
        if not chosen:
            missing.append(n)
            continue
        prompts[n], sources[n] = list(dict.fromkeys(chosen)), src
    if missing:
        why = (
            "has no prompts for"
            if source == "taxonomy"
            else "has neither prompts nor a usable name (an id that is only punctuation) for"
        )
        raise InputError(
            f"taxonomy {taxonomy.name!r} {why} node(s) {missing[:5]}{' ...' if len(missing) > 5 else ''}. "
            "Add 'prompts' for them to the taxonomy file, give a JSON {node: [prompts]} override (--templates), "
            "or use prompt source 'templates'."
        )
    order = [n for n in taxonomy.nodes if n in prompts]
    return PromptTable(tuple(order), {n: prompts[n] for n in order}, {n: sources[n] for n in order})


def _check_overrides(overrides: Mapping[str, Sequence[str]], taxonomy: Taxonomy) -> dict[str, list[str]]:
    if not isinstance(overrides, Mapping):
        raise InputError(f"prompt overrides must map node ids to lists of prompts; got {type(overrides).__name__}.")
    out = {}
    for node, ps in overrides.items():
        if node not in taxonomy.index:
            raise InputError(
                f"prompt override names unknown node {node!r} of taxonomy {taxonomy.name!r}."
                f"{did_you_mean(str(node), taxonomy.nodes)}"
            )
        if node == taxonomy.root:
            raise InputError(f"prompt override for the root {node!r}: the root is never scored (its score is 1).")
        if isinstance(ps, str) or not isinstance(ps, Sequence) or not all(isinstance(p, str) for p in ps):
            raise InputError(f"prompt override of {node!r} must be a list of strings; got {ps!r}.")
        ps = [p for p in ps if p.strip()]
        if not ps:
            raise InputError(f"prompt override of {node!r} is empty; give at least one prompt or drop the node.")
        out[str(node)] = list(dict.fromkeys(ps))
    return out


def read_prompt_file(path: str | os.PathLike) -> tuple[tuple[str, ...] | None, dict[str, list[str]] | None]:
    """Read ``--templates FILE``: ``(templates, overrides)``, one of them ``None``.

    A ``.txt`` file holds one template per line, each with one ``{}`` (blank lines and lines starting with
    ``#`` are skipped). A ``.json`` file holds either a list of templates or ``{node: [prompt, ...]}``.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"templates file {p} does not exist; give a .txt (one template per line) or a .json file.")
    text = read_text_file(p, what="templates file")
    if p.suffix.lower() == ".json":
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"templates file {p} is not valid JSON ({e.msg}, line {e.lineno}).") from None
        if isinstance(data, list):
            return _check_templates(data, where=f"templates file {p}"), None
        if isinstance(data, dict):
            if not data:
                raise InputError(f"templates file {p} is an empty mapping; expected {{node: [prompt, ...]}}.")
            return None, data
        raise InputError(
            f"templates file {p} must hold a list of templates or a {{node: [prompts]}} mapping; "
            f"got {type(data).__name__}."
        )
    if p.suffix.lower() not in (".txt", ""):
        raise InputError(f"templates file {p}: unsupported type {p.suffix!r}; use .txt or .json.")
    lines = [ln.strip() for ln in text.splitlines()]
    templates = [ln for ln in lines if ln and not ln.startswith("#")]
    for k, ln in enumerate(lines):
        if ln and not ln.startswith("#") and ln.count("{}") != 1:
            raise InputError(
                f"templates file {p}: line {k + 1} ({ln!r}) must contain exactly one '{{}}' where the node name goes."
            )
    return _check_templates(templates, where=f"templates file {p}"), None


def ensemble_embeddings(embeddings: np.ndarray, owner: np.ndarray, n_groups: int, *, names=None) -> np.ndarray:
    """Mean of the L2-normalised rows of each group, renormalised (the CLIP prompt-ensemble rule).

    Parameters
    ----------
    embeddings : array of shape (n_prompts, dim)
    owner : int array of shape (n_prompts,)
        The group (node) of each row, in ``0 .. n_groups - 1``.
    names : sequence of str, optional
        Group names for the error raised when a group's mean is the zero vector.

    Returns
    -------
    ndarray of shape (n_groups, dim), float64, unit rows.

    Examples
    --------
    >>> e = np.array([[2.0, 0.0], [0.0, 3.0], [0.0, 1.0]])
    >>> ensemble_embeddings(e, np.array([0, 0, 1]), 2).round(4).tolist()
    [[0.7071, 0.7071], [0.0, 1.0]]
    """
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or len(e) != len(owner):
        raise InputError(f"embeddings must have shape ({len(owner)}, dim); got {e.shape}.")
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InputError(
            f"the encoder returned a zero embedding for prompt {int(np.flatnonzero(norms[:, 0] == 0)[0])}."
        )
    e = e / norms
    out = np.zeros((n_groups, e.shape[1]))
    np.add.at(out, np.asarray(owner), e)
    counts = np.bincount(owner, minlength=n_groups)
    if (counts == 0).any():
        g = int(np.flatnonzero(counts == 0)[0])
        raise InputError(f"no prompt for {names[g] if names is not None else f'group {g}'!r}.")
    out /= counts[:, None]
    length = np.linalg.norm(out, axis=1, keepdims=True)
    if (length < 1e-12).any():
        g = int(np.flatnonzero(length[:, 0] < 1e-12)[0])
        raise InputError(
            f"the prompts of {names[g] if names is not None else f'group {g}'!r} cancel out (their mean embedding "
            "is zero); use fewer or more consistent prompts."
        )
    return out / length
