"""Progress bars: on a terminal only, never with --json or -q; the embedding bar of ``rag index`` moves often."""

from __future__ import annotations

import sys

import pytest

from medlens.cli import _common


@pytest.fixture
def tty(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)


def test_progress_only_on_a_terminal_without_json_or_quiet(tty, monkeypatch):
    _common.setup_logging(0, False)
    assert _common.progress_enabled(False) is True
    assert _common.progress_enabled(True) is False  # --json
    _common.setup_logging(0, True)  # -q
    assert _common.progress_enabled(False) is False
    _common.setup_logging(0, False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)  # a pipe or a file
    assert _common.progress_enabled(False) is False


def test_quiet_flag_reaches_every_command(cli, monkeypatch):
    assert cli("-q", "taxonomy", "list").rc == 0
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert _common._QUIET[0] is True
    assert _common.progress_enabled(False) is False
    assert cli("taxonomy", "list").rc == 0  # each invocation sets it afresh
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert _common._QUIET[0] is False
    assert _common.progress_enabled(False) is True


def test_progress_bar_is_silent_when_disabled(capsys):
    from medlens._progress import progress_bar

    with progress_bar(10, False, "nothing") as bar:
        bar(10)
    assert capsys.readouterr() == ("", "")


@pytest.mark.slow
def test_embedding_bar_advances_every_256_texts_or_fewer(monkeypatch):
    """``rag index`` embeds through SentenceTransformerEmbedder: the bar moves at least every 256 texts (it
    moved every 1,024, minutes apart on a cold HPO build), and the vectors do not depend on the step."""
    pytest.importorskip("sentence_transformers")
    import numpy as np

    import medlens._progress as prog
    from medlens.retrieval import SentenceTransformerEmbedder

    steps: list[int] = []

    class Recorder:
        def __init__(self, total, enabled, description, **kw):
            assert total == 300
            self.enabled = enabled

        def __enter__(self):
            return steps.append if self.enabled else (lambda n: None)

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(prog, "progress_bar", Recorder)
    emb = SentenceTransformerEmbedder("minilm")
    texts = [f"finding {i}{' left' * (i % 3)}" for i in range(300)]
    v = emb.embed(texts, batch_size=32, progress=True)
    assert sum(steps) == 300
    assert max(steps) <= 256
    assert len(steps) == 2
    big = SentenceTransformerEmbedder.__new__(SentenceTransformerEmbedder)
    big.__dict__.update(emb.__dict__, block=1024)
    np.testing.assert_allclose(big.embed(texts, batch_size=32), v, atol=1e-5)  # one block of 300
