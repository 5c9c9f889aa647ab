"""Rendering ledger aggregates and a job's calls as a table, JSON or CSV.

Amounts are printed exactly (the ledger's sums are exact; a report never rounds them) and in JSON as decimal
strings. The table is `otel_ai_cost.reports.tables`'s, the same as every command's: the same header words, the
amounts of a column right-aligned on the decimal point at one precision (the most decimals any of them needs, at
least cents: padded with zeros, never rounded), `(none)` for an empty attribution value, and a total row. When the
grouping has more than one level (`--by provider,model`) each group of the first levels with more than one line
gets a subtotal (a subtotal per provider; with `--by day,provider,model`, per day and provider and per day); a
group of one line needs none, its line is its subtotal.

Calls of unknown cost (no price, a stream closed before its usage arrived: see `otel_ai_cost.ledger.unknown_cost`)
are shown loudly: their cost is unknown, not zero, so every total that includes them is a lower bound. The table
marks such an amount `>= 12.34` (`unknown` when no call of the group has a known cost), counts them in its
`cost unknown` column, and says below how many calls it leaves out; JSON and CSV carry `unknown_cost_calls` on
every row and on the total.

When some calls' cost was reported by the provider and our catalog priced them too (`computed_amount`), the table
gains a `catalog USD` column (`computed_amount` in JSON and CSV): the amount with the catalog's figure in place of
the provider's, in the groups that have such calls (`-` elsewhere). `amount - computed` is what the providers
reported beyond the catalog.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from otel_ai_cost.contract import CURRENCY, Outcome, PricingStatus, RecordSource
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.store import EXACT_SUMS, AggregateRow, sum_rows
from otel_ai_cost.ledger.unknown_cost import is_cost_unknown
from otel_ai_cost.reports.tables import NONE, SUBTOTAL, Column, render, table

__all__ = [
    "FORMATS",
    "UNPRICED_WARNING",
    "format_amount",
    "render_job",
    "render_report",
    "total_of",
    "unknown_cost_calls",
]

FORMATS = ("table", "json", "csv")
UNPRICED_WARNING = (
    "{n} call(s) have no price: their cost is UNKNOWN, not zero, so {what}. "
    "Add the missing prices with OTEL_AI_COST_PRICES_FILE (see `otel-ai-cost prices --help`)."
)
UNKNOWN_COST_WARNING = (
    "{n} call(s) of unknown cost: the amounts marked >= are lower bounds; `unknown` is unknown, not zero."
)
NO_USAGE_WARNING = "{n} call(s) {why}: their cost is UNKNOWN, not zero, so {what}."
# Wide enough for any table: a line too long for the terminal wraps there, rather than rich cutting a trace id or
# a model name short (`reports.tables.render` otherwise fits a table to 160 columns).
_WIDTH = 1000


def unknown_cost_calls(row: AggregateRow) -> int:
    """The calls of `row` whose cost is unknown: unpriced calls, streams closed before their usage arrived, answers
    without usage (`otel_ai_cost.ledger.unknown_cost`)."""
    return row.unknown_cost_calls


# (key in JSON/CSV, value of an AggregateRow), in JSON/CSV order
_MEASURES: tuple[tuple[str, Any], ...] = (
    ("calls", lambda r: r.calls),
    ("unpriced_calls", lambda r: r.unpriced_calls),
    ("amount", lambda r: r.amount),
    ("input_tokens", lambda r: r.input_tokens),
    ("output_tokens", lambda r: r.output_tokens),
    ("cache_read_input_tokens", lambda r: r.cache_read_input_tokens),
    ("cache_write_input_tokens", lambda r: r.cache_write_input_tokens),
    ("reasoning_output_tokens", lambda r: r.reasoning_output_tokens),
    ("unknown_cost_calls", unknown_cost_calls),
)
_TOKENS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens",
           "reasoning_output_tokens")  # fmt: skip


def format_amount(amount: Decimal | None) -> str:
    """Exact (never rounded), never in exponent form, at least cents: 45.23, 0.00027, 12.50."""
    if amount is None:
        return "-"
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0")  # the value, not the pricing's spelling of it (0.000235200 -> 0.0002352)
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def total_of(rows: Sequence[AggregateRow]) -> AggregateRow:
    """One row summing `rows` (exact), calls of unknown cost included."""
    return sum_rows(rows)


def _has_computed(rows: Sequence[AggregateRow]) -> bool:
    """Whether any group has provider-reported calls with our catalog's figure beside them."""
    return any(row.computed_amount is not None for row in rows)


def render_report(
    rows: Sequence[AggregateRow],
    group_by: Sequence[str],
    fmt: str = "table",
    *,
    meta: Mapping[str, Any] | None = None,
    unpriced_models: Sequence[tuple[str, str, int]] = (),
) -> str:
    """The report of `rows` (grouped by `group_by`) in `fmt` (`table`, `json` or `csv`).

    `meta` (period, environment, ledger) heads the table and is merged into the JSON object; `unpriced_models`
    ((provider, model, calls), ...) names what lacks a price.
    """
    if fmt == "json":
        return _json(rows, group_by, meta or {}, unpriced_models)
    if fmt == "csv":
        return _csv(rows, group_by)
    if fmt == "table":
        return _table(rows, group_by, meta or {}, unpriced_models)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def _measures(row: AggregateRow, computed: bool = False) -> dict[str, Any]:
    """The row's measures; with `computed`, `computed_amount` right after `amount` (None when the row has none)."""
    out: dict[str, Any] = {}
    for key, value in _MEASURES:
        out[key] = value(row)
        if key == "amount":
            out[key] = format(row.amount, "f")
            if computed:
                out["computed_amount"] = None if row.computed_amount is None else format(row.computed_amount, "f")
    return out


def _json(
    rows: Sequence[AggregateRow],
    group_by: Sequence[str],
    meta: Mapping[str, Any],
    unpriced_models: Sequence[tuple[str, str, int]],
) -> str:
    document = {
        **meta,
        "currency": CURRENCY,
        "group_by": list(group_by),
        "rows": [{**dict(row.group), **_measures(row, _has_computed([row]))} for row in rows],
        "total": _measures(total_of(rows), _has_computed(rows)),
        "unpriced": [{"provider": p, "model": m, "calls": n} for p, m, n in unpriced_models],
    }
    return json.dumps(document, indent=2)


def _csv(rows: Sequence[AggregateRow], group_by: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    computed = _has_computed(rows)
    writer.writerow([*group_by, *_measures(total_of([]), computed), "currency"])
    for row in rows:
        measures = ["" if v is None else v for v in _measures(row, computed).values()]
        writer.writerow([*(value for _, value in row.group), *measures, CURRENCY])
    return out.getvalue()


def _table(
    rows: Sequence[AggregateRow],
    group_by: Sequence[str],
    meta: Mapping[str, Any],
    unpriced_models: Sequence[tuple[str, str, int]],
) -> str:
    heading = [_heading(meta)] if meta else []
    if not rows:
        return "\n".join([*heading, "no calls recorded for this selection"])
    total = total_of(rows)
    computed = _has_computed(rows)
    measures = [Column("calls", "count"), Column("unknown_cost_calls", "count"), Column("amount", "money"),
                *([Column("computed_amount", "money")] if computed else []),
                *(Column(key, "count") for key in _TOKENS)]  # fmt: skip
    if group_by:
        columns = [*(Column(field) for field in group_by), *measures]
        body = _body(rows, group_by, computed)
        footer = {group_by[0]: "total", **_table_cells(total, computed)}
    else:  # one line for the whole selection: its total
        columns, body, footer = [Column("", header=" "), *measures], [], {"": "total", **_table_cells(total, computed)}
    lines = [*heading, *([""] if heading else []), _render(table(columns, body, total=footer))]
    unknown = unknown_cost_calls(total)
    if unknown:
        lines += ["", "!! " + UNKNOWN_COST_WARNING.format(n=unknown)]
    if total.unpriced_calls:
        warning = UNPRICED_WARNING.format(n=total.unpriced_calls, what="the amounts above are lower bounds")
        lines += ["!! " + warning]
        lines += [f"!!   no price: {p} {m or '(no model)'}: {n} call(s)" for p, m, n in unpriced_models]
    if unknown > total.unpriced_calls:
        others = unknown - total.unpriced_calls
        why = "ended before their usage was reported (streams closed early) or were answered without usage"
        lines += ["!! " + NO_USAGE_WARNING.format(n=others, why=why, what="the amounts are lower bounds")]
    return "\n".join(lines)


def _heading(meta: Mapping[str, Any]) -> str:
    """`2026-01-29 to 2026-01-30 (UTC days), environment: all, ledger: sqlite:///...`: the period first, then the
    rest of `meta` (the ledger last: it is the longest)."""
    parts = []
    if "since" in meta or "until" in meta:
        parts.append(f"{meta.get('since') or '...'} to {meta.get('until') or '...'} (UTC days)")
    others = [k for k in meta if k not in ("since", "until", "ledger")] + (["ledger"] if "ledger" in meta else [])
    parts += [f"{key}: {'all' if meta[key] is None else meta[key]}" for key in others]
    return ", ".join(parts)


def _body(rows: Sequence[AggregateRow], group_by: Sequence[str], computed: bool) -> list[dict[str, Any]]:
    """The table's lines: each row, and after each group of the first levels that holds more than one line, its
    subtotal (exact, `sum_rows`), labelled `subtotal` in the next level's column. `rows` come sorted by their
    group (both stores' `aggregate` sort them), so a group's rows are contiguous."""
    out: list[dict[str, Any]] = []

    def walk(chunk: Sequence[AggregateRow], level: int) -> None:
        if level == len(group_by) - 1:
            out.extend({**dict(row.group), **_table_cells(row, computed)} for row in chunk)
            return
        for _, group in itertools.groupby(chunk, key=lambda row: row.group[level][1]):
            members = list(group)
            walk(members, level + 1)
            if len({row.group[level + 1][1] for row in members}) > 1:
                sub = sum_rows(members, group=members[0].group[: level + 1])
                named = {field: value or NONE for field, value in sub.group}  # a subtotal's blanks are its own
                out.append({**named, group_by[level + 1]: "subtotal", SUBTOTAL: True, **_table_cells(sub, computed)})

    walk(rows, 0)
    return out


def _table_cells(row: AggregateRow, computed: bool) -> dict[str, Any]:
    """A row's measures for `reports.tables.table`: the amount is None (shown `unknown`) when no call of the group
    has a known cost, and a lower bound when some have not (`unknown_cost_calls`); `computed_amount` is `-` for a
    group without provider-reported calls priced by the catalog."""
    unknown = unknown_cost_calls(row)
    cells: dict[str, Any] = {
        "calls": row.calls,
        "unknown_cost_calls": unknown,
        "amount": None if unknown and unknown == row.calls else row.amount,  # unknown, never 0.00
        **{key: getattr(row, key) for key in _TOKENS},
    }
    if computed:
        cells["computed_amount"] = "-" if row.computed_amount is None else row.computed_amount
    return cells


def _render(out: Any) -> str:
    """The text of a table, without trailing blanks (nor a last newline: `click.echo` adds it)."""
    return "\n".join(line.rstrip() for line in render(out, width=_WIDTH).splitlines())


# -- one job's calls ----------------------------------------------------------------------------------------


def render_job(job_id: str, records: Sequence[LedgerRecord], fmt: str = "table") -> str:
    """Every call of a job (time, provider, model, tokens, cost, status, trace id) and the job total."""
    amount = Decimal(0)
    for record in records:
        if record.amount is not None:
            amount = EXACT_SUMS.add(amount, record.amount)
    unpriced = sum(1 for r in records if r.pricing_status == PricingStatus.UNPRICED.value)
    unknown = [is_cost_unknown(r) for r in records]
    if fmt == "json":
        total = {"amount": format(amount, "f"), "calls": len(records), "unpriced_calls": unpriced,
                 "unknown_cost_calls": sum(unknown)}  # fmt: skip
        calls = [{**r.to_dict(), "cost_unknown": u} for r, u in zip(records, unknown, strict=True)]
        return json.dumps({"job_id": job_id, "currency": CURRENCY, "calls": calls, "total": total}, indent=2)
    if fmt != "table":
        raise ValueError(f"format must be table or json, got {fmt!r}")
    if not records:
        return f"no calls recorded for job {job_id}"
    computed = any(r.computed_amount is not None for r in records)  # the catalog's figure beside the provider's
    columns = [Column("time"), Column("environment"), Column("provider"), Column("model"),
               *(Column(key, "count") for key in _TOKENS), Column("amount", "money"),
               *([Column("computed_amount", "money")] if computed else []),
               Column("status"), Column("trace_id")]  # fmt: skip
    body = [_call_cells(r, u, computed) for r, u in zip(records, unknown, strict=True)]
    known = any(r.amount is not None for r in records) or not all(unknown)
    footer: dict[str, Any] = {"time": "total", "amount": amount if known else None, "unknown_cost_calls": sum(unknown),
                              **{key: sum(cells[key] for cells in body) for key in _TOKENS}}  # fmt: skip
    if computed:
        footer["computed_amount"] = _computed_total(records)
    out = [f"job {job_id}: {len(records)} call(s)", "", _render(table(columns, body, total=footer))]
    out += ["", _job_total(amount if known else None, len(records), sum(unknown))]
    out += _job_warnings([r for r, u in zip(records, unknown, strict=True) if u])
    return "\n".join(out)


def _call_cells(record: LedgerRecord, unknown: bool, computed: bool) -> dict[str, Any]:
    """A call's line. Its cost: None (shown `unknown`, never `-` or 0.00) when unknown, a lower bound (`>= 0.01`)
    for the known part of a call that ended early, `-` for a call that cost nothing (failed before any usage)."""
    cells: dict[str, Any] = {
        "time": record.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
        "environment": record.environment,
        "provider": record.provider,
        "model": record.response_model or record.request_model,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cache_read_input_tokens": record.cache_read_input_tokens,
        "cache_write_input_tokens": record.cache_write_5m_input_tokens + record.cache_write_1h_input_tokens,
        "reasoning_output_tokens": record.reasoning_output_tokens,
        "amount": record.amount if record.amount is not None or unknown else "-",
        "unknown_cost_calls": int(unknown),
        "status": _status(record),
        "trace_id": record.trace_id,
    }
    if computed:
        cells["computed_amount"] = "-" if record.computed_amount is None else record.computed_amount
    return cells


def _computed_total(records: Sequence[LedgerRecord]) -> Decimal:
    """The job's amount with the catalog's figure in place of the provider's where a call has both (as
    `sum_rows` does for a report's groups)."""
    total = Decimal(0)
    for record in records:
        figure = record.amount if record.computed_amount is None else record.computed_amount
        if figure is not None:
            total = EXACT_SUMS.add(total, figure)
    return total


def _bound(amount: Decimal, unknown_calls: int) -> str:
    """The amount, marked as a lower bound when it leaves out calls of unknown cost."""
    return (">= " if unknown_calls else "") + format_amount(amount)


def _job_total(amount: Decimal | None, calls: int, unknown: int) -> str:
    """`job total: 1.50 USD over 2 call(s)`, or a lower bound that says how many calls it leaves out (`unknown`
    when no call has a known cost)."""
    if amount is None:
        return f"job total: unknown, over {calls} call(s), {unknown} of unknown cost"
    if not unknown:
        return f"job total: {format_amount(amount)} {CURRENCY} over {calls} call(s)"
    return f"job total: {_bound(amount, unknown)} {CURRENCY} over {calls} call(s), {unknown} of unknown cost"


# Why a call's cost is unknown, for the warnings under a job's calls (see `otel_ai_cost.ledger.unknown_cost`).
_PARTIAL_WHY = "ended before their usage was reported (a stream closed early)"
_NO_USAGE_WHY = "were answered without usage"
_OTHER_WHY = "have a pricing status without a known cost"


def _job_warnings(unknown: Sequence[LedgerRecord]) -> list[str]:
    """One warning per reason the calls in `unknown` have an unknown cost."""
    what = "the job total is a lower bound"
    unpriced = sum(1 for r in unknown if r.pricing_status == PricingStatus.UNPRICED.value)
    partial = sum(1 for r in unknown if r.pricing_status != PricingStatus.UNPRICED.value
                  and r.outcome == Outcome.PARTIAL.value)  # fmt: skip
    no_usage = sum(1 for r in unknown if r.pricing_status == PricingStatus.NO_USAGE.value
                   and r.outcome != Outcome.PARTIAL.value)  # fmt: skip
    other = len(unknown) - unpriced - partial - no_usage
    lines = ["!! " + UNPRICED_WARNING.format(n=unpriced, what=what)] if unpriced else []
    for n, why in ((partial, _PARTIAL_WHY), (no_usage, _NO_USAGE_WHY), (other, _OTHER_WHY)):
        if n:
            lines.append("!! " + NO_USAGE_WARNING.format(n=n, why=why, what=what))
    return lines


def _status(record: LedgerRecord) -> str:
    status = record.pricing_status
    if record.error_type:
        status += f" ({record.error_type})"
    elif record.outcome != Outcome.SUCCESS.value:
        status += f" ({record.outcome})"
    if record.record_source != RecordSource.SPAN.value:
        status += f" [{record.record_source}: {record.cost_source}]"
    return status
