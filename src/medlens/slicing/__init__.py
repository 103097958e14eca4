"""Omnidirectional slicing of 3-D volumes: plane directions on RP² and physical-space plane sampling.

>>> import numpy as np
>>> from medlens.slicing import plane_normals, slice_volume
>>> vol = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
>>> s = slice_volume(vol, np.eye(4), views=3, method="canonical", size=4, fov_mm=4.0)
>>> s.slices.shape, s.normals[0].tolist()
((3, 4, 4), [0.0, 0.0, 1.0])

The core is numpy/scipy; the torch backend imports torch inside its functions. Geometry conventions are in
:mod:`medlens.slicing._geometry` (world millimetres through the image affine; right-handed in-plane axes).
"""

from medlens.slicing._directions import (
    CANONICAL_NORMALS,
    METHODS,
    NormalsQuality,
    canonicalize_normals,
    normals_quality,
    plane_angles,
    plane_normals,
)
from medlens.slicing._geometry import OFFSETS, PlaneGeometry, in_plane_axes, plane_geometry, voxel_coordinates
from medlens.slicing._run import montage_png, run_slice
from medlens.slicing._sampling import BACKENDS, Slices, sample_planes, sample_planes_torch
from medlens.slicing._slice import INTENSITY_MODES, normalize_intensity, slice_volume

__all__ = [
    "BACKENDS",
    "CANONICAL_NORMALS",
    "INTENSITY_MODES",
    "METHODS",
    "OFFSETS",
    "NormalsQuality",
    "PlaneGeometry",
    "Slices",
    "canonicalize_normals",
    "in_plane_axes",
    "montage_png",
    "normalize_intensity",
    "normals_quality",
    "plane_angles",
    "plane_geometry",
    "plane_normals",
    "run_slice",
    "sample_planes",
    "sample_planes_torch",
    "slice_volume",
    "voxel_coordinates",
]
