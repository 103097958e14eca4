"""Checks every registered metric must pass (scikit-learn's ``test_common`` idea), over ``medlens.metrics.METRICS``
and ``medlens.hierarchy.METRICS``:

- the value does not depend on the order of the samples;
- ``sample_weight`` with a weight of 2 equals listing the sample twice (weighted metrics), or is refused with an
  :class:`InputError` (corpus-level metrics); counts next to weighted values stay sample counts, so only the
  float values are compared there;
- empty input and a NaN/None in the input raise :class:`InputError`;
- results are Python floats, tuples of floats, dicts or frozen :class:`MetricResult` dataclasses, and serialise
  with ``json.dumps``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlens._results import MetricResult, jsonable
from medlens._validation import InputError
from medlens.hierarchy import METRICS as HIER_METRICS
from medlens.metrics import METRICS, CaptionOptions, cohen_kappa
from medlens.taxonomy import Taxonomy

TAX = Taxonomy(
    {"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]}, name="toy", version="1"
)
LEAVES = ["Pneumonia", "Edema", "Effusion"]
GOLD_NAMES = ["glioblastoma", "meningioma", "vestibular schwannoma", "arachnoid cyst"]
PRED_NAMES = [*GOLD_NAMES, "GBM", "acoustic neuroma", "epidermoid cyst", "lymphoma"]
WORDS = ["axial", "flair", "t2", "tumour", "tumor", "edema", "oedema", "no", "cyst", "mass", "lesion", "left", "lobe"]

ALL = [(name, METRICS) for name in METRICS.names()] + [(name, HIER_METRICS) for name in HIER_METRICS.names()]
IDS = [name for name, _ in ALL]


# ------------------------------------------------------------------------------------------------- inputs
def _caption(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(3, 8))))


def _boxes(rng: np.random.Generator, k: int) -> list[list[float]]:
    xy = rng.uniform(0, 50, size=(k, 2))
    wh = rng.uniform(5, 30, size=(k, 2))
    return np.c_[xy, xy + wh].tolist()


def _inputs(name: str, registry: Any, rng: np.random.Generator, n: int) -> tuple[list, list, dict, dict]:
    """(y_true, y_pred, per-sample keyword arrays, fixed keyword options) for metric ``name``."""
    kind = registry.meta(name)["inputs"]
    if registry is HIER_METRICS:
        fixed = {"taxonomy": TAX}
        y_true = [str(x) for x in rng.choice([*LEAVES, "Lung"], n)]
        if kind == "scores":
            return y_true, list(rng.dirichlet(np.ones(3), n)), {}, {**fixed, "classes": LEAVES, "top_k": 2}
        return y_true, [str(x) for x in rng.choice(TAX.nodes, n)], {}, fixed
    if kind == "diagnoses":
        preds = [[str(x) for x in rng.choice(PRED_NAMES, int(rng.integers(0, 4)), replace=False)] for _ in range(n)]
        return [str(x) for x in rng.choice(GOLD_NAMES, n)], preds, {}, {}
    if kind == "labels":
        return rng.integers(0, 3, n).tolist(), rng.integers(0, 3, n).tolist(), {}, {}
    if kind == "pixels":  # one lesion and one background pixel at least; Dice thresholds the scores at 0
        truth = [1, 0, *rng.integers(0, 2, n - 2).tolist()]
        return truth, rng.uniform(-1, 1, n).tolist(), {}, {}
    if kind == "captions":
        fixed = {"options": CaptionOptions(meteor=None, bertscore=None)} if name == "caption_report" else {}
        return [_caption(rng) for _ in range(n)], [_caption(rng) for _ in range(n)], {}, fixed
    gold = [_boxes(rng, int(rng.integers(0, 3))) for _ in range(n)]
    pred = [_boxes(rng, int(rng.integers(0, 4))) for _ in range(n)]
    gold[0] = gold[0] or _boxes(rng, 1)  # at least one scored image
    pred[0] = pred[0] + [gold[0][0]]  # and one hit
    return gold, pred, {"scores": [rng.uniform(0, 1, len(p)).tolist() for p in pred]}, {}


def _call(name: str, registry: Any, y_true, y_pred, aligned: dict, fixed: dict, **kw) -> Any:
    return registry.get(name)(y_true, y_pred, **aligned, **fixed, **kw)


def _take(seq: list, idx: list[int]) -> list:
    return [seq[i] for i in idx]


def _leaves(x: Any, path: str = "") -> dict[str, Any]:
    """Numeric (and None) leaves of a result, keyed by their path."""
    x = jsonable(x)
    if isinstance(x, dict):
        return {k: v for key, val in x.items() for k, v in _leaves(val, f"{path}.{key}").items()}
    if isinstance(x, list):
        return {k: v for i, val in enumerate(x) for k, v in _leaves(val, f"{path}[{i}]").items()}
    if x is None or (isinstance(x, int | float) and not isinstance(x, bool)):
        return {path: x}
    return {}


def _same(a: Any, b: Any, *, floats_only: bool = False) -> None:
    la, lb = _leaves(a), _leaves(b)
    assert la.keys() == lb.keys()
    for k, va in la.items():
        vb = lb[k]
        if floats_only and (isinstance(va, int) or isinstance(vb, int)):
            continue  # counts of samples, items or boxes
        if va is None or vb is None:
            assert va is vb, k
        elif math.isnan(va):
            assert math.isnan(vb), k
        else:
            assert vb == pytest.approx(va, rel=1e-9, abs=1e-12), k


def _seeds(name: str, registry: Any) -> range:
    return range(2) if registry.meta(name).get("needs") == "model" else range(6)


# -------------------------------------------------------------------------------------------------- checks
def test_every_metric_is_registered_with_its_contract():
    assert len(ALL) == len(set(IDS)) >= 20
    for name, registry in ALL:
        meta = registry.meta(name)
        assert meta["sample_weight"] in ("weighted", "refused"), name
        params = inspect.signature(registry.get(name)).parameters
        assert "sample_weight" in params, name
        assert "k" not in params, name  # one name per concept: branch_depth, top_k


@pytest.mark.parametrize(("name", "registry"), ALL, ids=IDS)
def test_invariant_to_sample_order(name, registry):
    for seed in _seeds(name, registry):
        rng = np.random.default_rng(seed)
        y_true, y_pred, aligned, fixed = _inputs(name, registry, rng, 9)
        perm = rng.permutation(9).tolist()
        shuffled = {k: _take(v, perm) for k, v in aligned.items()}
        a = _call(name, registry, y_true, y_pred, aligned, fixed)
        b = _call(name, registry, _take(y_true, perm), _take(y_pred, perm), shuffled, fixed)
        _same(a, b)


@pytest.mark.parametrize(("name", "registry"), ALL, ids=IDS)
def test_weight_two_equals_duplication(name, registry):
    for seed in _seeds(name, registry):
        rng = np.random.default_rng(100 + seed)
        y_true, y_pred, aligned, fixed = _inputs(name, registry, rng, 8)
        w = rng.integers(1, 3, 8)  # weights 1 and 2
        if registry.meta(name)["sample_weight"] == "refused":
            with pytest.raises(InputError, match="does not take sample_weight"):
                _call(name, registry, y_true, y_pred, aligned, fixed, sample_weight=w.astype(float))
            continue
        dup = [i for i in range(8) for _ in range(int(w[i]))]
        weighted = _call(name, registry, y_true, y_pred, aligned, fixed, sample_weight=w.astype(float))
        repeated = _call(
            name,
            registry,
            _take(y_true, dup),
            _take(y_pred, dup),
            {k: _take(v, dup) for k, v in aligned.items()},
            fixed,
        )
        _same(repeated, weighted, floats_only=True)
        ones = _call(name, registry, y_true, y_pred, aligned, fixed, sample_weight=np.ones(8))
        _same(_call(name, registry, y_true, y_pred, aligned, fixed), ones)  # unit weights change nothing


@pytest.mark.parametrize(("name", "registry"), ALL, ids=IDS)
def test_bad_weights_are_refused(name, registry):
    y_true, y_pred, aligned, fixed = _inputs(name, registry, np.random.default_rng(0), 4)
    for bad in ([1.0, 1.0, 1.0], [1.0, -1.0, 1.0, 1.0], [1.0, float("nan"), 1.0, 1.0], [0.0] * 4):
        with pytest.raises(InputError, match="sample_weight"):
            _call(name, registry, y_true, y_pred, aligned, fixed, sample_weight=bad)


@pytest.mark.parametrize(("name", "registry"), ALL, ids=IDS)
def test_empty_input_is_refused(name, registry):
    _, _, aligned, fixed = _inputs(name, registry, np.random.default_rng(0), 3)
    y_pred: Any = np.zeros((0, 3)) if registry.meta(name)["inputs"] == "scores" else []
    with pytest.raises(InputError):
        _call(name, registry, [], y_pred, {k: [] for k in aligned}, fixed)


def _with_nan(name: str, registry: Any, y_true: list, y_pred: list) -> list[tuple[list, list]]:
    kind = registry.meta(name)["inputs"]
    nan = float("nan")
    if kind == "scores":
        s = np.array(y_pred)
        s[1, 0] = nan
        return [(y_true, s), ([y_true[0], nan, *y_true[2:]], y_pred)]
    if kind == "diagnoses":
        return [([y_true[0], nan, *y_true[2:]], y_pred), (y_true, [y_pred[0], [nan], *y_pred[2:]])]
    if kind == "boxes":
        return [(y_true, [y_pred[0], [[0.0, 0.0, nan, 4.0]], *y_pred[2:]])]
    return [([y_true[0], nan, *y_true[2:]], y_pred), (y_true, [y_pred[0], None, *y_pred[2:]])]


@pytest.mark.parametrize(("name", "registry"), ALL, ids=IDS)
def test_nan_and_missing_input_is_refused(name, registry):
    y_true, y_pred, aligned, fixed = _inputs(name, registry, np.random.default_rng(1), 4)
    if registry.meta(name)["inputs"] == "boxes":
        aligned = {"scores": None}
    for yt, yp in _with_nan(name, registry, y_true, y_pred):
        with pytest.raises(InputError):
            _call(name, registry, yt, yp, aligned, fixed)


@pytest.mark.parametrize(("name", "registry"), ALL, ids=IDS)
def test_results_serialise_to_json(name, registry):
    y_true, y_pred, aligned, fixed = _inputs(name, registry, np.random.default_rng(2), 6)
    result = _call(name, registry, y_true, y_pred, aligned, fixed)
    if isinstance(result, MetricResult):
        assert dataclasses.is_dataclass(result)
        assert type(result).__dataclass_params__.frozen
        doc = result.to_dict()
    elif result is None:  # METEOR without a local WordNet: the documented "not computed"
        assert registry.meta(name).get("needs") == "wordnet"
        doc = result
    else:
        assert isinstance(result, float | tuple | dict), type(result)
        doc = result
    assert json.loads(json.dumps(doc)) == json.loads(json.dumps(jsonable(doc)))


# ------------------------------------------------------------------------------------ kappa = scikit-learn
@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=30),
    weights=st.none() | st.lists(st.integers(1, 4), min_size=30, max_size=30),
)
def test_cohen_kappa_is_sklearns(pairs, weights):
    from sklearn.metrics import cohen_kappa_score

    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    w = None if weights is None else [float(x) for x in weights[: len(pairs)]]
    ours = cohen_kappa(a, b, sample_weight=w)
    if len(set(a) | set(b)) == 1:
        assert math.isnan(ours)  # p_e = 1: kappa is undefined (scikit-learn warns and gives nan)
    else:
        assert ours == pytest.approx(cohen_kappa_score(a, b, sample_weight=w), abs=1e-12)
    # and on strings and booleans (scikit-learn needs one label type; medlens codes them)
    names = [f"label-{x}" for x in a]
    _same(cohen_kappa(names, [f"label-{x}" for x in b]), cohen_kappa(a, b))


def _sample(draw: Callable, n: int) -> list[str]:
    return [draw(st.sampled_from(TAX.nodes)) for _ in range(n)]


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_hierarchical_weights_are_duplication(data):
    n = data.draw(st.integers(1, 12))
    y_true, y_pred = _sample(data.draw, n), _sample(data.draw, n)
    w = data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    dup = [i for i in range(n) for _ in range(w[i])]
    for name in HIER_METRICS.names():
        if HIER_METRICS.meta(name)["inputs"] != "labels":
            continue  # the scores metric is checked in test_weight_two_equals_duplication
        f = HIER_METRICS.get(name)
        weighted = f(y_true, y_pred, taxonomy=TAX, sample_weight=[float(x) for x in w])
        _same(f(_take(y_true, dup), _take(y_pred, dup), taxonomy=TAX), weighted, floats_only=True)
