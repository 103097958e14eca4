"""``medlens fair risk``: per-group (Mondrian) thresholds from files equal the library's, with the test comparison."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.cli.conftest import cli_runner
from tests.cli.test_cli import assert_user_error

from medlens.hierarchy import node_scores_from_leaves, write_label_table, write_score_table
from medlens.risk import GroupRiskThresholder
from medlens.taxonomy import Taxonomy

TREE = {"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]}
LEAVES = ["Pneumonia", "Edema", "Effusion"]


@pytest.fixture
def cli(capsys):
    return cli_runner(capsys)


def _split(rng, tax, n, prefix):
    p = rng.dirichlet(np.full(3, 0.5), size=n)
    hard = np.arange(n) % 3 == 0  # group "b": labels drawn away from the scores (an over-confident group)
    truth_p = np.where(hard[:, None], 0.5 * p + 0.5 * rng.dirichlet(np.ones(3), size=n), p)
    y = np.array(LEAVES)[[rng.choice(3, p=q / q.sum()) for q in truth_p]]
    s = node_scores_from_leaves(p, taxonomy=tax, leaves=LEAVES)
    ids = [f"{prefix}{i}" for i in range(n)]
    return ids, s, y, np.where(hard, "b", "a")


@pytest.fixture
def files(tmp_path):
    tax = Taxonomy(TREE, name="tiny")
    tax_file = tmp_path / "tax.json"
    tax_file.write_text(json.dumps({"name": "tiny", "root": "root", "children": TREE}))
    rng = np.random.default_rng(0)
    paths = {"tax": tax_file}
    groups = []
    for split, n in (("cal", 600), ("test", 600)):
        ids, s, y, g = _split(rng, tax, n, split)
        write_score_table(tmp_path / f"{split}_scores.csv", ids, list(tax.nodes[1:]), s[:, 1:])
        write_label_table(tmp_path / f"{split}_truth.csv", ids, list(y))
        paths[split] = (s, y, g)
        groups += list(zip(ids, g, strict=True))
    (tmp_path / "groups.csv").write_text("id,grp\n" + "".join(f"{i},{g}\n" for i, g in groups))
    return tmp_path, tax, paths


def test_fair_risk_equals_the_library_and_compares_on_test(cli, files):
    tmp, tax, paths = files
    out = tmp / "G.json"
    res = cli(
        "fair", "risk", "--taxonomy", paths["tax"], "--scores", tmp / "cal_scores.csv", "--truth",
        tmp / "cal_truth.csv", "--groups", tmp / "groups.csv", "--attribute", "grp", "--test-scores",
        tmp / "test_scores.csv", "--test-truth", tmp / "test_truth.csv", "--alpha", "0.1", "--out", out, "--json",
    )  # fmt: skip
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    s, y, g = paths["cal"]
    th = GroupRiskThresholder(tax, alpha=0.1, rule="climb").fit(s, y, g)
    for name, lam in th.lambdas_.items():
        assert doc["groups"][name]["lambda"] == pytest.approx(lam, abs=1e-6)
    assert doc["marginal"]["lambda"] == pytest.approx(th.marginal.lambda_, abs=1e-6)
    assert doc["groups"]["b"]["n_calibration"] == 200
    assert doc["feasible"] is True
    test = doc["test"]["groups"]
    assert set(test) == {"a", "b"}
    assert test["b"]["group"]["lambda"] == pytest.approx(th.lambdas_["b"], abs=1e-6)
    ts, ty, tg = paths["test"]
    ref = th.compare(ts, ty, tg).to_dict()
    assert test["b"]["marginal"]["cae_rate"] == pytest.approx(ref["groups"]["b"]["marginal"]["cae_rate"], abs=1e-5)
    saved = json.loads(out.read_text())
    assert saved["kind"] == "medlens.group_thresholds"
    assert set(saved["groups"]) == {"a", "b"}
    assert doc["provenance"]["command"] == "fair risk"


def test_fair_risk_infeasible_group_exits_3_unless_allowed(cli, files):
    tmp, _, paths = files
    args = ["fair", "risk", "--taxonomy", paths["tax"], "--scores", tmp / "cal_scores.csv", "--truth",
            tmp / "cal_truth.csv", "--groups", tmp / "groups.csv", "--attribute", "grp", "--alpha", "0.004"]  # 1/(400+1) <= alpha < 1/(200+1)  # fmt: skip
    res = cli(*args, "--out", tmp / "G.json")
    assert res.rc == 3, res.err
    assert "infeasible" in res.err
    assert "b" in res.err
    assert (tmp / "G.json").is_file()
    res = cli(*args, "--out", tmp / "G2.json", "--allow-infeasible", "--json")
    assert res.rc == 0, res.err
    assert json.loads(res.out)["infeasible_groups"] == ["b"]


def test_fair_risk_bad_groups(cli, files):
    tmp, _, paths = files
    base = ["fair", "risk", "--taxonomy", paths["tax"], "--scores", tmp / "cal_scores.csv", "--truth",
            tmp / "cal_truth.csv", "--out", tmp / "G.json"]  # fmt: skip
    res = cli(*base, "--groups", tmp / "groups.csv", "--attribute", "sex")
    assert_user_error(res, "attribute column 'sex' is not in")
    (tmp / "short.csv").write_text("id,grp\ncal0,a\n")
    res = cli(*base, "--groups", tmp / "short.csv", "--attribute", "grp")
    assert_user_error(res, "has no row for 599 id(s)")
    res = cli(*base, "--groups", tmp / "groups.csv", "--attribute", "grp", "--test-scores", tmp / "test_scores.csv")
    assert_user_error(res, "--test-truth")
