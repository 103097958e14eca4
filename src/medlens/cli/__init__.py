"""The ``medlens`` command line: ``medlens <group> <command>`` plus a few top-level verbs.

Bad input exits with code 2 and one line on stderr; internal failures exit with code 1.
"""

from __future__ import annotations

import logging
import sys

import typer

from medlens import __version__
from medlens.cli import _demo, _doctor, _hier, _report, _taxonomy
from medlens.cli._common import setup_logging

__all__ = ["app", "main"]

app = typer.Typer(
    name="medlens",
    help="Measure what flat metrics hide in medical-imaging foundation models.\n\n"
    "Examples:\n\n  medlens demo\n\n  medlens taxonomy show cxr_anatomic_v1\n\n"
    "  medlens hier evaluate --taxonomy cxr_anatomic_v1 --truth truth.csv --pred pred.csv --json",
    no_args_is_help=True,
    add_completion=False,
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
app.add_typer(_hier.app, name="hier")
app.command("demo")(_demo.demo)
app.command("doctor")(_doctor.doctor)
app.command("report")(_report.report)

USER_ERRORS = (ValueError, TypeError, FileNotFoundError, NotADirectoryError, IsADirectoryError, ImportError, KeyError)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 internal error, 2 bad input or usage)."""
    import click

    cmd = typer.main.get_command(app)
    try:
        rv = cmd.main(args=argv, prog_name="medlens", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.UsageError as exc:
        exc.show()
        return 2
    except click.exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        sys.stderr.write("medlens: aborted\n")
        return 130
    except KeyboardInterrupt:
        sys.stderr.write("medlens: interrupted\n")
        return 130
    except USER_ERRORS as exc:
        msg = exc.args[0] if (isinstance(exc, KeyError) and exc.args) else str(exc)
        sys.stderr.write(f"medlens: error: {' '.join(str(msg).split())}\n")
        logging.getLogger("medlens").debug("details", exc_info=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - last-resort handler of the CLI
        sys.stderr.write(f"medlens: internal error: {type(exc).__name__}: {exc} (rerun with -vv for a traceback)\n")
        logging.getLogger("medlens").debug("traceback", exc_info=True)
        return 1
    return int(rv or 0) if isinstance(rv, int) else 0
