"""``medlens rag index``: an index folder under the run-folder rules (reuse, refuse, ``--overwrite``, lock).

The index's ``manifest.json`` carries the ``config_hash`` of its build request (:func:`build_request`), so an
index folder is a :class:`~medlens.io.RunFolder` like every other run's output: the same request reuses the
folder; another request is refused with the run folders' message unless ``overwrite``, which rebuilds; a second
build into a folder that one is writing is refused naming its PID. The new index is still written to a
temporary sibling folder and renamed into place, so a failed rebuild leaves the old index as it was.
"""

from __future__ import annotations

import os
from typing import Any

from medlens.io import RunFolder
from medlens.retrieval._corpus import Corpus
from medlens.retrieval._index import RetrievalIndex, build_request

__all__ = ["index_folder"]


def index_folder(
    corpus: Corpus,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    batch_size: int = 64,
    progress: bool = False,
    use_cache: bool = True,
    **kwargs: Any,
) -> tuple[RetrievalIndex, bool]:
    """Build the index of ``corpus`` into the folder ``out``, or reuse the one already there.

    ``kwargs`` are the options of :meth:`RetrievalIndex.build` that determine the index (embedder, dense,
    dense_mode, metric, chunking, ...). Returns ``(index, cached)``, ``cached`` being true when the folder
    already held an index of the same request. Raises :class:`~medlens.io.RunManifestMismatch` for a folder
    holding an index of another request unless ``overwrite`` (which rebuilds even an identical one), and
    :class:`~medlens.io.RunFolderLocked` while another process builds into ``out``.
    """
    request = build_request(corpus, **kwargs)
    with RunFolder(out, request, overwrite=overwrite) as folder:
        if folder.previous_hash == folder.config_hash and not overwrite:
            return RetrievalIndex.load(folder.path), True
        idx = RetrievalIndex.build(corpus, batch_size=batch_size, progress=progress, use_cache=use_cache, **kwargs)
        idx.save(folder.path, overwrite=True)
    return idx, False
