"""Patient-level cross-validation of a head on per-view features, with early stopping and bootstrap CIs.

Protocol (one seed fixes every split and every initialisation):

1. ``n_folds`` stratified folds over *patients* (``StratifiedGroupKFold``): no patient is in two folds.
2. Inside each training fold, one stratified patient-level split holds out ``val_fraction`` for validation;
   the test fold is never seen before its predictions are made.
3. Features are standardised with the mean and standard deviation of the inner training part.
4. The head trains on the shared :class:`medlens.training.Trainer` (AdamW, class-balanced cross-entropy:
   each class weighs ``n / (2 n_c)``), keeps the weights of the epoch with the best validation AUROC (ties:
   lower validation loss) and stops after ``patience`` epochs without improvement.
5. Out-of-fold probabilities give AUROC, balanced accuracy and MCC (threshold 0.5); percentile-bootstrap CIs
   resample patients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._validation import InputError, check_interval

__all__ = ["CVResult", "auroc", "binary_metrics", "bootstrap_metrics", "cross_validate", "patient_folds"]

METRICS = ("auroc", "balanced_accuracy", "mcc")


def _labels(labels: np.ndarray) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or not np.isin(y, (0, 1)).all():
        raise InputError("labels must be a 1-D array of 0/1 values (binary classification).")
    return y.astype(np.int64)


def _stratified_splits(y: np.ndarray, g: np.ndarray, n_splits: int, seed: int) -> Any:
    """Stratified splits that keep each group in one fold: ``StratifiedKFold`` when every group is a single
    sample (the same guarantee; ``StratifiedGroupKFold`` is a Python loop over groups, ~0.1 s per call at 200
    patients), else ``StratifiedGroupKFold``."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if len(np.unique(g)) == len(g):
        return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, g)


def auroc(y_true: np.ndarray, y_score: np.ndarray) -> float | None:
    """AUROC of one score column (:func:`medlens.metrics.auroc_columns`: the rank-sum formula, ties one half,
    equal to scikit-learn's) or ``None`` with one class; cheap enough for the early-stopping check of every epoch.

    >>> auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    0.75
    """
    from medlens.metrics import auroc_columns

    a = float(auroc_columns(np.asarray(y_true).astype(bool).astype(np.int64), y_score)[0])
    return None if np.isnan(a) else a


def patient_folds(
    labels: np.ndarray, groups: np.ndarray | None = None, *, n_folds: int = 5, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_folds`` (train, test) index pairs, stratified by label, with each patient (``groups``) in one fold."""
    y = _labels(labels)
    g = np.arange(len(y)) if groups is None else np.asarray(groups)
    if len(g) != len(y):
        raise InputError(f"groups has {len(g)} entries but labels has {len(y)}.")
    n_pat = [len(np.unique(g[y == c])) for c in (0, 1)]
    if int(n_folds) < 2 or min(n_pat) < int(n_folds):
        raise InputError(
            f"{n_folds}-fold cross-validation needs at least {n_folds} patients of each class; "
            f"got {n_pat[0]} negative and {n_pat[1]} positive. Lower the number of folds or add cases."
        )
    return list(_stratified_splits(y, g, int(n_folds), int(seed)))


def binary_metrics(y_true: np.ndarray, y_prob: np.ndarray, *, threshold: float = 0.5) -> dict[str, float | None]:
    """AUROC (``None`` with one class), balanced accuracy and MCC at ``threshold``.

    >>> binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    {'auroc': 0.75, 'balanced_accuracy': 0.5, 'mcc': 0.0}
    """
    from sklearn.metrics import balanced_accuracy_score, matthews_corrcoef, roc_auc_score

    y = _labels(y_true)
    p = np.asarray(y_prob, dtype=float)
    pred = (p >= threshold).astype(int)
    return {
        "auroc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None,
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "mcc": float(matthews_corrcoef(y, pred)),
    }


def _weighted_metrics(w: np.ndarray, y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """The three metrics for each row of sample weights ``w`` (B, n) at once (resample counts; ties in ``p``
    count one half for AUROC, as in scikit-learn)."""
    uniq, inv = np.unique(p, return_inverse=True)
    onehot = np.zeros((len(p), len(uniq)))
    onehot[np.arange(len(p)), inv] = 1.0
    pos = (w * (y == 1)) @ onehot  # (B, U) positive weight at each distinct score
    neg = (w * (y == 0)) @ onehot
    wp, wn = pos.sum(axis=1), neg.sum(axis=1)
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        auroc = np.where((wp > 0) & (wn > 0), (pos * (below + 0.5 * neg)).sum(axis=1) / (wp * wn), np.nan)
        pred = p >= threshold
        tp, fn = (w * ((y == 1) & pred)).sum(1), (w * ((y == 1) & ~pred)).sum(1)
        tn, fp = (w * ((y == 0) & ~pred)).sum(1), (w * ((y == 0) & pred)).sum(1)
        tpr = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        tnr = np.where(tn + fp > 0, tn / (tn + fp), np.nan)
        bacc = np.nanmean(np.stack([tpr, tnr]), axis=0)
        den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = np.where(den > 0, (tp * tn - fp * fn) / np.where(den > 0, den, 1.0), 0.0)
    return {"auroc": auroc, "balanced_accuracy": bacc, "mcc": mcc}


def bootstrap_metrics(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    n_bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    threshold: float = 0.5,
) -> dict[str, dict[str, float | None]]:
    """Each metric of :func:`binary_metrics` with a percentile-bootstrap interval over resampled patients.

    Returns ``{metric: {"value", "low", "high"}}``. A resample draws patients (``groups``; default: each sample
    is a patient) with replacement, which weights each sample by its patient's draw count; all resamples are
    evaluated at once on those weights. Resamples with a single class are skipped for AUROC.
    """
    check_interval(ci, name="ci", low=0, high=1, closed="neither")
    if int(n_bootstrap) < 1:
        raise InputError(f"the number of bootstrap resamples must be >= 1; got {n_bootstrap}.")
    y = _labels(y_true)
    p = np.asarray(y_prob, dtype=float)
    if p.shape != y.shape or not np.all(np.isfinite(p)):
        raise InputError(f"probabilities must be {len(y)} finite numbers, one per label.")
    g = np.arange(len(y)) if groups is None else np.asarray(groups)
    point = binary_metrics(y, p, threshold=threshold)
    _, inv = np.unique(g, return_inverse=True)
    n_pat = int(inv.max()) + 1
    rng = np.random.default_rng(seed)
    alpha = (1.0 - ci) / 2.0
    cols: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
    for start in range(0, int(n_bootstrap), 256):
        b = min(256, int(n_bootstrap) - start)
        draws = rng.integers(0, n_pat, size=(b, n_pat)) + (np.arange(b) * n_pat)[:, None]
        counts = np.bincount(draws.ravel(), minlength=b * n_pat).reshape(b, n_pat).astype(float)
        for m, v in _weighted_metrics(counts[:, inv], y, p, threshold).items():
            cols[m].append(v)
    out = {}
    for m in METRICS:
        d = np.concatenate(cols[m])
        d = d[np.isfinite(d)]
        lo, hi = (float(np.quantile(d, alpha)), float(np.quantile(d, 1 - alpha))) if d.size else (None, None)
        out[m] = {"value": point[m], "low": lo, "high": hi}
    return out


@dataclass
class CVResult:
    """Out-of-fold probabilities and what each fold did."""

    probabilities: np.ndarray  # (n,) P(class 1), each from the fold that held the sample out
    fold: np.ndarray  # (n,) the test fold of each sample
    folds: list[dict[str, Any]] = field(default_factory=list)  # per fold: sizes, best epoch, val AUROC, metrics

    def metrics(self, labels: np.ndarray, groups: np.ndarray | None = None, **bootstrap: Any) -> dict[str, Any]:
        return bootstrap_metrics(labels, self.probabilities, groups, **bootstrap)


class _EarlyStop(Exception):
    """Raised by the epoch callback when validation stopped improving (caught by :func:`train_head`)."""


def train_head(
    make_head: Callable[[], Any],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    epochs: int = 100,
    patience: int = 15,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    batch_size: int = 16,
    seed: int = 0,
) -> tuple[Any, dict[str, Any]]:
    """Train one head with early stopping on ``(x_val, y_val)``; returns the best-epoch model (eval mode) and info."""
    from medlens.training import Trainer, adamw, seed_torch

    torch = require("torch", extra="torch", purpose="multi-view training")
    seed_torch(seed)
    model = make_head()
    xt, yt = torch.as_tensor(x_train, dtype=torch.float32), torch.as_tensor(y_train, dtype=torch.long)
    xv, yv = torch.as_tensor(x_val, dtype=torch.float32), torch.as_tensor(y_val, dtype=torch.long)
    counts = np.bincount(np.asarray(y_train), minlength=2).astype(float)
    if counts.min() == 0:
        raise InputError("a training fold holds only one class; use fewer folds or more cases of each class.")
    weight = torch.as_tensor(len(y_train) / (2.0 * counts), dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    optimizer = adamw([{"params": model.parameters(), "lr": lr}], weight_decay=weight_decay)
    n = len(yt)

    def plan(rng: np.random.Generator) -> list[tuple[Any, int]]:
        perm = rng.permutation(n)
        cuts = list(range(0, n, batch_size))
        if len(cuts) > 1 and n - cuts[-1] < 2:  # BatchNorm needs two samples: fold a lone last one back in
            cuts.pop()
        bounds = [*cuts[1:], n]
        return [(perm[a:b], b - a) for a, b in zip(cuts, bounds, strict=True)]

    def step(idx: np.ndarray) -> tuple[Any, dict[str, float]]:
        return loss_fn(model(xt[idx]), yt[idx]), {}

    best: dict[str, Any] = {"epoch": 0, "auroc": -np.inf, "loss": np.inf, "state": None}

    def validate(epoch: int) -> dict[str, Any]:
        model.eval()
        with torch.no_grad():
            logits = model(xv)
            loss = float(loss_fn(logits, yv))
            p = torch.softmax(logits, dim=1)[:, 1].numpy()
        auc = auroc(y_val, p)
        auc = 0.0 if auc is None else auc
        if (auc, -loss) > (best["auroc"], -best["loss"]):
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best.update(epoch=epoch, auroc=auc, loss=loss, state=state)
        return {"val_loss": loss, "val_auroc": auc}

    def callback(epoch: int, row: dict[str, Any]) -> None:
        if epoch - best["epoch"] >= patience:
            raise _EarlyStop

    trainer = Trainer(model, optimizer, epochs=epochs, seed=seed)
    with contextlib.suppress(_EarlyStop):
        trainer.fit(plan, step, n_items=n, validate=validate, callback=callback)
    model.load_state_dict(best["state"])
    model.eval()
    info = {"best_epoch": best["epoch"], "epochs_run": len(trainer.history), "val_auroc": best["auroc"]}
    return model, info


def cross_validate(
    features: np.ndarray,
    labels: np.ndarray,
    make_head: Callable[[], Any],
    *,
    groups: np.ndarray | None = None,
    n_folds: int = 5,
    val_fraction: float = 0.2,
    seed: int = 0,
    threads: int | None = 1,
    **train: Any,
) -> CVResult:
    """Out-of-fold probabilities of heads from ``make_head()`` trained on ``features`` ``(n, V, D)``.

    ``train`` goes to :func:`train_head` (``epochs``, ``patience``, ``lr``, ``weight_decay``, ``batch_size``).
    ``threads``: torch CPU threads while training (restored after; ``None`` leaves torch's setting). Heads this
    small run fastest on one thread, most of all on a shared machine.
    """

    torch = require("torch", extra="torch", purpose="multi-view training")
    x = np.asarray(features, dtype=np.float32)
    y = _labels(labels)
    if x.ndim != 3 or len(x) != len(y):
        raise InputError(f"features must be (n, views, dim) with one row per label; got {x.shape} and {len(y)}.")
    check_interval(val_fraction, name="val_fraction", low=0, high=0.5, closed="neither")
    g = np.arange(len(y)) if groups is None else np.asarray(groups)
    probs = np.full(len(y), np.nan)
    fold_of = np.full(len(y), -1)
    folds: list[dict[str, Any]] = []
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        _run_folds(x, y, g, make_head, n_folds, val_fraction, seed, train, probs, fold_of, folds)
    finally:
        torch.set_num_threads(before)
    return CVResult(probabilities=probs, fold=fold_of, folds=folds)


def _run_folds(x, y, g, make_head, n_folds, val_fraction, seed, train, probs, fold_of, folds) -> None:  # noqa: ANN001
    torch = require("torch", extra="torch")
    for f, (tr, te) in enumerate(patient_folds(y, g, n_folds=n_folds, seed=seed)):
        per_class = min(len(np.unique(g[tr][y[tr] == c])) for c in (0, 1))
        if per_class < 2:
            raise InputError("a training fold has fewer than 2 patients of a class to split off validation; use "
                             "fewer folds or more cases.")  # fmt: skip
        splits = min(max(2, round(1 / val_fraction)), per_class)
        fit_i, val_i = next(_stratified_splits(y[tr], g[tr], splits, seed + f))
        fit, val = tr[fit_i], tr[val_i]
        mu = x[fit].mean(axis=(0, 1), keepdims=True)
        sd = x[fit].std(axis=(0, 1), keepdims=True) + 1e-6
        z = (x - mu) / sd
        model, info = train_head(make_head, z[fit], y[fit], z[val], y[val], seed=seed * 1000 + f, **train)
        with torch.no_grad():
            probs[te] = torch.softmax(model(torch.as_tensor(z[te])), dim=1)[:, 1].numpy()
        fold_of[te] = f
        folds.append(
            {"fold": f, "n_train": len(fit), "n_val": len(val), "n_test": len(te), **info}
            | {"test": binary_metrics(y[te], probs[te])}
        )
