"""The RADAR pipeline: retrieval-augmented diagnostic reasoning for rare diseases, with trust checks.

A case (``{id, clinical_history, caption}``, NOVA's text setting) is diagnosed by an LLM in three steps
(initial doctor → evidence reasoning over retrieved passages → final doctor), or by the retrieval-only
ranker when no LLM is given::

    from medlens.agents import AgentConfig, RadarAgent, diagnose_case
    from medlens.llm import OpenAIClient
    from medlens.retrieval import load_index

    index = load_index("runs/notes-index")
    client = OpenAIClient("http://127.0.0.1:8080/v1", "qwen2.5-7b-instruct")    # loopback only by default
    out = diagnose_case(case, index=index, client=client)                     # mode "agent"
    base = diagnose_case(case, index=index, client=client, config=AgentConfig(retrieval=False))  # Δ baseline
    out["primary"], out["differentials"], out["citations"], out["trace"]["n_invalid_citations"]

Every LLM step is a schema-validated :func:`medlens.llm.chat_json` call (one repair retry); cited ids are
checked against what was retrieved; parse failures are recorded and fall back to the retrieval-only ranking;
retrieved text is escaped and fenced as data; the leakage guard (:class:`medlens.retrieval.LeakageGuard`)
drops copies of the case. Its benchmarks (:func:`medlens.benchmarks.radar.run_radar_nova`, :func:`~medlens.benchmarks.radar.rare_hpo_agent_rows`)
live with the other benchmarks, above this package.
"""

from medlens.agents._agent import MODES, AgentConfig, RadarAgent, check_case, diagnose_case
from medlens.agents._diagnose_run import run_diagnose
from medlens.agents._prompts import (
    EVIDENCE_SCHEMA,
    FINAL_SCHEMA,
    INITIAL_SCHEMA,
    SYSTEM_PROMPT,
    evidence_messages,
    final_messages,
    format_case,
    format_passages,
    initial_messages,
)
from medlens.agents._runs import diagnose_cases, read_case, read_cases, summarize_results
from medlens.agents._task import AgentFactory, DiagnoseTask

__all__ = [
    "EVIDENCE_SCHEMA",
    "FINAL_SCHEMA",
    "INITIAL_SCHEMA",
    "MODES",
    "SYSTEM_PROMPT",
    "AgentConfig",
    "AgentFactory",
    "DiagnoseTask",
    "RadarAgent",
    "check_case",
    "diagnose_case",
    "diagnose_cases",
    "evidence_messages",
    "final_messages",
    "format_case",
    "format_passages",
    "initial_messages",
    "read_case",
    "read_cases",
    "run_diagnose",
    "summarize_results",
]
