"""The CLI contracts: entry points, JSON documents, the calibrate -> predict -> evaluate round trip, and
"bad input = exit 2 with exactly one line on stderr, never a traceback"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TAX = "chexpert_pham"
PROVENANCE_KEYS = {"medlens_version", "command", "config_hash", "seed", "input_hashes", "model_ids", "taxonomy"}


def assert_user_error(res, *fragments: str) -> str:
    """Exit code 2, nothing on stdout, exactly one stderr line starting with 'medlens: error:', no traceback."""
    assert res.rc == 2, (res.rc, res.err)
    lines = res.err.splitlines()
    assert len(lines) == 1, res.err
    line = lines[0]
    assert line.startswith("medlens: error: "), line
    assert "Traceback" not in res.err
    assert "internal error" not in line
    assert res.out == ""
    for f in fragments:
        assert f in line, (f, line)
    return line


def _write(inputs, name: str, text: str) -> Path:
    p = inputs.dir / name
    p.write_text(text, encoding="utf-8")
    return p


def _edit_score(inputs, src: Path, name: str, row_id: str, column: str, value: str) -> Path:
    lines = src.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    j = header.index(column)
    for k, line in enumerate(lines):
        cells = line.split(",")
        if cells[0] == row_id:
            cells[j] = value
            lines[k] = ",".join(cells)
    return _write(inputs, name, "\n".join(lines) + "\n")


def _drop_column(inputs, src: Path, name: str, column: str) -> Path:
    rows = [line.split(",") for line in src.read_text(encoding="utf-8").splitlines()]
    j = rows[0].index(column)
    return _write(inputs, name, "\n".join(",".join(r[:j] + r[j + 1 :]) for r in rows) + "\n")


def _rename_column(inputs, src: Path, name: str, old: str, new: str) -> Path:
    lines = src.read_text(encoding="utf-8").splitlines()
    lines[0] = ",".join(new if c == old else c for c in lines[0].split(","))
    return _write(inputs, name, "\n".join(lines) + "\n")


# ------------------------------------------------------------------------------------------------- entry points
def _env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}


def test_python_dash_m_help():
    res = subprocess.run(
        [sys.executable, "-m", "medlens", "--help"], capture_output=True, text=True, timeout=120, env=_env()
    )
    assert res.returncode == 0, res.stderr
    for word in ("hier", "taxonomy", "Usage"):
        assert word in res.stdout


def test_console_script():
    exe = Path(sys.executable).with_name("medlens")
    if not exe.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    res = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120, env=_env())
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("medlens ")
    # the exit code of main() reaches the shell
    res = subprocess.run([str(exe), "taxonomy", "show", "chexpert_phm"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.startswith("medlens: error: Unknown taxonomy 'chexpert_phm'. Did you mean: 'chexpert_pham'")
    assert "Traceback" not in res.stderr


def test_help_of_every_command_has_an_example(cli):
    for args in (("hier", "evaluate"), ("hier", "calibrate"), ("hier", "predict"), ("taxonomy", "validate")):
        res = cli(*args, "--help")
        assert res.rc == 0, res.err
        assert "Example" in res.out, args


# ------------------------------------------------------------------------------------------------ usage errors
@pytest.mark.parametrize(
    "args",
    [
        ("hier", "evaluate", "--bogus"),
        ("hier", "calibrate", "-t", TAX),  # missing required options
        ("hier", "calibrate", "--alpha", "abc", "--scores", "x", "--truth", "y", "--out", "z"),
        ("nosuchgroup",),
    ],
)
def test_usage_errors_exit_2(cli, args):
    res = cli(*args)
    assert res.rc == 2, (res.rc, res.err)
    assert "internal error" not in res.err
    assert "Traceback" not in res.err
    assert res.err.startswith("medlens: error: ")
    assert len(res.err.strip().splitlines()) == 1  # one line, like every other bad input
    assert res.out == ""


# ------------------------------------------------------------------------------------------------- hier evaluate
def test_evaluate_json(cli, inputs):
    res = cli("hier", "evaluate", "-t", TAX, "--truth", inputs.truth, "--pred", inputs.pred, "--json")
    assert res.rc == 0, res.err
    assert res.err == ""
    d = json.loads(res.out)
    for key in ("hP", "hR", "hF", "cae_rate", "cae_share", "coverage", "mistake_severity", "n", "branch_depth"):
        assert key in d, key
    assert set(d["error_breakdown"]) == {"exact", "too_coarse", "too_specific", "within_branch", "cross_branch"}
    assert sum(d["error_breakdown"].values()) == pytest.approx(1.0)
    assert d["n"] == 120
    assert d["coverage"] == pytest.approx(119 / 120)
    assert d["taxonomy"] == {"name": TAX, "version": "1.0"}
    assert d["branch_depth"] == 1
    assert d["schema_version"] == "1.0"
    assert "ci" not in d
    prov = d["provenance"]
    assert set(prov) >= PROVENANCE_KEYS
    assert prov["command"] == "hier evaluate"
    assert prov["seed"] == 0
    assert set(prov["input_hashes"]) == {"truth", "pred"}
    assert len(prov["input_hashes"]["truth"]["sha256"]) == 64
    assert prov["taxonomy"]["name"] == TAX
    assert prov["model_ids"] == {}
    assert len(prov["config_hash"]) == 64
    assert 0 <= d["cae_rate"] <= 1
    assert 0 <= d["hF"] <= 1


def test_evaluate_ci_and_out_file(cli, inputs, tmp_path):
    out = tmp_path / "metrics.json"
    args = ("hier", "evaluate", "-t", TAX, "--truth", inputs.truth, "--pred", inputs.pred)
    res = cli(*args, "--ci", "0.95", "--bootstrap", "200", "--seed", "3", "--out", out, "--json")
    assert res.rc == 0, res.err
    d = json.loads(res.out)
    assert json.loads(out.read_text(encoding="utf-8")) == d
    for key in ("hP", "hR", "hF", "cae_rate", "coverage"):
        lo, hi = d["ci"][key]
        assert lo <= d[key] + 1e-12
        assert d[key] <= hi + 1e-12
    assert d["ci_level"] == 0.95
    assert d["n_bootstrap"] == 200
    assert d["provenance"]["seed"] == 3
    # deterministic for a seed; the config hash records the options
    again = json.loads(cli(*args, "--ci", "0.95", "--bootstrap", "200", "--seed", "3", "--json").out)
    assert again["ci"] == d["ci"]
    plain = json.loads(cli(*args, "--json").out)
    assert plain["provenance"]["config_hash"] != d["provenance"]["config_hash"]


def test_evaluate_with_scores_and_multilabel(cli, inputs):
    res = cli(
        "hier", "evaluate", "-t", TAX, "--truth", inputs.truth_multi, "--pred", inputs.pred,
        "--scores", inputs.leaf_scores, "--from-leaves", "sum", "--json",
    )  # fmt: skip
    assert res.rc == 0, res.err
    d = json.loads(res.out)
    assert d["multilabel"] is True
    assert "consistency" in d
    assert set(d["provenance"]["input_hashes"]) == {"truth", "pred", "scores"}


def test_evaluate_human_output(cli, inputs):
    res = cli("hier", "evaluate", "-t", TAX, "--truth", inputs.truth, "--pred", inputs.pred)
    assert res.rc == 0, res.err
    for word in ("hF", "cae_rate", "chexpert_pham"):
        assert word in res.out


def test_evaluate_rows_in_another_order(cli, inputs):
    lines = inputs.pred.read_text(encoding="utf-8").splitlines()
    shuffled = _write(inputs, "pred_shuffled.csv", "\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    a = json.loads(cli("hier", "evaluate", "-t", TAX, "--truth", inputs.truth, "--pred", inputs.pred, "--json").out)
    b = json.loads(cli("hier", "evaluate", "-t", TAX, "--truth", inputs.truth, "--pred", shuffled, "--json").out)
    for key in ("hP", "hR", "hF", "cae_rate", "coverage", "error_breakdown"):
        assert a[key] == b[key]


BAD_LABEL_FILES = {
    "unknown_label": (
        "id,label\nimg000,Edema\nimg001,Pneumonai\n",
        ["label 'Pneumonai' matches no node", "Did you mean"],
    ),
    "empty_label": ("id,label\nimg000,Edema\nimg001,\n", ["row 3 (id 'img001') has an empty 'label'"]),
    "empty_file": ("", ["is empty"]),
    "header_only": ("id,label\n", ["has a header but no rows"]),
    "missing_id": ("name,label\nimg000,Edema\n", ["needs an 'id' column"]),
    "duplicate_id": ("id,label\nimg000,Edema\nimg000,Fracture\n", ["id 'img000' appears more than once"]),
    "unknown_column": ("id,Edema,Foo\nimg000,1,0\n", ["column 'Foo' is neither 'label' nor a node"]),
    "non_binary": ("id,Edema,Fracture\nimg000,1,2\n", ["column 'Fracture' holds '2'; node columns must be 0 or 1"]),
}


@pytest.mark.parametrize("case", sorted(BAD_LABEL_FILES))
def test_evaluate_bad_prediction_file(cli, inputs, case):
    text, fragments = BAD_LABEL_FILES[case]
    bad = _write(inputs, f"{case}.csv", text)
    res = cli("hier", "evaluate", "-t", TAX, "--truth", inputs.truth, "--pred", bad, "--json")
    assert_user_error(res, f"prediction file {bad}", *fragments)


@pytest.mark.parametrize("case", sorted(BAD_LABEL_FILES))
def test_evaluate_bad_truth_file(cli, inputs, case):
    text, fragments = BAD_LABEL_FILES[case]
    bad = _write(inputs, f"{case}.csv", text)
    res = cli("hier", "evaluate", "-t", TAX, "--truth", bad, "--pred", inputs.pred)
    assert_user_error(res, f"truth file {bad}", *fragments)


def test_evaluate_ids_differ(cli, inputs):
    lines = inputs.pred.read_text(encoding="utf-8").splitlines()
    other = _write(inputs, "other.csv", "\n".join([lines[0], *lines[2:], "imgXXX,Edema"]) + "\n")
    res = cli("hier", "evaluate", "-t", TAX, "--truth", inputs.truth, "--pred", other)
    assert_user_error(res, "ids differ between", "1 only in", "['img000']", "['imgXXX']")


def test_evaluate_missing_file(cli, inputs):
    res = cli("hier", "evaluate", "-t", TAX, "--truth", inputs.truth, "--pred", inputs.dir / "nope.csv")
    assert_user_error(res, "does not exist")


@pytest.mark.parametrize(
    ("opts", "fragment"),
    [
        (("--average", "mikro"), "Did you mean: 'micro'"),
        (("--branch-depth", "9"), "branch depth k=9 is deeper than taxonomy 'chexpert_pham'"),
        (("--ci", "1.5"), "'ci' parameter must be in the range (0, 1)"),
        (("-t", "chexpert_phm"), "Did you mean: 'chexpert_pham'"),
    ],
)
def test_evaluate_bad_options(cli, inputs, opts, fragment):
    res = cli("hier", "evaluate", "-t", TAX, "--truth", inputs.truth, "--pred", inputs.pred, *opts)
    assert_user_error(res, fragment)


# ---------------------------------------------------------------------------------------------- hier calibrate
def _calibrate(cli, inputs, out, *extra, scores=None, truth=None):
    return cli(
        "hier", "calibrate", "-t", TAX, "--scores", scores or inputs.leaf_scores, "--from-leaves", "sum",
        "--truth", truth or inputs.truth, "--out", out, *extra,
    )  # fmt: skip


def test_calibrate_json_and_thresholds_file(cli, inputs, tmp_path):
    out = tmp_path / "THRESHOLDS.json"
    res = _calibrate(cli, inputs, out, "--alpha", "0.1", "--json")
    assert res.rc == 0, res.err
    d = json.loads(res.out)
    for key in ("lambda", "calibration_risk", "coverage", "feasible", "method", "alpha", "delta", "rule"):
        assert key in d, key
    assert d["taxonomy"] == {"name": TAX, "version": "1.0"}
    assert d["branch_depth"] == 1
    assert d["method"] == "crc"
    assert d["alpha"] == 0.1
    assert d["rule"] == "climb"  # single-label truth
    assert d["feasible"] is True
    assert d["calibration_risk"] <= 0.1
    assert d["schema_version"] == "1.0"
    assert set(d["provenance"]) >= PROVENANCE_KEYS
    assert d["provenance"]["command"] == "hier calibrate"
    th = json.loads(out.read_text(encoding="utf-8"))
    assert th["kind"] == "medlens.thresholds"
    assert th["taxonomy"] == TAX
    assert th["lambda"] == d["lambda"]
    assert th["aggregator"] == "sum"
    assert th["rule"] == "climb"


@pytest.mark.parametrize("method", ["crc", "ltt", "empirical"])
def test_calibrate_predict_evaluate_round_trip(cli, inputs, tmp_path, method):
    th = tmp_path / "th.json"
    cal = _calibrate(cli, inputs, th, "--alpha", "0.15", "--method", method, "--json")
    assert cal.rc == 0, cal.err
    rep = json.loads(cal.out)
    pred = tmp_path / "PRED.csv"
    res = cli("hier", "predict", "--thresholds", th, "--scores", inputs.leaf_scores, "--out", pred, "--json")
    assert res.rc == 0, res.err
    summary = json.loads(res.out)
    assert summary["n"] == 120
    assert summary["lambda"] == rep["lambda"]
    assert summary["rule"] == "climb"
    assert summary["coverage"] == pytest.approx(rep["coverage"])
    assert summary["schema_version"] == "1.0"
    assert set(summary["provenance"]) >= PROVENANCE_KEYS
    assert pred.read_text(encoding="utf-8").startswith("id,label\n")
    ev = cli("hier", "evaluate", "-t", TAX, "--truth", inputs.truth, "--pred", pred, "--json")
    assert ev.rc == 0, ev.err
    d = json.loads(ev.out)
    # evaluated on the calibration data itself, the CAE rate is the calibration risk
    assert d["cae_rate"] == pytest.approx(rep["calibration_risk"])
    assert d["coverage"] == pytest.approx(rep["coverage"])


def test_calibrate_multilabel_default_rule_round_trip(cli, inputs, tmp_path):
    th = tmp_path / "th.json"
    res = cli(
        "hier", "calibrate", "-t", TAX, "--scores", inputs.node_scores, "--truth", inputs.truth_multi,
        "--out", th, "--alpha", "0.3", "--json",
    )  # fmt: skip
    assert res.rc == 0, res.err
    rep = json.loads(res.out)
    assert rep["rule"] == "multilabel"  # multi-label truth
    pred = tmp_path / "pred.csv"
    assert cli("hier", "predict", "--thresholds", th, "--scores", inputs.node_scores, "--out", pred).rc == 0
    d = json.loads(cli("hier", "evaluate", "-t", TAX, "--truth", inputs.truth_multi, "--pred", pred, "--json").out)
    assert d["cae_rate"] == pytest.approx(rep["calibration_risk"])


def test_calibrate_rule_override_and_human_output(cli, inputs, tmp_path):
    res = _calibrate(cli, inputs, tmp_path / "th.json", "--rule", "multilabel", "--alpha", "0.2")
    assert res.rc == 0, res.err
    assert "rule multilabel" in res.out
    assert json.loads((tmp_path / "th.json").read_text(encoding="utf-8"))["rule"] == "multilabel"


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        (("--alpha", "0.005"), "1/(n+1)"),  # 1/(120+1) > 0.005: CRC cannot certify it
        (("--alpha", "0.001", "--method", "ltt"), "ltt: no λ passes the test"),
    ],
)
def test_calibrate_infeasible_exits_3_unless_allowed(cli, inputs, tmp_path, extra, why):
    # ARCHITECTURE.md: exit 3 = a statistical target that cannot be met, the result still written and marked
    # feasible: false (it used to warn and exit 0, and a script went on with the all-abstain threshold).
    th = tmp_path / "th.json"
    res = _calibrate(cli, inputs, th, *extra, "--json")
    assert res.rc == 3, res.err
    rep = json.loads(res.out)  # the report is still printed
    assert rep["feasible"] is False
    lines = res.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("medlens: error: infeasible:")
    assert why in lines[0]
    assert f"{th} was written with feasible: false" in lines[0]
    assert "--allow-infeasible" in lines[0]
    written = json.loads(th.read_text(encoding="utf-8"))
    assert written["feasible"] is False
    assert written["report"]["feasible"] is False
    assert written["lambda"] == rep["lambda"] == 1.0  # the strictest threshold
    # the thresholds still load and predict (everything abstains or climbs to the root at the strictest λ)
    pred = tmp_path / "pred.csv"
    assert cli("hier", "predict", "--thresholds", th, "--scores", inputs.leaf_scores, "--out", pred).rc == 0
    # --allow-infeasible: the same file, a warning and exit 0, also in the human output
    allowed = _calibrate(cli, inputs, tmp_path / "th2.json", *extra, "--allow-infeasible")
    assert allowed.rc == 0, allowed.err
    assert allowed.err.startswith("medlens: warning: infeasible:")
    assert "feasible=False" in allowed.out
    assert json.loads((tmp_path / "th2.json").read_text(encoding="utf-8"))["feasible"] is False
    # a feasible target writes feasible: true and exits 0
    ok = _calibrate(cli, inputs, tmp_path / "th3.json", "--alpha", "0.1")
    assert ok.rc == 0, ok.err
    assert ok.err == ""
    assert json.loads((tmp_path / "th3.json").read_text(encoding="utf-8"))["feasible"] is True


BAD_SCORE_EDITS = {
    "nan": ("nan", "must contain finite numbers; found nan at id 'img001', column 'Edema'"),
    "inf": ("inf", "must contain finite numbers; found inf at id 'img001', column 'Edema'"),
    "above_one": ("1.5", "must be probabilities in [0, 1]; found 1.5 at id 'img001', column 'Edema'"),
    "negative": ("-0.2", "must be probabilities in [0, 1]; found -0.2 at id 'img001', column 'Edema'"),
    "text": ("high", "row 3 (id 'img001'), column 'Edema' holds 'high'"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCORE_EDITS))
def test_calibrate_bad_score_values(cli, inputs, tmp_path, case):
    value, fragment = BAD_SCORE_EDITS[case]
    bad = _edit_score(inputs, inputs.leaf_scores, f"{case}.csv", "img001", "Edema", value)
    assert_user_error(_calibrate(cli, inputs, tmp_path / "th.json", scores=bad), f"scores file {bad}", fragment)
    assert not (tmp_path / "th.json").exists()


def test_calibrate_leaf_columns_without_from_leaves(cli, inputs, tmp_path):
    res = cli(
        "hier", "calibrate", "-t", TAX, "--scores", inputs.leaf_scores, "--truth", inputs.truth,
        "--out", tmp_path / "th.json",
    )  # fmt: skip
    assert_user_error(res, "has one column per leaf; pass --from-leaves sum|max|noisy_or")


def test_calibrate_wrong_column_set(cli, inputs, tmp_path):
    bad = _drop_column(inputs, inputs.node_scores, "dropped.csv", "Lung Opacity")
    res = cli("hier", "calibrate", "-t", TAX, "--scores", bad, "--truth", inputs.truth, "--out", tmp_path / "t.json")
    assert_user_error(res, "must have one column per node (14) or one per leaf (11)", "Missing nodes: ['Lung Opacity']")


def test_calibrate_unknown_score_column(cli, inputs, tmp_path):
    bad = _rename_column(inputs, inputs.leaf_scores, "renamed.csv", "Edema", "Oedema")
    assert_user_error(
        _calibrate(cli, inputs, tmp_path / "th.json", scores=bad),
        "column 'Oedema' is not a node of taxonomy 'chexpert_pham'",
    )


def test_calibrate_ids_differ(cli, inputs, tmp_path):
    lines = inputs.truth.read_text(encoding="utf-8").splitlines()
    fewer = _write(inputs, "fewer.csv", "\n".join(lines[:-1]) + "\n")
    assert_user_error(_calibrate(cli, inputs, tmp_path / "th.json", truth=fewer), "ids differ between")


@pytest.mark.parametrize("case", ["unknown_label", "empty_label", "duplicate_id", "missing_id"])
def test_calibrate_bad_truth(cli, inputs, tmp_path, case):
    text, fragments = BAD_LABEL_FILES[case]
    bad = _write(inputs, f"{case}.csv", text)
    assert_user_error(_calibrate(cli, inputs, tmp_path / "th.json", truth=bad), f"truth file {bad}", *fragments)


@pytest.mark.parametrize(
    ("opts", "fragment"),
    [
        (("--alpha", "0"), "'alpha' parameter must be in the range (0, 1); got 0.0"),
        (("--method", "conformal"), "'method' parameter must be one of"),
        (("--rule", "climbing"), "Did you mean: 'climb'"),
        (("--p-value", "exact"), "'p_value' parameter must be one of"),
        (("--from-leaves", "mean"), "--from-leaves must be one of"),
        (("--grid", "1"), "grid must have at least 2 points"),
    ],
)
def test_calibrate_bad_options(cli, inputs, tmp_path, opts, fragment):
    assert_user_error(_calibrate(cli, inputs, tmp_path / "th.json", *opts), fragment)


# ------------------------------------------------------------------------------------------------ hier predict
@pytest.fixture
def thresholds(cli, inputs, tmp_path) -> Path:
    th = tmp_path / "th.json"
    assert _calibrate(cli, inputs, th, "--alpha", "0.15").rc == 0
    return th


def test_predict_bad_thresholds_file(cli, inputs, tmp_path):
    out = tmp_path / "p.csv"
    res = cli("hier", "predict", "--thresholds", tmp_path / "nope.json", "--scores", inputs.leaf_scores, "--out", out)
    assert_user_error(res, "does not exist")
    broken = _write(inputs, "broken.json", "{")
    res = cli("hier", "predict", "--thresholds", broken, "--scores", inputs.leaf_scores, "--out", out)
    assert_user_error(res, "is not valid JSON")
    other = _write(inputs, "other.json", json.dumps({"hF": 0.3}))
    res = cli("hier", "predict", "--thresholds", other, "--scores", inputs.leaf_scores, "--out", out)
    assert_user_error(res, "is not a medlens thresholds file", "medlens hier calibrate --out THRESHOLDS.json")
    assert not out.exists()


def test_predict_bad_scores(cli, inputs, thresholds, tmp_path):
    bad = _edit_score(inputs, inputs.leaf_scores, "nan.csv", "img005", "Fracture", "nan")
    res = cli("hier", "predict", "--thresholds", thresholds, "--scores", bad, "--out", tmp_path / "p.csv")
    assert_user_error(res, "found nan at id 'img005', column 'Fracture'")
    bad = _drop_column(inputs, inputs.leaf_scores, "dropped.csv", "Edema")
    res = cli("hier", "predict", "--thresholds", thresholds, "--scores", bad, "--out", tmp_path / "p.csv")
    assert_user_error(res, "must have one column per node")


# -------------------------------------------------------------------------------------------------- taxonomy
def test_taxonomy_list_json(cli):
    res = cli("taxonomy", "list", "--json")
    assert res.rc == 0, res.err
    items = json.loads(res.out)["taxonomies"]
    names = {it["name"] for it in items}
    assert {"cxr_anatomic_v1", "chexpert_pham", "chexpert_flat2", "cihmlc", "hpo"} <= names
    assert all(it["description"] for it in items)
    assert next(it for it in items if it["name"] == "hpo")["extra"] == "rare"
    res = cli("taxonomy", "list")
    assert res.rc == 0
    assert "cxr_anatomic_v1" in res.out


def test_taxonomy_show_json(cli):
    res = cli("taxonomy", "show", "cxr_anatomic_v1", "--json")
    assert res.rc == 0, res.err
    d = json.loads(res.out)
    assert d["name"] == "cxr_anatomic_v1"
    assert d["root"] == "root"
    assert d["is_tree"] is True
    assert d["branches"] == ["Normal", "Lung", "Pleura", "Cardiomediastinal", "Musculoskeletal", "Devices"]
    assert d["n_nodes"] == 1 + sum(len(v) for v in d["definition"]["children"].values())
    from medlens.taxonomy import Taxonomy, load_taxonomy

    assert Taxonomy.from_dict(d["definition"]) == load_taxonomy("cxr_anatomic_v1")


def test_taxonomy_show_tree(cli):
    res = cli("taxonomy", "show", "cihmlc")
    assert res.rc == 0, res.err
    assert "DAG" in res.out
    assert "Pneumonia" in res.out


def test_taxonomy_validate(cli, tmp_path):
    ok = tmp_path / "mine.yaml"
    ok.write_text("name: mine\nroot: root\nchildren:\n  root: [Lung, Heart]\n  Lung: [Pneumonia]\n", encoding="utf-8")
    res = cli("taxonomy", "validate", ok)
    assert res.rc == 0, res.err
    assert "valid" in res.out
    d = json.loads(cli("taxonomy", "validate", ok, "--json").out)
    assert d["valid"] is True
    assert d["n_nodes"] == 4
    assert d["height"] == 2


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("cycle.json", {"name": "c", "root": "r", "children": {"r": ["a"], "a": ["b"], "b": ["c"], "c": ["b"]}},
         "has a cycle"),
        ("detached.json", {"name": "d", "root": "r", "children": {"r": ["a"], "b": ["c"], "c": ["b"]}},
         "has a cycle not reachable from 'r'"),
        ("self.json", {"name": "s", "root": "r", "children": {"r": ["a"], "a": ["a"]}}, "is its own parent"),
        ("roots.json", {"name": "m", "root": "r", "children": {"r": ["a"], "x": ["y"]}}, "has several roots"),
        ("field.json", {"name": "f", "root": "r", "children": {"r": ["a"]}, "colour": "red"}, "unknown taxonomy field"),
        ("labels.json", {"name": "l", "root": "r", "children": {"r": ["a"]}, "labels": {"zz": ["z"]}},
         "name unknown node(s) ['zz']"),
        ("nochildren.json", {"name": "n", "root": "r"}, "needs a 'children' mapping"),
        ("broken.json", "{not json", "could not be parsed"),
        ("empty.json", "", "is empty"),
    ],
)  # fmt: skip
def test_taxonomy_validate_bad_files(cli, tmp_path, name, text, fragment):
    p = tmp_path / name
    p.write_text(text if isinstance(text, str) else json.dumps(text), encoding="utf-8")
    assert_user_error(cli("taxonomy", "validate", p), fragment)


def test_cycle_in_user_taxonomy_for_evaluate(cli, inputs, tmp_path):
    p = tmp_path / "cycle.json"
    p.write_text(json.dumps({"name": "c", "root": "r", "children": {"r": ["a"], "a": ["b"], "b": ["a"]}}))
    res = cli("hier", "evaluate", "-t", p, "--truth", inputs.truth, "--pred", inputs.pred)
    assert_user_error(res, "cycle")


def test_taxonomy_validate_missing_file(cli, tmp_path):
    assert_user_error(cli("taxonomy", "validate", tmp_path / "nope.json"), "does not exist")


def test_taxonomy_show_unknown_name(cli):
    assert_user_error(cli("taxonomy", "show", "cxr_anatomic"), "Unknown taxonomy 'cxr_anatomic'", "Did you mean")


@pytest.mark.parametrize(
    "args",
    [
        ["taxonomy", "list", "--json"],
        ["taxonomy", "show", "chexpert_pham", "--json"],
        ["doctor", "--json"],
    ],
    ids=["taxonomy-list", "taxonomy-show", "doctor"],
)
def test_every_json_output_carries_schema_version_and_provenance(cli, args):
    res = cli(*args)
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["schema_version"]
    assert {"medlens_version", "command", "config_hash"} <= set(doc["provenance"])


def test_taxonomy_validate_json_has_provenance(cli, tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("name: t\nroot: root\nchildren:\n  root: [A, B]\n")
    res = cli("taxonomy", "validate", str(f), "--json")
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["valid"] is True
    assert doc["provenance"]["input_hashes"]["taxonomy"]["sha256"]


def test_an_import_error_inside_medlens_is_internal_but_a_missing_extra_is_bad_input(monkeypatch, capsys):
    import medlens.cli as cli_mod

    def own(*_a, **_k):
        from medlens.diffusion._run import _no_such_name  # noqa: F401

    def extra(*_a, **_k):
        raise ImportError('faiss is needed for the index; install it with pip install "medlens[retrieval]"')

    for fn, code, head in ((own, 1, "medlens: internal error: ImportError"), (extra, 2, "medlens: error: faiss")):
        monkeypatch.setattr(cli_mod.typer.main, "get_command", lambda _app, fn=fn: type("C", (), {"main": fn})())
        assert cli_mod.main(["doctor"]) == code
        assert capsys.readouterr().err.startswith(head)
