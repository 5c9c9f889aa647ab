"""How `otel-ai-cost doctor` shows its results: a checklist table for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO

from otel_ai_cost.doctor.checks import Result, Status, exit_code

__all__ = ["as_json", "print_table"]

_STYLES = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}


def print_table(results: Sequence[Result], *, file: IO[str] | None = None, details: bool = False) -> None:
    """One row per check: its status, its name, what was found (with where each value came from when `details`),
    and the fix for a failure or a warning; then a line saying whether costs are being tracked."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="otel-ai-cost doctor", show_lines=False, expand=False)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("found")
    table.add_column("fix")
    for result in results:
        found = Text(result.summary)
        if details and result.details:
            found.append("\n" + "\n".join(f"  {line}" for line in result.details), style="dim")
        status = Text(result.status.value, style=_STYLES[result.status])
        table.add_row(status, Text(result.name), found, Text(result.fix))  # Text: a `[...]` is never markup
    console = Console(file=file, highlight=False, soft_wrap=False)
    console.print(table)
    failed = [r.name for r in results if r.status is Status.FAIL]
    warned = [r.name for r in results if r.status is Status.WARN]
    if failed:
        console.print(
            f"[bold red]{len(failed)} failed[/]: {', '.join(failed)}. Apply the fixes above and run "
            "otel-ai-cost doctor again."
        )
    else:
        console.print(
            "[green]All checks passed[/]" + (f" ({len(warned)} warnings: {', '.join(warned)})." if warned else ".")
        )


def as_json(results: Sequence[Result]) -> str:
    """`{"ok": ..., "exit_code": ..., "checks": [{"name", "status", "summary", "fix", "details"}, ...]}`."""
    code = exit_code(results)
    return json.dumps({"ok": code == 0, "exit_code": code, "checks": [r.as_json() for r in results]}, indent=2)
