"""A reconciliation, written for people (a table, an HTML page) and for programs (JSON, CSV)."""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from decimal import Decimal

from otel_ai_cost.ledger.report import format_amount
from otel_ai_cost.reconcile.result import Comparison, Reconciliation, Verdict, percent

__all__ = ["FORMATS", "render"]

FORMATS = ("table", "json", "csv", "html")
CSV_COLUMNS = ("level", "provider", "day", "model", "environment", "account", "tracked", "billed", "difference",
               "relative", "verdict", "tracked_calls", "unknown_cost_calls", "final", "source", "causes")  # fmt: skip


def render(result: Reconciliation, fmt: str, *, width: int = 140) -> str:
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2) + "\n"
    if fmt == "csv":
        return _csv(result)
    if fmt == "html":
        return _html(result)
    if fmt == "table":
        return _table(result, width)
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def _money(value: Decimal | None) -> str:
    return format_amount(value)


def _tracked(row: Comparison) -> str:
    shown = _money(row.tracked)
    return f">= {shown}" if row.unknown_cost_calls else shown


def _causes(row: Comparison) -> str:
    return "; ".join(cause.value for cause in row.causes)


def _levels(result: Reconciliation) -> list[tuple[str, Comparison]]:
    return ([("day", row) for row in result.days] + [("model", row) for row in result.models]
            + [("environment", row) for row in result.environments]
            + [("window", row) for row in result.totals])  # fmt: skip


def _csv(result: Reconciliation) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for level, row in _levels(result):
        data = row.to_dict()
        writer.writerow([level, row.provider, data["day"] or "", row.model, row.environment, row.account,
                         data["tracked"], data["billed"] or "",
                         data["difference"] or "", data["relative"] or "", row.verdict.value, row.tracked_calls,
                         row.unknown_cost_calls, str(row.final).lower(), row.source, _causes(row)])  # fmt: skip
    return out.getvalue()


def _table(result: Reconciliation, width: int) -> str:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    title = f"Reconciliation {result.start_day} .. {result.end_day} (threshold {percent(result.threshold)})"
    table = Table(title=title, show_lines=False)
    for name, justify in (
        ("day", "left"),
        ("provider", "left"),
        ("tracked USD", "right"),
        ("billed USD", "right"),
        ("difference", "right"),
        ("%", "right"),
        ("verdict", "left"),
        ("causes", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in [*result.days, *result.environments, *result.totals]:
        day = row.day.isoformat() if row.day else (row.model or "window")
        provider = f"{row.provider} ({row.environment})" if row.environment else row.provider
        final = "" if row.final else " (not final)"
        table.add_row(day, provider, _tracked(row), _money(row.billed), _money(row.difference),
                      percent(row.relative), row.verdict.value + final, _causes(row))  # fmt: skip
    console.print(table)
    _print_details(console, result)
    return console.file.getvalue()  # type: ignore[attr-defined]


def _print_details(console: object, result: Reconciliation) -> None:
    lines: list[str] = []
    for row in result.days:
        for finding in row.findings:
            lines.append(f"{row.day} {row.provider}: {finding.cause.value}: {finding.detail}")
    for source in result.sources:
        if source.error:
            lines.append(f"source {source.source} not pulled: {source.error}")
        elif source.unparsed_lines:
            lines.append(f"source {source.source}: {source.unparsed_lines} of {source.lines} lines not understood")
    lines.extend(f"note: {note}" for note in result.notes)
    unknown = sum(row.unknown_cost_calls for row in result.totals if row.day is None and not row.model)
    if unknown:
        lines.append(f"{unknown} tracked call(s) have an unknown cost: tracked totals marked >= are lower bounds")
    discrepancies = len(result.discrepancies)
    lines.append(f"{discrepancies} day(s) beyond the threshold" if discrepancies else "every billed day matches")
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)  # type: ignore[attr-defined]


_VERDICT_CLASS = {Verdict.MATCH: "match", Verdict.OVER: "over", Verdict.UNDER: "under",
                  Verdict.NO_BILL_YET: "pending", Verdict.NOT_TRACKED: "untracked"}  # fmt: skip


def _html(result: Reconciliation) -> str:
    def cells(row: Comparison) -> str:
        day = row.day.isoformat() if row.day else (row.model or "window")
        provider = f"{row.provider} ({row.environment}: {row.account})" if row.environment else row.provider
        values = (day, provider, row.model if row.day else "", _tracked(row), _money(row.billed),
                  _money(row.difference), percent(row.relative))  # fmt: skip
        out = "".join(f"<td>{html.escape(str(value))}</td>" for value in values)
        verdict = row.verdict.value + ("" if row.final else " (not final)")
        out += f'<td class="{_VERDICT_CLASS[row.verdict]}">{html.escape(verdict)}</td>'
        details = "<br>".join(html.escape(f"{f.cause.value}: {f.detail}") for f in row.findings)
        return out + f"<td>{details}</td>"

    def table(title: str, rows: Sequence[Comparison]) -> str:
        head = "".join(f"<th>{name}</th>" for name in ("day", "provider", "model", "tracked USD", "billed USD",
                                                          "difference", "%", "verdict", "causes"))  # fmt: skip
        body = "".join(f"<tr>{cells(row)}</tr>" for row in rows)
        return f"<h2>{html.escape(title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    notes = "".join(f"<li>{html.escape(note)}</li>" for note in result.notes)
    errors = "".join(f"<li>{html.escape(s.source)} not pulled: {html.escape(s.error)}</li>" for s in result.sources
                     if s.error)  # fmt: skip
    title = f"Reconciliation {result.start_day} .. {result.end_day}"
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:nth-child(-n+3),td:last-child{text-align:left}"
        ".match{background:#d9f2d9}.over,.under,.untracked{background:#f9d6d5}.pending{background:#eee}"
        f"</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>Threshold {percent(result.threshold)}; run {html.escape(result.run_id)}.</p>"
        + table("Per provider and day", result.days)
        + table("Per model", result.models)
        + (table("Per environment (mapped billing accounts)", result.environments) if result.environments else "")
        + table("Window", result.totals)
        + (f"<h2>Notes</h2><ul>{notes}{errors}</ul>" if notes or errors else "")
        + "</body></html>\n"
    )
