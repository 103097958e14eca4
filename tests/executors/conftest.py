"""The local Ray of the Ray test modules (``test_ray.py``, ``test_ray_llm.py``): started once per module."""

from __future__ import annotations

import pytest

from medlens.executors._executors import keep_stdout_for_results


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray with 2 CPUs; its workers keep their caches (embeddings, LLM replies) in a folder of their own."""
    ray = pytest.importorskip("ray")
    cache = tmp_path_factory.mktemp("ray-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDLENS_CACHE", str(cache))  # the workers inherit it when Ray starts
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    keep_stdout_for_results()  # as RayExecutor does: a CLI run's stdout stays its JSON
    yield cache
    ray.shutdown()
