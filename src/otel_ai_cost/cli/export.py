"""`otel-ai-cost export focus`: the tracked and the billed cost as a FinOps FOCUS 1.2 dataset.

```bash
otel-ai-cost export focus --from 2026-01-01 --to 2026-01-31 -o january.csv
otel-ai-cost export focus --from 2026-01-01 --to 2026-01-31 -o january.parquet      # needs the `focus` extra
otel-ai-cost export focus --from 2026-01-01 --to 2026-01-31 -o out.dat --format csv
otel-ai-cost export jsonl --month 2026-11 -o history/      # the monthly archive: history/usage-2026-11.jsonl
```

The ledger is `--ledger URL`, else `OTEL_AI_COST_LEDGER`, else the default SQLite file. What the columns mean, how
tracked and billed rows differ and how to import the file into Vantage or Datadog: docs/focus.md. The archive's
format: `otel_ai_cost.exports.jsonl` and docs/ledger.md ("Monthly archive").
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import click

from otel_ai_cost.cli.progress import interrupted, progress_bar, progress_option, show_progress
from otel_ai_cost.cli.report import ledger_option, open_ledger
from otel_ai_cost.exports.focus import (
    FOCUS_VERSION,
    FORMATS,
    decimal_text,
    focus_dataset,
    format_of,
    read_ledger,
    write_focus,
)
from otel_ai_cost.exports.jsonl import ExportCancelled, archive_name, expected_records, export_month, month_days
from otel_ai_cost.ledger.report import format_amount

__all__ = ["export"]


@click.group()
def export() -> None:
    """Export the ledger's data for other tools."""


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a UTC day YYYY-MM-DD, got {value!r}", param_hint=name) from None


@export.command("focus")
@click.option("--from", "start", required=True, metavar="YYYY-MM-DD", help="First UTC day (inclusive).")
@click.option("--to", "end", required=True, metavar="YYYY-MM-DD", help="Last UTC day (inclusive).")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write (replaced if it exists).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="csv or parquet (default: from the file's suffix, .csv or .parquet).",
)
@ledger_option
def focus(start: str, end: str, output: Path, fmt: str | None, ledger: str | None) -> None:
    """Tracked and billed cost of the UTC days --from..--to as a FinOps FOCUS 1.2 cost-and-usage dataset.

    One row per tracked day, provider, model, environment, service, team and tier (x_CostSource=tracked) and one per
    billed line (x_CostSource=billed). BilledCost counts each provider's day once: the bill where there is one, the
    tracked estimate where there is none; every other row has BilledCost 0 and its own figure in x_Amount. A tracked
    row with calls of unknown cost is a lower bound (x_CostIsLowerBound, x_UnknownCostCalls), never a silent $0.
    """
    start_day, end_day = _day(start, "--from"), _day(end, "--to")
    if start_day > end_day:
        raise click.UsageError(f"--from {start_day} is after --to {end_day}")
    by_suffix = format_of(output)
    if fmt is None and by_suffix is None:
        raise click.BadParameter(
            f"cannot tell the format of {str(output)!r}: name it .csv or .parquet, or give --format",
            param_hint="-o/--output",
        )
    if fmt is not None and by_suffix is not None and fmt != by_suffix:
        raise click.UsageError(f"--format {fmt} contradicts the file name {str(output)!r} ({by_suffix})")
    fmt = fmt or by_suffix
    if not output.parent.is_dir():
        raise click.BadParameter(f"the directory {str(output.parent)!r} does not exist", param_hint="-o/--output")
    with open_ledger(ledger, create=False) as store:
        tracked, billed = read_ledger(store, start_day, end_day)
    dataset = focus_dataset(tracked, billed, start_day=start_day, end_day=end_day)
    try:
        write_focus(dataset, output, fmt)
    except (ValueError, RuntimeError, OSError) as exc:
        raise click.ClickException(f"cannot write {str(output)!r}: {exc}") from exc
    for note in dataset.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"wrote {len(dataset.rows)} FOCUS {FOCUS_VERSION} rows ({dataset.tracked_rows} tracked, {dataset.billed_rows} "
        f"billed) to {output}; BilledCost sums to {decimal_text(dataset.billed_cost)} USD (each provider's day "
        "counted once: the bill where there is one, else the tracked estimate)"
    )


@export.command("jsonl")
@click.option("--month", required=True, metavar="YYYY-MM", help="The UTC month to archive.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(),  # text, not a Path: a trailing slash ("history/") says "a directory"
    help="A directory (the archive is DIR/usage-YYYY-MM.jsonl; created if missing) or the file to write.",
)
@click.option("--environment", "-e", help="Only this environment's records (default: every environment).")
@progress_option
@ledger_option
def jsonl(month: str, output: str, environment: str | None, progress: bool | None, ledger: str | None) -> None:
    """Archive a month of ledger records as JSON Lines, one record per line with every field (the monthly archive).

    `otel-ai-cost import FILE` reads the archive back without loss: each record keeps its own identity, so
    importing it twice, or into the ledger it came from, changes nothing. The file is written to a temporary file
    and renamed at the end: it is complete or absent, and Ctrl-C (exit status 130) leaves no partial file.
    """
    try:
        month_days(month)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--month") from None
    path = _archive_path(output, month, environment)
    show = show_progress(progress)
    try:
        with open_ledger(ledger, create=False) as store:
            expected = expected_records(store, month, environment) if show else None
            with progress_bar(f"exporting {month}", show=show, total=expected) as bar:
                result = export_month(store, month, path, environment=environment, on_progress=bar, expected=expected)
    except ExportCancelled as cancelled:
        interrupted(str(cancelled))
    except KeyboardInterrupt:  # while opening the ledger or counting: nothing was written
        interrupted(f"interrupted before any record was written; {path} was not written. Re-running is safe.")
    except OSError as exc:
        raise click.ClickException(f"cannot write {str(path)!r}: {exc}") from exc
    scope = f"environment {environment}" if environment else "every environment"
    if not result.records:
        click.echo(f"note: the ledger has no records of {month} ({scope}): the archive is empty", err=True)
    unknown = result.unknown_cost_calls
    lower = f" (a lower bound: {_records(unknown)} of unknown cost)" if unknown else ""
    click.echo(
        f"wrote {_records(result.records)} of {month} ({scope}) to {path}: {format_amount(result.amount)} USD{lower}"
    )


def _records(count: int) -> str:
    return f"{count:,} record{'' if count == 1 else 's'}"


def _archive_path(output: str, month: str, environment: str | None) -> Path:
    """`output` itself, or the archive's name in it when it is a directory (an existing one, or a path written
    with a trailing slash, created here)."""
    path = Path(output)
    if path.is_dir() or output.endswith(("/", os.sep)):
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise click.BadParameter(
                f"cannot create the directory {output!r}: {exc}", param_hint="-o/--output"
            ) from None
        return path / archive_name(month, environment)
    if not path.parent.is_dir():
        raise click.BadParameter(f"the directory {str(path.parent)!r} does not exist", param_hint="-o/--output")
    return path
