"""Truth, prediction and score tables (CSV), as ARCHITECTURE.md defines them.

* Truth/prediction CSV: ``id`` plus either ``label`` (one node id per row; several joined by ``;`` make
  the file multi-label; the root id means "abstained"; an empty cell is an error) or one 0/1 column per
  node id (closed upward: a positive child implies its ancestors).
* Scores CSV: ``id`` plus probabilities in [0, 1], one column per node id (used as they are) or one per
  leaf id (then an aggregator ``sum|max|noisy_or`` is required); any other column set is an error.
  medlens writes one layout everywhere (:func:`write_node_scores`: ``hier zeroshot``, ``hier score``,
  ``stitch zeroshot``, the demo): ``id`` then every node except the root, in taxonomy order; the root's
  probability is 1 by definition, and a root column in a file that comes in is accepted and ignored.
"""

from __future__ import annotations

import csv
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medlens._validation import InputError, check_probabilities, did_you_mean
from medlens.hierarchy._encode import EncodedLabels, encode_labels
from medlens.io import atomic_write
from medlens.taxonomy import Taxonomy

log = logging.getLogger(__name__)

__all__ = [
    "LabelTable",
    "ScoreTable",
    "read_label_table",
    "read_score_table",
    "write_label_table",
    "write_score_table",
    "write_node_scores",
    "align_ids",
    "read_scores_with_truth",
]


@dataclass(frozen=True)
class LabelTable:
    """Labels read from a truth or prediction CSV."""

    ids: list[str]
    labels: EncodedLabels
    path: str
    format: str  # "label" or "indicator"
    extra: dict[str, list[str]] = field(default_factory=dict)  # columns set aside with ``keep=``

    @property
    def multilabel(self) -> bool:
        return self.labels.single is None


@dataclass(frozen=True)
class ScoreTable:
    """Node scores read from a scores CSV, in ``taxonomy.nodes`` order (root column = 1)."""

    ids: list[str]
    scores: np.ndarray
    path: str
    columns: str  # "nodes" or "leaves"
    aggregator: str | None


def _read_csv(path: str | os.PathLike, what: str):
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {p} does not exist.")
    if p.stat().st_size == 0:
        raise InputError(f"{what} file {p} is empty; expected a header with 'id' and label or score columns.")
    try:
        with open(p, encoding="utf-8-sig", newline="") as fh:
            header = [h.strip() for h in next(csv.reader(fh), [])]
        # pandas renames a repeated column ("a", "a.1") and silently turns a first row with one field too many
        # into an index: check the header here and read with index_col=False.
        dupcols = [c for c in dict.fromkeys(header) if header.count(c) > 1]
        if dupcols:
            raise InputError(f"{what} file {p}: column {dupcols[0]!r} appears more than once.")
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True, index_col=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"{what} file {p} is empty; expected a header with 'id' and label or score columns.") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{what} file {p} is not a valid CSV ({str(exc).strip()}).") from None
    except pd.errors.ParserWarning:
        raise InputError(
            f"{what} file {p}: a row has more fields than the header's {len(header)} columns; remove stray commas "
            "or quote fields that contain commas."
        ) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} file {p} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    df.columns = [str(c).strip() for c in df.columns]
    if "id" not in df.columns:
        raise InputError(f"{what} file {p} needs an 'id' column; found columns {list(df.columns)[:8]}.")
    if len(df) == 0:
        raise InputError(f"{what} file {p} has a header but no rows.")
    ids = df["id"].str.strip()
    if (ids == "").any():
        r = int(np.flatnonzero((ids == "").to_numpy())[0])
        raise InputError(f"{what} file {p}: row {r + 2} has an empty 'id'.")
    dup = ids[ids.duplicated()]
    if len(dup):
        raise InputError(f"{what} file {p}: id {dup.iloc[0]!r} appears more than once; ids must be unique.")
    df["id"] = ids
    return df


def read_label_table(
    path: str | os.PathLike, taxonomy: Taxonomy, *, what: str = "truth", keep: Sequence[str] = ()
) -> LabelTable:
    """Read a truth or prediction CSV (``id,label`` or ``id`` + 0/1 node columns).

    ``keep`` names extra columns (e.g. ``text``) that are set aside into ``LabelTable.extra`` instead of
    being read as labels.
    """
    df = _read_csv(path, what)
    extra = {c: df[c].tolist() for c in keep if c in df.columns}
    cols = [c for c in df.columns if c != "id" and c not in extra]
    if cols == ["label"]:
        vals = df["label"].str.strip()
        empty = np.flatnonzero((vals == "").to_numpy())
        if len(empty):
            r = int(empty[0])
            raise InputError(
                f"{what} file {path}: row {r + 2} (id {df['id'].iloc[r]!r}) has an empty 'label'; "
                f"write a node id, several joined by ';', or {taxonomy.root!r} for abstained."
            )
        sets = []
        for r, cell in enumerate(vals):
            labs = [s.strip() for s in cell.split(";") if s.strip()]
            try:
                sets.append([taxonomy.map_label(x) for x in labs])
            except InputError as exc:
                raise InputError(f"{what} file {path}: row {r + 2} (id {df['id'].iloc[r]!r}): {exc}") from None
        if all(len(s) == 1 for s in sets):
            enc = encode_labels([s[0] for s in sets], taxonomy, name=what)
        else:
            enc = encode_labels(sets, taxonomy, name=what)
        return LabelTable(list(df["id"]), enc, str(path), "label", extra)
    if not cols:
        raise InputError(f"{what} file {path} has only an 'id' column; add 'label' or one 0/1 column per node id.")
    unknown = [c for c in cols if c not in taxonomy.index]
    if unknown:
        hint = did_you_mean(unknown[0], taxonomy.nodes)
        raise InputError(
            f"{what} file {path}: column {unknown[0]!r} is neither 'label' nor a node of taxonomy "
            f"{taxonomy.name!r}.{hint} Use 'id,label' or one 0/1 column per node id."
        )
    raw = df[cols].apply(lambda s: s.str.strip())
    ok = raw.isin(["0", "1", "0.0", "1.0"])
    if not ok.to_numpy().all():
        r, c = (int(v[0]) for v in np.nonzero(~ok.to_numpy()))
        raise InputError(
            f"{what} file {path}: row {r + 2} (id {df['id'].iloc[r]!r}), column {cols[c]!r} holds "
            f"{raw.iat[r, c]!r}; node columns must be 0 or 1."
        )
    vals = raw.astype(float).astype(np.int8)
    missing = [n for n in taxonomy.nodes[1:] if n not in set(cols)]
    if missing:
        log.warning(
            "%s file %s has no column for %d node(s) of taxonomy %r (e.g. %s); they count as 0 unless a positive "
            "descendant implies them.",
            what,
            path,
            len(missing),
            taxonomy.name,
            missing[:3],
        )
    empty_rows = int((vals.to_numpy().sum(axis=1) == 0).sum())
    if empty_rows:
        log.warning(
            "%s file %s: %d row(s) have no positive column and are read as the root (%s: no label / abstained).",
            what,
            path,
            empty_rows,
            taxonomy.root,
        )
    enc = encode_labels(vals.set_axis(cols, axis=1), taxonomy, name=what)
    return LabelTable(list(df["id"]), enc, str(path), "indicator", extra)


def read_score_table(path: str | os.PathLike, taxonomy: Taxonomy, *, from_leaves: str | None = None) -> ScoreTable:
    """Read a scores CSV and return node scores in taxonomy order.

    Node columns (every non-root node; the root column is optional) are used as they are; leaf columns
    need ``from_leaves`` (``sum``, ``max`` or ``noisy_or``) to derive the internal nodes.
    """
    from medlens.hierarchy._aggregate import AGGREGATORS, complete_node_scores, node_scores_from_leaves

    df = _read_csv(path, "scores")
    cols = [c for c in df.columns if c != "id"]
    ids = list(df["id"])
    unknown = [c for c in cols if c not in taxonomy.index]
    if unknown:
        raise InputError(
            f"scores file {path}: column {unknown[0]!r} is not a node of taxonomy {taxonomy.name!r}."
            f"{did_you_mean(unknown[0], taxonomy.nodes)} Score columns must be node ids or leaf ids."
        )
    try:
        x = df[cols].apply(lambda s: s.str.strip()).replace("", "nan").astype(float).to_numpy()
    except ValueError:
        bad = next((r, c) for c in cols for r, v in enumerate(df[c]) if not _is_float(v))
        raise InputError(
            f"scores file {path}: row {bad[0] + 2} (id {ids[bad[0]]!r}), column {bad[1]!r} holds "
            f"{df[bad[1]].iloc[bad[0]]!r}; scores must be numbers in [0, 1]."
        ) from None
    check_probabilities(x, name=f"scores file {path}", columns=cols, ids=ids)
    colset = set(cols) - {taxonomy.root}
    all_nodes = set(taxonomy.nodes[1:])
    leaves = set(taxonomy.leaves)
    if colset == all_nodes:
        if from_leaves is not None and leaves != all_nodes:
            raise InputError(
                f"scores file {path} has one column per node, so --from-leaves {from_leaves} does not apply; drop it."
            )
        return ScoreTable(ids, complete_node_scores(x, taxonomy=taxonomy, nodes=cols), str(path), "nodes", None)
    if colset == leaves:
        if from_leaves is None:
            raise InputError(
                f"scores file {path} has one column per leaf; pass --from-leaves sum|max|noisy_or to derive "
                "scores for the internal nodes (sum for softmax-over-leaves models)."
            )
        if from_leaves not in AGGREGATORS:
            raise InputError(f"--from-leaves must be one of {AGGREGATORS}; got {from_leaves!r}.")
        keep = [j for j, c in enumerate(cols) if c != taxonomy.root]
        s = node_scores_from_leaves(
            x[:, keep], taxonomy=taxonomy, leaves=[cols[j] for j in keep], aggregator=from_leaves
        )
        return ScoreTable(ids, s, str(path), "leaves", from_leaves)
    missing_nodes = sorted(all_nodes - colset)
    missing_leaves = sorted(leaves - colset)
    raise InputError(
        f"scores file {path} must have one column per node ({len(all_nodes)}) or one per leaf ({len(leaves)}) of "
        f"taxonomy {taxonomy.name!r}; it has {len(colset)}. Missing nodes: {missing_nodes[:5]}; "
        f"missing leaves: {missing_leaves[:5]}."
    )


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return v.strip() == ""
    return True


def align_ids(ref_ids: Sequence[str], other_ids: Sequence[str], *, ref_name: str, other_name: str) -> np.ndarray:
    """Row order that puts ``other_ids`` in ``ref_ids`` order; raises if the id sets differ."""
    ref, oth = list(ref_ids), list(other_ids)
    if ref == oth:
        return np.arange(len(oth))
    pos = {v: i for i, v in enumerate(oth)}
    only_ref = [v for v in ref if v not in pos]
    only_oth = sorted(set(oth) - set(ref))
    if only_ref or only_oth:
        raise InputError(
            f"ids differ between {ref_name} and {other_name}: {len(only_ref)} only in {ref_name} "
            f"(e.g. {only_ref[:3]}), {len(only_oth)} only in {other_name} (e.g. {only_oth[:3]}). "
            "Both files must describe the same samples."
        )
    return np.array([pos[v] for v in ref], dtype=np.int64)


def read_scores_with_truth(
    scores: str | os.PathLike, truth: str | os.PathLike, taxonomy: Taxonomy, *, from_leaves: str | None = None
) -> tuple[ScoreTable, LabelTable]:
    """Read a scores CSV and a truth CSV and put the score rows in the truth's id order (the files may list
    the ids in any order); ids in one file only raise, naming a few of each.

    >>> st, truth = read_scores_with_truth("scores_test.csv", "truth_test.csv", tax)  # doctest: +SKIP
    >>> st.ids == truth.ids, st.scores.shape == (len(truth.ids), len(tax))  # doctest: +SKIP
    (True, True)
    """
    st = read_score_table(scores, taxonomy, from_leaves=from_leaves)
    t = read_label_table(truth, taxonomy, what="truth")
    order = align_ids(t.ids, st.ids, ref_name=str(truth), other_name=str(scores))
    return ScoreTable(list(t.ids), st.scores[order], st.path, st.columns, st.aggregator), t


def write_label_table(
    path: str | os.PathLike, ids: Sequence[str], labels: Sequence[str] | Sequence[Sequence[str]]
) -> Path:
    """Write ``id,label`` (label sets joined by ``;``) atomically."""
    with atomic_write(path, "w") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["id", "label"])
        for i, lab in zip(ids, labels, strict=True):
            w.writerow([i, lab if isinstance(lab, str) else ";".join(lab)])
    return Path(path)


def write_score_table(path: str | os.PathLike, ids: Sequence[str], nodes: Sequence[str], scores: np.ndarray) -> Path:
    """Write a scores CSV (``id`` plus one probability column per node) atomically, 6 significant digits."""
    scores = np.asarray(scores)
    if scores.shape != (len(ids), len(nodes)):
        raise InputError(
            f"scores must have shape ({len(ids)}, {len(nodes)}) for the ids and nodes, got {scores.shape}."
        )
    with atomic_write(path, "w") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["id", *nodes])
        for i, row in zip(ids, scores, strict=True):
            w.writerow([i, *(f"{v:.6g}" for v in row)])
    return Path(path)


def write_node_scores(path: str | os.PathLike, ids: Sequence[str], taxonomy: Taxonomy, node_scores: np.ndarray) -> Path:
    """Write node probabilities ``(n, len(taxonomy))`` in taxonomy order (root column first, as every scorer
    returns them) as the one scores-CSV layout of medlens: ``id`` and every non-root node, in taxonomy order."""
    x = np.asarray(node_scores)
    if x.ndim != 2 or x.shape[1] != len(taxonomy):
        raise InputError(
            f"node scores must have shape (n, {len(taxonomy)}) in taxonomy order, root column first; got {x.shape}."
        )
    return write_score_table(path, ids, list(taxonomy.nodes[1:]), x[:, 1:])
