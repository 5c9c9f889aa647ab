"""`otel-ai-cost reconcile`: tracked spend beside what each provider billed, per day, with verdicts and causes.

```bash
OPENAI_ADMIN_KEY=... ANTHROPIC_ADMIN_KEY=... otel-ai-cost reconcile              # the trailing 3 days and today
otel-ai-cost reconcile --from 2026-11-01 --to 2026-11-30 --format html -o november.html
otel-ai-cost reconcile --provider openai --threshold 2% --fail-on-discrepancy   # for CI and cron
```

See docs/reconciliation.md.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from otel_ai_cost.cli.report import ledger_option, open_ledger
from otel_ai_cost.reconcile.billed import AccountMap
from otel_ai_cost.reconcile.render import FORMATS, render
from otel_ai_cost.reconcile.run import redact

__all__ = ["TRAILING_DAYS", "parse_duration", "parse_threshold", "reconcile"]

TRAILING_DAYS = 3  # the default window: today and the 3 days before (late rows, partial days re-pulled)
MAX_WINDOW_DAYS = 400  # a window longer than this is refused (13 months: what Cost Explorer keeps)


def parse_threshold(text: str) -> Decimal:
    """`5%` or `0.05` -> Decimal('0.05'). Raises ValueError."""
    raw = text.strip()
    try:
        value = Decimal(raw[:-1]) / 100 if raw.endswith("%") else Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"not a threshold: {text!r} (write 5% or 0.05)") from None
    if not value.is_finite() or not 0 <= value < 1:
        raise ValueError(f"the threshold must be from 0% to below 100%, got {text!r}")
    return value


def parse_duration(text: str) -> float:
    """`90s`, `30m`, `6h`, `1d` -> seconds (at least 60). Raises ValueError."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = text.strip().lower()
    if len(raw) < 2 or raw[-1] not in units or not raw[:-1].isdigit():
        raise ValueError(f"not a duration: {text!r} (write 30m, 6h or 1d)")
    seconds = int(raw[:-1]) * units[raw[-1]]
    if not 60 <= seconds <= 31 * 86400:
        raise ValueError(f"the interval must be from 1 minute to 31 days, got {text!r}")
    return float(seconds)


def _touch(path: str | None) -> None:
    if path:
        Path(path).touch()


def _day(value: str | None, default: date, option: str) -> date:
    if value is None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not a day (YYYY-MM-DD): {value!r}", param_hint=option) from None


@click.command()
@click.option("--from", "start", metavar="DATE", help=f"First UTC day (default: {TRAILING_DAYS} days before today).")
@click.option("--to", "end", metavar="DATE", help="Last UTC day, inclusive (default: today).")
@click.option("--provider", "providers", multiple=True, metavar="P",
              help="openai, anthropic, aws.bedrock, gcp, or any provider with billed figures; repeat for more "
              "(default: every configured source).")  # fmt: skip
@click.option("--threshold", default="5%", show_default=True, help="A difference beyond this is a discrepancy.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of standard output.")
@click.option("--fail-on-discrepancy", is_flag=True, help="Exit 1 when any day is over, under or not tracked.")
@click.option("--no-pull", is_flag=True, help="Compare with the billed lines already stored; call no billing API.")
@click.option(
    "--every",
    metavar="DURATION",
    help="Run again every DURATION (30m, 6h, 1d), each time on the trailing "
    "window, until stopped: the compose service. A failed run is reported and the next one goes ahead.",
)
@click.option("--heartbeat-file", type=click.Path(dir_okay=False), help="Touched after each run (a healthcheck).")
@click.option("--accounts", "accounts_file", type=click.Path(dir_okay=False), envvar="OTEL_AI_COST_RECONCILE_ACCOUNTS",
              help="YAML mapping billing accounts (projects, workspaces) to environments (docs/reconciliation.md); "
              "default $OTEL_AI_COST_RECONCILE_ACCOUNTS.")  # fmt: skip
@ledger_option
def reconcile(
    start: str | None,
    end: str | None,
    providers: tuple[str, ...],
    threshold: str,
    fmt: str,
    output: str | None,
    fail_on_discrepancy: bool,
    no_pull: bool,
    every: str | None,
    heartbeat_file: str | None,
    accounts_file: str | None,
    ledger: str | None,
) -> None:
    """Compare tracked spend with what each provider billed, per UTC day: tracked, billed, difference, verdict
    (match, over, under, no bill yet, not tracked) and the likely cause. Billed lines and the result are stored
    in the ledger; re-running a day replaces its billed lines, never adds to them."""
    try:
        limit = parse_threshold(threshold)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--threshold") from None
    from otel_ai_cost.reconcile.accounts import AccountsFileError, load_accounts

    try:
        accounts = load_accounts(accounts_file) if accounts_file else AccountMap()
    except AccountsFileError as error:
        raise click.ClickException(str(error)) from None
    if every is None:
        _once(start, end, providers, limit, fmt, output, fail_on_discrepancy, threshold, no_pull, accounts, ledger)
        _touch(heartbeat_file)
        return
    try:
        interval = parse_duration(every)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--every") from None
    while True:
        try:
            _once(start, end, providers, limit, fmt, output, False, threshold, no_pull, accounts, ledger)
            _touch(heartbeat_file)
        except Exception as error:  # whatever one run meets (the ledger down, a bug), the next run goes ahead
            click.echo(f"reconcile run failed: {type(error).__name__}: {redact(str(error))}", err=True)
        time.sleep(interval)


def _once(
    start: str | None,
    end: str | None,
    providers: tuple[str, ...],
    limit: Decimal,
    fmt: str,
    output: str | None,
    fail_on_discrepancy: bool,
    threshold: str,
    no_pull: bool,
    accounts: AccountMap,
    ledger: str | None,
) -> None:
    from otel_ai_cost.reconcile.run import reconcile as run
    from otel_ai_cost.reconcile.sources import billed_providers, configured_sources

    today = datetime.now(timezone.utc).date()
    end_day = _day(end, today, "--to")
    start_day = _day(start, end_day - timedelta(days=TRAILING_DAYS), "--from")
    if end_day < start_day:
        raise click.BadParameter(f"{end_day} is before --from {start_day}", param_hint="--to")
    if (end_day - start_day).days >= MAX_WINDOW_DAYS:
        raise click.BadParameter(f"at most {MAX_WINDOW_DAYS} days per run", param_hint="--from/--to")
    sources = [] if no_pull else configured_sources(providers, account_map=accounts)
    with open_ledger(ledger) as store:
        result = run(store, start_day=start_day, end_day=end_day, sources=sources,
                     providers=billed_providers(providers), threshold=limit, today=today)  # fmt: skip
    text = render(result, fmt)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output} ({len(result.days)} provider-days, {len(result.discrepancies)} discrepancies)")
    else:
        click.echo(text, nl=False)
    if fail_on_discrepancy and result.discrepancies:
        names = ", ".join(f"{row.day} {row.provider} {row.verdict.value}" for row in result.discrepancies[:10])
        click.echo(f"discrepancies beyond {threshold}: {names}", err=True)
        raise SystemExit(1)
