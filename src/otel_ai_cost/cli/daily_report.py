"""`otel-ai-cost report daily`: the daily report (the seeds' structure), as console tables, JSON, HTML or Markdown.

```bash
otel-ai-cost report daily                                  # today (UTC), every environment, on the terminal
otel-ai-cost report daily --date 2026-11-22 --days 7 --environment cicd
otel-ai-cost report daily --format json -o report.json     # the seeds' JSON (docs/reports.md has its schema)
otel-ai-cost report daily --format html -o report.html     # one self-contained page with charts
otel-ai-cost report daily --format markdown >> "$GITHUB_STEP_SUMMARY"
otel-ai-cost report daily --budgets config/budgets.yaml    # with each budget's burn
```

The ledger is `--ledger URL`, else `OTEL_AI_COST_LEDGER`, else the default SQLite file; it is only read (a ledger
that does not exist is an error, never created). Budgets come from `--budgets FILE`, else `$OTEL_AI_COST_BUDGETS`
when set; without either the report has no budget section.
"""

from __future__ import annotations

import os
import shutil
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from otel_ai_cost.budgets.config import BudgetConfigError, find_budgets_file, load_budgets
from otel_ai_cost.cli.report import check_environment, ledger_option, ledger_url, open_ledger
from otel_ai_cost.contract import Env
from otel_ai_cost.reports.anomalies import DEFAULT_FACTOR
from otel_ai_cost.reports.daily import MAX_DAYS, build_daily_report
from otel_ai_cost.reports.model import DailyReport

__all__ = ["FORMATS", "daily", "render"]

FORMATS = ("console", "json", "html", "markdown")
MIN_WIDTH = 80


def render(report: DailyReport, fmt: str, *, width: int | None = None) -> str:
    """The report in `fmt` (one of FORMATS); `width` is the console format's line width (default 160)."""
    if fmt == "json":
        from otel_ai_cost.reports.json_report import render_json

        return render_json(report)
    if fmt == "markdown":
        from otel_ai_cost.reports.markdown import render_markdown

        return render_markdown(report)
    if fmt == "html":
        try:
            from otel_ai_cost.reports.html import render_html
        except ImportError as exc:
            raise click.ClickException(f"the HTML report is not available in this installation ({exc})") from None
        return render_html(report)
    from otel_ai_cost.reports.console import render_console

    return render_console(report, width=width)


def _terminal_width() -> int:
    """The terminal's width (`$COLUMNS` first), at least MIN_WIDTH; 160 when standard output is no terminal."""
    return max(MIN_WIDTH, shutil.get_terminal_size((160, 24)).columns)


def _day(value: str | None) -> date:
    if value is None:
        return datetime.now(timezone.utc).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a UTC day YYYY-MM-DD, got {value!r}", param_hint="--date") from None


def _factor(value: str) -> Decimal:
    try:
        factor = Decimal(value)
    except InvalidOperation:
        factor = Decimal(0)
    if not factor.is_finite() or factor <= 1 or factor > 1000:
        raise click.BadParameter(
            f"expected a number above 1 and at most 1000 (3 = 3x), got {value!r}", param_hint="--factor"
        )
    return factor


@click.command("daily")
@click.option("--date", "day", metavar="YYYY-MM-DD", help="The report's (last) UTC day (default: today, UTC).")
@click.option(
    "--days", type=click.IntRange(1, MAX_DAYS), default=1, show_default=True, help="How many days, ending --date."
)
@click.option("--environment", "-e", help="Only this deployment environment (default: all).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="console", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not to stdout.")
@click.option(
    "--budgets", metavar="FILE", help=f"A budgets file: each budget's burn (default: ${Env.BUDGETS}, if set)."
)
@click.option(
    "--factor",
    default=str(DEFAULT_FACTOR),
    show_default=True,
    help="Flag spend at least this many times its trailing 7-day average (3 = a 200% increase or more).",
)
@ledger_option
def daily(
    day: str | None,
    days: int,
    environment: str | None,
    fmt: str,
    output: Path | None,
    budgets: str | None,
    factor: str,
    ledger: str | None,
) -> None:
    """The daily usage report: totals by environment and service, top operations with count and average cost, by
    model, team and job, budgets, anomalies against the 7-day average, savings, and calls of unknown cost.

    Amounts are exact. Calls whose cost is unknown (no price, a stream cut before its usage) are counted and shown
    as "cost unknown", never as $0: a total that leaves them out is marked as a lower bound.
    """
    report_day = _day(day)
    spike_factor = _factor(factor)
    config = None
    if budgets or os.environ.get(Env.BUDGETS, "").strip():
        try:
            path, where = find_budgets_file(budgets)
            config = load_budgets(path)
        except BudgetConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"budgets: {path} ({where})", err=True)
    with open_ledger(ledger, create=False) as store:
        report = build_daily_report(
            store,
            day=report_day,
            days=days,
            environment=environment,
            budgets=config,
            factor=spike_factor,
            ledger=ledger_url(ledger),
        )
        if report.total.calls == 0:  # a typo in --environment matches nothing: say so, with what there is
            check_environment(store, environment)
    text = render(report, fmt, width=_terminal_width() if output is None else None)
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc}") from exc
    click.echo(f"wrote the {fmt} report of {report.date} to {output}", err=True)
