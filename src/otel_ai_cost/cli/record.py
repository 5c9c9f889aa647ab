"""`otel-ai-cost record` and `otel-ai-cost import`: spend that no SDK call shows, into the ledger.

```bash
otel-ai-cost record --provider openai --amount 45.23 --date 2026-01-30 --source dashboard
otel-ai-cost import ~/.claude/BUDGET/usage.jsonl      # again later: nothing is counted twice
```

See `otel_ai_cost.ledger.manual` for the `usage.jsonl` format and how identities are derived from content.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from otel_ai_cost.cli.report import ledger_option, open_ledger
from otel_ai_cost.ledger.manual import (
    MANUAL_SOURCES,
    ImportInterrupted,
    ProgressCallback,
    UsageFileError,
    import_usage_file,
    manual_record,
)
from otel_ai_cost.ledger.report import format_amount
from otel_ai_cost.ledger.store import BilledQuery
from otel_ai_cost.reconcile.manual import MANUAL_BILLED_SOURCES, billed_figure

__all__ = ["import_usage", "record"]


@click.command()
@click.option("--provider", required=True, help="The provider billed: openai, anthropic, ...")
@click.option("--amount", required=True, metavar="USD", help="The amount in USD, exact (e.g. 45.23).")
@click.option("--model", default="", help="The model, if the figure is for one.")
@click.option(
    "--environment",
    "-e",
    help="Deployment environment (default: the current one; for a billed figure, the whole organization).",
)
@click.option(
    "--date",
    "when",
    metavar="DATE",
    help="UTC day YYYY-MM-DD or ISO 8601 time with zone (default: today, UTC); an invoice may name a month YYYY-MM.",
)
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
    """Record a billed figure (--source dashboard or invoice) or spend no call shows (--source subscription).

    A dashboard or invoice figure is the BILLED side: `reconcile` compares it with the tracked calls, and reports
    and budgets never add it to them. Recording another figure for the same provider, day (or invoice month),
    source and model replaces the figure. A subscription is spend: a ledger record, whose identity is its content
    (recording the same entry again changes nothing). Without --date the entry is for today's UTC day.
    """
    _warn_if_unknown(provider)
    if source in MANUAL_BILLED_SOURCES:
        _record_billed(provider, amount, model, when, note, source, environment or "", ledger)
        return
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


def _record_billed(
    provider: str, amount: str, model: str, when: str | None, note: str, source: str, environment: str,
    ledger: str | None,
) -> None:  # fmt: skip
    try:
        line = billed_figure(provider=provider, amount=amount, source=source, when=when, model=model, note=note,
                             environment=environment)  # fmt: skip
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    with open_ledger(ledger) as store:
        before = [
            stored
            for stored in store.billed_lines(BilledQuery(line.day, line.day, provider=line.provider, source=source))
            if stored.key == line.key
        ]
        store.write_billed([line])
    period = line.day.strftime("%Y-%m") if line.period == "month" else line.day.isoformat()
    what = (
        f"{format_amount(line.amount)} USD billed, {line.provider}{' ' + model if model else ''}, {period} ({source})"
    )
    if before and before[0].amount == line.amount:
        click.echo(f"already recorded: {what}; nothing changed")
    elif before:
        click.echo(f"replaced {format_amount(before[0].amount)} USD with {what}")
    else:
        click.echo(f"recorded {what}: `otel-ai-cost reconcile` compares it with the tracked calls")


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--environment", "-e", help="Environment of lines that name none (default: the current one).")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress on standard error (default: only when standard error is a terminal).",
)
@ledger_option
def import_usage(file: str, environment: str | None, progress: bool | None, ledger: str | None) -> None:
    """Import a usage.jsonl file (one JSON object per line: timestamp, service, cost_usd, source, ...).

    Every line is checked first: a bad line fails the import with its line number, and nothing is imported.
    The records are then written in batches; if the ledger fails partway, the message says how many were
    written. Importing the same file again changes nothing, so re-running an interrupted import is safe.
    """
    show = sys.stderr.isatty() if progress is None else progress
    with open_ledger(ledger) as store, _progress(show) as on_progress:
        try:
            result = import_usage_file(store, file, environment=environment, on_progress=on_progress)
        except (UsageFileError, ImportInterrupted) as exc:
            raise click.ClickException(str(exc)) from exc
    rejected = f", {len(result.rejected)} rejected" if result.rejected else ""
    billed = (
        f", {result.billed} billed figures (dashboard or invoice: compared by `reconcile`)" if result.billed else ""
    )
    click.echo(f"{file}: {result.new} new, {result.already_recorded} already recorded{billed}{rejected}")
    if result.rejected:
        for line, reason in result.rejected:
            click.echo(f"{file}:{line}: {reason}", err=True)
        raise SystemExit(1)


@contextmanager
def _progress(show: bool) -> Iterator[ProgressCallback | None]:
    """A progress bar on standard error (rich), fed by the import's per-batch callback; None when not shown."""
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(file=click.get_text_stream("stderr"))) as bar:
        task = bar.add_task("importing", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def _warn_if_unknown(provider: str) -> None:
    """A warning on standard error for a provider no instrumentation or price list knows (a typo, likely)."""
    known = known_providers()
    name = provider.strip()
    if name in known:
        return
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    click.echo(f"warning: unknown provider {name!r}{hint}; known: {', '.join(known)}", err=True)


def known_providers() -> list[str]:
    """Every `gen_ai.provider.name` the instrumentations report and the price data covers."""
    from otel_ai_cost.pricing.catalog import shipped_price_file
    from otel_ai_cost.pricing.genai_source import PROVIDER_IDS

    shipped = shipped_price_file()
    names = set(PROVIDER_IDS) | {entry.provider for entry in (*shipped.models, *shipped.defaults)}
    return sorted(names)
