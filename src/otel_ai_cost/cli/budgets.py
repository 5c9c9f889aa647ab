"""`otel-ai-cost budgets render` and `otel-ai-cost budgets check`: budgets as data.

```bash
otel-ai-cost budgets render config/budgets.yaml -o alerts/budgets.rules.yml     # the Prometheus rules
otel-ai-cost budgets check --environment cicd --fail-on-exceeded                 # a CI gate on the ledger
otel-ai-cost budgets check --prometheus http://prometheus:9090 --period month --notify
```

`check` exits 0 when no budget is over (or without `--fail-on-exceeded`), 1 when `--fail-on-exceeded` and some
budget is at or over 100%, and 2 for a bad budgets file, ledger or Prometheus (so a CI gate can tell "over
budget" from "broken").

Both read `--budgets PATH`, else `$OTEL_AI_COST_BUDGETS`, else the nearest `config/budgets.yaml` from the working
directory up (`budgets.config.find_budgets_file`), and say on standard error which file they read.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from otel_ai_cost.budgets.check import PrometheusError, evaluate, format_table, ledger_spend, prometheus_spend
from otel_ai_cost.budgets.config import (
    DEFAULT_FILE,
    PERIODS,
    BudgetConfig,
    BudgetConfigError,
    find_budgets_file,
    load_budgets,
)
from otel_ai_cost.budgets.notify import NotifyError, notify
from otel_ai_cost.budgets.rules import RUNBOOK_BASE, render_rules
from otel_ai_cost.cli.report import ledger_option, open_ledger
from otel_ai_cost.contract import Env

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
def check(
    config_file: str | None,
    environment: str | None,
    period: str | None,
    fail_on_exceeded: bool,
    send: bool,
    ledger: str | None,
    prometheus: str | None,
) -> None:
    """Check period-to-date spend (UTC) against the budgets; print a table."""
    if ledger and prometheus:
        raise BudgetError("give --ledger or --prometheus, not both")
    config, source = _load(config_file)
    if environment and environment not in config.environments():
        raise BudgetError(f"{source}: no budget for environment {environment!r} ({', '.join(config.environments())})")
    today = datetime.now(timezone.utc).date()
    try:
        if prometheus:
            statuses = evaluate(config, prometheus_spend(prometheus), environment=environment, period=period)
        else:
            with open_ledger(ledger, create=False) as store:  # a read: a mistyped ledger is an error, never created
                statuses = evaluate(config, ledger_spend(store, today), environment=environment, period=period)
    except PrometheusError as exc:
        raise BudgetError(str(exc)) from exc
    except click.ClickException as exc:
        raise BudgetError(exc.message) from exc
    click.echo(format_table(statuses))
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
