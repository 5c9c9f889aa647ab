"""`otel-ai-cost doctor`: check the set-up this process would run with, with a fix for each problem."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--write-test",
    is_flag=True,
    help="Also record one test call through the instrumentation's path into the ledger, read it back and "
    "remove it (it never counts in any real environment).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A checklist table, or JSON for scripts.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show where each value came from under each check.")
def doctor(write_test: bool, output_format: str, verbose: bool) -> None:
    """Check why costs may not be tracked: SDKs, attribution, exporters, ledger, prices, budgets.

    Reads the environment variables this process has (run it where the application runs, with its environment).
    Exits 0 when nothing failed, 1 when a check failed (warnings do not fail).
    """
    from otel_ai_cost.doctor import exit_code, run_doctor
    from otel_ai_cost.doctor.render import as_json, print_table

    results = run_doctor(write_test_record=write_test)
    if output_format == "json":
        click.echo(as_json(results))
    else:
        print_table(results, details=verbose)
    raise SystemExit(exit_code(results))
