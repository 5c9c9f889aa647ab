"""`otel-ai-cost report` and `otel-ai-cost jobs show`: what the ledger says was spent.

```bash
otel-ai-cost report                                   # last 30 UTC days, by provider and model
otel-ai-cost report --days 7 --by day,provider --environment production
otel-ai-cost report --since 2026-01-01 --until 2026-01-31 --format csv > january.csv
otel-ai-cost jobs show job-42                         # every call of a job, its cost and trace id
```

`report` is also a group: `otel-ai-cost report daily` is the daily report (`otel_ai_cost.cli.daily_report`);
`otel-ai-cost report` without a subcommand is the report above.

The ledger is `--ledger URL`, else `OTEL_AI_COST_LEDGER`, else the default SQLite file (see
`otel_ai_cost.ledger.open_store`).
"""

from __future__ import annotations

import difflib
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import click

from otel_ai_cost.ledger.open_store import LEDGER_ENV, LedgerConfigError, configured_url, open_store
from otel_ai_cost.ledger.report import FORMATS, render_job, render_report
from otel_ai_cost.ledger.store import GROUP_BY_FIELDS, LedgerStore, StoreUnavailable, UsageQuery

__all__ = ["check_environment", "jobs", "known_environments", "ledger_option", "ledger_url", "open_ledger", "report"]

DEFAULT_DAYS = 30
DEFAULT_GROUP_BY = "provider,model"
# When a filter matches nothing: the values listed beside it (the rest are counted), and the filters checked.
MAX_LISTED_VALUES = 20
_HINTED_FILTERS = ("provider", "model", "service", "team")


def ledger_option(function: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--ledger",
        metavar="URL",
        help=f"The ledger: sqlite:///PATH.db or dynamodb://TABLE?region=... (default: ${LEDGER_ENV}, else the "
        "SQLite file under ~/.local/share/otel-ai-cost/).",
    )(function)


def ledger_url(url: str | None) -> str:
    """The ledger as a user names it, for messages: the URL given (`--ledger`), else `OTEL_AI_COST_LEDGER`, else
    the default `sqlite:///...` file; never a store's Python repr. A `user:password@` in an endpoint URL is left
    out (a SQLite path is shown as it is: it is a file name, and `@` is a valid character in one)."""
    shown = (url if url is not None else configured_url()).strip()
    if shown.lower().startswith("sqlite:"):
        return shown
    return re.sub(r"(//|%2F%2F)[^/@?#&=:]*(:|%3A)[^/@?#&=]*(@|%40)", r"\1", shown, flags=re.IGNORECASE)


@contextmanager
def open_ledger(url: str | None, *, create: bool = True, progress: bool | None = None) -> Iterator[LedgerStore]:
    """The store for a command, closed afterwards; configuration and availability errors become clean CLI errors.

    Commands that only read pass `create=False`: a ledger that does not exist is an error naming it, never created.
    Reads of a remote store (DynamoDB) show a progress bar of the records read on standard error while the block
    runs: when `progress` is True, or by default when standard error is a terminal.
    """
    try:
        store = open_store(url, origin="--ledger" if url is not None else None, create=create)
    except (LedgerConfigError, StoreUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        with _reading_progress(store, sys.stderr.isatty() if progress is None else progress):
            yield store
    except StoreUnavailable as exc:
        raise click.ClickException(f"the ledger is unavailable: {exc}") from exc
    finally:
        store.close()


@contextmanager
def _reading_progress(store: LedgerStore, show: bool) -> Iterator[None]:
    """Counts the records a store that reports its reads (`DynamoDBStore.read_progress`) fetches, with a rate."""
    if not show or not hasattr(store, "read_progress"):
        yield
        return
    from otel_ai_cost.cli.progress import progress_bar

    lock = threading.Lock()
    with progress_bar("reading the ledger", show=True) as bar:

        def count(items: int) -> None:  # called from the store's reading threads
            with lock:
                bar.advance(items)

        store.read_progress = count  # type: ignore[attr-defined]
        try:
            yield
        finally:
            store.read_progress = None  # type: ignore[attr-defined]


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


@click.group(invoke_without_command=True, subcommand_metavar="[COMMAND [ARGS]...]")
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
@click.pass_context
def report(
    context: click.Context,
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
    """Totals per group from the usage ledger: calls, calls of unknown cost, cost and tokens, with a total row.

    Amounts are exact, aligned on the decimal point. Calls without a price are counted apart and flagged: their
    cost is unknown, not zero, and a total that leaves them out is shown as a lower bound (`>= 1.20`). When some
    calls' cost was reported by the provider and our catalog priced them too, a `catalog USD` column shows the
    amount with the catalog's figure in place of the provider's. With more than one field in --by, each group of
    the first fields gets a subtotal (`--by provider,model`: one per provider).

    `otel-ai-cost report daily --help`: the daily report (summary, top operations, anomalies; console, JSON, HTML).
    """
    if context.invoked_subcommand is not None:
        return  # `report daily ...`: the subcommand has its own options
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
    with open_ledger(ledger, create=False) as store:
        rows = store.aggregate(query, group_by)
        if not rows:  # a typo matches nothing: say so, rather than only "no calls recorded"
            check_environment(store, environment, ledger)
            for hint in _filter_hints(store, query):
                click.echo(hint, err=True)
        unpriced = []
        if any(r.unpriced_calls for r in rows):  # name what lacks a price (one more GROUP BY, only when needed)
            unpriced = [
                (dict(r.group)["provider"], dict(r.group)["model"], r.unpriced_calls)
                for r in store.aggregate(query, ["provider", "model"])
                if r.unpriced_calls
            ]
        meta = {
            "ledger": ledger_url(ledger),
            "since": start.isoformat(),
            "until": end.isoformat(),
            "environment": environment,
        }
        click.echo(render_report(rows, group_by, fmt, meta=meta, unpriced_models=unpriced))
        _pruned_notes(store, environment, start, query, group_by)


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
    with open_ledger(ledger, create=False) as store:
        records = list(store.query(UsageQuery(job_id=job_id, environment=environment)))
        if not records:
            check_environment(store, environment, ledger)
        _pruned_notes(store, environment, None, None, [])
    click.echo(render_job(job_id, records, fmt))
    if not records:
        raise SystemExit(1)


def _pruned_notes(
    store: LedgerStore, environment: str | None, start: date | None, query: UsageQuery | None, group_by: list[str]
) -> None:
    """On standard error, when the range reaches days a SQLite ledger pruned (`ledger prune`): whether the figures
    are still complete (from the daily rollup) or miss those days (read from records). `query` None: records."""
    horizons = getattr(store, "prune_horizons", None)
    if not callable(horizons):
        return
    from otel_ai_cost.ledger.sqlite_prune import pruned_notes
    from otel_ai_cost.ledger.sqlite_store import answers_from_rollup

    from_rollup = query is not None and answers_from_rollup(query, group_by)
    what = "this report" if query is not None else "jobs show"
    for note in pruned_notes(horizons(), environment, start, from_rollup=from_rollup, what=what):
        click.echo(note, err=True)


# -- filters that match nothing -------------------------------------------------------------------------------


def known_environments(store: LedgerStore) -> list[str]:
    """Every environment with records: the store's registry when it keeps one (DynamoDB's `environments()`), else
    one GROUP BY over all time (SQLite answers it from its daily rollup, without reading records)."""
    registry = getattr(store, "environments", None)
    if callable(registry):
        return sorted(registry())
    return sorted(dict(row.group)["environment"] for row in store.aggregate(UsageQuery(), ["environment"]))


def check_environment(store: LedgerStore, environment: str | None, url: str | None = None) -> None:
    """A usage error when `environment` has no record at all, naming the ledger (`url`: the `--ledger` given, None
    for the configured one; shown by `ledger_url`), listing the known ones and the closest of them."""
    if environment is None:
        return
    known = known_environments(store)
    if environment not in known:
        message = f"no environment {environment!r} in the ledger {ledger_url(url)}; known: {_listing(known)}."
        raise click.BadParameter(message + _did_you_mean(environment, known), param_hint="'--environment' / '-e'")


def _filter_hints(store: LedgerStore, query: UsageQuery) -> list[str]:
    """For each provider, model, service or team filter with no call in the query's period and environment: what
    there is instead, and the closest match. One extra GROUP BY (and one more to confirm a model, which may match
    as the requested model), only for a report that came out empty."""
    asked = {name: getattr(query, name) for name in _HINTED_FILTERS if getattr(query, name) is not None}
    if not asked:
        return []
    scope = replace(query, provider=None, model=None, service=None, team=None)
    present: dict[str, set[str]] = {name: set() for name in asked}
    for row in store.aggregate(scope, list(asked)):
        for name, value in row.group:
            present[name].add(value)
    hints = []
    for name, value in asked.items():
        if value in present[name]:
            continue
        if name == "model" and store.aggregate(replace(scope, model=value), []):
            continue  # a requested model (the groups show the responded one)
        values = sorted(present[name])
        hint = f"no call of {name} {value!r} in this selection; there are: {_listing(values)}."
        hints.append(hint + _did_you_mean(value, values))
    return hints


def _listing(values: Sequence[str]) -> str:
    """Values for a message, at most MAX_LISTED_VALUES of them; an empty value is `(none)`."""
    if not values:
        return "none"
    shown = ", ".join(value or "(none)" for value in values[:MAX_LISTED_VALUES])
    more = len(values) - MAX_LISTED_VALUES
    return shown + (f" and {more} more" if more > 0 else "")


def _did_you_mean(value: str, known: Sequence[str]) -> str:
    """` Did you mean 'production'?` for the closest known value: one the value abbreviates (`prod`), else
    difflib's closest (a typo: `opneai`); empty when nothing is close."""
    candidates = [k for k in known if k]
    folded = value.casefold()
    close = [k for k in candidates if k.casefold().startswith(folded)] if folded else []
    close = close[:1] if len(close) == 1 else difflib.get_close_matches(value, candidates, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
