"""Omnidirectional slicing: 24 planes of 224×224 from a 128³ float32 volume, ours vs the per-view cube rotation
and vs SimpleITK per-plane resampling.

* ours (numpy): plane layout + the compiled kernel (numba, parallel over plane rows; the default when numba is
  installed), and the reference path, ONE ``scipy.ndimage.map_coordinates`` call (order 1) for all 24 planes.
* ours (torch): ``sample_planes_torch`` (grid built on the device, one ``grid_sample``), float32, CPU here
  (and CUDA when a GPU is visible).
* (a) the public package's method (OmniSlicer, which needs CUDA; emulated as the design note does): per view,
  rotate the whole cube with ``scipy.ndimage.affine_transform`` (image order 1 + mask order 0, as the package
  resamples both) and keep one slice. Timed on the 24 views; values compared with ours sampled on the same
  128×128, 1 mm grid (the cube's own sampling).
* (b) SimpleITK ``ResampleImageFilter`` per plane (224×224×1, linear), the same 24 planes; values compared on
  the pixels inside the volume.
Then volumes/s for a batch of 16 volumes (numpy loop vs one batched torch call).
Usage: python perf/omniview.py [--size 128] [--views 24] [--pixels 224] [--repeat 3] [--batch 16]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _util import timed  # noqa: E402

from medlens.slicing import plane_geometry, plane_normals, sample_planes, sample_planes_torch  # noqa: E402


def make_volume(n: int, seed: int = 0) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.standard_normal((n, n, n)), 2.0).astype(np.float32)


def rotate_cube_per_view(vol: np.ndarray, mask: np.ndarray, geo) -> list[np.ndarray]:
    """The package's pattern: for every view resample the whole cube (image + mask), keep the middle slice."""
    from scipy import ndimage

    n = vol.shape[0]
    h = (n - 1) / 2.0
    out = []
    for p in range(len(geo.normals)):
        m = np.stack([geo.u[p], geo.v[p], geo.normals[p]], axis=1)  # output axes (a, b, k) -> world = voxel
        off = geo.centres_mm[p] - m @ np.array([h, h, n // 2])
        img = ndimage.affine_transform(vol, m, offset=off, output_shape=(n, n, n), order=1, mode="constant")
        ndimage.affine_transform(mask, m, offset=off, output_shape=(n, n, n), order=0, mode="constant")
        out.append(img[:, :, n // 2])
    return out


def sitk_per_plane(vol: np.ndarray, geo) -> np.ndarray:
    import SimpleITK as sitk

    flip = np.diag([-1.0, -1.0, 1.0])  # our world frame is RAS (identity affine here); ITK's is LPS
    img = sitk.GetImageFromArray(vol.transpose(2, 1, 0))
    img.SetDirection(flip.ravel().tolist())
    d, half = geo.spacing_mm, (geo.size - 1) / 2
    out = []
    for p in range(len(geo.normals)):
        u, v, nrm = geo.u[p], geo.v[p], geo.normals[p]
        res = sitk.Resample(
            img, [geo.size, geo.size, 1], sitk.Transform(), sitk.sitkLinear,
            (flip @ (geo.centres_mm[p] - half * d * (u + v))).tolist(), [d, d, 1.0],
            (flip @ np.stack([v, u, -nrm], axis=1)).ravel().tolist(), 0.0, sitk.sitkFloat32,
        )  # fmt: skip
        out.append(sitk.GetArrayFromImage(res)[0])
    return np.stack(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--views", type=int, default=24)
    ap.add_argument("--pixels", type=int, default=224)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args(argv)
    n, s = args.size, args.pixels
    vol = make_volume(n)
    mask = (vol > 0.05).astype(np.float32)
    aff = np.eye(4)
    normals = plane_normals(args.views, seed=0)
    print(f"{args.views} planes of {s}x{s} from a {n}^3 float32 volume")

    def ours_numpy():
        geo = plane_geometry(normals, aff, vol.shape, size=s, fov_mm=float(n))
        return sample_planes(vol, aff, geo, order=1)

    import os
    import time

    from medlens.slicing._kernel import kernel_available

    os.environ["MEDLENS_SLICING_KERNEL"] = "0"
    t_mc, res_mc = timed(ours_numpy, args.repeat)
    os.environ.pop("MEDLENS_SLICING_KERNEL")
    print(f"ours numpy, one map_coordinates call (geometry included):  {t_mc * 1e3:8.1f} ms")
    if kernel_available():
        t0 = time.perf_counter()
        ours_numpy()
        first = time.perf_counter() - t0
        t_np, res = timed(ours_numpy, args.repeat)
        print(f"ours numpy, compiled kernel (numba; default when installed): {t_np * 1e3:6.1f} ms   first call "
              f"{first:.2f} s (compile or load from numba's cache); max |kernel - map_coordinates| = "
              f"{np.abs(res.slices - res_mc.slices).max():.2e}")  # fmt: skip
    else:
        t_np, res = t_mc, res_mc
        print("compiled kernel: numba not installed (pip install 'medlens[io]'): map_coordinates is 'ours'")
    geo = res.geometry

    has_torch = True
    try:
        import torch
    except ImportError:
        has_torch = False
    if has_torch:
        t_th, (th, _) = timed(lambda: sample_planes_torch(vol[None], aff, geo, order=1), args.repeat)
        print(f"ours torch CPU float32 (grid_sample):                     {t_th * 1e3:8.1f} ms   "
              f"max |torch - numpy| = {np.abs(th[0] - res.slices).max():.2e}")  # fmt: skip

    # (a) per-view whole-cube rotation, compared on the cube's own 1 mm grid
    geo_cube = plane_geometry(normals, aff, vol.shape, size=n, fov_mm=float(n))
    geo_cube_planes = geo_cube
    t_a, cube = timed(lambda: rotate_cube_per_view(vol, mask, geo_cube_planes), 1)
    t_c, mine = timed(lambda: sample_planes(vol, aff, geo_cube, order=1), args.repeat)
    diff_a = max(float(np.abs(c[v] - m[v]).max()) for c, m, v in zip(cube, mine.slices, mine.valid, strict=True))
    print(f"(a) rotate the {n}^3 cube per view (image+mask), keep 1 slice: {t_a * 1e3:8.1f} ms   "
          f"ours on the same {n}x{n} planes {t_c * 1e3:.1f} ms; ratio (a)/ours = {t_a / t_c:6.1f}x "
          f"(vs ours at {s}x{s}: {t_a / t_np:.1f}x); max interior diff {diff_a:.2e}")  # fmt: skip

    # (b) SimpleITK per plane
    try:
        t_b, ref = timed(lambda: sitk_per_plane(vol, geo), args.repeat)
        diff_b = float(np.abs(ref[res.valid] - res.slices[res.valid]).max())
        print(f"(b) SimpleITK ResampleImageFilter per plane:               {t_b * 1e3:8.1f} ms   "
              f"ratio (b)/ours = {t_b / t_np:5.2f}x; max interior diff {diff_b:.2e} "
              f"({res.valid.mean():.1%} of pixels inside)")  # fmt: skip
    except ImportError:
        print("(b) SimpleITK not installed: skipped")

    # throughput on a batch of volumes
    vols = np.stack([make_volume(n, seed=i) for i in range(args.batch)])
    t_loop, _ = timed(lambda: [sample_planes(v, aff, geo, order=1) for v in vols], 1)
    print(f"batch of {args.batch}: numpy {args.batch / t_loop:6.1f} volumes/s", end="")
    if has_torch:
        t_bt, _ = timed(lambda: sample_planes_torch(vols, aff, geo, order=1), 1)
        print(f", torch CPU {args.batch / t_bt:6.1f} volumes/s", end="")
        if torch.cuda.is_available():
            sample_planes_torch(vols, aff, geo, order=1, device="cuda")  # warm-up
            t_gpu, _ = timed(lambda: sample_planes_torch(vols, aff, geo, order=1, device="cuda"), args.repeat)
            print(f", torch CUDA {args.batch / t_gpu:8.1f} volumes/s", end="")
    print()


if __name__ == "__main__":
    main()
