"""``medlens doctor``: the cache's contents (size, age), GPU, WordNet, and a text output with every JSON field;
shell completion."""

from __future__ import annotations

import json
import os

import pytest

from medlens._doctor import cache_contents, gpu_status

NOW = 1_800_000_000.0


def _file(path, n_bytes: int, age_days: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * n_bytes)
    os.utime(path, (NOW - age_days * 86400, NOW - age_days * 86400))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    _file(root / "retrieval" / "indexes" / "hpo-abc" / "manifest.json", 100, 2.0)
    _file(root / "retrieval" / "indexes" / "hpo-abc" / "dense.npy", 900, 3.0)  # the newest file gives the age
    _file(root / "retrieval" / "embeddings" / "k1" / "vecs.npy", 4096, 0.5)
    _file(root / "embeddings" / "enc1" / "store.npz", 2048, 10.0)
    _file(root / "llm" / "models" / "smol-1" / "model.safetensors", 5000, 1.0)
    _file(root / "llm" / "replies.sqlite", 10, 0.25)  # beside llm/models: its own group
    _file(root / "perf" / "x.json", 7, 4.0)
    monkeypatch.setenv("MEDLENS_CACHE", str(root))
    return root


def test_cache_contents_by_hand(cache):
    doc = cache_contents(now=NOW)
    assert doc["exists"] is True
    assert doc["path"] == str(cache)
    groups = {g["name"]: g for g in doc["groups"]}
    assert list(groups) == ["retrieval/indexes", "retrieval/embeddings", "embeddings", "llm/models", "llm", "perf"]
    assert groups["retrieval/indexes"]["items"] == [{"name": "hpo-abc", "bytes": 1000, "age_days": 2.0}]
    assert groups["retrieval/embeddings"]["items"] == [{"name": "k1", "bytes": 4096, "age_days": 0.5}]
    assert groups["embeddings"]["items"] == [{"name": "enc1", "bytes": 2048, "age_days": 10.0}]
    assert groups["llm/models"]["items"] == [{"name": "smol-1", "bytes": 5000, "age_days": 1.0}]
    assert groups["llm"]["items"] == [{"name": "replies.sqlite", "bytes": 10, "age_days": 0.25}]
    assert groups["perf"]["what"] == "other entries"
    assert doc["bytes"] == 1000 + 4096 + 2048 + 5000 + 10 + 7
    assert all(g["bytes"] == sum(i["bytes"] for i in g["items"]) for g in doc["groups"])


def test_cache_contents_of_a_missing_folder_creates_nothing(tmp_path):
    doc = cache_contents(tmp_path / "nothing")
    assert doc == {"path": str(tmp_path / "nothing"), "exists": False, "bytes": 0, "groups": []}
    assert not (tmp_path / "nothing").exists()


def test_gpu_status_without_torch(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    st = gpu_status()
    assert st["torch"] is None
    assert st["cuda_available"] is False
    assert "extra" in st["note"]


def test_gpu_status_matches_torch():
    torch = pytest.importorskip("torch")
    st = gpu_status()
    assert st["torch"] == torch.__version__
    assert st["cuda_available"] == torch.cuda.is_available()
    assert len(st["devices"]) == (torch.cuda.device_count() if st["cuda_available"] else 0)


def test_doctor_text_shows_everything_the_json_has(cli, cache):
    from medlens.cli._doctor import SHOWN

    res = cli("doctor", "--json")
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert set(doc) <= set(SHOWN), set(doc) - set(SHOWN)
    assert {"cache_contents", "gpu", "wordnet", "extras", "data"} <= set(doc)
    assert doc["provenance"]["command"] == "doctor"
    wn = doc["wordnet"]
    assert set(wn) == {"path", "origin", "lexnames", "skip_reason"}
    assert (wn["path"] is None) == bool(wn["skip_reason"])

    text = cli("doctor")
    assert text.rc == 0, text.err
    out = text.out
    assert doc["medlens_version"] in out
    assert doc["python"] in out
    assert doc["platform"] in out
    assert doc["provenance"]["config_hash"][:12] in out
    assert f"cache: {cache}" in out
    for g in doc["cache_contents"]["groups"]:
        assert f"  {g['name']}/: {g['what']}; {len(g['items'])} item(s)" in out
        for item in g["items"]:
            assert f"    {item['name']}  " in out
    assert "hpo-abc  1000 B" in out  # size, then age
    for extra, st in doc["extras"].items():
        assert f"[{extra}] {'ok' if st['ok'] else 'missing'}" in out
    for key in doc["data"]:
        assert key in out
    assert "GPU: " in out
    assert "CUDA devices: " in out or doc["gpu"]["torch"] is None
    assert "WordNet (METEOR): " in out
    assert (wn["path"] or wn["skip_reason"]) in out
    assert "LLM API key" in out


def test_shell_completion_script(cli, capsys, monkeypatch):
    from medlens.cli import main

    # --show-completion SHELL names the shell; without this typer detects the parent shell instead, which fails
    # (prints "Shell  not supported") wherever the tests do not run under a known interactive shell
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    with pytest.raises(SystemExit) as exc:  # typer's completion options exit themselves
        main(["--show-completion", "bash"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "_MEDLENS_COMPLETE=complete_bash" in out
    assert "complete -o default -F _medlens_completion medlens" in out
    res = cli("--help")
    assert "--install-completion" in res.out


def test_an_unreadable_cache_folder_is_reported_not_fatal(cache, monkeypatch):
    from pathlib import Path

    real = Path.iterdir

    def iterdir(self):
        if self.name == "embeddings" and self.parent == cache:
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    doc = cache_contents(now=NOW)
    assert doc["unreadable"] == [f"{cache / 'embeddings'}: Permission denied"]
    assert "embeddings" not in {g["name"] for g in doc["groups"]}
    assert "llm/models" in {g["name"] for g in doc["groups"]}
