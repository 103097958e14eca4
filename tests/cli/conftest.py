"""Fixtures for the CLI tests: an in-process runner and small CSV inputs for the built-in ``chexpert_pham``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

TAXONOMY = "chexpert_pham"


@dataclass
class Result:
    rc: int
    out: str
    err: str


def cli_runner(capsys):
    """``run(*args) -> Result``: ``medlens.cli.main`` in-process, stdout/stderr captured by ``capsys``."""
    from medlens.cli import main

    def run(*args: str | Path) -> Result:
        capsys.readouterr()  # drop anything printed before
        rc = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(rc, captured.out, captured.err)

    return run


@pytest.fixture
def cli(capsys):
    """``cli(*args) -> Result``: run ``medlens.cli.main`` in-process and capture stdout/stderr."""
    return cli_runner(capsys)


@dataclass
class Inputs:
    dir: Path
    truth: Path  # id,label single-label
    truth_multi: Path  # id,label with some ';' rows
    pred: Path  # id,label
    leaf_scores: Path  # id + one column per leaf (softmax)
    node_scores: Path  # id + one column per node
    leaves: list[str]
    nodes: list[str]
    ids: list[str]


def _write_scores(path: Path, ids: list[str], columns: list[str], values: np.ndarray) -> None:
    lines = [",".join(["id", *columns])]
    lines += [",".join([i, *(f"{v:.6f}" for v in row)]) for i, row in zip(ids, values, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def inputs(tmp_path) -> Inputs:
    """120 synthetic samples: softmax-over-leaves scores from noisy logits, the argmax leaf as prediction."""
    from medlens.hierarchy import node_scores_from_leaves
    from medlens.taxonomy import load_taxonomy

    tax = load_taxonomy(TAXONOMY)
    rng = np.random.default_rng(0)
    n, leaves = 120, list(tax.leaves)
    y = rng.integers(0, len(leaves), n)
    logits = rng.normal(size=(n, len(leaves)))
    logits[np.arange(n), y] += 2.0
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    p = np.round(p, 6)
    ids = [f"img{i:03d}" for i in range(n)]
    truth = [leaves[j] for j in y]
    d = tmp_path / "in"
    d.mkdir()
    (d / "truth.csv").write_text("id,label\n" + "".join(f"{i},{t}\n" for i, t in zip(ids, truth, strict=True)))
    multi = [f"{t};Support Devices" if k % 3 == 0 and t != "Support Devices" else t for k, t in enumerate(truth)]
    (d / "truth_multi.csv").write_text("id,label\n" + "".join(f"{i},{t}\n" for i, t in zip(ids, multi, strict=True)))
    pred = [leaves[j] for j in p.argmax(axis=1)]
    pred[0] = "root"  # one abstention
    (d / "pred.csv").write_text("id,label\n" + "".join(f"{i},{t}\n" for i, t in zip(ids, pred, strict=True)))
    _write_scores(d / "leaf_scores.csv", ids, leaves, p)
    nodes = list(tax.nodes[1:])
    s = node_scores_from_leaves(p, taxonomy=tax)
    _write_scores(d / "node_scores.csv", ids, nodes, np.clip(s[:, 1:], 0, 1))
    return Inputs(
        d,
        d / "truth.csv",
        d / "truth_multi.csv",
        d / "pred.csv",
        d / "leaf_scores.csv",
        d / "node_scores.csv",
        leaves,
        nodes,
        ids,
    )
