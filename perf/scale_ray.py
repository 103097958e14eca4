"""Throughput of ``medlens encode`` with the local executor and with Ray (1 and 2 actors), as ratios; then the
measured rates a 24M-snippet index rests on and a sizing table built from them.

    PYTHONPATH=src python perf/scale_ray.py [--n 2000] [--batch-size 32] [--quick-train] [--fill-rows 100000]

Texts are short synthetic findings encoded with the packaged MiniLM. The local run is timed after a warm-up
(torch imported, model read once); Ray's time includes starting each actor pool (each actor imports torch and
loads its own model) but not ``ray.init``, which is timed apart. On a machine with few cores Ray is expected to
be slower than ``local``: the gain comes from more nodes or GPUs.

The sizing part measures, on this machine, what a PubMed-scale build (24M snippets × 384-d, MiniLM) is made of:
MiniLM's embedding rate (texts/s, from the local run above), the training time of ``IVF4096,PQ48`` on the
default 100,000-row sample, and the rate at which trained IVF-PQ / IVF-Flat / HNSW indexes take vectors. It then
prints memory per index type and the build time on one node like this one, and the nodes needed for a one-hour
build (embedding and filling spread over the nodes; training on one). Only the rates are measured; the table is
arithmetic on them (linear in nodes, which is what independent shards give).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

N_TARGET = 24_000_000
DIM = 384


def _unit(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


#: (factory, bytes per vector held in memory at search time)
INDEXES = (
    ("IVF4096,PQ48", 48 + 8),  # PQ code + 64-bit id in the inverted list
    ("IVF4096,Flat", 4 * DIM + 8),
    ("HNSW32,Flat", 4 * DIM + 2 * 32 * 4 + 8),  # vector + level-0 links (2M) + level and offset, about
    ("Flat", 4 * DIM),
)


def _index_rates(full_train: bool, n_add: int) -> dict[str, dict[str, float]]:
    """Seconds to train (on the default sample: 64 rows per list) and vectors/s to fill each index type here.

    Without ``full_train`` (``--quick-train``) the IVF quantiser is trained at a quarter of the lists on a quarter
    of the rows (k-means costs rows x lists, so x16 is the full training: measured 68 s vs 67 s estimated for
    IVF4096,PQ48 on 2 idle cores) and scaled; its fill rate is then that of the smaller index (about 2.4x higher).
    """
    import faiss

    from medlens.retrieval._dense import _factory, _train
    from medlens.retrieval._shards import _train_rows

    add = _unit(n_add, DIM, 1)
    out: dict[str, dict[str, float]] = {}
    coarse_small = None  # seconds of the IVF1024 coarse k-means alone (IVF1024,Flat)
    for factory, per_vector in sorted(INDEXES, key=lambda x: x[0] != "IVF4096,Flat"):  # the flat IVF first
        small = factory if full_train or "IVF" not in factory else factory.replace("IVF4096", "IVF1024")
        index = _factory(faiss, DIM, small)
        t = time.perf_counter()
        if not index.is_trained:
            _train(index, _unit(_train_rows(small, N_TARGET, None), DIM, 0), small)
        t_train = time.perf_counter() - t
        note = ""
        if small != factory:
            # k-means costs rows x lists: the coarse quantiser's training is x16 at IVF4096 on 4x the rows; the
            # PQ codebooks' is not (FAISS trains them on at most 256 x 256 rows either way)
            if factory == "IVF4096,Flat":
                coarse_small = t_train
                t_train, note = 16 * t_train, " (x16 of IVF1024,Flat)"
            else:
                t_train, note = 16 * coarse_small + (t_train - coarse_small), " (coarse x16 of IVF1024 + PQ)"
        t = time.perf_counter()
        index.add(add[: n_add // (10 if factory.startswith("HNSW") else 1)])
        rate = index.ntotal / (time.perf_counter() - t)
        out[factory] = {
            "train_s": t_train,
            "train_note": note,
            "add_per_s": rate,
            "bytes_per_vector": per_vector,
            "n_train": _train_rows(factory, N_TARGET, None) if "IVF" in factory else 0,
        }
    return {f: out[f] for f, _ in INDEXES}


def sizing(texts_per_s: float, full_train: bool, n_add: int) -> None:
    rates = _index_rates(full_train, n_add)
    print(f"\nmeasured here ({os.cpu_count()} CPUs): MiniLM {texts_per_s:.0f} texts/s (local executor, above)")
    for f, r in rates.items():
        train = f"trains on {r['n_train']:,} rows in {r['train_s']:.0f} s{r['train_note']}, " if r["n_train"] else ""
        print(f"  {f:<14}{train}fills {r['add_per_s']:,.0f} vectors/s")
    t_embed = N_TARGET / texts_per_s
    print(
        f"\nsizing for {N_TARGET / 1e6:.0f}M snippets x {DIM}-d on nodes like this one (arithmetic on the rates above)"
    )
    print(f"{'index':<14}{'memory':>10}{'train':>9}{'embed, 1 node':>15}{'fill, 1 node':>14}{'nodes for 1 h':>15}")
    for f, r in rates.items():
        mem = N_TARGET * r["bytes_per_vector"] / 2**30
        t_fill = N_TARGET / r["add_per_s"]
        budget = 3600.0 - r["train_s"]  # training (and the merge) on one node; shards spread over the nodes
        if "IVF" in f:  # embedding and filling both split over the nodes
            nodes = f"{int(np.ceil((t_embed + t_fill) / budget))}" if budget > 0 else "no (train)"
        else:  # a graph or flat index fills on one node, after the embedding
            nodes = "no (fill)" if t_fill >= budget else f"{int(np.ceil(t_embed / (budget - t_fill)))}"
        print(f"{f:<14}{mem:>8.1f} G{r['train_s']:>8.0f}s{t_embed / 3600:>13.1f} h{t_fill / 3600:>12.2f} h{nodes:>15}")
    print(
        "memory: codes or vectors + ids held by the searching process (IVF centroids, 6 MB, aside); HNSW links are "
        "M=32 x 2 at level 0.\nEmbedding dominates: on a GPU node MiniLM runs one to two orders of magnitude faster "
        "(not measured here: no GPU), which divides the node count accordingly."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument(
        "--quick-train",
        action="store_true",
        help="estimate IVF4096's training as x16 that of IVF1024 (its fill rate is then IVF1024's too, higher)",
    )
    ap.add_argument("--fill-rows", type=int, default=100_000, help="vectors added to time each index's fill")
    args = ap.parse_args()
    import ray

    from medlens.encoders import run_encode

    words = ["effusion", "cardiomegaly", "pneumothorax", "clear lungs", "edema", "atelectasis", "nodule"]
    texts = [f"{i}: " + " with ".join(words[(i + j) % 7] for j in range(i % 6 + 1)) for i in range(args.n)]
    tmp = Path(tempfile.mkdtemp())
    src = tmp / "texts.txt"
    src.write_text("\n".join(texts) + "\n")

    def timed(name: str, **kw) -> tuple[float, np.ndarray]:
        t = time.perf_counter()
        run_encode("minilm", tmp / f"{name}.npy", texts=src, batch_size=args.batch_size, **kw)
        return time.perf_counter() - t, np.load(tmp / f"{name}.npy")

    os.environ["MEDLENS_CACHE"] = str(tmp / "cache-warm")
    warm = tmp / "warm.txt"
    warm.write_text("warm up\n")
    run_encode("minilm", tmp / "warm.npy", texts=warm)  # imports torch and reads the model once, untimed
    os.environ["MEDLENS_CACHE"] = str(tmp / "cache-local")
    t_local, ref = timed("local")
    os.environ["MEDLENS_CACHE"] = str(tmp / "cache-ray")  # actors compute, never read the local run's cache
    t0 = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False)
    t_init = time.perf_counter() - t0
    print(f"n={args.n} texts, batch {args.batch_size}, {os.cpu_count()} CPUs; ray.init {t_init:.1f} s")
    print(f"{'executor':<14}{'wall s':>8}{'texts/s':>9}{'vs local':>9}{'max |diff|':>12}")
    print(f"{'local':<14}{t_local:8.1f}{args.n / t_local:9.0f}{1.0:9.2f}{0.0:12.1e}")
    for workers in (1, 2):
        t, got = timed(f"ray{workers}", executor="ray", workers=workers)
        diff = float(np.abs(got - ref).max())
        print(f"{f'ray x{workers}':<14}{t:8.1f}{args.n / t:9.0f}{t_local / t:9.2f}{diff:12.1e}")
    ray.shutdown()
    sizing(args.n / t_local, not args.quick_train, args.fill_rows)


if __name__ == "__main__":
    main()
