"""Billed figures entered by hand, for providers with no billing API (xAI, Perplexity) or from an invoice.

`otel-ai-cost record --source dashboard|invoice` and `usage.jsonl` lines whose `source` is `dashboard` or
`invoice` are the BILLED side of the comparison, never tracked spend: they become billed lines (source
`dashboard` or `invoice`), and reports and budgets, which sum tracked records, never count them. So a day with
both tracked calls and a dashboard figure is counted once, and compared.

A figure's identity is (provider, day, source, model): recording another figure for the same key replaces it
(the dashboard's latest figure wins), so correcting a figure never adds to it. An invoice names a month
(`--date 2026-11`): it is compared with the month's tracked spend. A figure for spend no call shows and no bill
covers (a subscription) stays a spend record: `--source subscription`.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from decimal import Decimal

from otel_ai_cost.decimal_text import parse_decimal
from otel_ai_cost.ledger import limits
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.reconcile.billed import BilledLine
from otel_ai_cost.reconcile.compare import MANUAL_BILLED_SOURCES
from otel_ai_cost.when import parse_when

__all__ = ["MANUAL_BILLED_SOURCES", "billed_figure", "billed_line_of"]

_MONTH = re.compile(r"^\d{4}-\d{2}$")


def billed_figure(
    *,
    provider: str,
    amount: Decimal | str | int,
    source: str,
    when: str | date | datetime | None = None,
    model: str = "",
    note: str = "",
    environment: str = "",
) -> BilledLine:
    """A billed line for a figure read off a dashboard or an invoice. `when`: a UTC day (default today), or a month
    `YYYY-MM` (an invoice's month). `environment`: the deployment environment the figure is for ("": the whole
    organization, as a provider's bill is). Raises ValueError saying what is wrong (`limits.OutOfBounds` is one)."""
    if source not in MANUAL_BILLED_SOURCES:
        raise ValueError(f"a billed figure's source is one of {', '.join(MANUAL_BILLED_SOURCES)}, got {source!r}")
    name = provider.strip()
    if not name:
        raise ValueError("the provider must not be empty")
    value = parse_decimal(amount, maximum=limits.MAX_AMOUNT_USD, what="amount")
    period, day = _period(when)
    for what, text in (("provider", name), ("model", model.strip()), ("environment", environment.strip())):
        limits.check_text(what, text, limits.MAX_NAME_CHARS)
    limits.check_text("note", note, limits.MAX_NOTE_CHARS)
    scope = model.strip() or "all models"
    return BilledLine(
        provider=name,
        day=day,
        source=source,
        line=f"{source} figure ({scope}{', month' if period == 'month' else ''})",
        amount=value,
        model=model.strip(),
        period=period,
        note=note,
        environment=environment.strip(),
    )


def billed_line_of(record: LedgerRecord) -> BilledLine:
    """The billed line an imported `usage.jsonl` line with source dashboard or invoice stands for."""
    return billed_figure(
        provider=record.provider,
        amount=record.amount if record.amount is not None else Decimal(0),
        source=record.cost_source,
        when=record.timestamp,
        model=record.request_model,
        note=record.note,
        environment=record.environment,
    )


def _period(when: str | date | datetime | None) -> tuple[str, date]:
    if when is None:
        return "day", datetime.now(timezone.utc).date()
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError("the date must include a timezone")
        return "day", when.astimezone(timezone.utc).date()
    if isinstance(when, date):
        return "day", when
    text = when.strip()
    if _MONTH.match(text):
        try:
            return "month", date.fromisoformat(f"{text}-01")
        except ValueError:
            raise ValueError(f"not a month: {text!r}") from None
    try:
        parsed = parse_when(text, naive_is_utc=True)
    except ValueError:
        raise ValueError(f"not a UTC day (YYYY-MM-DD), a month (YYYY-MM) or an ISO 8601 time: {text!r}") from None
    day = parsed.astimezone(timezone.utc).date()
    limits.check_timestamp("date", datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
    return "day", day
