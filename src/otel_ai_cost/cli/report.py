"""`otel-ai-cost report` and `otel-ai-cost jobs show`: what the ledger says was spent.

```bash
otel-ai-cost report                                   # last 30 UTC days, by provider and model
otel-ai-cost report --days 7 --by day,provider --environment production
otel-ai-cost report --since 2026-01-01 --until 2026-01-31 --format csv > january.csv
otel-ai-cost jobs show job-42                         # every call of a job, its cost and trace id
```

The ledger is `--ledger URL`, else `OTEL_AI_COST_LEDGER`, else the default SQLite file (see
`otel_ai_cost.ledger.open_store`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

import click

from otel_ai_cost.ledger.open_store import LEDGER_ENV, LedgerConfigError, open_store
from otel_ai_cost.ledger.report import FORMATS, render_job, render_report
from otel_ai_cost.ledger.store import GROUP_BY_FIELDS, LedgerStore, StoreUnavailable, UsageQuery

__all__ = ["jobs", "ledger_option", "open_ledger", "report"]

DEFAULT_DAYS = 30
DEFAULT_GROUP_BY = "provider,model"


def ledger_option(function: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--ledger",
        metavar="URL",
        help=f"The ledger: sqlite:///PATH.db or dynamodb://TABLE?region=... (default: ${LEDGER_ENV}, else the "
        "SQLite file under ~/.local/share/otel-ai-cost/).",
    )(function)


@contextmanager
def open_ledger(url: str | None) -> Iterator[LedgerStore]:
    """The store for a command, closed afterwards; configuration and availability errors become clean CLI errors."""
    try:
        store = open_store(url, origin="--ledger" if url is not None else None)
    except (LedgerConfigError, StoreUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        yield store
    except StoreUnavailable as exc:
        raise click.ClickException(f"the ledger is unavailable: {exc}") from exc
    finally:
        store.close()


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a UTC day YYYY-MM-DD, got {value!r}", param_hint=name) from None


def _group_by(value: str) -> list[str]:
    fields = [f.strip() for f in value.split(",") if f.strip()]
    unknown = [f for f in fields if f not in GROUP_BY_FIELDS]
    if unknown:
        raise click.BadParameter(
            f"cannot group by {', '.join(unknown)}; choose from {', '.join(GROUP_BY_FIELDS)}", param_hint="--by"
        )
    return fields


@click.command()
@click.option(
    "--days", type=click.IntRange(min=1), help=f"The last N UTC days, today included (default {DEFAULT_DAYS})."
)
@click.option("--since", metavar="YYYY-MM-DD", help="First UTC day (inclusive).")
@click.option("--until", metavar="YYYY-MM-DD", help="Last UTC day (inclusive; default today).")
@click.option("--environment", "-e", help="Only this deployment environment (default: all).")
@click.option("--provider", help="Only this provider (openai, anthropic, ...).")
@click.option("--model", help="Only this model (requested or responded).")
@click.option("--service", help="Only this service (the OpenTelemetry service.name).")
@click.option("--team", help="Only this team.")
@click.option(
    "--by",
    "by",
    default=DEFAULT_GROUP_BY,
    show_default=True,
    help=f"Comma list of fields to group by: {', '.join(GROUP_BY_FIELDS)}; empty for one total.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@ledger_option
def report(
    days: int | None,
    since: str | None,
    until: str | None,
    environment: str | None,
    provider: str | None,
    model: str | None,
    service: str | None,
    team: str | None,
    by: str,
    fmt: str,
    ledger: str | None,
) -> None:
    """Totals per group from the usage ledger: amount, calls, unpriced calls and tokens.

    Amounts are exact. Calls without a price are counted apart and flagged: their cost is unknown, not zero.
    When some calls' cost was reported by the provider and our catalog priced them too, a `computed` column shows
    the amount with the catalog's figure in place of the provider's.
    """
    group_by = _group_by(by)
    end = _day(until, "--until") or datetime.now(timezone.utc).date()
    start = _day(since, "--since")
    if start is not None and days is not None:
        raise click.UsageError("give --days or --since, not both")
    if start is None:
        start = end - timedelta(days=(days or DEFAULT_DAYS) - 1)
    if start > end:
        raise click.UsageError(f"--since {start} is after --until {end}")
    query = UsageQuery(
        start_day=start,
        end_day=end,
        environment=environment,
        provider=provider,
        model=model,
        service=service,
        team=team,
    )
    with open_ledger(ledger) as store:
        rows = store.aggregate(query, group_by)
        unpriced = []
        if any(r.unpriced_calls for r in rows):  # name what lacks a price (one more GROUP BY, only when needed)
            unpriced = [
                (dict(r.group)["provider"], dict(r.group)["model"], r.unpriced_calls)
                for r in store.aggregate(query, ["provider", "model"])
                if r.unpriced_calls
            ]
        meta = {"ledger": repr(store), "since": start.isoformat(), "until": end.isoformat(), "environment": environment}
        click.echo(render_report(rows, group_by, fmt, meta=meta, unpriced_models=unpriced))


@click.group()
def jobs() -> None:
    """The calls of one job (`ai_usage_context(job_id=...)`)."""


@jobs.command("show")
@click.argument("job_id")
@click.option("--environment", "-e", help="Only this deployment environment (default: all).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@ledger_option
def show(job_id: str, environment: str | None, fmt: str, ledger: str | None) -> None:
    """Every call of JOB_ID with its time, provider, model, tokens, cost, status and trace id, and the job total."""
    with open_ledger(ledger) as store:
        records = list(store.query(UsageQuery(job_id=job_id, environment=environment)))
    click.echo(render_job(job_id, records, fmt))
    if not records:
        raise SystemExit(1)
