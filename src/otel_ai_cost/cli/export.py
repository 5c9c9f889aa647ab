"""`otel-ai-cost export focus`: the tracked and the billed cost as a FinOps FOCUS 1.2 dataset.

```bash
otel-ai-cost export focus --from 2026-01-01 --to 2026-01-31 -o january.csv
otel-ai-cost export focus --from 2026-01-01 --to 2026-01-31 -o january.parquet      # needs the `focus` extra
otel-ai-cost export focus --from 2026-01-01 --to 2026-01-31 -o out.dat --format csv
```

The ledger is `--ledger URL`, else `OTEL_AI_COST_LEDGER`, else the default SQLite file. What the columns mean, how
tracked and billed rows differ and how to import the file into Vantage or Datadog: docs/focus.md.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

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
