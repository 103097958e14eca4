"""Bulk work on Ray — sharded index builds, multiview extraction — and a Ray worker killed mid-job: one local Ray
(2 CPUs, ``conftest.ray_cluster``) for the module.

- ``rag index --shard-size`` with ``--executor ray``: the shards hold the vectors a local sharded build writes
  (bit for bit: the hashing embedder, the same blocks), and an IVF index filled on the actors (each shard
  encoded into its own copy of the trained index, merged on the driver) is byte for byte the local one.
- ``multiview extract --executor ray``: each case sliced and encoded on an actor holding its own (seeded)
  encoder; ``features.npz`` equals the local run's, the run folder resumes the same way, and a broken volume
  is bad input (exit 2) naming its row, not a Ray traceback.
- A worker process killed (SIGKILL) while it holds a block: Ray restarts the actor and runs the block again;
  the job's result equals the local executor's, with every block exactly once (``run_blocks`` checks).

Marked slow: Ray starts in ~10-30 s here.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pytest.importorskip("pyarrow")
pytestmark = pytest.mark.slow

from medlens.executors import LocalExecutor, RayExecutor, plan_blocks, run_blocks  # noqa: E402

WORDS = [
    "effusion",
    "cardiomegaly",
    "pneumothorax",
    "edema",
    "atelectasis",
    "nodule",
    "mass",
    "opacity",
    "fracture",
    "hernia",
]


@pytest.fixture(scope="module", autouse=True)
def _tasks_travel_by_value():
    """The tasks defined here are pickled by value (the actors cannot import this test module)."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _corpus(path, n: int = 300):
    rng = np.random.default_rng(0)
    with open(path, "w") as fh:
        for i in range(n):
            text = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 9))))
            fh.write(json.dumps({"id": f"d{i}", "title": f"t{i}", "text": text}) + "\n")
    return path


def test_sharded_index_on_ray_equals_local(ray_cluster, tmp_path, monkeypatch):

    from medlens.retrieval import load_index, run_index
    from medlens.retrieval._dense import index_to_bytes
    from medlens.retrieval._shards import ShardStore

    corpus = _corpus(tmp_path / "docs.jsonl")
    opts = {"embedder": "hashing:32", "dense": "faiss:IVF8,Flat", "shard_size": 64, "train_size": 256}
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "local-cache"))
    local = run_index(str(corpus), tmp_path / "local", **opts)
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "ray-cache"))
    dist = run_index(str(corpus), tmp_path / "ray", executor="ray", workers=2, **opts)
    a, b = local["build"]["shards"], dist["build"]["shards"]
    assert (a["n_shards"], a["written"], b["written"]) == (5, 5, 5)
    assert (a["dense"]["fill"], b["dense"]["fill"]) == ("parallel", "parallel")
    assert b["executor"]["name"] == "ray"
    assert b["executor"]["workers"] == 2
    sa, sb = (ShardStore(d["folder"], n=300, dim=32, size=64, key=_key(d["folder"])) for d in (a, b))
    np.testing.assert_array_equal(sa.all_vectors(), sb.all_vectors())
    ia, ib = load_index(tmp_path / "local"), load_index(tmp_path / "ray")
    assert index_to_bytes(ia.dense.index).tobytes() == index_to_bytes(ib.dense.index).tobytes()
    assert ia.manifest["request_hash"] == ib.manifest["request_hash"]


def _key(folder: str) -> str:
    with open(f"{folder}/shards.json") as fh:
        return json.load(fh)["key"]


class _KillOnce:
    """A task whose function SIGKILLs its own worker process on the first block it sees (a marker file says
    it happened), then doubles its items like the others."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __call__(self):
        def fn(items):
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return np.array([[2.0 * x] for x in items], dtype=np.float32)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)
            raise AssertionError("unreachable")

        return fn


def test_a_killed_worker_is_restarted_and_nothing_is_lost_or_duplicated(ray_cluster, tmp_path):
    items = list(range(40))
    blocks = plan_blocks(len(items), block_size=5)
    marker = tmp_path / "killed.pid"
    got = run_blocks(RayExecutor(workers=2), _KillOnce(str(marker)), items, blocks)
    assert marker.is_file()  # a worker did die
    want = run_blocks(LocalExecutor(), _KillOnce(str(marker)), items, blocks)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got.ravel(), 2.0 * np.arange(40))


def test_multiview_extract_on_ray_equals_local(ray_cluster, tmp_path, monkeypatch, capsys):
    nib = pytest.importorskip("nibabel")
    pytest.importorskip("torch")
    from medlens.cli import main

    rng = np.random.default_rng(0)
    (tmp_path / "vols").mkdir()
    rows = ["id,volume,mask,label"]
    for i in range(4):
        vol = rng.normal(0, 0.1, (12, 12, 12)).astype(np.float32)
        vol[4:8, 4:8, 4:8] += 1.0 + i
        nib.save(nib.Nifti1Image(vol, np.diag([2.0, 1.5, 2.5, 1.0])), tmp_path / "vols" / f"v{i}.nii.gz")
        rows.append(f"c{i},vols/v{i}.nii.gz,,{i % 2}")
    csv = tmp_path / "cases.csv"
    csv.write_text("\n".join(rows) + "\n")
    base = ["multiview", "extract", str(csv), "--views", "3", "--size", "16", "--intensity", "none", "--json"]
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "local-cache"))
    assert main([*base, "--out", str(tmp_path / "local")]) == 0
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "ray-cache"))
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "ray"), "--executor", "ray", "--workers", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["executor"]["name"] == "ray"
    with np.load(tmp_path / "local" / "features.npz") as a, np.load(tmp_path / "ray" / "features.npz") as b:
        assert a["ids"].tolist() == b["ids"].tolist()
        np.testing.assert_allclose(a["features"], b["features"], atol=1e-6, rtol=0)
        np.testing.assert_array_equal(a["normals"], b["normals"])
    lines = (tmp_path / "ray" / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["id"] for x in lines) == ["c0", "c1", "c2", "c3"]
    # a broken volume on an actor is bad input naming its row
    (tmp_path / "vols" / "v2.nii.gz").write_bytes(b"not a volume")
    assert main([*base, "--out", str(tmp_path / "ray2"), "--executor", "ray"]) == 2
    assert "row 4 (id c2)" in capsys.readouterr().err


def test_anomaly_score_on_ray_equals_local(ray_cluster, tmp_path, capsys):
    """Chunks of 3 images (seed + chunk) on 2 actors, each loading the tiny UNet: the maps of a local run (the same
    chunks and seeds; an actor runs torch on its one CPU, so float sums may be ordered otherwise: 1e-5)."""
    pytest.importorskip("torch")
    pytest.importorskip("monai")
    from medlens.cli import main
    from medlens.diffusion import run_anomaly_train

    rng = np.random.default_rng(0)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(5):
        np.save(imgs / f"case{i}.npy", rng.uniform(-1, 0, (16, 16)).astype(np.float32))
    tiny = {"channels": [8, 16], "attention_levels": [False, False], "norm_num_groups": 8, "num_head_channels": 8,
            "sample_size": 16}  # fmt: skip
    run_anomaly_train(tmp_path / "run", images=imgs, steps=1, batch_size=2, num_train_timesteps=50, unet=tiny)
    args = ["anomaly", "score", "--model-path", str(tmp_path / "run"), "--images", str(imgs), "--method", "anoddpm",
            "--t0", "10", "--steps", "2", "--batch-size", "3", "--json"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "ray"), "--executor", "ray", "--workers", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["executor"]["workers"] == 2
    for i in range(5):
        a, b = (np.load(tmp_path / d / "maps" / f"case{i}.npy") for d in ("local", "ray"))
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
