"""Latent-space translation from anchors (Maiorca et al., NeurIPS 2023; Di Folco et al., 2025).

Given ``n`` paired anchors ``X`` (source space, ``n × d1``) and ``Y`` (target space, ``n × d2``), a
:class:`Translator` fits an at-most-affine map ``T`` with ``T(X) ≈ Y``:

1. each space is pre-transformed with statistics of its own anchors (``pre``): ``"standard"`` (centre and
   divide by the per-dimension standard deviation, ddof = 1), ``"center"``, ``"l2"`` (centre, L2-normalise rows;
   the inverse multiplies by the mean anchor norm) or ``"none"``;
2. the smaller space is zero-padded to ``d = max(d1, d2)``;
3. a ``d × d`` matrix ``R`` is fitted on the transformed anchors ``A`` (source) and ``B`` (target):

   ======== ==========================================================================================
   method   ``R``
   ======== ==========================================================================================
   absolute no fit: the raw source vector, zero-padded or truncated to ``d2`` (naive stitching baseline)
   ortho    orthogonal Procrustes: ``U Vᵀ`` from the SVD ``AᵀB = U S Vᵀ``
   sim      similarity Procrustes: ``s U Vᵀ`` with ``s = trace(S) / ‖A‖²_F``
   linear   least squares ``argmin ‖A R − B‖_F`` (minimum-norm solution)
   lortho   least squares made orthogonal: ``U Vᵀ`` of the SVD of the least-squares ``R``
   ridge    ``(AᵀA + αI)⁻¹ AᵀB``
   affine   ``W, b`` of ``A W + b`` trained with Adam on the mean squared error (full batch, seeded)
   ======== ==========================================================================================

4. a new ``x`` maps to ``unpad(pre(x) R) `` followed by the inverse target pre-transform.

Least squares (``linear``, ``lortho``) is determined only with more anchors than source dimensions; with fewer
it raises (use ``ortho`` or ``ridge``). The module is numpy only.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medlens._validation import InputError, check_option

__all__ = [
    "METHODS",
    "PRE_TRANSFORMS",
    "Translator",
    "load_translator",
    "underdetermined",
]

METHODS = ("absolute", "ortho", "sim", "linear", "lortho", "ridge", "affine")
PRE_TRANSFORMS = ("standard", "center", "l2", "none")
LEAST_SQUARES = ("linear", "lortho")
FORMAT = "medlens-translator"
FORMAT_VERSION = 1


def underdetermined(method: str, n_anchors: int, source_dim: int, pre: str = "standard") -> bool:
    """Whether least squares is underdetermined: ``n`` anchors span at most ``n − 1`` dimensions after centring
    (every pre-transform but ``"none"`` centres), at most ``n`` without.

    >>> underdetermined("linear", 100, 384), underdetermined("linear", 512, 384), underdetermined("ortho", 16, 384)
    (True, False, False)
    >>> underdetermined("linear", 384, 384), underdetermined("linear", 384, 384, pre="none")
    (True, False)
    """
    rank = n_anchors if pre == "none" else n_anchors - 1
    return method in LEAST_SQUARES and rank < source_dim


@dataclass
class _Pre:
    """A fitted per-space pre-transform: ``(x − shift) / scale``, then optionally row-normalised."""

    kind: str
    shift: np.ndarray
    scale: np.ndarray
    mean_norm: float = 1.0

    @classmethod
    def fit(cls, x: np.ndarray, kind: str) -> _Pre:
        d = x.shape[1]
        shift = x.mean(axis=0) if kind != "none" else np.zeros(d)
        scale = np.ones(d)
        mean_norm = 1.0
        if kind == "standard":
            scale = x.std(axis=0, ddof=1) if len(x) > 1 else np.ones(d)
            scale = np.where(scale < 10 * np.finfo(np.float64).eps, 1.0, scale)
        if kind == "l2":
            mean_norm = float(np.linalg.norm(x - shift, axis=1).mean())
        return cls(kind, shift, scale, mean_norm)

    def forward(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.shift) / self.scale
        if self.kind == "l2":
            norm = np.linalg.norm(z, axis=1, keepdims=True)
            z = z / np.where(norm > 0, norm, 1.0)
        return z

    def inverse(self, z: np.ndarray) -> np.ndarray:
        if self.kind == "l2":
            z = z * self.mean_norm
        return z * self.scale + self.shift


def _pad(x: np.ndarray, d: int) -> np.ndarray:
    """Zero-pad columns up to ``d`` or truncate down to ``d``."""
    if x.shape[1] >= d:
        return x[:, :d]
    return np.pad(x, ((0, 0), (0, d - x.shape[1])))


def _polar(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(U Vᵀ, singular values)`` of ``m``: the closest orthogonal matrix and its spectrum."""
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    return u @ vt, s


def _adam_affine(a: np.ndarray, b: np.ndarray, *, steps: int, lr: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch Adam on ``mean((A W + c − B)²)``, initialised like ``torch.nn.Linear`` (U(±1/√d_in))."""
    rng = np.random.default_rng(seed)
    d_in, d_out = a.shape[1], b.shape[1]
    bound = 1.0 / np.sqrt(d_in)
    w = rng.uniform(-bound, bound, size=(d_in, d_out))
    c = rng.uniform(-bound, bound, size=d_out)
    params = [w, c]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    scale = 2.0 / b.size
    # the MSE gradient through the anchors' sufficient statistics: Aᵀ(AW + 1cᵀ − B) = (AᵀA)W + s cᵀ − AᵀB with
    # s = Aᵀ1, so a step costs d_in² · d_out instead of n · d_in · d_out
    gram, cross, colsum, bsum, n = a.T @ a, a.T @ b, a.sum(axis=0), b.sum(axis=0), len(a)
    for t in range(1, steps + 1):
        grads = [
            scale * (gram @ params[0] + np.outer(colsum, params[1]) - cross),
            scale * (colsum @ params[0] + n * params[1] - bsum),
        ]
        for i, g in enumerate(grads):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat = m[i] / (1 - beta1**t)
            v_hat = v[i] / (1 - beta2**t)
            params[i] -= lr * m_hat / (np.sqrt(v_hat) + eps)
    return params[0], params[1]


def _as_matrix(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D array (rows × dimensions); got shape {arr.shape}.")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise InputError(f"{name} row {int(np.flatnonzero(bad)[0])} holds NaN or infinite values; drop or fix it.")
    return arr


@dataclass
class Translator:
    """An anchor-fitted map from a source latent space to a target latent space.

    Parameters
    ----------
    method : {"absolute", "ortho", "sim", "linear", "lortho", "ridge", "affine"}
        How ``R`` is estimated (module docstring). ``ortho`` (Procrustes) is the robust default.
    pre : {"standard", "center", "l2", "none"}
        The pre-transform of both spaces (ignored by ``absolute``, which applies none).
    ridge_alpha : float
        The ridge penalty (in the units of the pre-transformed anchors).
    steps, lr, seed : int, float, int
        Adam steps, learning rate and seed of ``affine`` (latentis's defaults: 300 steps, lr 1e-3).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 8))
    >>> q = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    >>> tr = Translator("ortho", pre="center").fit(x, x @ q + 3.0)
    >>> bool(np.allclose(tr.transform(x), x @ q + 3.0))
    True
    """

    method: str = "ortho"
    pre: str = "standard"
    ridge_alpha: float = 1.0
    steps: int = 300
    lr: float = 1e-3
    seed: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    _state: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        check_option(self.method, METHODS, name="method")
        check_option(self.pre, PRE_TRANSFORMS, name="pre")
        if not self.ridge_alpha > 0:
            raise InputError(
                f"ridge_alpha must be > 0 (ridge with no penalty is least squares: method 'linear'); got "
                f"{self.ridge_alpha}."
            )
        if self.method == "affine" and (int(self.steps) < 1 or not self.lr > 0):
            raise InputError(f"affine needs steps >= 1 and lr > 0; got steps={self.steps}, lr={self.lr}.")

    # -- fitting -------------------------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return bool(self._state)

    @property
    def source_dim(self) -> int:
        self._check_fitted()
        return int(self._state["d1"])

    @property
    def target_dim(self) -> int:
        self._check_fitted()
        return int(self._state["d2"])

    def fit(self, source: Any, target: Any) -> Translator:
        """Fit on paired anchors: row ``i`` of ``source`` and of ``target`` describe the same item."""
        x = _as_matrix(source, "source anchors")
        y = _as_matrix(target, "target anchors")
        if len(x) != len(y):
            raise InputError(f"source and target anchors must pair row for row; got {len(x)} and {len(y)} rows.")
        n, d1 = x.shape
        d2 = y.shape[1]
        minimum = 1 if self.method == "absolute" else 2
        if n < minimum:
            raise InputError(f"{self.method} needs at least {minimum} anchors; got {n}.")
        if underdetermined(self.method, n, d1, self.pre):
            need = d1 if self.pre == "none" else d1 + 1
            raise InputError(
                f"{self.method} (least squares) needs more anchors than source dimensions: {n} anchors for "
                f"{d1} dimensions; use method 'ortho' or 'ridge', or at least {need} anchors."
            )
        d = max(d1, d2)
        state: dict[str, Any] = {"d1": d1, "d2": d2, "n_anchors": n}
        if self.method == "absolute":
            self._state = state
            return self
        px, py = _Pre.fit(x, self.pre), _Pre.fit(y, self.pre)
        a, b = _pad(px.forward(x), d), _pad(py.forward(y), d)
        bias = np.zeros(d)
        scale = 1.0
        cross = a.T @ b
        spectrum = None
        if self.method in ("ortho", "sim"):
            r, s = _polar(cross)
            spectrum = s
            if self.method == "sim":
                denom = float((a * a).sum())
                scale = float(s.sum() / denom) if denom > 0 else 1.0
                r = scale * r
        elif self.method in LEAST_SQUARES:
            from scipy.linalg import lstsq

            # gelsy: complete orthogonal factorisation, the minimum-norm solution (as numpy's SVD-based gelsd),
            # several times faster
            r = lstsq(a, b, lapack_driver="gelsy", check_finite=False)[0]
            if self.method == "lortho":
                r = _polar(r)[0]
        elif self.method == "ridge":
            r = np.linalg.solve(a.T @ a + self.ridge_alpha * np.eye(d), a.T @ b)
        else:  # affine, unpadded as latentis's SGD aligner: d1 → d2
            w, c = _adam_affine(a[:, :d1], b[:, :d2], steps=int(self.steps), lr=float(self.lr), seed=int(self.seed))
            r = np.zeros((d, d))
            r[:d1, :d2] = w
            bias[:d2] = c
        state.update(
            r=r,
            bias=bias,
            scale=scale,
            px=px,
            py=py,
            # the spectrum of AᵀB is computed on first use (singular_values, save) unless the fit already has it
            fit_singular_values=spectrum,
            cross=cross if spectrum is None else None,
        )
        self._state = state
        return self

    def _check_fitted(self) -> None:
        if not self._state:
            raise InputError("the translator is not fitted; call fit(source_anchors, target_anchors) first.")

    # -- applying ------------------------------------------------------------------------------------------
    def transform(self, x: Any) -> np.ndarray:
        """Translate source vectors ``(m, d1)`` into the target space ``(m, d2)``."""
        self._check_fitted()
        st = self._state
        arr = _as_matrix(x, "source features")
        if arr.shape[1] != st["d1"]:
            raise InputError(
                f"source features have {arr.shape[1]} dimensions; this translator was fitted on {st['d1']}."
            )
        if self.method == "absolute":
            return _pad(arr, st["d2"])
        if self.pre != "l2":  # every step is affine: one matrix product and an offset
            w, c = self._affine()
            return arr @ w + c
        d = max(st["d1"], st["d2"])
        z = _pad(st["px"].forward(arr), d) @ st["r"] + st["bias"]
        return st["py"].inverse(z[:, : st["d2"]])

    def _affine(self) -> tuple[np.ndarray, np.ndarray]:
        """``(W, c)`` with ``transform(x) = x W + c`` for the affine pre-transforms, folded once and kept.

        Zero-padding the source keeps only the first ``d1`` rows of ``R``; truncating the output keeps its
        first ``d2`` columns; the scalings and shifts of both sides fold into ``W`` and ``c``.
        """
        st = self._state
        if st.get("affine") is None:
            px, py = st["px"], st["py"]
            r = np.ascontiguousarray(st["r"][: st["d1"], : st["d2"]])  # one layout, fitted or loaded: same sums
            w = (r / px.scale[:, None]) * py.scale[None, :]
            c = (st["bias"][: st["d2"]] - (px.shift / px.scale) @ r) * py.scale + py.shift
            st["affine"] = (w, c)
        return st["affine"]

    def inverse_transform(self, y: Any) -> np.ndarray:
        """Map target vectors back to the source space.

        Exact for ``ortho``, ``sim`` and ``lortho`` when ``d1 <= d2`` (no dimension is truncated away), a
        pseudo-inverse for the other methods; with ``d1 > d2`` the forward map drops ``d1 − d2`` padded dimensions,
        so the round trip is a projection.
        """
        self._check_fitted()
        st = self._state
        arr = _as_matrix(y, "target features")
        if arr.shape[1] != st["d2"]:
            raise InputError(
                f"target features have {arr.shape[1]} dimensions; this translator was fitted on {st['d2']}."
            )
        if self.method == "absolute":
            return _pad(arr, st["d1"])
        d = max(st["d1"], st["d2"])
        z = _pad(st["py"].forward(arr), d) - st["bias"]
        if self.method in ("ortho", "sim", "lortho"):
            back = z @ st["r"].T / (st["scale"] ** 2)
        else:
            back = z @ np.linalg.pinv(st["r"])
        return st["px"].inverse(back[:, : st["d1"]])

    def fit_transform(self, source: Any, target: Any) -> np.ndarray:
        return self.fit(source, target).transform(source)

    @property
    def matrix(self) -> np.ndarray:
        """The fitted ``R`` (``d × d``, ``d = max(d1, d2)``); the identity for ``absolute``."""
        self._check_fitted()
        st = self._state
        return st.get("r", np.eye(max(st["d1"], st["d2"])))

    @property
    def singular_values(self) -> np.ndarray:
        """Singular values of ``AᵀB`` on the pre-transformed anchors (empty for ``absolute``)."""
        self._check_fitted()
        st = self._state
        if st.get("fit_singular_values") is None and st.get("cross") is not None:
            st["fit_singular_values"] = np.linalg.svd(st["cross"], compute_uv=False)
            st["cross"] = None
        return st.get("fit_singular_values", np.zeros(0))

    # -- persistence ---------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "pre": self.pre,
            "ridge_alpha": self.ridge_alpha,
            "steps": int(self.steps),
            "lr": self.lr,
            "seed": int(self.seed),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write an ``.npz`` with the arrays and a JSON ``metadata`` entry (config, dims, caller metadata)."""
        from medlens.io import atomic_write_bytes

        self._check_fitted()
        p = Path(path)
        if p.suffix != ".npz":
            raise InputError(f"{p}: a translator is saved as .npz; use a file name ending in .npz.")
        st = self._state
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "config": self.config(),
            "source_dim": st["d1"],
            "target_dim": st["d2"],
            "n_anchors": st["n_anchors"],
            "metadata": self.metadata,
        }
        arrays: dict[str, np.ndarray] = {"metadata": np.array(json.dumps(meta, default=str))}
        if self.method != "absolute":
            arrays.update(
                r=st["r"],
                bias=st["bias"],
                scale=np.array(st["scale"]),
                fit_singular_values=self.singular_values,
            )
            for side in ("px", "py"):
                pre: _Pre = st[side]
                arrays.update(
                    {
                        f"{side}_shift": pre.shift,
                        f"{side}_scale": pre.scale,
                        f"{side}_mean_norm": np.array(pre.mean_norm),
                    }
                )
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return atomic_write_bytes(p, buf.getvalue())


def load_translator(path: str | os.PathLike) -> Translator:
    """Read a translator written by :meth:`Translator.save` (no pickles: plain arrays and a JSON string)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such translator file (write one with `medlens stitch fit --out TR.npz`).")
    try:
        loaded = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{p} is not a translator .npz file ({exc}).") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise InputError(f"{p} holds a single array, not a translator .npz; write one with `medlens stitch fit`.")
    with loaded as z:
        data = {k: z[k] for k in z.files}
    try:
        meta = json.loads(str(data["metadata"]))
        if meta.get("format") != FORMAT:
            raise KeyError("format")
        cfg: Mapping[str, Any] = meta["config"]
        tr = Translator(**cfg, metadata=dict(meta.get("metadata") or {}))
        state: dict[str, Any] = {"d1": int(meta["source_dim"]), "d2": int(meta["target_dim"])}
        state["n_anchors"] = int(meta["n_anchors"])
        if tr.method != "absolute":
            state.update(
                r=data["r"],
                bias=data["bias"],
                scale=float(data["scale"]),
                fit_singular_values=data["fit_singular_values"],
            )
            for side in ("px", "py"):
                state[side] = _Pre(
                    tr.pre, data[f"{side}_shift"], data[f"{side}_scale"], float(data[f"{side}_mean_norm"])
                )
            d = max(state["d1"], state["d2"])
            shapes = {
                "r": (state["r"].shape, (d, d)),
                "bias": (state["bias"].shape, (d,)),
                "px_shift": (data["px_shift"].shape, (state["d1"],)),
                "px_scale": (data["px_scale"].shape, (state["d1"],)),
                "py_shift": (data["py_shift"].shape, (state["d2"],)),
                "py_scale": (data["py_scale"].shape, (state["d2"],)),
            }
            bad = [f"{k} {got} (expected {want})" for k, (got, want) in shapes.items() if got != want]
            if bad:
                raise InputError(f"{p}: corrupt translator, array shapes do not match its dimensions: {bad[0]}.")
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(
            f"{p} is not a medlens translator (missing {exc}); write one with `medlens stitch fit`."
        ) from None
    tr._state = state
    return tr
