"""The `otel-ai-cost` command line."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="otel-ai-cost")
def main() -> None:
    """Exact cost tracking for AI API calls, built on OpenTelemetry."""


def _register() -> None:
    # Each concern's commands live in their own module.
    from otel_ai_cost.budgets.alert_log import alert_log
    from otel_ai_cost.cli.budgets import budgets
    from otel_ai_cost.cli.daily_report import daily
    from otel_ai_cost.cli.dashboards import dashboards
    from otel_ai_cost.cli.demo import demo
    from otel_ai_cost.cli.docs import docs
    from otel_ai_cost.cli.doctor import doctor
    from otel_ai_cost.cli.export import export
    from otel_ai_cost.cli.ledger import ledger
    from otel_ai_cost.cli.prices import prices
    from otel_ai_cost.cli.reconcile import reconcile
    from otel_ai_cost.cli.record import import_usage, record
    from otel_ai_cost.cli.report import jobs, report
    from otel_ai_cost.cli.stand_in import stand_in

    main.add_command(budgets)
    budgets.add_command(alert_log)  # `budgets alert-log`: the compose stack's Alertmanager webhook log
    main.add_command(dashboards)
    main.add_command(demo)
    main.add_command(docs)
    main.add_command(doctor)
    main.add_command(export)
    main.add_command(ledger)
    main.add_command(prices)
    main.add_command(report)
    report.add_command(daily)  # `report daily`: `report` alone is still the ledger's report
    main.add_command(jobs)
    main.add_command(reconcile)
    main.add_command(record)
    main.add_command(import_usage)
    main.add_command(stand_in)


_register()
