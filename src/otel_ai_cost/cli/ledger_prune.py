"""`otel-ai-cost ledger prune`: retention for the SQLite ledger, a dry run unless `--yes`.

```bash
otel-ai-cost ledger prune --environment production --older-than 400d        # says what would go
otel-ai-cost ledger prune --environment cicd --older-than 90d --yes         # deletes it
otel-ai-cost ledger prune --all-environments --yes                          # each by --ttl-days (production:400,*:90)
```

Records go, the daily rollup and the running totals stay (`otel_ai_cost.ledger.sqlite_prune`), so reports over
the pruned days still add up exactly. Exit status: 0 (dry run or pruned, also when nothing was old enough), 1 when
the ledger cannot be pruned (not SQLite, unavailable, rollup not matching its records), 2 for a usage error (a bad
`--older-than`, an unknown environment), 130 on Ctrl-C (nothing deleted).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import click

from otel_ai_cost.cli.progress import interrupted, progress_bar, progress_option, show_progress
from otel_ai_cost.cli.report import check_environment, known_environments, ledger_url, open_ledger
from otel_ai_cost.ledger.open_store import configured_url
from otel_ai_cost.ledger.retention import DEFAULT_RETENTION, Retention, parse_older_than
from otel_ai_cost.ledger.sqlite_prune import PrunePlan, PruneRefused, cutoff

__all__ = ["prune"]

KEPT = (
    "Kept: the daily rollup and the running totals, so `report` by day, month, environment, service, provider, "
    "model, operation, operation type or team over these days, and the running totals, still add up exactly."
)
LOST = (
    "Gone for these days: what needs the records themselves (`jobs show`, a job, batch, CI run or trace id, "
    "`report --by` a field the rollup does not keep, such as cost_source, the catalog USD column); `report` says so."
)


def _older_than(_context: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_older_than(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _ttl_days(_context: click.Context, _param: click.Parameter, value: str) -> Retention:
    try:
        return Retention.parse(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.command("prune")
@click.option("--environment", "-e", "environments", multiple=True, help="The environment to prune (repeatable).")
@click.option("--all-environments", is_flag=True, help="Every environment of the ledger, each by --ttl-days.")
@click.option(
    "--older-than",
    metavar="Nd",
    callback=_older_than,
    help="Delete records of UTC days before today minus N days (90d keeps the 90 days before today, and today). "
    "Default: the environment's days in --ttl-days.",
)
@click.option(
    "--ttl-days",
    default=DEFAULT_RETENTION,
    show_default=True,
    callback=_ttl_days,
    help="Days kept per environment when --older-than is not given, as the DynamoDB URL's ttl_days= "
    "(ENV:DAYS,...,*:DAYS; 0 = keep for ever).",
)
@click.option("--yes", is_flag=True, help="Delete. Without it, a dry run: says what would go and changes nothing.")
@click.option("--ledger", metavar="URL", help="The SQLite ledger, sqlite:///PATH.db (default: as `report`).")
@progress_option
def prune(
    environments: tuple[str, ...],
    all_environments: bool,
    older_than: int | None,
    ttl_days: Retention,
    yes: bool,
    ledger: str | None,
    progress: bool | None,
) -> None:
    """Delete old records of a SQLite ledger, keeping the daily rollup and the running totals.

    Reports over the pruned days still add up exactly (they read the rollup); what needs the records themselves
    (`jobs show`, a job, batch, CI run or trace id) no longer sees those days, and `report` says so. A record of a
    pruned day written again later (a replay, a re-import, a collector retrying) is refused, never counted twice.
    One transaction: an error or Ctrl-C midway deletes nothing. A dry run unless --yes.
    """
    if bool(environments) == all_environments:
        raise click.UsageError("give --environment E (one or more) or --all-environments")
    url = ledger if ledger is not None else configured_url()
    if url.strip().lower().startswith("dynamodb:"):
        raise click.ClickException(
            f"ledger prune is for a SQLite ledger, not {ledger_url(ledger)}; a DynamoDB ledger expires its records "
            "by TTL (ttl_days= in its URL) and keeps its running totals"
        )
    today = datetime.now(timezone.utc).date()
    with open_ledger(ledger, create=False, progress=False) as store:
        if not hasattr(store, "prune"):
            raise click.ClickException(f"the ledger {ledger_url(ledger)} cannot be pruned")
        if all_environments:
            environments = tuple(known_environments(store))
        for environment in environments:
            check_environment(store, environment, ledger)
        cutoffs, kept_for_ever = _cutoffs(environments, older_than, ttl_days, today)
        for environment in kept_for_ever:
            click.echo(f"{environment}: kept for ever by --ttl-days ({ttl_days.describe()}); nothing to prune")
        if not cutoffs:
            return
        try:
            plans = store.prune_plan(cutoffs)  # type: ignore[attr-defined]
            if yes and any(plan.records for plan in plans):
                total = sum(plan.records for plan in plans)
                with progress_bar("pruning records", show=show_progress(progress), total=total) as bar:
                    plans = store.prune(cutoffs, progress=bar)  # type: ignore[attr-defined]
        except PruneRefused as error:
            raise click.ClickException(str(error)) from None
        except KeyboardInterrupt:  # the bar is closed by now; the transaction was rolled back
            interrupted("ledger prune: interrupted; nothing was deleted (one transaction, rolled back)")
    _print(plans, applied=yes, ttl_days=older_than is None, today=today)


def _cutoffs(
    environments: tuple[str, ...], older_than: int | None, retention: Retention, today: date
) -> tuple[dict[str, date], list[str]]:
    """The first UTC day kept per environment, and the environments kept for ever (0 days in --ttl-days)."""
    cutoffs: dict[str, date] = {}
    kept: list[str] = []
    for environment in environments:
        days = older_than if older_than is not None else retention.days(environment)
        if days is None:
            kept.append(environment)
        else:
            cutoffs[environment] = cutoff(today, days)
    return cutoffs, kept


def _print(plans: list[PrunePlan], *, applied: bool, ttl_days: bool, today: date) -> None:
    if not applied:
        click.echo("ledger prune: dry run, nothing deleted (add --yes to delete)")
    for plan in plans:
        source = ", from --ttl-days" if ttl_days else ""
        scope = f"the UTC days before {plan.before} (older than {(today - plan.before).days}d{source})"
        if plan.records == 0:
            click.echo(f"{plan.environment}: no record of {scope}: nothing to prune")
            continue
        verb = "deleted" if applied else "would delete"
        click.echo(
            f"{plan.environment}: {verb} {plan.records:,} records of {plan.days:,} UTC days ({plan.first_day} .. "
            f"{plan.last_day}), {_money(plan.amount, plan.unknown_cost_calls)}: {scope}"
        )
        refused = "are now refused" if applied else "will be refused"
        click.echo(
            f"  records of {plan.environment} dated {plan.horizon} or earlier written again {refused} (counted as "
            "duplicates): a replay never counts twice"
        )
    if any(plan.records for plan in plans):
        click.echo(KEPT)
        click.echo(LOST)


def _money(amount: Decimal, unknown_cost_calls: int) -> str:
    text = f"{format(amount, 'f')} USD"
    if unknown_cost_calls:
        return f">= {text} ({unknown_cost_calls:,} calls of unknown cost)"
    return text
