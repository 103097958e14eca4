"""Relative representations (Moschella et al., ICLR 2023): a vector described by its relation to anchors.

``relative_projection(x, anchors, method)`` returns an ``(m, k)`` array for ``k`` anchors:

========= =========================================================== =========================================
method    entry ``(i, j)``                                             invariant to
========= =========================================================== =========================================
cosine    ``cos(x_i, a_j)``                                           rotations, reflections, isotropic scale
angular   ``arccos(cos(x_i, a_j)) / π`` (0 = same direction, 1 = opposite) the same as cosine
euclidean ``‖x_i − a_j‖₂``                                            rotations, reflections, translations
l1        ``‖x_i − a_j‖₁``                                            translations, axis permutations
cob       coefficients ``c_i`` of ``x_i ≈ Σ_j c_ij a_j`` (least squares) an invertible linear map of both, when the anchors span the space
========= =========================================================== =========================================

The same conventions as latentis's projection functions (its ``angular`` is ``arccos(cos)/π`` at HEAD).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medlens._validation import InputError, check_option

__all__ = ["RELATIVE_METHODS", "relative_projection"]

RELATIVE_METHODS = ("cosine", "angular", "euclidean", "l1", "cob")


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def relative_projection(x: Any, anchors: Any, method: str = "cosine") -> np.ndarray:
    """Project ``x`` (``m × d``) onto ``anchors`` (``k × d``); see the module docstring for the methods.

    >>> a = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> relative_projection(np.array([[3.0, 3.0]]), a, "cosine").round(4).tolist()
    [[0.7071, 0.7071]]
    >>> relative_projection(np.array([[3.0, 3.0]]), a, "cob").round(4).tolist()
    [[3.0, 1.5]]
    """
    check_option(method, RELATIVE_METHODS, name="method")
    xs = np.asarray(x, dtype=np.float64)
    an = np.asarray(anchors, dtype=np.float64)
    if xs.ndim != 2 or an.ndim != 2:
        raise InputError(f"x and anchors must be 2-D arrays; got shapes {xs.shape} and {an.shape}.")
    if xs.shape[1] != an.shape[1]:
        raise InputError(
            f"x has {xs.shape[1]} dimensions but the anchors have {an.shape[1]}; both must live in one space."
        )
    if len(an) == 0:
        raise InputError("relative projection needs at least one anchor.")
    if method in ("cosine", "angular"):
        cos = _unit_rows(xs) @ _unit_rows(an).T
        return cos if method == "cosine" else np.arccos(np.clip(cos, -1.0, 1.0)) / np.pi
    if method in ("euclidean", "l1"):
        from scipy.spatial.distance import cdist

        return cdist(xs, an, metric="euclidean" if method == "euclidean" else "cityblock")
    return np.linalg.lstsq(an.T, xs.T, rcond=None)[0].T
