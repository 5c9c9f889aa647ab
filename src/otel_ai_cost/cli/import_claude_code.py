"""`otel-ai-cost import claude-code --file EXECUTION_FILE`: what a Claude Code run in CI cost, into the ledger.

After `anthropics/claude-code-action` (the PR review), in the same job:

```yaml
- uses: anthropics/claude-code-action@v1
  id: claude
  with: {anthropic_api_key: "${{ secrets.ANTHROPIC_API_KEY }}"}
- if: always() && steps.claude.outputs.execution_file != ''
  env:
    OTEL_AI_COST_LEDGER: ${{ vars.OTEL_AI_COST_LEDGER }}
    EXECUTION_FILE: ${{ steps.claude.outputs.execution_file }}
  run: otel-ai-cost import claude-code --file "$EXECUTION_FILE"
```

One record per model the run used, with the cost the file states (`cost_source=provider`), the run's CI attributes,
the pull request (`vcs_change_id`) and `operation_type=code_review`; importing the same file again changes nothing
(`otel_ai_cost.ci.claude_code` documents the file, the records and their identity). It prints what it recorded and,
in GitHub Actions, adds it to the job summary. Exit status 1 for a file it cannot read (nothing is recorded).
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import click

from otel_ai_cost.ci.claude_code import (
    ANTHROPIC,
    BEDROCK,
    DEFAULT_OPERATION_TYPE,
    DEFAULT_SERVICE,
    VERTEX,
    ExecutionFileError,
    records_from_execution_file,
)
from otel_ai_cost.ci.step_summary import append_step_summary
from otel_ai_cost.cli.report import ledger_option, open_ledger
from otel_ai_cost.ledger.open_store import configured_url
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.report import format_amount
from otel_ai_cost.ledger.store import EXACT_SUMS
from otel_ai_cost.ledger.unknown_cost import is_cost_unknown
from otel_ai_cost.reports.markdown_tables import code, escape, markdown_table
from otel_ai_cost.reports.tables import Column, render, table

__all__ = ["claude_code"]

_COLUMNS = (
    Column("model"),
    Column("input_tokens", "count"),
    Column("cache_read_input_tokens", "count"),
    Column("cache_write_input_tokens", "count"),
    Column("output_tokens", "count"),
    Column("amount", "money"),
    Column("cost_source"),
)


@click.command("claude-code")
@click.option(
    "--file",
    "execution_file",
    required=True,
    metavar="EXECUTION_FILE",
    type=click.Path(dir_okay=False),
    help="The action's execution file: its `execution_file` output ($RUNNER_TEMP/claude-execution-output.json).",
)
@click.option("--environment", "-e", help="Deployment environment (default: the current one: cicd in CI).")
@click.option("--pr", "change_id", metavar="N", help="The pull request (default: the run's, from GitHub's variables).")
@click.option(
    "--provider",
    type=click.Choice([ANTHROPIC, BEDROCK, VERTEX]),
    help="Where Claude Code sent its requests (default: from CLAUDE_CODE_USE_BEDROCK/_VERTEX, else anthropic).",
)
@click.option("--service", default=DEFAULT_SERVICE, show_default=True, help="The service the records belong to.")
@click.option("--operation-type", default=DEFAULT_OPERATION_TYPE, show_default=True, help="What the run was for.")
@ledger_option
def claude_code(
    execution_file: str,
    environment: str | None,
    change_id: str | None,
    provider: str | None,
    service: str,
    operation_type: str,
    ledger: str | None,
) -> None:
    """Record the cost of a Claude Code run (anthropics/claude-code-action) from its execution file."""
    if change_id is not None and not change_id.strip().lstrip("#").isdigit():
        raise click.BadParameter(f"expected a pull request number, got {change_id!r}", param_hint="--pr")
    try:
        records = records_from_execution_file(
            execution_file,
            os.environ,
            environment=environment,
            change_id=change_id.strip().lstrip("#") if change_id else None,
            provider=provider,
            service=service,
            operation_type=operation_type,
        )
    except ExecutionFileError as exc:
        raise click.ClickException(str(exc)) from None
    with open_ledger(ledger) as store:
        result = store.write(records)
    where = ledger.strip() if ledger is not None else configured_url()  # the URL people gave, never a repr
    rows = [_row(record) for record in records]
    total = _total(records)
    click.echo(render(table(_COLUMNS, rows, title=_title(records), total=total if len(rows) > 1 else None)), nl=False)
    already = result.duplicates
    differing = f" ({result.conflicts} with other content: kept as first recorded)" if result.conflicts else ""
    click.echo(f"{execution_file}: {result.written} new, {already} already recorded{differing} in {where}")
    append_step_summary(_summary(records, rows, total))


def _row(record: LedgerRecord) -> dict[str, Any]:
    return {
        "model": record.request_model,
        "input_tokens": record.input_tokens,
        "cache_read_input_tokens": record.cache_read_input_tokens,
        "cache_write_input_tokens": record.cache_write_5m_input_tokens + record.cache_write_1h_input_tokens,
        "output_tokens": record.output_tokens,
        "amount": None if is_cost_unknown(record) else record.amount,
        "cost_source": record.cost_source,
    }


def _total(records: list[LedgerRecord]) -> dict[str, object]:
    known = [r.amount for r in records if not is_cost_unknown(r) and r.amount is not None]
    amount = None
    for value in known:  # exact: the sum never rounds
        amount = value if amount is None else EXACT_SUMS.add(amount, value)
    unknown = sum(1 for r in records if is_cost_unknown(r))
    out: dict[str, object] = {"model": "total", "unknown_cost_calls": unknown, "amount": amount}
    rows = [_row(record) for record in records]
    for key in ("input_tokens", "cache_read_input_tokens", "cache_write_input_tokens", "output_tokens"):
        out[key] = sum(row[key] for row in rows)
    return out


def _title(records: list[LedgerRecord]) -> str:
    first = records[0]
    parts = [f"Claude Code run, {first.operation_type}"]
    if first.vcs_change_id:
        parts.append(f"PR #{first.vcs_change_id}")
    if first.cicd_run_url:
        parts.append(first.cicd_run_url)
    parts.append(f"environment {first.environment}")
    return ", ".join(parts)


def _summary(records: list[LedgerRecord], rows: list[dict[str, Any]], total: dict[str, object]) -> str:
    first = records[0]
    amount = total.get("amount")
    assert amount is None or isinstance(amount, Decimal)
    unknown = total.get("unknown_cost_calls")
    if amount is None:
        cost = "cost unknown"
    else:
        cost = f"{'&ge; ' if unknown else ''}{format_amount(amount)} USD"
    pull = f" on PR #{escape(first.vcs_change_id)}" if first.vcs_change_id else ""
    heading = f"### Claude Code: {cost}{pull}"
    turns = first.tags.get("claude_code.num_turns")
    detail = f"{escape(first.operation_type)}, {turns} turns" if turns else escape(first.operation_type)
    note = (
        f"{detail}, recorded in the ledger as environment {code(first.environment)}. The cost is Claude "
        "Code's own figure; `otel-ai-cost reconcile` compares it with the bill."
    )
    body = markdown_table(_COLUMNS, rows, total=total if len(rows) > 1 else None)
    return f"{heading}\n\n{body}\n\n{note}"
