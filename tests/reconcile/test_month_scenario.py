"""A month of tracked calls beside a month of OpenAI bills, with planted differences: each is found and named,
every other day reconciles to exactly 0.00%, and a row that arrives late is found on the next run, not doubled.

The billed side is real: the `openai` SDK's admin client reads the stand-in's Costs and Usage APIs, which bill the
usage put in its book at the catalog's prices (`stand_in/openai_billing.py`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import BilledQuery
from otel_ai_cost.pricing.catalog import default_catalog
from otel_ai_cost.pricing.usage import Usage
from otel_ai_cost.reconcile.openai_costs import OpenAICosts
from otel_ai_cost.reconcile.result import Cause, Reconciliation, Verdict
from otel_ai_cost.reconcile.run import reconcile
from otel_ai_cost.stand_in import StandInServer
from otel_ai_cost.stand_in.billing_book import ServedUsage

NOVEMBER = [date(2026, 11, d) for d in range(1, 31)]
TODAY = date(2026, 12, 4)
MODEL, SNAPSHOT = "gpt-4o-mini", "gpt-4o-mini-2024-07-18"
MISSED, STALE, UNPRICED, BATCH, LATE, ODD_LINE = (date(2026, 11, d) for d in (5, 10, 15, 20, 25, 28))
PLANTED = {MISSED, STALE, UNPRICED, BATCH, LATE, ODD_LINE}


def served(day: date, n: int, *, tier: str = "") -> ServedUsage:
    return ServedUsage(provider="openai", day=day, model=SNAPSHOT, input_tokens=40_000 + 97 * n,
                       output_tokens=1_500 + n, tier=tier, account="proj_receipts")  # fmt: skip


def record(usage: ServedUsage, n: int, *, amount: Decimal | str | None = "catalog") -> LedgerRecord:
    at = datetime(usage.day.year, usage.day.month, usage.day.day, 12, n % 60, tzinfo=timezone.utc)
    quote = default_catalog().quote("openai", SNAPSHOT, Usage(input_tokens=usage.input_tokens,
                                    output_tokens=usage.output_tokens), at=at, warn=False)  # fmt: skip
    return LedgerRecord(
        trace_id=f"{n + 1:032x}", span_id=f"{n + 1:016x}", timestamp=at, environment="production",
        service="receipts", provider="openai", request_model=MODEL, response_model=SNAPSHOT,
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        amount=quote.amount if amount == "catalog" else amount,
        pricing_status="priced" if amount is not None else "unpriced", pricing_tier="standard",
    )  # fmt: skip


@pytest.fixture
def month(tmp_path: Path):
    """(stand-in, ledger, the late day's usage): a call a day, billed and tracked alike, but for the plants."""
    records: list[LedgerRecord] = []
    book: list[ServedUsage] = []
    n = 0
    for day in NOVEMBER:
        usage = served(day, n)
        n += 1
        if day == BATCH:  # billed in the batch tier (half price), tracked as a standard call
            book.append(replace(usage, tier="batch"))
            records.append(record(usage, n))
            continue
        if day == STALE:  # the tokens agree; our price was half the bill's
            records.append(record(usage, n, amount=record(usage, n).amount / 2))
        elif day != LATE:
            records.append(record(usage, n))
        if day == LATE:
            records.append(record(usage, n))  # tracked now; its bill arrives later
            late = usage
        else:
            book.append(usage)
        n += 1
        if day == MISSED:  # a second call the bill has and the ledger never saw
            book.append(served(day, n))
        if day == UNPRICED:  # a second call, billed, tracked without a price
            book.append(served(day, n))
            records.append(record(served(day, n), n, amount=None))
        if day == ODD_LINE:  # a tier OpenAI's line items would name and we do not know
            book.append(served(day, n, tier="reserved"))
            records.append(record(served(day, n), n))
        n += 1
    with StandInServer() as server, SQLiteStore(tmp_path / "usage.db") as store:
        server.billing.add(*book)
        store.write(records)
        yield server, store, late


def run(server: StandInServer, store: SQLiteStore) -> Reconciliation:
    client = openai.OpenAI(base_url=server.openai_base_url, admin_api_key="sk-admin-stand-in-0000000000", api_key="")
    source = OpenAICosts(client=client, today=lambda: TODAY)
    return reconcile(store, start_day=NOVEMBER[0], end_day=NOVEMBER[-1], sources=[source], today=TODAY)


def by_day(result: Reconciliation) -> dict[date, object]:
    return {row.day: row for row in result.days if row.provider == "openai"}


def test_each_planted_difference_is_found_and_named(month) -> None:
    server, store, _ = month
    days = by_day(run(server, store))
    assert sorted(days) == NOVEMBER
    assert days[MISSED].verdict is Verdict.UNDER and Cause.NOT_INSTRUMENTED in days[MISSED].causes
    assert days[STALE].verdict is Verdict.UNDER and days[STALE].causes == (Cause.STALE_PRICE,)
    assert days[UNPRICED].verdict is Verdict.UNDER and days[UNPRICED].causes == (Cause.UNPRICED,)
    assert days[BATCH].verdict is Verdict.OVER and Cause.TIER_MISMATCH in days[BATCH].causes
    assert days[ODD_LINE].causes and Cause.UNPARSED_LINES in days[ODD_LINE].causes
    assert "reserved |" in " ".join(finding.detail for finding in days[ODD_LINE].findings)
    assert days[LATE].billed == 0 and days[LATE].verdict is Verdict.OVER  # pulled, nothing billed yet
    for day in set(NOVEMBER) - PLANTED:
        row = days[day]
        assert (row.verdict, row.relative, row.difference, row.causes) == (Verdict.MATCH, 0, 0, ()), day
        assert row.billed > 0 and row.final


def test_a_late_row_is_found_on_the_next_run_and_never_doubled(month) -> None:
    server, store, late = month
    run(server, store)
    server.billing.add(late)  # the provider's bill for that day arrives
    second = by_day(run(server, store))
    assert second[LATE].verdict is Verdict.MATCH and second[LATE].relative == 0
    lines = store.billed_lines(BilledQuery(LATE, LATE))
    third = by_day(run(server, store))
    assert third[LATE].billed == second[LATE].billed == second[LATE].tracked
    assert store.billed_lines(BilledQuery(LATE, LATE)) == lines  # replaced, not appended
    runs = store.reconciliation_runs()
    assert len(runs) == 3 and store.reconciled_days(BilledQuery(LATE, LATE))[0].verdict == "match"
