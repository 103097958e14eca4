"""The documented API path: loaders that align ids, one scores-CSV layout, the same ``rule`` default in the API
and the CLI, the leaf-scores hint only for leaf columns, and detection metrics on dicts keyed by image id."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.cli.conftest import TAXONOMY
from tests.cli.test_cli import assert_user_error

from medlens._validation import InputError
from medlens.hierarchy import (
    node_scores_from_leaves,
    read_label_table,
    read_score_table,
    read_scores_with_truth,
    write_node_scores,
)
from medlens.risk import RiskConstrainedThresholder
from medlens.taxonomy import Taxonomy, load_taxonomy


@pytest.fixture
def tax():
    return load_taxonomy(TAXONOMY)


def test_read_scores_with_truth_aligns_rows_to_the_truth(inputs, tax, tmp_path):
    lines = inputs.node_scores.read_text().splitlines()
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    st, truth = read_scores_with_truth(shuffled, inputs.truth, tax)
    ref = read_score_table(inputs.node_scores, tax)
    assert st.ids == truth.ids == inputs.ids
    np.testing.assert_array_equal(st.scores, ref.scores)  # the same rows as the file in truth order
    short = tmp_path / "short.csv"
    short.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputError, match=r"ids differ between .*truth.csv and .*short.csv: 1 only in"):
        read_scores_with_truth(short, inputs.truth, tax)


def test_one_scores_layout_every_node_but_the_root(tax, tmp_path):
    rng = np.random.default_rng(0)
    leaves = rng.dirichlet(np.ones(len(tax.leaves)), size=4)
    s = node_scores_from_leaves(leaves, taxonomy=tax)
    path = write_node_scores(tmp_path / "s.csv", ["a", "b", "c", "d"], tax, s)
    assert path.read_text().splitlines()[0].split(",") == ["id", *tax.nodes[1:]]
    back = read_score_table(path, tax)
    assert back.columns == "nodes"
    np.testing.assert_allclose(back.scores, s, atol=1e-6)
    with pytest.raises(InputError, match="root column first"):
        write_node_scores(tmp_path / "x.csv", ["a"], tax, s[:1, 1:])


def test_hier_score_zeroshot_and_the_demo_share_the_layout():
    """Every writer of scores goes through write_node_scores (one layout, decided once)."""
    from pathlib import Path

    import medlens

    src = Path(medlens.__file__).parent
    writers = [p.relative_to(src).as_posix() for p in src.rglob("*.py") if "write_score_table(" in p.read_text()]
    assert writers == ["hierarchy/_tables.py"], writers
    users = {p.relative_to(src).as_posix() for p in src.rglob("*.py") if "write_node_scores(" in p.read_text()}
    assert {
        "hierarchy/_zeroshot_run.py",
        "hierarchy/finetune/_run.py",
        "stitching/_run.py",
        "benchmarks/cxr_reports/_run.py",
        "benchmarks/cxr_reports/_finetune.py",
    } <= users


@pytest.mark.parametrize(("truth_attr", "rule"), [("truth", "climb"), ("truth_multi", "multilabel")])
def test_rule_default_is_the_same_in_the_api_and_the_cli(cli, inputs, tax, tmp_path, truth_attr, rule):
    truth = getattr(inputs, truth_attr)
    st, t = read_scores_with_truth(inputs.leaf_scores, truth, tax, from_leaves="sum")
    th = RiskConstrainedThresholder(tax, alpha=0.1).fit(st.scores, t.labels)
    assert th.rule == rule
    out = tmp_path / "th.json"
    res = cli("hier", "calibrate", "--taxonomy", TAXONOMY, "--scores", inputs.leaf_scores, "--from-leaves", "sum",
              "--truth", truth, "--alpha", "0.1", "--out", out, "--json")  # fmt: skip
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["rule"] == rule
    assert doc["lambda"] == th.lambda_
    explicit = RiskConstrainedThresholder(tax, rule=rule, alpha=0.1).fit(st.scores, t.labels)
    assert explicit.lambda_ == th.lambda_


def test_leaf_hint_only_when_the_columns_are_leaves(tax, inputs):
    import pandas as pd

    th = RiskConstrainedThresholder(tax, alpha=0.1)
    leaf = np.full((3, len(tax.leaves)), 1 / len(tax.leaves))
    with pytest.raises(InputError, match="one per leaf: derive node scores with medlens.hierarchy.node_scores_from"):
        th.fit(leaf, [tax.leaves[0]] * 3)
    with pytest.raises(InputError) as exc:
        th.fit(np.full((3, 4), 0.5), [tax.leaves[0]] * 3)
    assert "leaves" not in str(exc.value)
    with pytest.raises(InputError, match="These columns are its leaves"):
        th.fit(pd.DataFrame(leaf, columns=list(tax.leaves)), [tax.leaves[0]] * 3)
    some = list(tax.nodes[1:4])
    with pytest.raises(InputError) as exc:
        th.fit(pd.DataFrame(np.full((3, 3), 0.5), columns=some), [tax.leaves[0]] * 3)
    assert "leaves" not in str(exc.value)
    assert "from-leaves" not in str(exc.value)


def test_loaders_are_documented_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name in ("read_label_table", "read_score_table", "read_scores_with_truth", "align_ids", "write_node_scores"):
        assert name in readme, name


GOLD = {"a": [[10, 10, 50, 50]], "b": [[0, 0, 20, 20], [30, 30, 60, 60]], "c": []}
PRED = {"c": [[0, 0, 5, 5]], "b": [[30, 30, 60, 58], [100, 100, 120, 120]], "a": [[12, 10, 50, 50]]}
SCORES = {"b": [0.8, 0.7], "a": [0.9], "c": [0.5]}


def test_detection_metrics_take_dicts_keyed_by_image_id():
    from medlens.metrics import accuracy_at_iou, box_precision_recall, detection_report, mean_average_precision

    ids = list(GOLD)
    as_list = (list(GOLD.values()), [PRED[k] for k in ids], [SCORES[k] for k in ids])
    by_dict = detection_report(GOLD, PRED, scores=SCORES)
    assert by_dict.to_dict() == detection_report(*as_list[:2], scores=as_list[2]).to_dict()
    assert by_dict.map50 == pytest.approx(0.7727272727272727)  # the docstring's hand example
    assert mean_average_precision(GOLD, PRED, scores=SCORES) == mean_average_precision(*as_list[:2], scores=as_list[2])
    assert accuracy_at_iou(GOLD, PRED, scores=SCORES) == 1.0
    assert box_precision_recall(GOLD, PRED, scores=SCORES) == pytest.approx((2 / 3, 2 / 3))
    # an image without predictions may be left out of pred: it has none
    partial = {k: v for k, v in PRED.items() if k != "a"}
    r = detection_report(GOLD, partial, scores={k: v for k, v in SCORES.items() if k != "a"})
    assert r.to_dict() == detection_report(list(GOLD.values()), [[], PRED["b"], PRED["c"]],
                                           scores=[None, SCORES["b"], SCORES["c"]]).to_dict()  # fmt: skip
    w = {"a": 1.0, "b": 2.0, "c": 1.0}
    assert detection_report(GOLD, PRED, scores=SCORES, sample_weight=w).map50 == pytest.approx(
        detection_report(*as_list[:2], scores=as_list[2], sample_weight=[1.0, 2.0, 1.0]).map50
    )


def test_detection_metrics_say_which_shape_they_need():
    from medlens.metrics import detection_report, inter_rater_report

    with pytest.raises(InputError, match="gold is a list .* but pred is a dict keyed by image id"):
        detection_report(list(GOLD.values()), PRED)
    with pytest.raises(InputError, match="gold is a dict keyed by image id but pred is a list"):
        detection_report(GOLD, list(PRED.values()))
    with pytest.raises(InputError, match=r"pred has image id\(s\) \['z'\] that gold does not list"):
        detection_report(GOLD, {**PRED, "z": [[0, 0, 1, 1]]})
    with pytest.raises(InputError, match="drop image_ids"):
        detection_report(GOLD, PRED, image_ids=["a", "b", "c"])
    with pytest.raises(InputError, match=r"scores of image 'b' must have one value per predicted box"):
        detection_report(GOLD, PRED, scores={"b": [0.8]})  # the image id labels the message
    assert inter_rater_report(GOLD, GOLD).metrics["map50"] == 1.0


def test_calibrate_with_shuffled_scores_and_a_toy_taxonomy(cli, tmp_path):
    """The CLI aligns ids as the loaders do: a scores file in another row order gives the same thresholds."""
    tax = Taxonomy({"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]}, name="toy")
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(tax.to_dict()))
    rng = np.random.default_rng(1)
    leaves = rng.dirichlet(np.ones(3), size=60)
    ids = [f"s{i}" for i in range(60)]
    s = node_scores_from_leaves(leaves, taxonomy=tax, leaves=["Pneumonia", "Edema", "Effusion"])
    write_node_scores(tmp_path / "s.csv", ids, tax, s)
    write_node_scores(tmp_path / "r.csv", ids[::-1], tax, s[::-1])
    (tmp_path / "t.csv").write_text("id,label\n" + "".join(
        f"{i},{['Pneumonia', 'Edema', 'Effusion'][int(x.argmax())]}\n" for i, x in zip(ids, leaves, strict=True)))  # fmt: skip
    docs = []
    for name in ("s.csv", "r.csv"):
        res = cli("hier", "calibrate", "--taxonomy", path, "--scores", tmp_path / name, "--truth", tmp_path / "t.csv",
                  "--alpha", "0.2", "--out", tmp_path / f"{name}.json", "--json")  # fmt: skip
        assert res.rc == 0, res.err
        docs.append(json.loads(res.out))
    assert docs[0]["lambda"] == docs[1]["lambda"]
    assert read_label_table(tmp_path / "t.csv", tax).ids == ids
    (tmp_path / "bad.csv").write_text("id,label\nnobody,Edema\n")
    assert_user_error(
        cli(
            "hier",
            "calibrate",
            "--taxonomy",
            path,
            "--scores",
            tmp_path / "s.csv",
            "--truth",
            tmp_path / "bad.csv",
            "--out",
            tmp_path / "x.json",
        ),  # fmt: skip
        "ids differ between",
    )
