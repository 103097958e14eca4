"""The ``stitch-reports`` benchmark: LSA → MiniLM latent-space stitching on the ``cxr-reports`` split."""

from medlens.benchmarks.stitch_reports._run import SPEC, LsaEncoder, report_section, run

__all__ = ["SPEC", "LsaEncoder", "report_section", "run"]
