"""`otel-ai-cost record` and `otel-ai-cost import`: spend that no SDK call shows, into the ledger.

```bash
otel-ai-cost record --provider openai --amount 45.23 --date 2026-01-30 --source dashboard
otel-ai-cost import ~/.claude/BUDGET/usage.jsonl      # again later: nothing is counted twice
```

See `otel_ai_cost.ledger.manual` for the `usage.jsonl` format and how identities are derived from content.
"""

from __future__ import annotations

import click

from otel_ai_cost.cli.report import ledger_option, open_ledger
from otel_ai_cost.ledger.manual import MANUAL_SOURCES, UsageFileError, import_usage_file, manual_record
from otel_ai_cost.ledger.report import format_amount

__all__ = ["import_usage", "record"]


@click.command()
@click.option("--provider", required=True, help="The provider billed: openai, anthropic, ...")
@click.option("--amount", required=True, metavar="USD", help="The amount in USD, exact (e.g. 45.23).")
@click.option("--model", default="", help="The model, if the figure is for one.")
@click.option("--environment", "-e", help="Deployment environment (default: the current one).")
@click.option("--date", "when", metavar="DATE", help="UTC day YYYY-MM-DD or ISO 8601 time with zone (default: now).")
@click.option("--note", default="", help="Free text kept with the entry.")
@click.option("--source", type=click.Choice(MANUAL_SOURCES), default="dashboard", show_default=True)
@ledger_option
def record(
    provider: str,
    amount: str,
    model: str,
    environment: str | None,
    when: str | None,
    note: str,
    source: str,
    ledger: str | None,
) -> None:
    """Record spend that no instrumented call shows (a dashboard figure, an invoice, a subscription).

    The entry's identity is derived from its content: recording the same entry (same date, amount, provider,
    ...) again changes nothing.
    """
    try:
        entry = manual_record(
            provider=provider, amount=amount, model=model, environment=environment, when=when, note=note, source=source
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    with open_ledger(ledger) as store:
        result = store.write([entry])
        where = repr(store)
    what = f"{format_amount(entry.amount)} USD, {entry.provider}{' ' + model if model else ''}, {entry.day}, "
    what += f"environment {entry.environment} ({source})"
    if result.written:
        click.echo(f"recorded {what} in {where}: id {entry.trace_id}/{entry.span_id}")
    else:
        click.echo(f"already recorded: {what} (id {entry.trace_id}/{entry.span_id}); nothing changed")


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--environment", "-e", help="Environment of lines that name none (default: the current one).")
@ledger_option
def import_usage(file: str, environment: str | None, ledger: str | None) -> None:
    """Import a usage.jsonl file (one JSON object per line: timestamp, service, cost_usd, source, ...).

    Every line is checked first: a bad line fails the import with its line number, and nothing is imported.
    Importing the same file again changes nothing.
    """
    with open_ledger(ledger) as store:
        try:
            result = import_usage_file(store, file, environment=environment)
        except UsageFileError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"{file}: {result.new} new, {result.already_recorded} already recorded")
