"""The one progress bar of medlens: rich on a terminal, nothing with ``--json`` or when output is not a TTY."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["progress_bar"]


class progress_bar:
    """A rich progress bar when ``enabled`` (a terminal, no ``--json``), else a no-op; call it with a step."""

    def __init__(self, total: int, enabled: bool, description: str, *, transient: bool = False) -> None:
        self.total, self.enabled, self.description, self.transient = total, enabled, description, transient
        self._progress = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=self.transient,
        )
        self._progress.__enter__()
        task = self._progress.add_task(self.description, total=self.total)
        return lambda n: self._progress.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
