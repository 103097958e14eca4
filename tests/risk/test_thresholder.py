"""Risk-constrained thresholds: decision rules by hand, exact loss curves, the three methods, persistence, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from medlens._validation import InputError
from medlens.hierarchy import encode_labels
from medlens.risk import (
    LossCurve,
    RiskConstrainedThresholder,
    climb_paths,
    climb_predict,
    loss_curve,
    multilabel_predict,
)
from medlens.taxonomy import Taxonomy, load_taxonomy


def _scores(tax: Taxonomy, rows: list[dict[str, float]]) -> np.ndarray:
    """Node-score matrix from {node: score} dicts (missing nodes 0, root 1)."""
    s = np.zeros((len(rows), len(tax)))
    for i, row in enumerate(rows):
        for node, v in row.items():
            s[i, tax.index[node]] = v
    s[:, 0] = 1.0
    return s


def _fixed(tax: Taxonomy | str, lam: float, rule: str = "climb", k: int = 1) -> RiskConstrainedThresholder:
    """A thresholder with λ set by hand (through the persistence format, as `hier predict` does)."""
    t = load_taxonomy(tax)
    return RiskConstrainedThresholder.from_dict(
        {
            "taxonomy": t.to_dict() if t.name not in ("cihmlc", "chexpert_pham") else t.name,
            "rule": rule,
            "lambda": lam,
            "branch_depth": k,
        }
    )


# ----------------------------------------------------------------------------------------------- rules by hand
TOY_ROWS = [
    # leaves 0.5 / 0.3 / 0.2 (softmax over leaves, summed upwards)
    {"Lung": 0.8, "Pleura": 0.2, "Pneumonia": 0.5, "Edema": 0.3, "Effusion": 0.2},
    # leaves 0.1 / 0.2 / 0.7
    {"Lung": 0.3, "Pleura": 0.7, "Pneumonia": 0.1, "Edema": 0.2, "Effusion": 0.7},
]


def test_climb_paths_toy_tree(toy_tree):
    s = _scores(toy_tree, TOY_ROWS)
    paths = climb_paths(s, toy_tree)
    assert paths.shape == (2, toy_tree.height + 1)
    named = [[toy_tree.nodes[j] for j in row] for row in paths]
    assert named == [["Pneumonia", "Lung", "root"], ["Effusion", "Pleura", "root"]]


@pytest.mark.parametrize(
    ("lam", "expected"),
    [
        (0.0, ["Pneumonia", "Effusion"]),
        (0.5, ["Pneumonia", "Effusion"]),  # score >= λ is accepted (boundary included)
        (0.51, ["Lung", "Effusion"]),
        (0.7, ["Lung", "Effusion"]),
        (0.71, ["Lung", "root"]),
        (0.8, ["Lung", "root"]),
        (0.81, ["root", "root"]),  # abstention = the root
        (1.0, ["root", "root"]),
    ],
)
def test_climb_predict_by_hand(toy_tree, lam, expected):
    s = _scores(toy_tree, TOY_ROWS)
    assert [toy_tree.nodes[i] for i in climb_predict(s, toy_tree, lam)] == expected
    assert _fixed(toy_tree, lam).predict(s) == expected


def test_climb_follows_highest_scoring_parent_in_dag():
    tax = load_taxonomy("cihmlc")
    assert sorted(tax.parents("Pneumonia")) == ["Consolidation", "Fluid Accumulation"]
    base = {leaf: 0.01 for leaf in tax.leaves} | {"Pneumonia": 0.3, "Opacity": 0.7, "Abnormal": 0.9}
    via_consolidation = base | {"Consolidation": 0.5, "Fluid Accumulation": 0.4}
    via_fluid = base | {"Consolidation": 0.4, "Fluid Accumulation": 0.5}
    s = _scores(tax, [via_consolidation, via_fluid])
    paths = [[tax.nodes[j] for j in row] for row in climb_paths(s, tax)]
    assert paths[0][:3] == ["Pneumonia", "Consolidation", "Fluid Accumulation"]
    assert paths[1][:4] == ["Pneumonia", "Fluid Accumulation", "Opacity", "Abnormal"]
    assert paths[1][-1] == "root"
    assert "Consolidation" not in paths[1]  # the lower-scoring parent is skipped
    th = _fixed("cihmlc", 0.45)
    assert th.predict(s) == ["Consolidation", "Fluid Accumulation"]
    assert _fixed("cihmlc", 0.6).predict(s) == ["Opacity", "Opacity"]
    assert _fixed("cihmlc", 0.95).predict(s) == ["root", "root"]


def test_multilabel_rule_by_hand(toy_tree):
    s = _scores(toy_tree, [{"Lung": 0.8, "Pleura": 0.6, "Pneumonia": 0.5, "Edema": 0.3, "Effusion": 0.6}])
    m = multilabel_predict(s, 0.55)
    assert m.dtype == bool
    assert [toy_tree.nodes[j] for j in np.flatnonzero(m[0])] == ["Lung", "Pleura", "Effusion"]
    assert not multilabel_predict(s, 0.0)[:, 0].any()  # the root column is never a prediction
    assert _fixed(toy_tree, 0.55, "multilabel").predict(s) == [["Lung", "Effusion"]]
    assert _fixed(toy_tree, 0.3, "multilabel").predict(s) == [["Pneumonia", "Edema", "Effusion"]]
    assert _fixed(toy_tree, 0.9, "multilabel").predict(s) == [["root"]]  # nothing passes: abstain


# ------------------------------------------------------------------------------------- brute-force loss curves
def _random_tree(rng: np.random.Generator, n_nodes: int = 16) -> Taxonomy:
    children: dict[str, list[str]] = {"root": ["n1"], "n1": ["n2"]}  # guarantees height >= 2
    names = ["root", "n1", "n2"]
    for i in range(3, n_nodes):
        children.setdefault(names[int(rng.integers(0, len(names)))], []).append(f"n{i}")
        names.append(f"n{i}")
    return Taxonomy(children, name="random_tree")


def _random_dag(rng: np.random.Generator, n_nodes: int = 16) -> Taxonomy:
    """A DAG whose extra parents may sit in other depth-1 branches (parents always created earlier: acyclic)."""
    children: dict[str, list[str]] = {"root": ["n1", "n2"], "n1": ["n3"]}
    names = ["root", "n1", "n2", "n3"]
    for i in range(4, n_nodes):
        ps = {names[int(rng.integers(0, len(names)))]}
        if rng.random() < 0.5:
            ps.add(names[int(rng.integers(1, len(names)))])
        for p in sorted(ps):
            children.setdefault(p, []).append(f"n{i}")
        names.append(f"n{i}")
    return Taxonomy(children, name="random_dag")


class _Brute:
    """CAE by definition, one sample at a time, in plain Python (the reference for the vectorised code)."""

    def __init__(self, tax: Taxonomy, k: int) -> None:
        self.tax, self.k = tax, k
        self.branch = {v: tax.branch(v, k) for v in tax.nodes}
        self.closure = {v: set() if v == tax.root else {v, *tax.ancestors(v)} for v in tax.nodes}

    def climb(self, s: np.ndarray, lam: float) -> str:
        tax, ix = self.tax, self.tax.index
        cur = max(tax.leaves, key=lambda v: s[ix[v]])  # first best leaf in node order
        while cur != tax.root and s[ix[cur]] < lam:
            cur = max(tax.parents(cur), key=lambda v: s[ix[v]])
        return cur

    def thresholded(self, s: np.ndarray, lam: float) -> list[str]:
        return [v for v in self.tax.nodes[1:] if s[self.tax.index[v]] >= lam]

    def cae_pair(self, p: str, t: str) -> bool:
        bp, bt = self.branch[p], self.branch[t]
        return bool(bp) and bool(bt) and not (bp & bt)

    def cae_sets(self, pred: list[str], true: list[str]) -> bool:
        """Some most-specific predicted node is cross-branch against the true set (the rule of ``item_cae``)."""
        tc = set().union(*(self.closure[t] for t in true))
        true_ms = [v for v in tc if not any(c in tc for c in self.tax.children(v))] or [self.tax.root]
        pc = set().union(*(self.closure[p] for p in pred)) if pred else set()
        pred_ms = [v for v in pc if not any(c in pc for c in self.tax.children(v))]
        deep_truth = [t for t in true_ms if self.tax.depth(t) >= self.k]
        shallow_truth = [t for t in true_ms if self.tax.depth(t) < self.k]
        if not deep_truth:
            return False
        tb = set().union(*(self.branch[t] for t in deep_truth))
        for p in pred_ms:
            covered = any(t == self.tax.root or t in self.closure[p] for t in shallow_truth)
            if self.branch[p] and not (self.branch[p] & tb) and not covered:
                return True
        return False

    def loss(self, rule: str, s: np.ndarray, truth: list[str], single_truth: bool, lam: float) -> tuple[bool, bool]:
        """(CAE, covered) of one sample at λ."""
        if rule == "climb":
            p = self.climb(s, lam)
            cae = self.cae_pair(p, truth[0]) if single_truth else self.cae_sets([p], truth)
            return cae, p != self.tax.root
        pred = self.thresholded(s, lam)
        return self.cae_sets(pred, truth), bool(pred)


def _problem(tax: Taxonomy, kind: str, truth: str, rng: np.random.Generator, n: int = 40, k: int = 1):
    """Scores on a 1/40 lattice (ties on purpose) and single- or multi-label truth (mostly at depth >= k)."""
    if kind == "uniform":
        s = rng.integers(0, 41, size=(n, len(tax))) / 40
    else:
        from medlens.hierarchy import node_scores_from_leaves

        logits = 2.0 * rng.normal(size=(n, len(tax.leaves)))
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        s = np.round(node_scores_from_leaves(p, taxonomy=tax) * 40) / 40
    s[:, 0] = 1.0
    nodes = list(tax.nodes)
    deep = [v for v in nodes if tax.depth(v) >= k]

    def draw(size: int) -> list[str]:
        pool = deep if rng.random() < 0.8 else nodes
        return [str(v) for v in rng.choice(pool, size=min(size, len(pool)), replace=False)]

    if truth == "single":
        labels = [draw(1) for _ in range(n)]
        y = encode_labels([lab[0] for lab in labels], tax)
    else:
        labels = [draw(int(rng.integers(1, 4))) for _ in range(n)]
        labels[0] = [nodes[1], nodes[-1]]
        labels[1] = [tax.root]
        y = encode_labels(labels, tax)
        assert y.single is None
    return s, labels, y


LAMBDAS = np.arange(81) / 80  # every lattice score and every midpoint between two of them


def _brute_matrix(tax, rule, k, s, labels, y):
    b = _Brute(tax, k)
    single = y.single is not None
    out = np.array([[b.loss(rule, s[i], labels[i], single, lam) for lam in LAMBDAS] for i in range(len(s))])
    return out[..., 0], out[..., 1]  # (n, n_lambda) CAE and coverage indicators


@pytest.mark.parametrize("kind", ["uniform", "softmax"])
@pytest.mark.parametrize("truth", ["single", "multi"])
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("rule", ["climb", "multilabel"])
@pytest.mark.parametrize("tax_name", ["random_tree", "chexpert_pham", "cihmlc"])
def test_loss_curve_equals_brute_force(tax_name, rule, k, truth, kind):
    rng = np.random.default_rng([k, len(tax_name), len(rule), len(truth), len(kind)])
    tax = _random_tree(rng) if tax_name == "random_tree" else load_taxonomy(tax_name)
    s, labels, y = _problem(tax, kind, truth, rng, k=k)
    curve = loss_curve(s, y, rule=rule, branch_depth=k)
    cae, cov = _brute_matrix(tax, rule, k, s, labels, y)
    np.testing.assert_array_equal(LAMBDAS[None, :] <= curve.cae_critical[:, None], cae)
    np.testing.assert_array_equal(LAMBDAS[None, :] <= curve.cover_critical[:, None], cov)
    np.testing.assert_allclose(curve.risk(LAMBDAS), cae.mean(axis=0))
    np.testing.assert_allclose(curve.coverage(LAMBDAS), cov.mean(axis=0))
    assert cae.any()
    assert not cae.all()
    b = _Brute(tax, k)
    for lam in LAMBDAS[::4]:  # the predictions themselves, not only their losses
        if rule == "climb":
            got = [tax.nodes[j] for j in climb_predict(s, tax, lam)]
            assert got == [b.climb(row, lam) for row in s]
        else:
            got = [[tax.nodes[j] for j in np.flatnonzero(row)] for row in multilabel_predict(s, lam)]
            assert got == [b.thresholded(row, lam) for row in s]


@pytest.mark.parametrize("seed", range(3))
def test_loss_curve_in_dag_with_cross_branch_parents(seed):
    """Climbing in a DAG whose node has parents in two branches can leave a branch and re-enter another, so the
    CAE indicator need not be monotone in λ; the curve must then be its tightest monotone upper envelope
    (conservative, which keeps CRC/LTT valid). The same holds for the multilabel rule, where dropping a node can
    expose a parent in another branch."""
    rng = np.random.default_rng(100 + seed)
    tax = _random_dag(rng)
    assert not tax.is_tree
    for k in (1, 2):
        for truth in ("single", "multi"):
            s, labels, y = _problem(tax, "uniform", truth, rng, k=k)
            cae, _ = _brute_matrix(tax, "multilabel", k, s, labels, y)
            curve = loss_curve(s, y, rule="multilabel", branch_depth=k)
            envelope = np.maximum.accumulate(cae[:, ::-1], axis=1)[:, ::-1]  # 1 if CAE at any λ' >= λ
            np.testing.assert_array_equal(LAMBDAS[None, :] <= curve.cae_critical[:, None], envelope)
            cae, cov = _brute_matrix(tax, "climb", k, s, labels, y)
            curve = loss_curve(s, y, rule="climb", branch_depth=k)
            envelope = np.maximum.accumulate(cae[:, ::-1], axis=1)[:, ::-1]  # 1 if CAE at any λ' >= λ
            np.testing.assert_array_equal(LAMBDAS[None, :] <= curve.cae_critical[:, None], envelope)
            np.testing.assert_array_equal(LAMBDAS[None, :] <= curve.cover_critical[:, None], cov)


def test_loss_curve_with_crossing_parents_by_hand():
    # x has parents A and B (two depth-1 branches); the truth b1 is in B.
    tax = Taxonomy({"root": ["A", "B"], "A": ["x", "a1"], "B": ["x", "b1"]})
    y = encode_labels(["b1"], tax)
    # path x (0.5, shares branch B: not a CAE) -> A (0.6, CAE) -> root
    s = _scores(tax, [{"A": 0.6, "B": 0.3, "x": 0.5, "a1": 0.2, "b1": 0.1}])
    assert loss_curve(s, y, rule="climb", branch_depth=1).cae_critical.tolist() == [0.6]  # CAE for λ in (0.5, 0.6]
    # same, but A scores below x: A is never the accepted node, so no λ gives a CAE
    s = _scores(tax, [{"A": 0.45, "B": 0.3, "x": 0.5, "a1": 0.2, "b1": 0.1}])
    assert [tax.nodes[i] for i in climb_predict(s, tax, 0.45)] == ["x"]
    assert [tax.nodes[i] for i in climb_predict(s, tax, 0.51)] == ["root"]
    assert loss_curve(s, y, rule="climb", branch_depth=1).risk(np.linspace(0, 1, 101)).max() == 0.0


def test_loss_curve_risk_is_nonincreasing(synthetic):
    tax = load_taxonomy("chexpert_pham")
    s, y = synthetic(tax, 500, np.random.default_rng(0))
    grid = np.linspace(0, 1, 201)
    for rule in ("climb", "multilabel"):
        c = loss_curve(s, encode_labels(y, tax), rule=rule, branch_depth=1)
        assert np.all(np.diff(c.risk(grid)) <= 0)
        assert np.all(np.diff(c.coverage(grid)) <= 0)


# ---------------------------------------------------------------------------------------- methods by hand
CRITICAL = (0.155, 0.355, 0.555, 0.755)  # off the 0.01 grid, so float rounding of the grid cannot matter


def _hand_case(toy_tree):
    """19 calibration samples: 4 CAEs whose critical λ are 0.155, 0.355, 0.555, 0.755 and 15 correct ones."""
    rows, truth = [], []
    for m in CRITICAL:  # truth Effusion, the model climbs Pneumonia -> Lung (cross-branch)
        rows.append({"Pneumonia": 0.1, "Edema": 0.05, "Lung": m})
        truth.append("Effusion")
    for _ in range(15):
        rows.append({"Pneumonia": 0.9, "Edema": 0.05, "Lung": 0.95, "Effusion": 0.05, "Pleura": 0.05})
        truth.append("Pneumonia")
    return _scores(toy_tree, rows), truth


def test_hand_case_critical_values(toy_tree):
    s, truth = _hand_case(toy_tree)
    c = loss_curve(s, encode_labels(truth, toy_tree), rule="climb", branch_depth=1)
    assert sorted(c.cae_critical[np.isfinite(c.cae_critical)].tolist()) == list(CRITICAL)
    assert np.isneginf(c.cae_critical).sum() == 15


def _reference_choice(method, risk, grid, n, alpha, delta):
    """The formulas of hierarchical-eval.md §5, written as plain loops."""
    if method == "empirical":
        return next(lam for lam, r in zip(grid, risk, strict=True) if r <= alpha)
    if method == "crc":
        return next(lam for lam, r in zip(grid, risk, strict=True) if n / (n + 1) * r + 1 / (n + 1) <= alpha)
    chosen = None
    for lam, r in zip(grid[::-1], risk[::-1], strict=True):  # strictest first; stop at the first non-rejection
        if binom.cdf(round(r * n), n, alpha) > delta:
            break
        chosen = lam
    return chosen


@pytest.mark.parametrize(
    ("method", "alpha", "expected"),
    [
        ("empirical", 0.12, 0.36),  # <= 2 CAEs of 19 (2/19 = 0.105)
        ("crc", 0.12, 0.56),  # (count + 1)/20 <= 0.12 -> <= 1 CAE
        ("crc", 0.15, 0.36),  # (count + 1)/20 <= 0.15 -> <= 2 CAEs
        ("ltt", 0.3, 0.36),  # P(Bin(19, .3) <= 2) = 0.046 <= 0.1 < P(Bin(19, .3) <= 3) = 0.133
    ],
)
def test_methods_choose_the_formula_lambda(toy_tree, method, alpha, expected):
    s, truth = _hand_case(toy_tree)
    th = RiskConstrainedThresholder(toy_tree, alpha=alpha, delta=0.1, method=method, grid=101).fit(s, truth)
    grid = np.linspace(0, 1, 101)
    risk = loss_curve(s, encode_labels(truth, toy_tree), rule="climb", branch_depth=1).risk(grid)
    assert th.lambda_ == pytest.approx(expected)
    assert th.lambda_ == pytest.approx(_reference_choice(method, risk, grid, 19, alpha, 0.1))
    rep = th.report()
    assert rep.feasible
    assert rep.lambda_ == th.lambda_
    assert rep.n_calibration == 19
    assert rep.calibration_risk == pytest.approx(np.sum(np.array(CRITICAL) >= th.lambda_) / 19)
    assert rep.coverage == pytest.approx(np.mean(np.array(th.predict(s)) != "root"))
    if method == "crc":
        assert rep.crc_bound <= alpha
    if method == "ltt":
        assert rep.p_value_at_lambda == pytest.approx(binom.cdf(2, 19, 0.3))
        assert rep.delta == 0.1
    else:
        assert rep.delta is None


def test_ltt_hoeffding_bentkus_is_more_conservative(toy_tree):
    s, truth = _hand_case(toy_tree)
    lam = {
        pv: RiskConstrainedThresholder(toy_tree, alpha=0.3, method="ltt", p_value=pv, grid=101).fit(s, truth).lambda_
        for pv in ("binomial", "hb")
    }
    assert lam["hb"] >= lam["binomial"]


def test_crc_infeasible_below_one_over_n_plus_one(toy_tree):
    s, truth = _hand_case(toy_tree)  # n = 19: 1/(n+1) = 0.05
    th = RiskConstrainedThresholder(toy_tree, alpha=0.04, method="crc").fit(s, truth)
    rep = th.report()
    assert not rep.feasible
    assert "1/(n+1)" in rep.message
    assert "n=19" in rep.message
    assert "at least 24 samples" in rep.message  # 1/0.04 - 1
    assert th.lambda_ == 1.0  # the strictest λ: abstain whenever in doubt


def test_ltt_infeasible_with_too_few_samples(toy_tree):
    s, truth = _hand_case(toy_tree)
    keep = [i for i, t in enumerate(truth) if t == "Pneumonia"]  # 15 samples, no CAE at all
    th = RiskConstrainedThresholder(toy_tree, alpha=0.05, delta=0.1, method="ltt").fit(
        s[keep], [truth[i] for i in keep]
    )
    rep = th.report()
    assert not rep.feasible
    assert "n >= 45" in rep.message
    assert "n=15" in rep.message
    assert rep.p_value_at_lambda == pytest.approx(0.95**15)


def test_infeasible_when_certain_cae_remains(toy_tree):
    s, truth = _hand_case(toy_tree)
    s[0, toy_tree.index["Lung"]] = 1.0  # a certain cross-branch prediction: CAE even at λ = 1
    for method in ("empirical", "crc"):
        rep = RiskConstrainedThresholder(toy_tree, alpha=0.05, method=method).fit(s, truth).report()
        assert not rep.feasible
        assert "no λ" in rep.message
        assert rep.calibration_risk == pytest.approx(1 / 19)


def test_report_curve_and_keys(toy_tree, synthetic):
    s, y = synthetic(toy_tree, 300, np.random.default_rng(1))
    rep = RiskConstrainedThresholder(toy_tree, alpha=0.1).fit(s, y).report().to_dict()
    assert list(rep)[:10] == [
        "lambda",
        "calibration_risk",
        "coverage",
        "feasible",
        "method",
        "alpha",
        "delta",
        "rule",
        "taxonomy",
        "branch_depth",
    ]
    assert rep["taxonomy"] == {"name": "toy_tree", "version": "1"}
    curve = rep["curve"]
    assert len(curve["lambda"]) == len(curve["risk"]) == len(curve["coverage"]) == 101
    assert curve["lambda"][0] == 0.0
    assert curve["lambda"][-1] == 1.0
    json.dumps(rep)  # plain JSON types


def test_fit_accepts_dataframe_with_node_columns(synthetic):
    tax = load_taxonomy("chexpert_pham")
    s, y = synthetic(tax, 200, np.random.default_rng(2))
    df = pd.DataFrame(s[:, 1:], columns=tax.nodes[1:])[list(reversed(tax.nodes[1:]))]  # any column order
    a = RiskConstrainedThresholder(tax, alpha=0.1).fit(s, y)
    b = RiskConstrainedThresholder(tax, alpha=0.1).fit(df, y)
    assert a.lambda_ == b.lambda_
    assert a.predict(s) == b.predict(df)


# ------------------------------------------------------------------------------------------------ persistence
@pytest.mark.parametrize("rule", ["climb", "multilabel"])
@pytest.mark.parametrize("tax_name", ["chexpert_pham", "cihmlc", "toy_tree"])
def test_to_dict_from_dict_load_round_trip(tmp_path, synthetic, toy_tree, rule, tax_name):
    tax = toy_tree if tax_name == "toy_tree" else load_taxonomy(tax_name)
    rng = np.random.default_rng(3)
    s, y = synthetic(tax, 300, rng)
    test, _ = synthetic(tax, 200, rng)
    th = RiskConstrainedThresholder(tax, rule=rule, alpha=0.1, method="ltt").fit(s, y)
    d = th.to_dict(aggregator="sum")
    assert d["kind"] == "medlens.thresholds"
    assert d["aggregator"] == "sum"
    assert d["lambda"] == th.lambda_
    assert d["feasible"] is th.report().feasible  # top level, for scripts (hier calibrate exits 3 on False)
    # built-ins are stored by name; a user taxonomy is stored inline
    assert d["taxonomy"] == (tax.to_dict() if tax_name == "toy_tree" else tax_name)
    text = json.dumps(d)
    back = RiskConstrainedThresholder.from_dict(json.loads(text))
    assert back.taxonomy == tax
    assert back.rule == rule
    assert back.branch_depth == 1
    assert back.method == "ltt"
    assert back.predict(test) == th.predict(test)
    path = tmp_path / "THRESHOLDS.json"
    path.write_text(text, encoding="utf-8")
    loaded = RiskConstrainedThresholder.load(path)
    assert loaded.predict(test) == th.predict(test)
    assert loaded.lambda_ == th.lambda_
    # a loaded thresholder can be saved again and reports what was fitted
    assert loaded.report().to_dict() == th.report().to_dict()
    assert loaded.to_dict(aggregator="sum") == d


def test_from_dict_without_report():
    th = RiskConstrainedThresholder.from_dict(
        {"taxonomy": "chexpert_pham", "rule": "climb", "lambda": 0.5, "branch_depth": 1}
    )
    assert th.lambda_ == 0.5
    with pytest.raises(InputError, match="report"):
        th.report()


def test_load_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        RiskConstrainedThresholder.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match=r"not valid JSON .*line 1"):
        RiskConstrainedThresholder.load(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hP": 0.5}), encoding="utf-8")
    with pytest.raises(InputError, match=r"not a medlens thresholds file: missing \['taxonomy', 'rule', 'lambda'"):
        RiskConstrainedThresholder.load(other)


# ------------------------------------------------------------------------------------------------- bad inputs
def test_wrong_score_shape(toy_tree):
    th = RiskConstrainedThresholder(toy_tree)
    with pytest.raises(InputError, match=r"shape \(n_samples, 6\).*got \(4, 3\)"):
        th.fit(np.full((4, 3), 0.5), ["Pneumonia"] * 4)
    with pytest.raises(InputError, match=r"got \(6,\)"):
        th.fit(np.full(6, 0.5), ["Pneumonia"])


def test_nan_and_out_of_range_scores(toy_tree):
    s = _scores(toy_tree, TOY_ROWS)
    s[1, toy_tree.index["Edema"]] = np.nan
    with pytest.raises(InputError, match=r"finite.*row 1, column 'Edema'"):
        RiskConstrainedThresholder(toy_tree).fit(s, ["Pneumonia", "Effusion"])
    s[1, toy_tree.index["Edema"]] = 1.2
    with pytest.raises(InputError, match=r"\[0, 1\].*1\.2 at row 1, column 'Edema'"):
        RiskConstrainedThresholder(toy_tree).fit(s, ["Pneumonia", "Effusion"])


def test_label_and_length_errors(toy_tree):
    s = _scores(toy_tree, TOY_ROWS)
    with pytest.raises(InputError, match="same number of samples; got 2 and 3"):
        RiskConstrainedThresholder(toy_tree).fit(s, ["Pneumonia", "Effusion", "Edema"])
    with pytest.raises(InputError, match="unknown label 'Pneumonai'.*Did you mean: 'Pneumonia'"):
        RiskConstrainedThresholder(toy_tree).fit(s, ["Pneumonai", "Effusion"])


def test_unfitted_predict(toy_tree):
    th = RiskConstrainedThresholder(toy_tree)
    for call in (lambda: th.predict(_scores(toy_tree, TOY_ROWS)), th.report, th.to_dict):
        with pytest.raises(InputError, match="not fitted yet"):
            call()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rule": "clim"}, r"'rule' parameter must be one of .*Did you mean: 'climb'"),
        ({"method": "conformal"}, r"'method' parameter must be one of"),
        ({"alpha": 0.0}, r"'alpha' parameter must be in the range \(0, 1\)"),
        ({"alpha": 1.5}, r"'alpha'"),
        ({"delta": 1.0}, r"'delta'"),
        ({"p_value": "bonferroni"}, r"'p_value'"),
        ({"branch_depth": 3}, r"branch depth k=3 is deeper than taxonomy 'toy_tree' \(height 2\)"),
        ({"branch_depth": 0}, r"integer >= 1"),
        ({"grid": 1}, r"at least 2 points"),
        ({"grid": [0.5, 0.5]}, r"at least 2 distinct"),
    ],
)
def test_bad_parameters(toy_tree, kwargs, match):
    with pytest.raises(InputError, match=match):
        RiskConstrainedThresholder(toy_tree, **kwargs)


def test_alpha_type_error(toy_tree):
    with pytest.raises(TypeError, match="'alpha' parameter must be a number"):
        RiskConstrainedThresholder(toy_tree, alpha="0.1")


def test_custom_grid_is_used(toy_tree):
    s, truth = _hand_case(toy_tree)
    th = RiskConstrainedThresholder(toy_tree, alpha=0.12, method="crc", grid=[0.9, 0.2, 0.6, 0.4]).fit(s, truth)
    assert th.lambda_ == 0.6  # sorted grid 0.2, 0.4, 0.6, 0.9: first with <= 1 CAE


def test_loss_curve_is_a_step_function():
    c = LossCurve(np.array([0.2, 0.5, -np.inf, 0.5]), np.array([1.0, 1.0, 0.3, -np.inf]))
    assert c.risk(np.array([0.0, 0.2, 0.21, 0.5, 0.51])).tolist() == [0.75, 0.75, 0.5, 0.5, 0.0]
    assert c.coverage(np.array([0.3, 0.31, 1.0])).tolist() == [0.75, 0.5, 0.5]


@pytest.mark.parametrize("rule", ["climb", "multilabel"])
@pytest.mark.parametrize("tax_name", ["chexpert_pham", "cihmlc"])
def test_report_agrees_with_hierarchy_metrics(synthetic, tax_name, rule):
    """Calibration risk and coverage from the loss curve equal CAE rate and coverage of the fitted predictions."""
    from medlens.hierarchy import evaluate

    tax = load_taxonomy(tax_name)
    s, y = synthetic(tax, 400, np.random.default_rng(5))
    th = RiskConstrainedThresholder(tax, rule=rule, alpha=0.08).fit(s, y)
    rep = th.report()
    ev = evaluate(list(y), th.predict(s), taxonomy=tax, branch_depth=1)
    assert rep.calibration_risk == pytest.approx(ev.cae_rate)
    assert rep.coverage == pytest.approx(ev.coverage)
    assert rep.hF == pytest.approx(ev.hF)


def test_dataframe_scores_are_validated():
    import pandas as pd

    tax = load_taxonomy("chexpert_pham")
    df = pd.DataFrame(np.full((3, len(tax) - 1), 0.5), columns=list(tax.nodes[1:]))
    df.iloc[1, 2] = np.nan
    th = RiskConstrainedThresholder(tax, alpha=0.1)
    with pytest.raises(InputError, match="must contain finite numbers"):
        th.fit(df, ["Edema", "Edema", "Edema"])
    df.iloc[1, 2] = 5.0
    with pytest.raises(InputError, match=r"must be probabilities in \[0, 1\]"):
        th.fit(df, ["Edema", "Edema", "Edema"])


def test_thresholds_refuse_a_taxonomy_with_another_structure(tmp_path):
    tax = Taxonomy({"root": ["A", "B"], "A": ["a1", "a2"], "B": ["b1"]}, name="mine", version="1")
    rng = np.random.default_rng(0)
    s = rng.random((200, len(tax)))
    y = rng.choice(["a1", "a2", "b1"], size=200).tolist()
    doc = RiskConstrainedThresholder(tax, alpha=0.2, method="empirical").fit(s, y).to_dict()
    assert doc["taxonomy_sha256"] == tax.content_hash()
    changed = dict(doc)
    changed["taxonomy"] = {**doc["taxonomy"], "children": {"root": ["A", "B"], "A": ["a1"], "B": ["b1", "a2"]}}
    with pytest.raises(InputError, match="has another structure"):
        RiskConstrainedThresholder.from_dict(changed)
    assert RiskConstrainedThresholder.from_dict(doc).lambda_ == doc["lambda"]
