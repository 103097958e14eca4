"""Per-view features of a volume: slice it (``medlens.slicing``), encode every view in batches, cache the result.

Three view layouts share one code path, so a comparison changes only where the planes lie:

* ``omni``: ``views`` plane orientations over RP² (Thomson, canonical normals included, seeded), all through
  the centre (the mask centroid when a mask is given);
* ``canonical``: the axial, coronal and sagittal planes through the centre (``views`` is ignored: 3);
* ``axial-stack``: ``views`` parallel axial planes ``spacing_mm`` apart, centred on the centre (2.5-D).

Features are cached under ``$MEDLENS_CACHE/multiview`` as ``<key>.npz``, keyed by the SHA-256 of (the volume's
array and affine, the mask, the normals, every sampling parameter, the encoder id); writes are atomic.
"""

from __future__ import annotations

import hashlib
import io as _bytes_io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medlens._cache import cache_root
from medlens._provenance import config_hash
from medlens._validation import InputError, check_option
from medlens.io import atomic_write_bytes
from medlens.multiview._encoder import encode_views, encoder_id
from medlens.slicing import normalize_intensity, plane_geometry, plane_normals, sample_planes

__all__ = ["LAYOUTS", "ViewFeatures", "array_sha256", "layout_features", "view_features", "view_layout"]

log = logging.getLogger("medlens.multiview")

LAYOUTS = ("omni", "canonical", "axial-stack")
_FORMAT = 1


@dataclass(frozen=True)
class ViewFeatures:
    """Features ``(P, D)`` of the ``P`` planes of one volume, with the planes' normals and the cache key."""

    features: np.ndarray
    normals: np.ndarray
    key: str
    cached: bool


def array_sha256(*arrays: np.ndarray | None) -> str:
    """SHA-256 over arrays' dtypes, shapes and bytes (``None`` hashes as a marker)."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def view_layout(layout: str, views: int = 12, *, seed: int = 0) -> tuple[np.ndarray, int]:
    """The normals and the planes per normal (``stack``) of a layout."""
    check_option(layout, LAYOUTS, name="layout")
    if isinstance(views, bool) or int(views) < 1:
        raise InputError(f"views must be a positive integer; got {views!r}.")
    if layout == "omni":
        return plane_normals(int(views), "thomson", seed=seed), 1
    if layout == "canonical":
        return plane_normals(3, "canonical"), 1
    return np.array([[0.0, 0.0, 1.0]]), int(views)


def view_features(
    volume: np.ndarray,
    affine: np.ndarray,
    encoder: Any,
    *,
    mask: np.ndarray | None = None,
    layout: str = "omni",
    views: int = 12,
    seed: int = 0,
    size: int = 64,
    fov_mm: float | None = None,
    spacing_mm: float = 2.0,
    order: int = 1,
    intensity: str = "mr",
    batch_size: int = 64,
    cache: bool = True,
) -> ViewFeatures:
    """Slice ``volume`` in ``layout`` and encode the planes with ``encoder`` (any image encoder).

    The volume is scaled once to [0, 1] (:func:`medlens.slicing.normalize_intensity` with ``intensity``;
    pixels outside it are 0), planes are ``size × size`` over ``fov_mm`` (default: 1.2 × the mask's extent, or
    the whole volume) through the centre (mask centroid, else the volume centre).
    """
    return layout_features(volume, affine, encoder, [(layout, views)], mask=mask, seed=seed, size=size,
                           fov_mm=fov_mm, spacing_mm=spacing_mm, order=order, intensity=intensity,
                           batch_size=batch_size, cache=cache)[(layout, views)]  # fmt: skip


def layout_features(
    volume: np.ndarray,
    affine: np.ndarray,
    encoder: Any,
    layouts: Sequence[tuple[str, int]],
    *,
    mask: np.ndarray | None = None,
    seed: int = 0,
    size: int = 64,
    fov_mm: float | None = None,
    spacing_mm: float = 2.0,
    order: int = 1,
    intensity: str = "mr",
    batch_size: int = 64,
    cache: bool = True,
) -> dict[tuple[str, int], ViewFeatures]:
    """:func:`view_features` of one volume in several ``(layout, views)`` layouts at once.

    The volume is hashed and normalised once, and the planes of every layout not in the cache are encoded in
    one batched pass; each layout is cached under the key :func:`view_features` uses. Returns a dict keyed by
    the ``(layout, views)`` pairs given.
    """
    layouts = [(str(lay), nv) for lay, nv in layouts]
    vol = np.asarray(volume)
    vol_hash: str | None = None
    enc_id = encoder_id(encoder)
    out: dict[tuple[str, int], ViewFeatures] = {}
    todo: list[tuple[tuple[str, int], np.ndarray, int, str, Any]] = []
    for lay, nv in layouts:
        normals, stack = view_layout(lay, nv, seed=seed)
        params = {
            "format": _FORMAT,
            "layout": lay,
            "normals": np.round(normals, 12).tolist(),
            "stack": stack,
            "spacing_mm": float(spacing_mm) if stack > 1 else None,
            "size": int(size),
            "fov_mm": None if fov_mm is None else float(fov_mm),
            "order": int(order),
            "intensity": intensity,
            "encoder": enc_id,
        }
        if vol_hash is None:
            vol_hash = array_sha256(vol, np.asarray(affine, dtype=float), mask)
        key = config_hash({"volume": vol_hash, **params})
        path = cache_root("multiview", key[:2], f"{key}.npz")
        if cache and path.is_file():
            try:
                with np.load(path) as z:
                    out[(lay, nv)] = ViewFeatures(z["features"], z["normals"], key, True)
                continue
            except (OSError, ValueError, KeyError) as e:  # a damaged cache entry is recomputed
                log.warning("recomputing the damaged cache entry %s (%s)", path, e)
        todo.append(((lay, nv), normals, stack, key, path))
    if not todo:
        return out
    data = normalize_intensity(vol, intensity, mask=None)
    planes, geos = [], []
    for _, normals, stack, _, _ in todo:
        geo = plane_geometry(
            normals,
            affine,
            vol.shape,
            mask=mask,
            stack=stack,
            spacing_mm=float(spacing_mm) if stack > 1 else None,
            size=int(size),
            fov_mm=fov_mm,
        )
        planes.append(sample_planes(data, affine, geo, order=order, fill=0.0).slices)
        geos.append(geo)
    feats = encode_views(encoder, np.concatenate(planes), batch_size=batch_size)
    start = 0
    for (name, _, _, key, path), geo, pl in zip(todo, geos, planes, strict=True):
        f = feats[start : start + len(pl)]
        start += len(pl)
        if cache:
            buf = _bytes_io.BytesIO()
            np.savez(buf, features=f, normals=geo.normals)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, buf.getvalue())
        out[name] = ViewFeatures(f, geo.normals, key, False)
    return {k: out[k] for k in layouts}
