"""Progress of long work on a terminal, and what Ctrl-C says: one helper for `import`, `export` and `report`.

```python
from otel_ai_cost.cli.progress import interrupted, progress_bar, progress_option, show_progress

@click.command()
@progress_option
def command(progress: bool | None) -> None:
    with progress_bar("reading records", show=show_progress(progress), total=expected) as bar:
        for record in records:
            bar.advance()                 # or bar(done, total): the (done, total) callback of the importers
    ...
    interrupted("stopped after 1,200 of 5,000 records; re-running is safe")   # on KeyboardInterrupt: exit 130
```

**Shown only to a person.** The bar goes to standard error, and only when standard error is a terminal:
piped, redirected or in CI, nothing is written unless `--progress` asks for it (then the final state is printed
once); `--no-progress` turns it off on a terminal. Standard output stays the command's result alone.

**What it shows.** What is being done, a bar (a moving pulse while the total is unknown), records done of the
total (`1,200/5,000`, or `1,200/?`), the rate (`2,431 records/s`) and the time elapsed. Updates are throttled to
ten a second, so `advance()` per record costs a clock read, not a redraw.

**Ctrl-C.** `interrupted(message)` prints the message to standard error and exits with status 130 (128 + SIGINT,
what a shell reports for a command stopped by Ctrl-C). The bar is closed first by leaving its `with` block, so the
message is never drawn over.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn, Task, TaskID
    from rich.text import Text

__all__ = [
    "INTERRUPTED_EXIT_CODE",
    "ProgressReporter",
    "interrupted",
    "progress_bar",
    "progress_option",
    "show_progress",
]

INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT
_REFRESH_S = 0.1  # at most ten bar updates a second


def progress_option(function: click.decorators.FC) -> click.decorators.FC:
    """`--progress/--no-progress` (default None: shown when standard error is a terminal)."""
    return click.option(
        "--progress/--no-progress",
        default=None,
        help="Show progress on standard error (default: only when standard error is a terminal).",
    )(function)


def show_progress(progress: bool | None) -> bool:
    """Whether to draw the bar: as asked, else only when standard error is a terminal."""
    if progress is not None:
        return progress
    return sys.stderr.isatty()


class ProgressReporter:
    """How far the work is: `done` of `total` (None while unknown). Callable as `reporter(done, total)`, the
    progress callback of `import_usage_file` and `export_month`; `advance(count)` counts on from `done`."""

    def __init__(self, bar: Progress | None = None, task: TaskID | None = None) -> None:
        self.done = 0
        self.total: int | None = None
        self._bar, self._task = bar, task
        self._drawn_at = float("-inf")

    def __call__(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        self._draw()

    def advance(self, count: int = 1) -> None:
        self.done += count
        self._draw()

    def _draw(self, *, force: bool = False) -> None:
        if self._bar is None or self._task is None:
            return
        now = time.monotonic()
        finished = self.total is not None and self.done >= self.total
        if force or finished or now - self._drawn_at >= _REFRESH_S:
            self._drawn_at = now
            self._bar.update(self._task, completed=self.done, total=self.total)


@contextmanager
def progress_bar(
    description: str, *, show: bool, total: int | None = None, unit: str = "records"
) -> Iterator[ProgressReporter]:
    """A progress bar on standard error (rich) while the block runs; with `show` False, a reporter that only counts.

    The reporter's last state is drawn when the block ends, also when it ends by an exception (Ctrl-C included).
    """
    if not show:
        reporter = ProgressReporter()
        reporter.total = total
        yield reporter
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _rate_column(unit),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(file=sys.stderr)) as bar:
        reporter = ProgressReporter(bar, bar.add_task(description, total=total))
        reporter.total = total
        try:
            yield reporter
        finally:
            reporter._draw(force=True)


def interrupted(message: str) -> NoReturn:
    """Ctrl-C: says how far the work got (`message`) on standard error and exits with status 130."""
    click.echo(message, err=True)
    raise SystemExit(INTERRUPTED_EXIT_CODE)


def _rate_column(unit: str) -> ProgressColumn:
    """`2,431 records/s`: the rate over the last seconds (rich's estimate), the overall rate once finished. (rich
    is imported when a bar is drawn, not when the command line starts.)"""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            shown = "-" if speed is None else f"{speed:,.0f}"
            return Text(f"{shown} {unit}/s", style="progress.data.speed")

    return RateColumn()
