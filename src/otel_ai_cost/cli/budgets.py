"""`otel-ai-cost budgets render` and `otel-ai-cost budgets check`: budgets as data.

```bash
otel-ai-cost budgets render config/budgets.yaml -o alerts/budgets.rules.yml     # the Prometheus rules
otel-ai-cost budgets check --environment cicd --fail-on-exceeded                 # a CI gate on the ledger
otel-ai-cost budgets check --prometheus http://prometheus:9090 --period month --notify
```

`check` exits 0 when no budget is over (or without `--fail-on-exceeded`), 1 when `--fail-on-exceeded` and some
budget is at or over 100%, and 2 for a bad budgets file, ledger or Prometheus (so a CI gate can tell "over
budget" from "broken").

`check` prints a table (budget, spent USD, limit USD, % used, status; amounts exact, a spend that leaves out calls
of unknown cost shown as a lower bound `>= 9.50`). In GitHub Actions (`$GITHUB_STEP_SUMMARY` set) it also writes a
Markdown cost summary to the job summary: the same table, and from the ledger the environment's spend today and this
month (`otel_ai_cost.ci.budget_summary`). `--json PATH` writes the result as JSON for a later step (the composite
action's `spent` and `status` outputs come from it). `--date D` checks the periods of another UTC day (the daily
workflow checks the day that just ended).

Both read `--budgets PATH`, else `$OTEL_AI_COST_BUDGETS`, else the nearest `config/budgets.yaml` from the working
directory up (`budgets.config.find_budgets_file`), and say on standard error which file they read.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import date, datetime, timezone
from pathlib import Path

import click

from otel_ai_cost.budgets.check import BudgetStatus, PrometheusError, evaluate, ledger_spend, prometheus_spend
from otel_ai_cost.budgets.config import (
    DEFAULT_FILE,
    PERIODS,
    SCOPE_ENVIRONMENT,
    SCOPE_OPERATION_TYPE,
    SCOPE_PROVIDER,
    SCOPE_TEAM,
    Budget,
    BudgetConfig,
    BudgetConfigError,
    find_budgets_file,
    load_budgets,
)
from otel_ai_cost.budgets.notify import NotifyError, notify
from otel_ai_cost.budgets.rules import RUNBOOK_BASE, render_rules
from otel_ai_cost.ci.budget_summary import (
    BUDGET_COLUMNS,
    PeriodSpend,
    budget_check_json,
    budget_rows,
    budget_summary_markdown,
)
from otel_ai_cost.ci.step_summary import append_step_summary
from otel_ai_cost.cli.report import ledger_option, open_ledger
from otel_ai_cost.contract import Env
from otel_ai_cost.ledger.open_store import configured_url
from otel_ai_cost.ledger.service.metrics import PERIOD_DAY
from otel_ai_cost.ledger.store import LedgerStore, UsageQuery
from otel_ai_cost.reports import tables

__all__ = ["DEFAULT_CONFIG", "EXIT_ERROR", "EXIT_EXCEEDED", "budgets"]

DEFAULT_CONFIG = str(DEFAULT_FILE)  # looked for from the working directory up
EXIT_EXCEEDED = 1
EXIT_ERROR = 2


class BudgetError(click.ClickException):
    exit_code = EXIT_ERROR


def _load(explicit: str | None, given_as: str = "--budgets") -> tuple[BudgetConfig, str]:
    """The budgets (see the module documentation for which file) and the file's name; says which on stderr."""
    try:
        path, origin = find_budgets_file(explicit, given_as=given_as)
    except BudgetConfigError as exc:
        raise BudgetError(str(exc)) from exc
    click.echo(f"budgets: {path} ({origin})", err=True)
    try:
        return load_budgets(path), str(path)
    except BudgetConfigError as exc:
        raise BudgetError(str(exc)) from exc  # the line above already said where the file's name came from


_budgets_option = click.option(
    "--budgets",
    "budgets_file",
    metavar="PATH",
    help=f"The budgets file (default: ${Env.BUDGETS}, else {DEFAULT_CONFIG} here or in a directory above).",
)


@click.group()
def budgets() -> None:
    """Budgets as data: render the Prometheus rules, check spend against the budgets."""


@budgets.command()
@click.argument("file", required=False, metavar="[FILE]")
@_budgets_option
@click.option("-o", "--output", metavar="PATH", help="Write the rules here (default: standard output).")
@click.option("--runbook-base", default=RUNBOOK_BASE, show_default=True, help="Where runbook_url annotations point.")
def render(file: str | None, budgets_file: str | None, output: str | None, runbook_base: str) -> None:
    """Generate the Prometheus rule file (budgets, spend, ratios, threshold and forecast alerts) from FILE
    (or --budgets; default: $OTEL_AI_COST_BUDGETS, else config/budgets.yaml here or above)."""
    if file and budgets_file:
        raise BudgetError("give the budgets file as FILE or --budgets, not both")
    config, source = _load(file or budgets_file, given_as="the FILE argument" if file else "--budgets")
    text = render_rules(config, source=source, runbook_base=runbook_base)
    if output is None:
        click.echo(text, nl=False)
        return
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)


@budgets.command()
@click.option(
    "--budgets",
    "--config",
    "config_file",
    metavar="PATH",
    help=f"The budgets file (default: ${Env.BUDGETS}, else {DEFAULT_CONFIG} here or in a directory above).",
)
@click.option("--environment", metavar="E", help="Only this environment's budgets.")
@click.option("--period", type=click.Choice(PERIODS), help="Only daily or monthly budgets.")
@click.option("--fail-on-exceeded", is_flag=True, help=f"Exit {EXIT_EXCEEDED} when a budget is at or over 100%.")
@click.option("--notify", "send", is_flag=True, help="Send the budgets past a threshold to the configured channels.")
@ledger_option
@click.option("--prometheus", metavar="URL", help="Ask this Prometheus server instead of the ledger.")
@click.option("--json", "json_path", metavar="PATH", help="Also write the result as JSON to PATH (for a CI step).")
@click.option(
    "--date",
    "day",
    metavar="YYYY-MM-DD",
    help="Check the periods of this UTC day: its day and its month to date (default: today; ledger only).",
)
def check(
    config_file: str | None,
    environment: str | None,
    period: str | None,
    fail_on_exceeded: bool,
    send: bool,
    ledger: str | None,
    prometheus: str | None,
    json_path: str | None,
    day: str | None,
) -> None:
    """Check period-to-date spend (UTC) against the budgets; print a table (and, in GitHub Actions, a job
    summary)."""
    if ledger and prometheus:
        raise BudgetError("give --ledger or --prometheus, not both")
    config, source = _load(config_file)
    if environment and environment not in config.environments():
        raise BudgetError(f"{source}: no budget for environment {environment!r} ({', '.join(config.environments())})")
    if day and prometheus:
        raise BudgetError("--date needs the ledger: Prometheus answers for the current periods only")
    checked_at = datetime.now(timezone.utc)
    today = _day(day) if day else checked_at.date()
    unknown: dict[str, int] = {}
    spend: list[PeriodSpend] = []
    try:
        if prometheus:
            statuses = evaluate(config, prometheus_spend(prometheus), environment=environment, period=period)
        else:
            with open_ledger(ledger, create=False) as store:  # a read: a mistyped ledger is an error, never created
                statuses = evaluate(config, ledger_spend(store, today), environment=environment, period=period)
                unknown = {s.budget.id: _unknown_cost_calls(store, s.budget, today) for s in statuses}
                spend = _period_spend(store, sorted({s.budget.environment for s in statuses}), today)
    except PrometheusError as exc:
        raise BudgetError(str(exc)) from exc
    except click.ClickException as exc:
        raise BudgetError(exc.message) from exc
    where = prometheus if prometheus else (ledger.strip() if ledger is not None else configured_url())
    click.echo(tables.render(tables.table(BUDGET_COLUMNS, budget_rows(statuses, unknown))), nl=False)
    if not statuses:
        click.echo("no budget matches this check", err=True)
    if json_path:
        _write_json(json_path, budget_check_json(statuses, spend=spend, unknown=unknown, checked_at=checked_at,
                                                 ledger=None if prometheus else where))  # fmt: skip
    _step_summary(statuses, spend, unknown, where, source, checked_at, environment, fail_on_exceeded)
    if send:
        try:
            sent = notify(config, statuses, os.environ)
        except NotifyError as exc:
            raise BudgetError(f"notification failed: {exc}") from exc
        click.echo(
            f"notified: {', '.join(sent)}" if sent else "notified: nothing (no budget past a threshold)", err=True
        )
    if fail_on_exceeded and any(s.exceeded for s in statuses):
        over = ", ".join(s.budget.id for s in statuses if s.exceeded)
        click.echo(f"budget exceeded: {over}", err=True)
        sys.exit(EXIT_EXCEEDED)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a UTC day YYYY-MM-DD, got {value!r}", param_hint="--date") from None


def _unknown_cost_calls(store: LedgerStore, budget: Budget, today: date) -> int:
    """Calls of unknown cost in the budget's period and scope: when non-zero, its spend is a lower bound."""
    key = today.isoformat() if budget.period == PERIOD_DAY else today.strftime("%Y-%m")
    if budget.scope == SCOPE_ENVIRONMENT:
        return store.totals(budget.environment, key).unknown_cost_calls
    start = today if budget.period == PERIOD_DAY else today.replace(day=1)
    query = UsageQuery(
        start_day=start,
        end_day=today,
        environment=budget.environment,
        provider=budget.scope_value if budget.scope == SCOPE_PROVIDER else None,
        team=budget.scope_value if budget.scope == SCOPE_TEAM else None,
        operation_type=budget.scope_value if budget.scope == SCOPE_OPERATION_TYPE else None,
    )
    return sum(row.unknown_cost_calls for row in store.aggregate(query, []))


def _period_spend(store: LedgerStore, environments: Sequence[str], today: date) -> list[PeriodSpend]:
    """Each environment's spend on the day and in its month (UTC), from the running totals."""
    out = []
    for environment in environments:
        for key in (today.isoformat(), today.strftime("%Y-%m")):
            totals = store.totals(environment, key)
            out.append(PeriodSpend(environment, key, totals.amount, totals.calls, totals.unknown_cost_calls))
    return out


def _write_json(path: str, data: dict[str, object]) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BudgetError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _step_summary(
    statuses: Sequence[BudgetStatus],
    spend: Sequence[PeriodSpend],
    unknown: dict[str, int],
    where: str,
    budgets_file: str,
    checked_at: datetime,
    environment: str | None,
    gate: bool,
) -> None:
    """The job summary in GitHub Actions; a summary file that cannot be written is said, never a failed check."""
    markdown = budget_summary_markdown(statuses, spend=spend, unknown=unknown, source=where, checked_at=checked_at,
                                       environment=environment, gate=gate, budgets_file=budgets_file)  # fmt: skip
    try:
        append_step_summary(markdown)
    except OSError as exc:
        click.echo(f"warning: cannot write the job summary: {exc.strerror or exc}", err=True)
