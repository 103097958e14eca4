"""``rag diagnose --cases`` on an executor (``--executor ray``): each worker builds its own agent.

:class:`AgentFactory` is a picklable recipe for the :class:`~medlens.agents.RadarAgent` a run uses: the index
folder (opened by the worker itself), a :class:`~medlens.llm.ClientFactory` for the ``--model-path`` model (or
none: the retrieval-only ranker) and the :class:`~medlens.agents.AgentConfig` (leakage guard included).
:class:`DiagnoseTask` is the task of :mod:`medlens.executors`: ``task()`` builds the agent once and returns a
function of one block of cases that returns one result record per case, from the same
:meth:`~medlens.agents.RadarAgent.diagnose` an in-process run calls. The driver alone appends them to
``results.jsonl``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medlens._validation import InputError
from medlens.agents._agent import RadarAgent
from medlens.agents._config import AgentConfig
from medlens.io import to_json

__all__ = ["AgentFactory", "DiagnoseTask"]


class AgentFactory:
    """A picklable recipe: ``factory()`` returns ``RadarAgent(load_index(index), client_factory(), config)``.

    ``index`` ``None`` is the no-retrieval baseline; ``client_factory`` ``None`` the retrieval-only ranker. The
    index folder is kept as an absolute path (a worker may start in another working folder).
    """

    def __init__(
        self, index: str | os.PathLike | None, client_factory: Callable[[], Any] | None, config: AgentConfig
    ) -> None:
        self.index = Path(index).expanduser().resolve() if index is not None else None
        self.client_factory = client_factory
        self.config = config

    def __repr__(self) -> str:
        return f"AgentFactory(index={str(self.index)!r}, client_factory={self.client_factory!r})"

    def __call__(self) -> RadarAgent:
        from medlens.retrieval import load_index

        idx = load_index(self.index) if self.index is not None else None
        client = self.client_factory() if self.client_factory is not None else None
        return RadarAgent(idx, client, self.config)


class DiagnoseTask:
    """A picklable task: ``task()`` returns ``fn(cases) -> [result record, ...]`` (one per case, in order).

    ``agent`` (the local executor) is used as it is and never pickled; a Ray actor builds its own with
    ``agent_factory``.
    """

    def __init__(self, agent_factory: Callable[[], RadarAgent] | None = None, *, agent: RadarAgent | None = None):
        if agent is None and agent_factory is None:
            raise InputError("a diagnose task needs an agent or an agent factory (medlens.agents.AgentFactory).")
        self.agent_factory = agent_factory
        self._agent = agent

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_agent"] = None  # a worker builds its own (index, model)
        return state

    def __call__(self) -> Callable[[list], list]:
        agent = self._agent if self._agent is not None else self.agent_factory()  # type: ignore[misc]

        def run(cases: list) -> list:
            # as the run log will write them (strict JSON), so a record reads the same whichever process made it
            return [json.loads(to_json(agent.diagnose(case), indent=None)) for case in cases]

        return run
