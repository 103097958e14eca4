"""Truth/prediction and score tables (ARCHITECTURE.md "Tables"): formats, and one clear error per bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.hierarchy import align_ids, node_scores_from_leaves, read_label_table, read_score_table, write_label_table
from medlens.taxonomy import Taxonomy, load_taxonomy


@pytest.fixture(scope="module")
def tax() -> Taxonomy:
    return load_taxonomy("chexpert_pham")


def _csv(tmp_path, name: str, text: str):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _exact(exc_info, expected: str) -> None:
    assert str(exc_info.value) == expected


# ------------------------------------------------------------------------------------------------ label tables
def test_single_label_table(tmp_path, tax):
    p = _csv(tmp_path, "t.csv", "id,label\na,Pneumonia\nb, Edema \nc,root\nd,Effusion\n")
    t = read_label_table(p, tax)
    assert t.ids == ["a", "b", "c", "d"]
    assert t.format == "label"
    assert not t.multilabel
    assert [tax.nodes[i] for i in t.labels.single] == ["Pneumonia", "Edema", "root", "Pleural Effusion"]  # synonym
    assert t.labels.abstained.tolist() == [False, False, True, False]  # the root means "abstained"
    assert t.path == str(p)


def test_multi_label_table(tmp_path, tax):
    p = _csv(tmp_path, "t.csv", 'id,label\na,Edema;Pneumothorax\nb,"Cardiomegaly ; Fracture"\nc,No Finding\n')
    t = read_label_table(p, tax)
    assert t.multilabel
    assert [sorted(s) for s in t.labels.label_sets()] == [
        ["Edema", "Pneumothorax"],
        ["Cardiomegaly", "Fracture"],
        ["No Finding"],
    ]
    closure = t.labels.closure
    assert closure[0, tax.index["Lung Opacity"]]
    assert closure[1, tax.index["Enlarged Cardiomediastinum"]]


def test_indicator_table_closed_upward(tmp_path, tax):
    p = _csv(
        tmp_path,
        "t.csv",
        "id,Pneumonia,Consolidation,Lung Opacity,Pneumothorax\na,1,0,0,0\nb,0,0,0,0\nc,1,0,0,1\nd,0,0,1.0,0\n",
    )
    t = read_label_table(p, tax, what="prediction")
    assert t.format == "indicator"
    cl = t.labels.closure.toarray()
    cols = [tax.index[n] for n in ("Lung Opacity", "Consolidation", "Pneumonia", "Pneumothorax")]
    # a positive child implies its ancestors; an all-zero row is an abstention
    assert cl[:, cols].astype(int).tolist() == [[1, 1, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    assert t.labels.abstained.tolist() == [False, True, False, False]
    assert [sorted(s) for s in t.labels.label_sets()] == [
        ["Pneumonia"],
        ["root"],
        ["Pneumonia", "Pneumothorax"],
        ["Lung Opacity"],
    ]


def test_write_label_table_round_trip(tmp_path, tax):
    p = write_label_table(tmp_path / "p.csv", ["a", "b", "c"], ["Edema", ["Edema", "Pneumothorax"], "root"])
    assert p.read_text(encoding="utf-8") == "id,label\na,Edema\nb,Edema;Pneumothorax\nc,root\n"
    t = read_label_table(p, tax)
    assert [sorted(s) for s in t.labels.label_sets()] == [["Edema"], ["Edema", "Pneumothorax"], ["root"]]


def test_unknown_label_did_you_mean(tmp_path, tax):
    p = _csv(tmp_path, "t.csv", "id,label\na,Edema\nb,Pneumonai\n")
    with pytest.raises(InputError) as e:
        read_label_table(p, tax)
    msg = str(e.value)
    assert msg.startswith(f"truth file {p}: row 3 (id 'b'): label 'Pneumonai' matches no node or synonym of taxonomy ")
    assert re.search(r"Did you mean: .*'pneumonia'", msg, flags=re.IGNORECASE)
    assert msg.endswith("Add it to the taxonomy's 'labels' or map it explicitly.")


def test_unknown_label_in_a_label_set(tmp_path, tax):
    p = _csv(tmp_path, "t.csv", "id,label\na,Edema;Pneumothroax\n")
    with pytest.raises(InputError, match=r"row 2 \(id 'a'\): label 'Pneumothroax' matches no node"):
        read_label_table(p, tax)


def test_empty_label_cell(tmp_path, tax):
    p = _csv(tmp_path, "t.csv", "id,label\na,Edema\nb,\n")
    with pytest.raises(InputError) as e:
        read_label_table(p, tax)
    _exact(
        e,
        f"truth file {p}: row 3 (id 'b') has an empty 'label'; write a node id, several joined by ';', "
        "or 'root' for abstained.",
    )


def test_empty_file(tmp_path, tax):
    p = _csv(tmp_path, "t.csv", "")
    with pytest.raises(InputError) as e:
        read_label_table(p, tax)
    _exact(e, f"truth file {p} is empty; expected a header with 'id' and label or score columns.")
    p = _csv(tmp_path, "blank.csv", "\n\n")
    with pytest.raises(InputError, match="is empty"):
        read_label_table(p, tax)


def test_header_only_file(tmp_path, tax):
    p = _csv(tmp_path, "t.csv", "id,label\n")
    with pytest.raises(InputError) as e:
        read_label_table(p, tax, what="prediction")
    _exact(e, f"prediction file {p} has a header but no rows.")


def test_missing_file(tmp_path, tax):
    with pytest.raises(InputError) as e:
        read_label_table(tmp_path / "nope.csv", tax)
    _exact(e, f"truth file {tmp_path / 'nope.csv'} does not exist.")


def test_missing_id_column(tmp_path, tax):
    p = _csv(tmp_path, "t.csv", "name,label\na,Edema\n")
    with pytest.raises(InputError) as e:
        read_label_table(p, tax)
    _exact(e, f"truth file {p} needs an 'id' column; found columns ['name', 'label'].")


def test_only_id_column(tmp_path, tax):
    p = _csv(tmp_path, "t.csv", "id\na\n")
    with pytest.raises(InputError) as e:
        read_label_table(p, tax)
    _exact(e, f"truth file {p} has only an 'id' column; add 'label' or one 0/1 column per node id.")


def test_duplicate_id(tmp_path, tax):
    p = _csv(tmp_path, "t.csv", "id,label\na,Edema\nb,Edema\na,Fracture\n")
    with pytest.raises(InputError) as e:
        read_label_table(p, tax)
    _exact(e, f"truth file {p}: id 'a' appears more than once; ids must be unique.")


def test_empty_id(tmp_path, tax):
    p = _csv(tmp_path, "t.csv", "id,label\na,Edema\n ,Edema\n")
    with pytest.raises(InputError) as e:
        read_label_table(p, tax)
    _exact(e, f"truth file {p}: row 3 has an empty 'id'.")


def test_duplicate_column(tmp_path, tax):
    p = _csv(tmp_path, "t.csv", "id,Edema,Edema\na,1,0\n")
    with pytest.raises(InputError) as e:
        read_label_table(p, tax)
    _exact(e, f"truth file {p}: column 'Edema' appears more than once.")


def test_row_with_too_many_fields(tmp_path, tax):
    # pandas would take the first column as an index and shift every value one column to the left
    p = _csv(tmp_path, "t.csv", "id,label\na,Edema,Fracture\nb,Edema\n")
    with pytest.raises(InputError, match=r"a row has more fields than the header's 2 columns"):
        read_label_table(p, tax)
    p = _csv(tmp_path, "t2.csv", "id,label\na,Edema\nb,Edema,Fracture\n")
    with pytest.raises(InputError, match=r"is not a valid CSV \(.*Expected 2 fields in line 3, saw 3\)\.$"):
        read_label_table(p, tax)


def test_utf8_bom_header(tmp_path, tax):
    p = tmp_path / "t.csv"
    p.write_text("id,label\na,Edema\n", encoding="utf-8-sig")  # as saved by spreadsheet programs
    assert read_label_table(p, tax).ids == ["a"]


def test_unknown_column(tmp_path, tax):
    p = _csv(tmp_path, "t.csv", "id,Edema,Pneumothorx\na,1,0\n")
    with pytest.raises(InputError) as e:
        read_label_table(p, tax)
    _exact(
        e,
        f"truth file {p}: column 'Pneumothorx' is neither 'label' nor a node of taxonomy 'chexpert_pham'. "
        "Did you mean: 'Pneumothorax', 'Pneumonia'? Use 'id,label' or one 0/1 column per node id.",
    )


def test_non_binary_indicator(tmp_path, tax):
    p = _csv(tmp_path, "t.csv", "id,Edema,Pneumothorax\na,1,0\nb,0,0.5\n")
    with pytest.raises(InputError) as e:
        read_label_table(p, tax)
    _exact(e, f"truth file {p}: row 3 (id 'b'), column 'Pneumothorax' holds '0.5'; node columns must be 0 or 1.")
    p = _csv(tmp_path, "t2.csv", "id,Edema\na,\n")
    with pytest.raises(InputError, match=r"row 2 \(id 'a'\), column 'Edema' holds ''; node columns must be 0 or 1"):
        read_label_table(p, tax)


# ------------------------------------------------------------------------------------------------ score tables
def _leaf_probs(tax: Taxonomy, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(len(tax.leaves)), size=n)


def _score_csv(tmp_path, name, ids, columns, values) -> str:
    lines = [",".join(["id", *columns])]
    lines += [
        ",".join([i, *(repr(float(v)) if not isinstance(v, str) else v for v in row)])
        for i, row in zip(ids, values, strict=True)
    ]
    return _csv(tmp_path, name, "\n".join(lines) + "\n")


def test_node_score_table(tmp_path, tax):
    s = node_scores_from_leaves(_leaf_probs(tax, 4), taxonomy=tax)
    cols = list(tax.nodes[1:])[::-1]  # any column order; the root column is optional
    order = [tax.index[c] for c in cols]
    p = _score_csv(tmp_path, "s.csv", ["a", "b", "c", "d"], cols, s[:, order])
    st = read_score_table(p, tax)
    assert st.columns == "nodes"
    assert st.aggregator is None
    assert st.ids == ["a", "b", "c", "d"]
    np.testing.assert_allclose(st.scores, s)
    assert (st.scores[:, 0] == 1).all()


@pytest.mark.parametrize("agg", ["sum", "max", "noisy_or"])
def test_leaf_score_table(tmp_path, tax, agg):
    leaf = _leaf_probs(tax, 5)
    p = _score_csv(tmp_path, "s.csv", list("abcde"), list(tax.leaves), leaf)
    st = read_score_table(p, tax, from_leaves=agg)
    assert st.columns == "leaves"
    assert st.aggregator == agg
    np.testing.assert_allclose(st.scores, node_scores_from_leaves(leaf, taxonomy=tax, aggregator=agg))


def test_leaf_columns_need_from_leaves(tmp_path, tax):
    p = _score_csv(tmp_path, "s.csv", ["a"], list(tax.leaves), _leaf_probs(tax, 1))
    with pytest.raises(InputError) as e:
        read_score_table(p, tax)
    _exact(
        e,
        f"scores file {p} has one column per leaf; pass --from-leaves sum|max|noisy_or to derive scores for the "
        "internal nodes (sum for softmax-over-leaves models).",
    )
    with pytest.raises(InputError, match=r"--from-leaves must be one of \('sum', 'max', 'noisy_or'\); got 'mean'"):
        read_score_table(p, tax, from_leaves="mean")


def test_node_columns_reject_from_leaves(tmp_path, tax):
    s = node_scores_from_leaves(_leaf_probs(tax, 1), taxonomy=tax)
    p = _score_csv(tmp_path, "s.csv", ["a"], list(tax.nodes[1:]), s[:, 1:])
    with pytest.raises(InputError) as e:
        read_score_table(p, tax, from_leaves="sum")
    _exact(e, f"scores file {p} has one column per node, so --from-leaves sum does not apply; drop it.")


def test_wrong_score_column_set(tmp_path, tax):
    cols = [c for c in tax.nodes[1:] if c != "Pneumonia"]
    p = _score_csv(tmp_path, "s.csv", ["a"], cols, np.full((1, len(cols)), 0.5))
    with pytest.raises(InputError) as e:
        read_score_table(p, tax)
    _exact(
        e,
        f"scores file {p} must have one column per node (14) or one per leaf (11) of taxonomy 'chexpert_pham'; "
        "it has 13. Missing nodes: ['Pneumonia']; missing leaves: ['Pneumonia'].",
    )


def test_unknown_score_column(tmp_path, tax):
    cols = [*tax.leaves, "Pneumonia2"]
    p = _score_csv(tmp_path, "s.csv", ["a"], cols, np.full((1, len(cols)), 0.1))
    with pytest.raises(InputError) as e:
        read_score_table(p, tax, from_leaves="sum")
    _exact(
        e,
        f"scores file {p}: column 'Pneumonia2' is not a node of taxonomy 'chexpert_pham'. "
        "Did you mean: 'Pneumonia', 'Pneumothorax'? Score columns must be node ids or leaf ids.",
    )


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("nan", "must contain finite numbers; found nan at id 'b', column 'Edema' (1 non-finite value(s) in all)."),
        ("inf", "must contain finite numbers; found inf at id 'b', column 'Edema' (1 non-finite value(s) in all)."),
        ("", "must contain finite numbers; found nan at id 'b', column 'Edema' (1 non-finite value(s) in all)."),
        ("1.5", "must be probabilities in [0, 1]; found 1.5 at id 'b', column 'Edema'."),
        ("-0.01", "must be probabilities in [0, 1]; found -0.01 at id 'b', column 'Edema'."),
    ],
)
def test_bad_score_values_name_id_and_column(tmp_path, tax, bad, expected):
    leaf = _leaf_probs(tax, 3).astype(object)
    leaf[1, list(tax.leaves).index("Edema")] = bad
    p = _score_csv(tmp_path, "s.csv", ["a", "b", "c"], list(tax.leaves), leaf)
    with pytest.raises(InputError) as e:
        read_score_table(p, tax, from_leaves="sum")
    assert str(e.value).startswith(f"scores file {p} {expected}")


def test_non_numeric_score(tmp_path, tax):
    leaf = _leaf_probs(tax, 2).astype(object)
    leaf[1, 0] = "high"
    p = _score_csv(tmp_path, "s.csv", ["a", "b"], list(tax.leaves), leaf)
    with pytest.raises(InputError) as e:
        read_score_table(p, tax, from_leaves="sum")
    _exact(
        e,
        f"scores file {p}: row 3 (id 'b'), column '{tax.leaves[0]}' holds 'high'; scores must be numbers in [0, 1].",
    )


# ------------------------------------------------------------------------------------------------------ ids
def test_align_ids():
    assert align_ids(["a", "b", "c"], ["a", "b", "c"], ref_name="t", other_name="p").tolist() == [0, 1, 2]
    assert align_ids(["a", "b", "c"], ["c", "a", "b"], ref_name="t", other_name="p").tolist() == [1, 2, 0]


def test_align_ids_differ():
    with pytest.raises(InputError) as e:
        align_ids(["a", "b", "c"], ["a", "b", "x", "y"], ref_name="truth.csv", other_name="pred.csv")
    _exact(
        e,
        "ids differ between truth.csv and pred.csv: 1 only in truth.csv (e.g. ['c']), 2 only in pred.csv "
        "(e.g. ['x', 'y']). Both files must describe the same samples.",
    )
