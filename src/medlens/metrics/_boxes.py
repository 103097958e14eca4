"""Boxes: validation, coordinate frames (with a record of every conversion) and IoU.

Frames (``box_format``):

- ``xyxy_pixel``: ``[x1, y1, x2, y2]`` in pixels, top-left origin, ``x1 < x2``, ``y1 < y2``;
- ``xywh_pixel``: ``[x, y, width, height]`` in pixels (COCO's ``bbox``);
- ``xyxy_norm1``: ``[x1, y1, x2, y2]`` divided by the image width/height (0-1);
- ``xyxy_norm1000``: the same on a 0-1000 canvas (Qwen-VL style).

Image sizes are always ``(width, height)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from medlens._validation import InputError, check_option

__all__ = [
    "BOX_FORMATS",
    "BoxConversion",
    "as_boxes",
    "box_iou",
    "check_boxes",
    "clip_boxes",
    "convert_boxes",
]

BoxFormat = Literal["xyxy_pixel", "xywh_pixel", "xyxy_norm1", "xyxy_norm1000"]
BOX_FORMATS: tuple[str, ...] = ("xyxy_pixel", "xywh_pixel", "xyxy_norm1", "xyxy_norm1000")
_NORM_SCALE = {"xyxy_norm1": 1.0, "xyxy_norm1000": 1000.0}


@dataclass(frozen=True)
class BoxConversion:
    """What a conversion or clipping did to a set of boxes (log it as a protocol deviation when ``deviation``).

    Attributes
    ----------
    operation : ``"convert"`` or ``"clip"``.
    src, dst : the frames before and after.
    n_boxes : how many boxes went through.
    n_changed : boxes whose coordinates changed (all of them for a real conversion; the clipped ones for a clip).
    image_size : ``(width, height)`` used, or ``None``.
    image : the image the boxes belong to, when the caller named it.
    """

    operation: str
    src: str
    dst: str
    n_boxes: int
    n_changed: int
    image_size: tuple[float, float] | None = None
    image: str | None = None

    @property
    def deviation(self) -> bool:
        """True when the boxes were changed (a frame conversion or a clip that moved a coordinate)."""
        return self.n_changed > 0

    def message(self) -> str:
        """One line for a log or a deviations list."""
        where = f" of image {self.image!r}" if self.image is not None else ""
        size = f" (image size {self.image_size[0]:g}x{self.image_size[1]:g})" if self.image_size else ""
        if self.operation == "clip":
            return f"clipped {self.n_changed} of {self.n_boxes} box(es){where} to the image{size}"
        if self.src == self.dst:
            return f"{self.n_boxes} box(es){where} already in {self.dst}; nothing converted"
        return f"converted {self.n_boxes} box(es){where} from {self.src} to {self.dst}{size}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_size"] = list(self.image_size) if self.image_size else None
        d["message"] = self.message()
        return d


def _where(image: Any, name: str) -> str:
    return f"{name} of image {image!r}" if image is not None else name


def as_boxes(boxes: Any, *, name: str = "boxes", image: Any = None) -> np.ndarray:
    """Return ``boxes`` as a float64 array of shape ``(n, 4)`` (an empty sequence gives ``(0, 4)``)."""
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{_where(image, name)} must be a sequence of 4-number boxes; could not read it as numbers ({exc})."
        ) from None
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        hint = " Wrap a single box as [[a, b, c, d]]." if arr.shape == (4,) else ""
        raise InputError(f"{_where(image, name)} must have shape (n, 4); got shape {arr.shape}.{hint}")
    return arr


def _image_size(image_size: Any) -> tuple[float, float]:
    try:
        w, h = (float(v) for v in image_size)
    except (TypeError, ValueError):
        raise InputError(f"image_size must be (width, height); got {image_size!r}.") from None
    if not (np.isfinite(w) and np.isfinite(h) and w > 0 and h > 0):
        raise InputError(f"image_size must be two positive numbers (width, height); got {image_size!r}.")
    return w, h


def _fmt_box(b: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in b) + "]"


def check_boxes(
    boxes: Any,
    *,
    box_format: BoxFormat = "xyxy_pixel",
    image_size: Sequence[float] | None = None,
    image: Any = None,
    name: str = "boxes",
    allow_empty_area: bool = False,
) -> np.ndarray:
    """Validate boxes and return them as a float64 ``(n, 4)`` array.

    Checks that every coordinate is finite, that width and height are positive (or non-negative with
    ``allow_empty_area``), and that boxes lie inside the image: within ``[0, width] x [0, height]`` for pixel
    frames when ``image_size`` is known, within the canvas (``[0, 1]`` or ``[0, 1000]``) for normalised frames.
    Errors name the image and the box index.

    Examples
    --------
    >>> check_boxes([[0, 0, 10, 10]], image_size=(20, 20)).tolist()
    [[0.0, 0.0, 10.0, 10.0]]
    >>> check_boxes([[0, 0, 10, 10], [5, 5, 5, 9]], image="a.png")
    Traceback (most recent call last):
    ...
    medlens._validation.InputError: boxes of image 'a.png': box 1 [5, 5, 5, 9] has width 0; xyxy_pixel boxes need x1 < x2 and y1 < y2.
    """
    check_option(box_format, BOX_FORMATS, name="box_format")
    arr = as_boxes(boxes, name=name, image=image)
    if len(arr) == 0:
        return arr
    where = _where(image, name)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{where}: box {i} {_fmt_box(arr[i])} has a non-finite coordinate.")
    huge = (np.abs(arr) > MAX_COORD).any(axis=1)
    if huge.any():
        i = int(np.flatnonzero(huge)[0])
        raise InputError(f"{where}: box {i} {_fmt_box(arr[i])} has a coordinate beyond {MAX_COORD:g}; check its units.")
    if box_format == "xywh_pixel":
        w, h = arr[:, 2], arr[:, 3]
        rule = "xywh_pixel boxes need width > 0 and height > 0"
    else:
        w, h = arr[:, 2] - arr[:, 0], arr[:, 3] - arr[:, 1]
        rule = f"{box_format} boxes need x1 < x2 and y1 < y2"
    bad_w = (w < 0) if allow_empty_area else (w <= 0)
    bad_h = (h < 0) if allow_empty_area else (h <= 0)
    if (bad_w | bad_h).any():
        i = int(np.flatnonzero(bad_w | bad_h)[0])
        what = f"width {w[i]:g}" if bad_w[i] else f"height {h[i]:g}"
        raise InputError(f"{where}: box {i} {_fmt_box(arr[i])} has {what}; {rule}.")
    if box_format in _NORM_SCALE:
        lim_w = lim_h = _NORM_SCALE[box_format]
    elif image_size is not None:
        lim_w, lim_h = _image_size(image_size)
    else:
        return arr
    x2 = arr[:, 0] + arr[:, 2] if box_format == "xywh_pixel" else arr[:, 2]
    y2 = arr[:, 1] + arr[:, 3] if box_format == "xywh_pixel" else arr[:, 3]
    out = (arr[:, 0] < 0) | (arr[:, 1] < 0) | (x2 > lim_w) | (y2 > lim_h)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise InputError(
            f"{where}: box {i} {_fmt_box(arr[i])} ({box_format}) lies outside the image "
            f"[0, {lim_w:g}] x [0, {lim_h:g}]. Check the box format and image size, or clip the boxes "
            "(medlens.metrics.clip_boxes) and log it as a deviation."
        )
    return arr


def _to_xyxy_pixel(arr: np.ndarray, src: str, size: tuple[float, float] | None) -> np.ndarray:
    if src == "xyxy_pixel":
        return arr.copy()
    if src == "xywh_pixel":
        out = arr.copy()
        out[:, 2] = arr[:, 0] + arr[:, 2]
        out[:, 3] = arr[:, 1] + arr[:, 3]
        return out
    s = _NORM_SCALE[src]
    w, h = size  # type: ignore[misc]
    return arr / s * np.array([w, h, w, h])


def _from_xyxy_pixel(arr: np.ndarray, dst: str, size: tuple[float, float] | None) -> np.ndarray:
    if dst == "xyxy_pixel":
        return arr
    if dst == "xywh_pixel":
        out = arr.copy()
        out[:, 2] = arr[:, 2] - arr[:, 0]
        out[:, 3] = arr[:, 3] - arr[:, 1]
        return out
    s = _NORM_SCALE[dst]
    w, h = size  # type: ignore[misc]
    return arr / np.array([w, h, w, h]) * s


MAX_COORD = 1e7
"""No image is ten million pixels wide: a larger coordinate is an error (areas would overflow)."""


def convert_boxes(
    boxes: Any,
    src: BoxFormat,
    dst: BoxFormat,
    *,
    image_size: Sequence[float] | None = None,
    image: Any = None,
    check: bool = True,
) -> tuple[np.ndarray, BoxConversion]:
    """Convert boxes between frames; return ``(boxes, record)``.

    Normalised <-> pixel conversions need ``image_size=(width, height)``; ``xyxy_norm1 <-> xyxy_norm1000`` and
    ``xyxy <-> xywh`` do not. With ``check`` (default) the input is validated first (:func:`check_boxes` in the
    source frame). The record says what was done; log it as a deviation when ``record.deviation`` is true.

    Examples
    --------
    >>> out, rec = convert_boxes([[100, 250, 500, 750]], "xyxy_norm1000", "xyxy_pixel", image_size=(480, 400))
    >>> out.tolist()
    [[48.0, 100.0, 240.0, 300.0]]
    >>> rec.message()
    'converted 1 box(es) from xyxy_norm1000 to xyxy_pixel (image size 480x400)'
    >>> convert_boxes([[10, 20, 30, 40]], "xywh_pixel", "xyxy_pixel")[0].tolist()
    [[10.0, 20.0, 40.0, 60.0]]
    """
    check_option(src, BOX_FORMATS, name="src")
    check_option(dst, BOX_FORMATS, name="dst")
    needs_size = (src in _NORM_SCALE) != (dst in _NORM_SCALE)
    if needs_size and image_size is None:
        raise InputError(f"converting boxes from {src} to {dst} needs image_size=(width, height).")
    size = _image_size(image_size) if image_size is not None else None
    if check:
        arr = check_boxes(boxes, box_format=src, image_size=size, image=image, allow_empty_area=True)
    else:
        arr = as_boxes(boxes, image=image)
    n = len(arr)
    record = BoxConversion("convert", src, dst, n, 0 if src == dst else n, size if needs_size else None, image)
    if src == dst:
        return arr.copy(), record
    if src in _NORM_SCALE and dst in _NORM_SCALE:
        return arr / _NORM_SCALE[src] * _NORM_SCALE[dst], record
    return _from_xyxy_pixel(_to_xyxy_pixel(arr, src, size), dst, size), record


def clip_boxes(boxes: Any, image_size: Sequence[float], *, image: Any = None) -> tuple[np.ndarray, BoxConversion]:
    """Clip ``xyxy_pixel`` boxes to ``[0, width] x [0, height]``; return ``(boxes, record)``.

    The record counts the boxes that moved: log it as a deviation. Boxes may become empty (zero width or
    height) after clipping; they then match nothing.

    >>> out, rec = clip_boxes([[-5, 10, 50, 700], [1, 2, 3, 4]], (480, 640))
    >>> out.tolist(), rec.n_changed
    ([[0.0, 10.0, 50.0, 640.0], [1.0, 2.0, 3.0, 4.0]], 1)
    """
    w, h = _image_size(image_size)
    arr = as_boxes(boxes, image=image)
    if not np.isfinite(arr).all():
        i = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise InputError(f"{_where(image, 'boxes')}: box {i} {_fmt_box(arr[i])} has a non-finite coordinate.")
    out = np.clip(arr, 0.0, np.array([w, h, w, h]))
    changed = int((out != arr).any(axis=1).sum())
    return out, BoxConversion("clip", "xyxy_pixel", "xyxy_pixel", len(arr), changed, (w, h), image)


def box_iou(boxes_a: Any, boxes_b: Any) -> np.ndarray:
    """Pairwise intersection over union of ``xyxy`` boxes: an array of shape ``(len(a), len(b))``.

    Boxes must be finite with ``x1 <= x2`` and ``y1 <= y2``; a box of zero area has IoU 0 with everything.
    IoU is invariant to per-axis scaling, so any ``xyxy`` frame works as long as both sides share it.

    Examples
    --------
    >>> box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]]).round(4).tolist()
    [[0.3333, 0.0, 1.0]]
    """
    a = check_boxes(boxes_a, name="boxes_a", allow_empty_area=True)
    b = check_boxes(boxes_b, name="boxes_b", allow_empty_area=True)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)


def iou_pairs_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise IoU of row ``i`` of ``a`` with row ``i`` of ``b`` (both validated ``xyxy``)."""
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)


def iou_pairs_coco(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """Elementwise IoU of ``xywh`` detection/ground-truth pairs, operation for operation as pycocotools' ``bbIou``.

    Right edges are ``x + w`` (no +1 pixel), the union of a crowd region is the detection's area, and a pair
    whose intersection has no positive width and height has IoU 0. Same floating-point operations in the same
    order, so ties and threshold comparisons come out as in pycocotools.
    """
    iw = np.minimum(dt[:, 2] + dt[:, 0], gt[:, 2] + gt[:, 0]) - np.maximum(dt[:, 0], gt[:, 0])
    ih = np.minimum(dt[:, 3] + dt[:, 1], gt[:, 3] + gt[:, 1]) - np.maximum(dt[:, 1], gt[:, 1])
    ok = (iw > 0) & (ih > 0)
    inter = iw * ih
    da = dt[:, 2] * dt[:, 3]
    union = np.where(crowd, da, da + gt[:, 2] * gt[:, 3] - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=ok)
