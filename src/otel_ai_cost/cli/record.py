"""`otel-ai-cost record` and `otel-ai-cost import`: spend that no SDK call shows, into the ledger.

```bash
otel-ai-cost record --provider openai --amount 45.23 --date 2026-01-30 --source dashboard
otel-ai-cost import ~/.claude/BUDGET/usage.jsonl      # again later: nothing is counted twice
otel-ai-cost import history/usage-2026-11.jsonl       # a monthly archive (`export jsonl`): records as they were
otel-ai-cost import claude-code --file EXECUTION_FILE # a subcommand of `import` (when installed)
```

See `otel_ai_cost.ledger.manual` for the `usage.jsonl` format and how identities are derived from content.

`import` is a command and a group at once (`FileOrSubcommand`): `import FILE` imports the file, `import NAME ...`
runs the subcommand NAME (a file named like a subcommand is `./NAME`). Subcommands register with
`import_usage.add_command(...)`, or lazily in `LAZY_IMPORT_SUBCOMMANDS` (module imported only when used or listed
in `--help`, and only if it exists).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from typing import Any

import click

from otel_ai_cost.cli.progress import interrupted, progress_bar, progress_option, show_progress
from otel_ai_cost.cli.report import ledger_option, open_ledger
from otel_ai_cost.ledger.manual import (
    MANUAL_SOURCES,
    ImportCancelled,
    ImportInterrupted,
    UsageFileError,
    import_usage_file,
    manual_record,
)
from otel_ai_cost.ledger.open_store import configured_url
from otel_ai_cost.ledger.report import format_amount
from otel_ai_cost.ledger.store import BilledQuery
from otel_ai_cost.reconcile.manual import MANUAL_BILLED_SOURCES, billed_figure

__all__ = ["LAZY_IMPORT_SUBCOMMANDS", "FileOrSubcommand", "import_usage", "record"]

# `import` subcommands of other modules: name -> (module, command attribute), loaded when used or listed.
LAZY_IMPORT_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "claude-code": ("otel_ai_cost.cli.import_claude_code", "claude_code"),
    "legacy-dynamodb": ("otel_ai_cost.cli.import_legacy", "legacy_dynamodb"),
}


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
    where = ledger.strip() if ledger is not None else configured_url()  # the URL people gave, never a repr
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


class FileOrSubcommand(click.Group):
    """A command that is also a group: `NAME FILE [OPTIONS]` runs the command's own callback (its parameters are
    the command's), `NAME SUBCOMMAND [ARGS]...` runs the subcommand when the first argument names one. `--help`
    shows both forms and lists the subcommands."""

    # A command's parsing, not a group's: options may follow FILE, and nothing extra is accepted.
    allow_extra_args = False
    allow_interspersed_args = True

    def __init__(self, *args: Any, lazy_subcommands: dict[str, tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        lazy = [name for name, (module, _) in self.lazy_subcommands.items() if _module_exists(module)]
        return sorted({*self.commands, *lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_subcommands:
            module, attribute = self.lazy_subcommands[cmd_name]
            if not _module_exists(module):
                return None
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return self.commands.get(cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] in self.list_commands(ctx):  # `import claude-code ...`: the subcommand parses the rest
            ctx.meta[_SUBCOMMAND_ARGS] = list(args)
            return []
        return click.Command.parse_args(self, ctx, args)  # `import FILE ...`

    def invoke(self, ctx: click.Context) -> Any:
        args = ctx.meta.pop(_SUBCOMMAND_ARGS, None)
        if args is None:
            return click.Command.invoke(self, ctx)
        name, *rest = args
        command = self.get_command(ctx, name)
        assert command is not None  # parse_args saw it listed
        # The subcommand's context hangs below ours in name only: click would put our FILE argument into its
        # command path ("import FILE claude-code"), where it does not belong.
        with command.make_context(f"{ctx.info_name} {name}", rest, parent=ctx.parent) as sub_ctx:
            return command.invoke(sub_ctx)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, " ".join(click.Command.collect_usage_pieces(self, ctx)))
        if self.list_commands(ctx):
            formatter.write_usage(ctx.command_path, self.subcommand_metavar, prefix="   or: ")


_SUBCOMMAND_ARGS = f"{__name__}.subcommand_args"


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its package is missing
        return False


@click.group("import", cls=FileOrSubcommand, lazy_subcommands=LAZY_IMPORT_SUBCOMMANDS)
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--environment", "-e", help="Environment of lines that name none (default: the current one).")
@progress_option
@ledger_option
def import_usage(file: str, environment: str | None, progress: bool | None, ledger: str | None) -> None:
    """Import a usage.jsonl file (one JSON object per line: timestamp, service, cost_usd, source, ...), or a
    monthly archive written by `otel-ai-cost export jsonl` (whole records: kept as they were, ids included).

    Every line is checked first: a bad line fails the import with its line number, and nothing is imported.
    The records are then written in batches; if the ledger fails partway, or on Ctrl-C (exit status 130), the
    message says how many were written. Importing the same file again changes nothing, so re-running an
    interrupted import is safe.
    """
    try:
        with open_ledger(ledger) as store, progress_bar("importing", show=show_progress(progress)) as bar:
            try:
                result = import_usage_file(store, file, environment=environment, on_progress=bar)
            except (UsageFileError, ImportInterrupted) as exc:
                raise click.ClickException(str(exc)) from exc
    except ImportCancelled as cancelled:
        interrupted(str(cancelled))
    except KeyboardInterrupt:  # while reading and checking the file, before any record was written
        interrupted(f"{file}: interrupted before any record was written; re-running the same import is safe")
    rejected = f", {len(result.rejected)} rejected" if result.rejected else ""
    billed = (
        f", {result.billed} billed figures (dashboard or invoice: compared by `reconcile`)" if result.billed else ""
    )
    click.echo(f"{file}: {result.new} new, {result.already_recorded} already recorded{billed}{rejected}")
    if result.rejected:
        for line, reason in result.rejected:
            click.echo(f"{file}:{line}: {reason}", err=True)
        raise SystemExit(1)


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
