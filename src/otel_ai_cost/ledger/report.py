"""Rendering ledger aggregates and a job's calls as a table, JSON or CSV.

Amounts are printed exactly (the ledger's sums are exact; a report never rounds them) and in JSON as decimal
strings. Calls of unknown cost (no price, a stream closed before its usage arrived: see
`otel_ai_cost.ledger.unknown_cost`) are shown loudly: their cost is unknown, not zero, so every total that includes
them is a lower bound. The table marks such an amount `>= 12.34` (`?` when no call of the group has a known cost)
and says how many calls it leaves out; JSON and CSV carry `unknown_cost_calls` on every row and on the total.

When some calls' cost was reported by the provider and our catalog priced them too (`computed_amount`), the report
gains a `computed` column (`computed_amount` in JSON and CSV): the amount with the catalog's figure in place of the
provider's, in the groups that have such calls (`-` elsewhere). `amount - computed` is what the providers reported
beyond the catalog.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from otel_ai_cost.contract import CURRENCY, Outcome, PricingStatus, RecordSource
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.store import EXACT_SUMS, AggregateRow, sum_rows
from otel_ai_cost.ledger.unknown_cost import is_cost_unknown

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
UNKNOWN_COST_WARNING = "{n} call(s) of unknown cost: the amounts marked >= are lower bounds; ? is unknown, not zero."
NO_USAGE_WARNING = "{n} call(s) {why}: their cost is UNKNOWN, not zero, so {what}."


def unknown_cost_calls(row: AggregateRow) -> int:
    """The calls of `row` whose cost is unknown: unpriced calls, streams closed before their usage arrived, answers
    without usage (`otel_ai_cost.ledger.unknown_cost`)."""
    return row.unknown_cost_calls


# (key in JSON/CSV, table heading, value of an AggregateRow), in JSON/CSV order
_MEASURES: tuple[tuple[str, str, Any], ...] = (
    ("calls", "calls", lambda r: r.calls),
    ("unpriced_calls", "unpriced", lambda r: r.unpriced_calls),
    ("amount", f"amount {CURRENCY}", lambda r: r.amount),
    ("input_tokens", "input", lambda r: r.input_tokens),
    ("output_tokens", "output", lambda r: r.output_tokens),
    ("cache_read_input_tokens", "cache read", lambda r: r.cache_read_input_tokens),
    ("cache_write_input_tokens", "cache write", lambda r: r.cache_write_input_tokens),
    ("reasoning_output_tokens", "reasoning", lambda r: r.reasoning_output_tokens),
    ("unknown_cost_calls", "unknown cost", unknown_cost_calls),
)
# The table's columns: the calls of unknown cost where JSON has the unpriced ones (the warnings below the table
# say which have no price).
_TABLE_KEYS = ("calls", "unknown_cost_calls", "amount", "input_tokens", "output_tokens", "cache_read_input_tokens",
               "cache_write_input_tokens", "reasoning_output_tokens")  # fmt: skip
_TABLE_MEASURES = tuple(m for key in _TABLE_KEYS for m in _MEASURES if m[0] == key)


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
    for key, _, value in _MEASURES:
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
    lines = [" ".join(f"{k}: {'all' if v is None else v}" for k, v in meta.items())] if meta else []
    if not rows:
        return "\n".join([*lines, "no calls recorded for this selection"])
    total = total_of(rows)
    computed = _has_computed(rows)
    headings = [*group_by]
    for key, heading, _ in _TABLE_MEASURES:
        headings.append(heading)
        if key == "amount" and computed:
            headings.append(f"computed {CURRENCY}")
    body = [[*(v for _, v in row.group), *_cells(row, computed)] for row in rows]
    footer = [*(["total"] + [""] * (len(group_by) - 1) if group_by else []), *_cells(total, computed)]
    if not group_by:
        headings, body = ["", *headings], [["total", *body[0]]]
        footer = []
    numeric = len(group_by) if group_by else 1
    widths = [
        max(len(str(c)) for c in column) for column in zip(headings, *body, *([footer] if footer else []), strict=True)
    ]

    def line(cells: Sequence[Any]) -> str:
        return "  ".join(
            str(c).ljust(w) if i < numeric else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    lines += ["", line(headings), "  ".join("-" * w for w in widths)]
    lines += [line(r) for r in body]
    if footer:
        lines += ["  ".join("-" * w for w in widths), line(footer)]
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


def _cells(row: AggregateRow, computed: bool = False) -> list[str]:
    """Table cells; an amount that leaves out calls of unknown cost is a lower bound, marked `>= 12.34` (`?` when no
    call of the group has a known cost). With `computed`, the computed amount follows the amount (`-` for a group
    without provider-reported calls priced by the catalog)."""
    unknown = unknown_cost_calls(row)
    cells = []
    for key, _, value in _TABLE_MEASURES:
        if key == "amount":
            if unknown and unknown == row.calls:
                cells.append("?")  # no call here has a known cost: unknown, not 0.00
            else:
                cells.append(_bound(row.amount, unknown))
            if computed:
                cells.append("-" if row.computed_amount is None else _bound(row.computed_amount, unknown))
        else:
            cells.append(f"{value(row):,}")
    return cells


def _bound(amount: Decimal, unknown_calls: int) -> str:
    """The amount, marked as a lower bound when it leaves out calls of unknown cost."""
    return (">= " if unknown_calls else "") + format_amount(amount)


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
    headings = ["time (UTC)", "environment", "provider", "model", "input", "output", "cached", "cwrite", "reason",
                f"cost {CURRENCY}", "status", "trace id"]  # fmt: skip
    body = [
        [
            r.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
            r.environment,
            r.provider,
            r.response_model or r.request_model,
            f"{r.input_tokens:,}",
            f"{r.output_tokens:,}",
            f"{r.cache_read_input_tokens:,}",
            f"{r.cache_write_5m_input_tokens + r.cache_write_1h_input_tokens:,}",
            f"{r.reasoning_output_tokens:,}",
            _call_cost(r.amount, u),
            _status(r),
            r.trace_id,
        ]
        for r, u in zip(records, unknown, strict=True)
    ]
    right = {4, 5, 6, 7, 8, 9}
    if any(r.computed_amount is not None for r in records):  # the catalog's figure beside the provider's
        headings.insert(10, f"computed {CURRENCY}")
        for cells, r in zip(body, records, strict=True):
            cells.insert(10, format_amount(r.computed_amount))
        right.add(10)
    widths = [max(len(c) for c in column) for column in zip(headings, *body, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [f"job {job_id}: {len(records)} call(s)", "", line(headings), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in body]
    out += ["", _job_total(amount, len(records), sum(unknown))]
    out += _job_warnings([r for r, u in zip(records, unknown, strict=True) if u])
    return "\n".join(out)


def _call_cost(amount: Decimal | None, unknown: bool) -> str:
    """A call's cost cell: `?` when unknown (never `-` or 0.00), `>= 0.01` for the known part of a call that ended
    early, `-` for a call that cost nothing (failed before any usage)."""
    if unknown:
        return "?" if amount is None else _bound(amount, 1)
    return format_amount(amount)


def _job_total(amount: Decimal, calls: int, unknown: int) -> str:
    """`job total: 1.50 USD over 2 call(s)`, or a lower bound that says how many calls it leaves out."""
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
