"""The ``medlens`` command line: ``medlens <group> <command>`` plus a few top-level verbs.

Bad input exits with code 2 and one line on stderr; internal failures exit with code 1.
"""

from __future__ import annotations

import logging
import sys

import typer

from medlens import __version__
from medlens.cli import (
    _anomaly,
    _bench,
    _demo,
    _doctor,
    _edit,
    _encoders,
    _fair,
    _finetune,
    _grounding,
    _hier,
    _llm,
    _metrics,
    _multiview,
    _nova,
    _radar,
    _rag,
    _report,
    _slice,
    _stitch,
    _taxonomy,
)
from medlens.cli._common import setup_logging
from medlens.llm import LLMError

__all__ = ["app", "main"]

app = typer.Typer(
    name="medlens",
    help="Measure what flat metrics hide in medical-imaging foundation models.\n\n"
    "Examples:\n\n  medlens demo\n\n  medlens taxonomy show cxr_anatomic_v1\n\n"
    "  medlens hier evaluate --taxonomy cxr_anatomic_v1 --truth truth.csv --pred pred.csv --json\n\n"
    "  medlens metrics boxes --gt gt.json --pred dets.json --mode coco --json\n\n"
    "  medlens encode --encoder minilm --texts findings.txt --out findings.npy\n\n"
    "  medlens nova evaluate --data ~/data/Nova --predictions pred.jsonl --json\n\n"
    "  medlens rag index --corpus hpo --out runs/hpo-index\n\n"
    "  medlens stitch fit --source lsa.npy --target minilm.npy --method ortho --out tr.npz\n\n"
    "  medlens slice brain.nii.gz --views 12 --size 224 --out runs/brain-slices\n\n"
    "  medlens anomaly score --model-path runs/brain-ddpm --images test/ --method thor --out runs/maps\n\n"
    "  medlens fair report --scores scores.csv --attributes race,gender --metric cider --json\n\n"
    "  medlens bench run rare-hpo --out runs/rare-hpo",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"medlens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-vv for debug)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """medlens command line."""
    setup_logging(verbose, quiet)


app.add_typer(_taxonomy.app, name="taxonomy")
_hier.app.command("finetune")(_finetune.finetune)
_hier.app.command("score")(_finetune.score)
app.add_typer(_hier.app, name="hier")
app.add_typer(_metrics.app, name="metrics")
app.add_typer(_encoders.app, name="encoders")
app.add_typer(_llm.app, name="llm")
app.add_typer(_nova.app, name="nova")
_rag.app.command("diagnose")(_radar.diagnose)
_rag.bench.command("nova")(_radar.nova_bench)
app.add_typer(_rag.app, name="rag")
app.add_typer(_stitch.app, name="stitch")
app.add_typer(_anomaly.app, name="anomaly")
app.add_typer(_grounding.app, name="ground")
app.add_typer(_multiview.app, name="multiview")
app.add_typer(_bench.app, name="bench")
app.add_typer(_fair.app, name="fair")
app.command("demo")(_demo.demo)
app.command("doctor")(_doctor.doctor)
app.command("report")(_report.report)
app.command("encode")(_encoders.encode)
app.command("slice")(_slice.slice_)
app.command("edit")(_edit.edit)

USER_ERRORS = (ValueError, TypeError, FileNotFoundError, NotADirectoryError, IsADirectoryError, ImportError, KeyError)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 internal error, 2 bad input or usage, 3 a statistical target
    that cannot be met, e.g. `hier calibrate` without a feasible threshold)."""
    try:  # typer >= 0.2x vendors its own copy of click
        from typer._click import exceptions as click_exc
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click import exceptions as click_exc

    exit_types = tuple({typer.Exit, *filter(None, [getattr(click_exc, "Exit", None)])})
    abort_types = tuple({typer.Abort, *filter(None, [getattr(click_exc, "Abort", None)])})
    cmd = typer.main.get_command(app)
    try:
        rv = cmd.main(args=argv, prog_name="medlens", standalone_mode=False)
    except exit_types as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except click_exc.UsageError as exc:
        if isinstance(exc, getattr(click_exc, "NoArgsIsHelpError", ())):
            exc.show()  # a bare group: show its help
            return 2
        where = exc.ctx.command_path if exc.ctx is not None else "medlens"
        msg = " ".join(exc.format_message().split())
        if getattr(exc, "option_name", None) == "-k" and exc.ctx is not None:
            names = {o for p in exc.ctx.command.params for o in getattr(p, "opts", ())}
            if "--top-k" in names:  # -k is the CAE branch depth elsewhere; hits are --top-k here
                msg += " (hits retrieved: --top-k; -k is --branch-depth on the commands that take it)"
        sys.stderr.write(f"medlens: error: {msg} (see '{where} --help')\n")
        return 2
    except click_exc.ClickException as exc:
        exc.show()
        return exc.exit_code
    except abort_types:
        sys.stderr.write("medlens: aborted\n")
        return 130
    except KeyboardInterrupt:
        sys.stderr.write("medlens: interrupted\n")
        return 130
    except LLMError as exc:  # an endpoint or model failed (after retries): one line, not a traceback
        sys.stderr.write(f"medlens: error: {' '.join(str(exc).split())}\n")
        logging.getLogger("medlens").debug("details", exc_info=True)
        return 1
    except USER_ERRORS as exc:
        if _own_import_error(exc):  # medlens failing to import itself is a bug, not a missing extra
            return _internal_error(exc)
        msg = exc.args[0] if (isinstance(exc, KeyError) and exc.args) else str(exc)
        sys.stderr.write(f"medlens: error: {' '.join(str(msg).split())}\n")
        logging.getLogger("medlens").debug("details", exc_info=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - last-resort handler of the CLI
        return _internal_error(exc)
    return int(rv or 0) if isinstance(rv, int) else 0


def _own_import_error(exc: BaseException) -> bool:
    """An ``ImportError`` raised because a medlens module lacks a name (``from medlens.x import y``)."""
    return isinstance(exc, ImportError) and (exc.name or "").split(".")[0] == "medlens"


def _internal_error(exc: BaseException) -> int:
    sys.stderr.write(f"medlens: internal error: {type(exc).__name__}: {exc} (rerun with -vv for a traceback)\n")
    logging.getLogger("medlens").debug("traceback", exc_info=True)
    return 1
