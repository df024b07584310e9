"""The bar a long monthly job shows on the operator's terminal while it reads (none without one)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["Update", "progress_bar"]

# done, total, and what is being done now (None: as before)
Update = Callable[[int, int, str | None], None]


@contextmanager
def progress_bar(console: Console | None, title: str) -> Iterator[Update]:
    """A bar titled `title`, gone when done; with no console, an update that does nothing."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=console is None,
    ) as bar:
        task = bar.add_task(title, total=None)

        def update(done: int, total: int, what: str | None = None) -> None:
            description = title if what is None else f"{title} {what}"
            bar.update(task, completed=done, total=total, description=description)

        yield update
