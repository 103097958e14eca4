"""The :class:`Taxonomy` value object: a rooted DAG of clinical concepts.

DAG semantics (ARCHITECTURE.md): depth is the shortest path from the root; ``branch(v, k)`` is the set of
v's ancestors at depth k; an error is cross-branch when the two branch sets are disjoint; nodes shallower
than k are never a CAE; tree distance is the shortest undirected path.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from medlens._validation import InputError, did_you_mean, shorten
from medlens.taxonomy._labels import _norm, _string_lists

__all__ = ["Taxonomy"]

MultiParent = Literal["union", "first", "error"]


class Taxonomy:
    """A rooted DAG (usually a tree) of concept ids.

    Parameters
    ----------
    children : mapping of str to sequence of str
        ``{parent: [child, ...]}``. Every node must be reachable from ``root``.
    root : str
        The root id. Predicting the root means abstaining.
    name, version : str
        Recorded next to every number computed with the taxonomy.
    provenance : str or dict, optional
        Where the structure comes from (paper, code, file).
    labels : mapping of str to list of str, optional
        Synonyms and dataset label spellings per node, used by :meth:`map_label`.
    prompts : mapping of str to list of str, optional
        Text prompt templates per node for zero-shot scoring.
    multi_parent : {"union", "first", "error"}
        What to do with a node that has several parents: keep all (a DAG), keep the first, or raise.

    Examples
    --------
    >>> tax = Taxonomy({"root": ["Lung", "Heart"], "Lung": ["Pneumonia", "Edema"], "Heart": ["Cardiomegaly"]})
    >>> tax.ancestors("Pneumonia")
    ['Lung']
    >>> tax.branch("Pneumonia", 1), tax.depth("Cardiomegaly")
    (frozenset({'Lung'}), 2)
    >>> tax.lca("Pneumonia", "Edema"), tax.distance("Pneumonia", "Cardiomegaly")
    ('Lung', 4)
    """

    def __init__(
        self,
        children: Mapping[str, Sequence[str]],
        *,
        root: str = "root",
        name: str = "custom",
        version: str | None = None,
        provenance: str | dict | None = None,
        labels: Mapping[str, Sequence[str]] | None = None,
        prompts: Mapping[str, Sequence[str]] | None = None,
        multi_parent: MultiParent = "union",
        descriptions: Mapping[str, str] | None = None,
    ) -> None:
        if multi_parent not in ("union", "first", "error"):
            raise InputError(f"multi_parent must be 'union', 'first' or 'error'; got {multi_parent!r}.")
        self.name = str(name)
        self.source: str | None = None  # the file it was read from (set by the readers), named in errors
        self.version = None if version is None else str(version)
        self.provenance = provenance
        self.root = str(root)
        if not isinstance(children, Mapping):
            raise InputError(
                f"taxonomy {name!r}: 'children' must be a mapping {{parent: [child, ...]}}; got a "
                f"{type(children).__name__} ({shorten(children)}). Write each parent as a key with its children."
            )
        edges: list[tuple[str, str]] = []
        for parent, kids in children.items():
            if isinstance(kids, str) or not isinstance(kids, Iterable):
                raise InputError(
                    f"taxonomy {name!r}: children of {shorten(parent)} must be a list of node ids; got {shorten(kids)}."
                )
            edges.extend((str(parent), str(c)) for c in kids)
        self._build(edges, multi_parent)
        self.labels = _string_lists(labels, "labels", self.name)
        self.prompts = _string_lists(prompts, "prompts", self.name)
        self.descriptions = {str(k): str(v) for k, v in (descriptions or {}).items()}
        unknown = sorted(set(self.labels) - set(self.index)) + sorted(set(self.prompts) - set(self.index))
        if unknown:
            raise InputError(
                f"taxonomy {name!r}: 'labels'/'prompts' name unknown node(s) {unknown[:5]}. "
                "Add them to 'children' or remove them."
            )

    # ------------------------------------------------------------------ construction
    def _build(self, edges: list[tuple[str, str]], multi_parent: MultiParent) -> None:
        kids: dict[str, list[str]] = {}
        pars: dict[str, list[str]] = {}
        seen_edges = set()
        for p, c in edges:
            if p == c:
                raise InputError(f"taxonomy {self.name!r}: node {p!r} is its own parent (a cycle). Remove that edge.")
            if (p, c) in seen_edges:
                continue
            seen_edges.add((p, c))
            if c == self.root:
                raise InputError(f"taxonomy {self.name!r}: the root {self.root!r} cannot have a parent ({p!r}).")
            if pars.get(c):
                if multi_parent == "error":
                    raise InputError(
                        f"taxonomy {self.name!r}: node {c!r} has several parents ({pars[c][0]!r}, {p!r}) but "
                        "multi_parent='error'. Use multi_parent='union' for a DAG."
                    )
                if multi_parent == "first":
                    continue
            kids.setdefault(p, []).append(c)
            pars.setdefault(c, []).append(p)
            kids.setdefault(c, [])
        kids.setdefault(self.root, [])
        all_nodes = set(kids)
        roots = sorted(n for n in all_nodes if not pars.get(n) and n != self.root)
        if roots:
            raise InputError(
                f"taxonomy {self.name!r} has several roots: {self.root!r} and {roots[:5]}"
                f"{' ...' if len(roots) > 5 else ''}. Attach them under {self.root!r} or fix the parent ids."
            )
        # BFS order from the root gives deterministic node order and shortest-path depth.
        order, depth = [self.root], {self.root: 0}
        q = deque([self.root])
        while q:
            u = q.popleft()
            for c in kids[u]:
                if c not in depth:
                    depth[c] = depth[u] + 1
                    order.append(c)
                    q.append(c)
        unreachable = sorted(all_nodes - set(depth))
        if unreachable:
            # Every node has a parent, so the rest must sit on a cycle detached from the root.
            raise InputError(
                f"taxonomy {self.name!r} has a cycle not reachable from {self.root!r}: "
                f"{unreachable[:6]}. Break the cycle."
            )
        self.nodes: tuple[str, ...] = tuple(order)
        self.index: dict[str, int] = {n: i for i, n in enumerate(order)}
        self._children = tuple(tuple(self.index[c] for c in kids[n]) for n in order)
        self._parents = tuple(tuple(self.index[p] for p in pars.get(n, ())) for n in order)
        self._depth = np.array([depth[n] for n in order], dtype=np.int64)
        self._topo = self._toposort()

    def _toposort(self) -> np.ndarray:
        n = len(self.nodes)
        indeg = np.array([len(p) for p in self._parents])
        q = deque([0])
        out = []
        while q:
            u = q.popleft()
            out.append(u)
            for c in self._children[u]:
                indeg[c] -= 1
                if indeg[c] == 0:
                    q.append(c)
        if len(out) != n:
            cyc = sorted(self.nodes[i] for i in range(n) if indeg[i] > 0)
            raise InputError(f"taxonomy {self.name!r} has a cycle through {cyc[:6]}. Break the cycle.")
        return np.array(out, dtype=np.int64)

    @classmethod
    def from_edges(cls, edges: Iterable[tuple[str, str]], *, root: str = "root", **kwargs: Any) -> Taxonomy:
        """Build from ``(parent, child)`` pairs."""
        children: dict[str, list[str]] = {}
        for e in edges:
            if len(e) != 2:
                raise InputError(f"each edge must be a (parent, child) pair; got {e!r}.")
            children.setdefault(str(e[0]), []).append(str(e[1]))
        return cls(children, root=root, **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **overrides: Any) -> Taxonomy:
        """Build from the file format ``{"name", "root", "children", "version"?, "provenance"?, "labels"?, "prompts"?}``."""
        if not isinstance(data, Mapping):
            raise InputError(f"a taxonomy definition must be a mapping; got {type(data).__name__}.")
        if "children" not in data:
            raise InputError(
                f"a taxonomy definition needs a 'children' mapping {{parent: [child, ...]}}; found keys {sorted(data)}."
            )
        allowed = {
            "name",
            "root",
            "children",
            "version",
            "provenance",
            "labels",
            "prompts",
            "descriptions",
            "multi_parent",
            "notes",
            "schema_version",
        }
        extra = sorted(set(data) - allowed)
        if extra:
            raise InputError(f"unknown taxonomy field(s) {extra}; allowed fields are {sorted(allowed)}.")

        kw = {
            k: data[k]
            for k in ("root", "name", "version", "provenance", "labels", "prompts", "descriptions", "multi_parent")
            if k in data
        }
        kw.update(overrides)
        return cls(data["children"], **kw)

    # ------------------------------------------------------------------ basic queries
    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node: object) -> bool:
        return node in self.index

    def __repr__(self) -> str:
        kind = "tree" if self.is_tree else "DAG"
        return (
            f"Taxonomy(name={self.name!r}, version={self.version!r}, {len(self)} nodes, height {self.height}, {kind})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Taxonomy) and self.content_hash() == other.content_hash()

    def __hash__(self) -> int:
        return hash(self.content_hash())

    def _idx(self, node: str) -> int:
        try:
            return self.index[node]
        except (KeyError, TypeError):
            raise InputError(
                f"unknown node {shorten(node)} in taxonomy {self.name!r}.{did_you_mean(str(node), self.nodes)} "
                f"Use one of its {len(self)} node ids (medlens taxonomy show {self.name})."
            ) from None

    def validate(self, labels: Iterable[str] | None = None) -> Taxonomy:
        """Check that dataset ``labels`` all map to nodes (structure is checked on construction).

        Cycles, several roots and unknown nodes in ``labels``/``prompts`` already raise when the taxonomy is
        built. Returns ``self``; raises naming every label that maps to no node, then every label that names
        several nodes (see :meth:`map_label`).

        >>> Taxonomy({"root": ["Lung"]}, labels={"Lung": ["pulmonary"]}).validate(["Pulmonary", "lung"]).name
        'custom'
        """
        if labels is not None:
            bad, ambiguous = [], {}
            for lab in dict.fromkeys(labels):
                nodes, _ = self._candidates(lab)
                if not nodes:
                    bad.append(lab)
                elif len(nodes) > 1:
                    ambiguous[lab] = list(nodes)
            if bad:
                raise InputError(
                    f"{len(bad)} label(s) map to no node of taxonomy {self.name!r}: {bad[:10]}. "
                    "Add them to the taxonomy's 'labels' or map them explicitly."
                )
            if ambiguous:
                shown = "; ".join(f"{k!r} -> {v}" for k, v in list(ambiguous.items())[:5])
                raise InputError(
                    f"{len(ambiguous)} label(s) are ambiguous in {self._where()}: {shown}. "
                    "Use the exact node ids or map them explicitly."
                )
        return self

    def check_node(self, node: str) -> str:
        """Return ``node`` if it is in the taxonomy, else raise a did-you-mean error."""
        self._idx(node)
        return node

    @cached_property
    def is_tree(self) -> bool:
        return all(len(p) <= 1 for p in self._parents)

    @cached_property
    def height(self) -> int:
        """Maximum depth."""
        return int(self._depth.max())

    @cached_property
    def depths(self) -> np.ndarray:
        """Depth of every node, in :attr:`nodes` order (read-only)."""
        d = self._depth.copy()
        d.flags.writeable = False
        return d

    def depth(self, node: str) -> int:
        """Edges on the shortest path from the root (root = 0)."""
        return int(self._depth[self._idx(node)])

    def parents(self, node: str) -> list[str]:
        return [self.nodes[i] for i in self._parents[self._idx(node)]]

    def children(self, node: str) -> list[str]:
        return [self.nodes[i] for i in self._children[self._idx(node)]]

    @cached_property
    def leaves(self) -> tuple[str, ...]:
        """Nodes without children, in node order."""
        return tuple(n for n, c in zip(self.nodes, self._children, strict=True) if not c)

    @cached_property
    def leaf_mask(self) -> np.ndarray:
        m = np.array([not c for c in self._children])
        m.flags.writeable = False
        return m

    def ancestors(self, node: str, *, include_self: bool = False, include_root: bool = False) -> list[str]:
        """Ancestors of ``node`` ordered by depth (then node order)."""
        i = self._idx(node)
        cols = self.ancestor_matrix.indices[self.ancestor_matrix.indptr[i] : self.ancestor_matrix.indptr[i + 1]]
        out = [int(c) for c in cols if (include_self or c != i) and (include_root or c != 0)]
        out.sort(key=lambda j: (self._depth[j], j))
        return [self.nodes[j] for j in out]

    def descendants(self, node: str, *, include_self: bool = False) -> list[str]:
        """Descendants of ``node`` in node order."""
        i = self._idx(node)
        col = self.descendant_matrix
        cols = col.indices[col.indptr[i] : col.indptr[i + 1]]
        return [self.nodes[int(c)] for c in sorted(cols) if include_self or c != i]

    def branch(self, node: str, branch_depth: int = 1) -> frozenset[str]:
        """The set of ``node``'s ancestors (or itself) at depth ``branch_depth``.

        Empty when ``depth(node) < k`` in a tree. In a DAG a node can have an ancestor at depth k through a
        longer path even when its own (shortest-path) depth is below k; CAE rules check the depth itself.
        """
        i = self._idx(node)
        m = self.branch_matrix(branch_depth)
        return frozenset(self.nodes[int(c)] for c in m.indices[m.indptr[i] : m.indptr[i + 1]])

    def path(self, node: str) -> list[str]:
        """One root→node path (excluding the root), following the first parent at each step."""
        i = self._idx(node)
        out = []
        while i != 0:
            out.append(self.nodes[i])
            i = min(self._parents[i], key=lambda p: (self._depth[p], p))
        return out[::-1]

    def lca(self, u: str, v: str) -> str:
        """Deepest common ancestor (ancestor-or-self); ties broken by node id, alphabetically."""
        m = self.ancestor_matrix
        iu, iv = self._idx(u), self._idx(v)
        a = set(m.indices[m.indptr[iu] : m.indptr[iu + 1]])
        b = m.indices[m.indptr[iv] : m.indptr[iv + 1]]
        common = [int(c) for c in b if c in a]
        best = min(common, key=lambda j: (-self._depth[j], self.nodes[j]))
        return self.nodes[best]

    def lca_height(self, u: str, v: str) -> int:
        """Height of the LCA: ``height(taxonomy) - depth(lca(u, v))`` (Bertinetto et al., 2020)."""
        return self.height - self.depth(self.lca(u, v))

    def distance(self, u: str, v: str) -> int:
        """Shortest undirected path length between ``u`` and ``v``."""
        iu, iv = self._idx(u), self._idx(v)
        if self.is_tree:
            return int(self._depth[iu] + self._depth[iv] - 2 * self._depth[self.index[self.lca(u, v)]])
        from scipy.sparse.csgraph import shortest_path

        d = shortest_path(self.adjacency, directed=False, unweighted=True, indices=[iu])
        return int(d[0, iv])

    # ------------------------------------------------------------------ matrices (vectorised metrics)
    @cached_property
    def ancestor_matrix(self) -> sp.csr_matrix:
        """CSR bool matrix ``A[v, a] = 1`` iff ``a`` is an ancestor of ``v`` or ``v`` itself (root included)."""
        n = len(self.nodes)
        anc: list[np.ndarray | None] = [None] * n
        for v in self._topo:
            ps = self._parents[v]
            if not ps:
                anc[v] = np.array([v], dtype=np.int64)
            elif len(ps) == 1:
                anc[v] = np.append(anc[ps[0]], v)
            else:
                anc[v] = np.union1d(np.concatenate([anc[p] for p in ps]), [v])
        lengths = np.fromiter((len(a) for a in anc), dtype=np.int64, count=n)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        indices = np.concatenate(anc)
        m = sp.csr_matrix((np.ones(len(indices), dtype=bool), indices, indptr), shape=(n, n))
        m.sort_indices()
        return m

    @cached_property
    def descendant_matrix(self) -> sp.csr_matrix:
        """CSR bool matrix ``D[a, v] = 1`` iff ``v`` is a descendant of ``a`` or ``a`` itself."""
        return self.ancestor_matrix.T.tocsr()

    @cached_property
    def adjacency(self) -> sp.csr_matrix:
        """Parent→child adjacency (CSR, shape (n_nodes, n_nodes))."""
        rows = [p for c, ps in enumerate(self._parents) for p in ps]
        cols = [c for c, ps in enumerate(self._parents) for _ in ps]
        n = len(self.nodes)
        return sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))

    def branch_matrix(self, branch_depth: int = 1) -> sp.csr_matrix:
        """CSR bool ``B[v, b] = 1`` iff ``b`` is at depth ``branch_depth`` and an ancestor-or-self of ``v``."""
        if not isinstance(branch_depth, int | np.integer) or branch_depth < 1:
            raise InputError(f"branch depth k must be an integer >= 1; got {branch_depth!r}.")
        if branch_depth > self.height:
            raise InputError(
                f"branch depth k={branch_depth} is deeper than taxonomy {self.name!r} (height {self.height}); use 1..{self.height}."
            )
        cache = self.__dict__.setdefault("_branch_cache", {})
        if branch_depth not in cache:
            a = self.ancestor_matrix.tocoo()
            keep = self._depth[a.col] == branch_depth
            cache[branch_depth] = sp.csr_matrix(
                (np.ones(int(keep.sum()), dtype=bool), (a.row[keep], a.col[keep])), shape=a.shape
            )
        return cache[branch_depth]

    @cached_property
    def parent_table(self) -> np.ndarray:
        """``(n_nodes, max_parents)`` int array of parent indices, padded with -1."""
        width = max(1, max(len(p) for p in self._parents))
        t = np.full((len(self.nodes), width), -1, dtype=np.int64)
        for i, ps in enumerate(self._parents):
            t[i, : len(ps)] = ps
        return t

    def node_indices(self, nodes: Sequence[str]) -> np.ndarray:
        """Vectorised id → index lookup; unknown ids raise naming the first one and its row."""
        try:
            return np.fromiter(map(self.index.__getitem__, nodes), dtype=np.int64, count=len(nodes))
        except (KeyError, TypeError):
            get = self.index.get
            idx = np.array([get(x, -1) if isinstance(x, str) else -1 for x in nodes], dtype=np.int64)
        if (idx < 0).any():
            r = int(np.flatnonzero(idx < 0)[0])
            bad = nodes[r]
            raise InputError(
                f"unknown label {shorten(bad)} at row {r} for taxonomy {self.name!r}.{did_you_mean(str(bad), self.nodes)} "
                "Map dataset labels with Taxonomy.map_label or add a 'labels' synonym to the taxonomy file."
            )
        return idx.astype(np.int64)

    # ------------------------------------------------------------------ labels and export
    @cached_property
    def _label_lookup(self) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
        """Normalised spelling → the nodes it names: (by node id, by synonym); several nodes = ambiguous."""
        by_id: dict[str, dict[str, None]] = {}  # dicts as ordered sets
        by_synonym: dict[str, dict[str, None]] = {}
        for n in self.nodes:
            by_id.setdefault(_norm(n), {})[n] = None
        for n, syns in self.labels.items():
            for s in syns:
                by_synonym.setdefault(_norm(s), {})[n] = None
        return {k: tuple(v) for k, v in by_id.items()}, {k: tuple(v) for k, v in by_synonym.items()}

    def _candidates(self, label: str) -> tuple[tuple[str, ...], str]:
        """The nodes ``label`` may name and how (``"id"``: exact or normalised node id, ``"synonym"``)."""
        if label in self.index:
            return (label,), "id"
        key = _norm(label)
        by_id, by_synonym = self._label_lookup
        if key in by_id:
            return by_id[key], "id"
        return by_synonym.get(key, ()), "synonym"

    def _where(self) -> str:
        return f"taxonomy {self.name!r}" + (f" ({self.source})" if self.source else "")

    def map_label(self, label: str) -> str:
        """Map a dataset label or synonym to a node id (exact id first, then normalised id, then synonyms).

        Normalising ignores case and treats runs of spaces, ``_``, ``-``, ``/`` and ``,`` as one space. A label
        whose normalised form names two or more nodes at the first tier that matches (``"MASS"`` with nodes
        ``Mass`` and ``mass``, or a synonym shared by two nodes, such as HPO's ``ASD``) raises an
        :class:`InputError` naming the nodes instead of picking one; pass the node id or an explicit mapping.

        >>> t = Taxonomy({"root": ["Pleural Effusion"]}, labels={"Pleural Effusion": ["effusion"]})
        >>> t.map_label("Effusion"), t.map_label("pleural_effusion")
        ('Pleural Effusion', 'Pleural Effusion')
        """
        nodes, how = self._candidates(label)
        if len(nodes) == 1:
            return nodes[0]
        if nodes:
            what = "the ids" if how == "id" else "a synonym"
            raise InputError(
                f"label {shorten(label)} is ambiguous in {self._where()}: it normalises to {what} of "
                f"{len(nodes)} nodes ({', '.join(repr(n) for n in nodes[:5])}). Use the exact node id or map "
                "the label explicitly (Taxonomy.map_labels(..., mapping={label: node}))."
            )
        from difflib import get_close_matches

        by_id, by_synonym = self._label_lookup
        keys = [*by_id, *by_synonym]
        close = get_close_matches(_norm(label), keys, n=6, cutoff=0.6) if len(label) <= 200 else []
        hits = list(dict.fromkeys(n for c in close for n in by_id.get(c, by_synonym.get(c, ()))))[:3]
        hint = f" Did you mean: {', '.join(repr(n) for n in hits)}?" if hits else ""
        raise InputError(
            f"label {shorten(label)} matches no node or synonym of taxonomy {self.name!r}.{hint} "
            "Add it to the taxonomy's 'labels' or map it explicitly."
        )

    def map_labels(self, labels: Iterable[str], mapping: Mapping[str, str] | None = None) -> list[str]:
        """Map many labels; an explicit ``mapping`` (dataset label → node id) is tried first."""
        mapping = dict(mapping or {})
        for v in mapping.values():
            self.check_node(v)
        return [mapping[x] if x in mapping else self.map_label(x) for x in labels]

    def to_paths(self, labels: Sequence[str] | Sequence[Iterable[str]], *, width: int | None = None) -> np.ndarray:
        """hiclass-compatible label paths: 2-D ``(n, height)`` for single labels, 3-D ``(n, width, height)`` for
        label sets.

        Paths exclude the root and are right-padded with ``""``. In a DAG the first-parent path is used.
        ``width`` is the number of path slots per sample of the 3-D form (default: the largest label set; a
        larger set is an error); given for single labels, it makes them one-label sets. hiclass pairs the slots
        of truth and predictions with ``zip`` and silently drops the slots of the wider array, so score
        label sets with one ``width`` for both, or use :meth:`to_paths_pair`.

        >>> t = Taxonomy({"root": ["A", "B"], "A": ["a1"], "B": ["b1"]})
        >>> t.to_paths([["a1"], ["b1"]], width=2).shape
        (2, 2, 2)
        """
        from medlens.taxonomy._paths import label_paths

        return label_paths(self, labels, width)

    def to_paths_pair(
        self, y_true: Sequence[str] | Sequence[Iterable[str]], y_pred: Sequence[str] | Sequence[Iterable[str]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Truth and predictions as hiclass paths of one shape, ready for ``hiclass.metrics``.

        Both 2-D ``(n, height)`` when both hold single labels; otherwise both 3-D with the width of the largest
        label set on either side (single labels become one-label sets).

        >>> t = Taxonomy({"root": ["A", "B"], "A": ["a1"], "B": ["b1"]})
        >>> truth, pred = t.to_paths_pair(["a1", "b1"], [["a1", "b1"], ["b1"]])
        >>> truth.shape == pred.shape == (2, 2, 2)
        True
        """
        from medlens.taxonomy._paths import label_paths_pair

        return label_paths_pair(self, y_true, y_pred)

    def to_dict(self) -> dict[str, Any]:
        """The file-format dict (round-trips through :meth:`from_dict`)."""
        d: dict[str, Any] = {"name": self.name, "root": self.root}
        if self.version is not None:
            d["version"] = self.version
        if self.provenance is not None:
            d["provenance"] = self.provenance
        d["children"] = {self.nodes[i]: [self.nodes[c] for c in ch] for i, ch in enumerate(self._children) if ch}
        for key in ("labels", "prompts", "descriptions"):
            if getattr(self, key):
                d[key] = getattr(self, key)
        return d

    def content_hash(self) -> str:
        """SHA-256 of the structure (root and edges), independent of labels and prompts."""
        cached = self.__dict__.get("_content_hash")
        if cached is None:
            edges = sorted((self.nodes[p], self.nodes[c]) for c, ps in enumerate(self._parents) for p in ps)
            blob = json.dumps({"root": self.root, "edges": edges}, separators=(",", ":"))
            cached = self.__dict__["_content_hash"] = hashlib.sha256(blob.encode()).hexdigest()
        return cached

    def summary(self) -> dict[str, Any]:
        """Counts used by ``medlens taxonomy show``."""
        return {
            "name": self.name,
            "version": self.version,
            "root": self.root,
            "n_nodes": len(self),
            "n_leaves": len(self.leaves),
            "height": self.height,
            "is_tree": self.is_tree,
            "n_multi_parent": int(sum(len(p) > 1 for p in self._parents)),
            "branches": [self.nodes[i] for i in self._children[0]],
            "provenance": self.provenance,
        }
