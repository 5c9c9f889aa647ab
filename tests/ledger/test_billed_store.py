"""The billed side of both ledger stores (SQLite file, DynamoDB over HTTP on a moto server): what the providers
billed, stored idempotently and exactly, replaced per source and window, never counted as tracked spend, and the
reconciliation runs with the latest verdict per provider, day and environment."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dynamodb_server import REGION

from otel_ai_cost.ledger import billed_bounds, run_codec, sqlite_store
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.sqlite_store import SCHEMA_VERSION, SQLiteStore
from otel_ai_cost.ledger.store import BilledQuery, BilledWrite, InvalidRecord, UsageQuery
from otel_ai_cost.reconcile.billed import OTHER, BilledLine, BilledPull, BilledUsage
from otel_ai_cost.reconcile.runs import ReconciledDay, RunRecord

SOURCE = "openai_admin"
JAN = (date(2026, 1, 1), date(2026, 1, 31))
ALL = BilledQuery(date(2000, 1, 1), date(2099, 12, 31))
T0 = datetime(2026, 2, 1, 6, 0, tzinfo=timezone.utc)


def day(n: int) -> date:
    return date(2026, 1, n)


def line(n: int, text: str, amount: str, **fields: Any) -> BilledLine:
    values: dict[str, Any] = {"provider": "openai", "day": day(n), "source": SOURCE, "line": text,
                              "amount": Decimal(amount), "account": "proj_receipts"}  # fmt: skip
    values.update(fields)
    return BilledLine(**values)


def usage(n: int, model: str = "gpt-4.1-2025-04-14", **fields: Any) -> BilledUsage:
    values: dict[str, Any] = {"provider": "openai", "day": day(n), "source": SOURCE, "model": model,
                              "account": "proj_receipts", "input_tokens": 1000, "output_tokens": 200}  # fmt: skip
    values.update(fields)
    return BilledUsage(**values)


def pull(start: int, end: int, lines: Any = (), rows: Any = (), source: str = SOURCE) -> BilledPull:
    return BilledPull(source, day(start), day(end), list(lines), list(rows))


def run(run_id: str, finished_at: datetime, days: Any = (), document: Any = None) -> RunRecord:
    return RunRecord(run_id, finished_at, day(1), day(31), list(days), document or {"run": run_id})


def verdict(n: int, run_id: str, finished_at: datetime, billed: str | None = "1.00", **fields: Any) -> ReconciledDay:
    values: dict[str, Any] = {"provider": "openai", "day": day(n), "tracked": Decimal("0.98"),
                              "billed": None if billed is None else Decimal(billed), "verdict": "match",
                              "run_id": run_id, "finished_at": finished_at}  # fmt: skip
    values.update(fields)
    return ReconciledDay(**values)


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Each test runs against a SQLite file and against a fresh DynamoDB table on the module's moto server."""
    if request.param == "sqlite":
        opened: Any = SQLiteStore(tmp_path / "ledger.db")
    else:
        request.getfixturevalue("aws_environment")
        server = request.getfixturevalue("server")
        opened = DynamoDBStore(f"ledger-{uuid.uuid4().hex[:12]}", region=REGION, endpoint_url=server.endpoint_url,
                               shards=2)  # fmt: skip
        opened.ensure_table()
    yield opened
    opened.close()


# ------------------------------------------------------------------------------------------ replace and upsert


def test_a_repulled_window_replaces_the_source_s_lines_never_doubling_a_day_and_dropping_what_the_bill_dropped(
    store: Any,
):
    first = pull(1, 3, [line(1, "gpt-4.1, input", "1.20"), line(2, "gpt-4.1, input", "2.00"),
                        line(2, "web search tool calls", "0.50"), line(3, "gpt-4.1, input", "0.10", final=False)],
                 [usage(1), usage(2)])  # fmt: skip
    assert store.replace_billed(first) == BilledWrite(written=6, removed=0)
    outside = line(5, "gpt-4.1, input", "9.00")  # a day outside the next window: kept
    other_source = line(2, "Usage", "4.00", provider="openai", source="invoice", period="day")
    store.write_billed([outside, other_source])

    # The trailing days again: day 3 is final now, day 2 lost its web search line, day 1 is not in the window.
    again = pull(2, 3, [line(2, "gpt-4.1, input", "2.00"), line(3, "gpt-4.1, input", "0.15")], [usage(3)])
    assert store.replace_billed(again) == BilledWrite(written=3, removed=2)  # the web search line, day 2's usage

    stored = store.billed_lines(BilledQuery(*JAN))
    assert [(row.day.day, row.source, row.line, row.amount, row.final) for row in stored] == [
        (1, SOURCE, "gpt-4.1, input", Decimal("1.20"), True),
        (2, "invoice", "Usage", Decimal("4.00"), True),
        (2, SOURCE, "gpt-4.1, input", Decimal("2.00"), True),
        (3, SOURCE, "gpt-4.1, input", Decimal("0.15"), True),
        (5, SOURCE, "gpt-4.1, input", Decimal("9.00"), True),
    ]
    assert [row.day.day for row in store.billed_usage(BilledQuery(*JAN))] == [1, 3]

    # The same pull once more changes nothing: idempotent.
    assert store.replace_billed(again) == BilledWrite(written=3, removed=0)
    assert store.billed_lines(BilledQuery(*JAN)) == stored


def test_an_empty_pull_empties_its_window(store: Any):
    store.replace_billed(pull(1, 2, [line(1, "a", "1"), line(2, "b", "2")], [usage(2)]))
    assert store.replace_billed(pull(2, 2)) == BilledWrite(written=0, removed=2)
    assert [row.line for row in store.billed_lines(ALL)] == ["a"]
    assert store.billed_usage(ALL) == []


@pytest.mark.parametrize(
    "bad, reason",
    [
        (pull(2, 3, [line(1, "early", "1")]), "outside the pull's days 2026-01-02..2026-01-03"),
        (pull(2, 3, [], [usage(4)]), "outside the pull's days"),
        (pull(2, 3, [line(2, "other", "1", source="anthropic_cost_report")]), "has source 'anthropic_cost_report'"),
        (pull(2, 3, [line(2, "twice", "1"), line(2, "twice", "2")]), "in the pull twice"),
        (BilledPull(SOURCE, day(3), day(2)), "is after end_day"),
    ],
)
def test_a_pull_with_rows_that_are_not_its_own_is_refused_and_nothing_is_written(store: Any, bad: Any, reason: str):
    store.replace_billed(pull(1, 3, [line(2, "kept", "1")]))
    good_then_bad = dataclasses.replace(bad, lines=[line(2, "new", "5"), *bad.lines]) if bad.lines else bad
    with pytest.raises(ValueError, match=reason):
        store.replace_billed(good_then_bad)
    assert [row.line for row in store.billed_lines(ALL)] == ["kept"]


def test_write_billed_upserts_by_key_the_latest_figure_winning(store: Any):
    dashboard = BilledLine("xai", day(1), "dashboard", "xAI API", Decimal("12.50"), period="month", note="console")
    assert store.write_billed([dashboard]) == BilledWrite(written=1)
    corrected = dataclasses.replace(dashboard, amount=Decimal("13.10"), note="corrected")
    other_day = dataclasses.replace(dashboard, day=day(2), period="day")
    assert store.write_billed([corrected, other_day, dataclasses.replace(other_day, amount=Decimal("2"))]) == (
        BilledWrite(written=2)
    )
    assert store.billed_lines(ALL) == [corrected, dataclasses.replace(other_day, amount=Decimal("2"))]
    assert store.write_billed([]) == BilledWrite(written=0)


# ------------------------------------------------------------------------------------------------- exact money


def test_amounts_and_quantities_round_trip_exactly_credits_and_28_digit_amounts_included(store: Any):
    every_field = BilledLine(provider="anthropic", day=day(7), source="anthropic_cost_report",
                             line="Claude Sonnet 4 Usage - Input Tokens, Cache Write 1h", amount=Decimal("-1234.5600"),
                             account="wrkspc_01", model="claude-sonnet-4-20250514", token_class="cache_write_1h",
                             tier="batch", quantity=Decimal("1234567.5"), unit="tokens", environment="production",
                             final=False, parsed=False, period="day", note="é ünïcode ✓")  # fmt: skip
    amounts = [
        "1234567.123456789012345678901",  # 28 significant digits
        "-9999999.999999999999999999999999999999",  # a credit: 37 digits, 30 places (the bound)
        "10000000",  # the bound itself
        "0.000000000000000000000000000001",  # the smallest step: 30 places
        "0",
        "-0.01",
    ]
    lines = [every_field] + [line(1, f"line {i}", text, quantity=None) for i, text in enumerate(amounts)]
    store.replace_billed(BilledPull("anthropic_cost_report", day(7), day(7), [every_field]))
    store.replace_billed(pull(1, 1, lines[1:]))
    stored = store.billed_lines(ALL)
    assert stored == sorted(lines, key=lambda row: (row.day, row.source, row.account, row.line))
    by_line = {row.line: row for row in stored}
    for i, text in enumerate(amounts):
        assert by_line[f"line {i}"].amount == Decimal(text)  # Decimal equality is exact: no context, no rounding
    assert by_line[every_field.line].quantity == Decimal("1234567.5")
    assert by_line["line 0"].quantity is None
    assert all(isinstance(row.amount, Decimal) for row in stored)


def test_usage_rows_round_trip_with_every_field(store: Any):
    row = BilledUsage(provider="anthropic", day=day(9), source="anthropic_usage_report", model="claude-opus-4-1",
                      account="wrkspc_01", tier="priority", input_tokens=10**15, cache_read_input_tokens=5,
                      cache_write_5m_input_tokens=6, cache_write_1h_input_tokens=7, output_tokens=8, requests=9,
                      provider_side=True, environment="staging", final=False)  # fmt: skip
    same_key_but_api = dataclasses.replace(row, provider_side=False, requests=None)  # another key: provider_side
    store.replace_billed(BilledPull("anthropic_usage_report", day(9), day(9), (), [row, same_key_but_api]))
    assert store.billed_usage(ALL) == [same_key_but_api, row]


# ---------------------------------------------------------------------------------------------------- bounds


# Each bad value, the field it is put in and what the refusal says (one test per store runs them all: the checks
# are the store's, before anything is sent).
LINE_BOUNDS = [
    ("amount", Decimal("10000000.01"), "amount must be from -10000000 to 10000000"),
    ("amount", Decimal("-10000001"), "amount must be from"),
    ("amount", Decimal("0." + "0" * 30 + "1"), "amount has more than 30 decimal places"),
    ("amount", Decimal("NaN"), "amount must be a finite Decimal"),
    ("amount", 1.5, "amount must be a finite Decimal"),
    ("quantity", Decimal("1E+19"), "quantity must be from"),
    ("day", date(1999, 12, 31), "day must be from 2000 to 2099"),
    ("day", datetime(2026, 1, 1, tzinfo=timezone.utc), "day must be a datetime.date"),
    ("provider", "", "provider must not be empty"),
    ("provider", "p" * 201, "provider has 201 characters; at most 200"),
    ("account", "a\x00b", "account contains a NUL character"),
    ("model", "\ud800", "model is not valid Unicode text"),
    ("line", "x" * 1001, "line has 1001 characters; at most 1000"),
    ("note", "n" * 2001, "note has 2001 characters; at most 2000"),
    ("period", "week", "period must be one of day, month"),
    ("final", "yes", "final must be True or False"),
]
USAGE_BOUNDS = [
    ("input_tokens", billed_bounds.MAX_BILLED_TOKENS + 1, "input_tokens must be a non-negative integer of at most"),
    ("output_tokens", -1, "output_tokens must be a non-negative integer"),
    ("requests", 1.0, "requests must be a non-negative integer"),
    ("source", "", "source must not be empty"),
    ("provider_side", 1, "provider_side must be True or False"),
]


def test_a_row_beyond_a_bound_is_refused_naming_the_field_and_nothing_of_the_call_is_written(store: Any):
    store.write_billed([line(1, "kept", "1")])
    for field, value, named in LINE_BOUNDS:
        bad = dataclasses.replace(line(2, "bad", "1"), **{field: value})
        with pytest.raises(InvalidRecord, match=f"billed line .*{named}"):
            store.replace_billed(pull(1, 3, [line(3, "good", "2"), bad]))
        with pytest.raises(InvalidRecord, match=f"billed line .*{named}"):
            store.write_billed([line(3, "good", "2"), bad])
    for field, value, named in USAGE_BOUNDS:
        bad_usage = dataclasses.replace(usage(2), **{field: value})
        with pytest.raises(InvalidRecord, match=f"billed usage .*{named}"):
            store.replace_billed(pull(1, 3, [line(1, "good", "1")], [usage(1), bad_usage]))
    assert [row.line for row in store.billed_lines(ALL)] == ["kept"]
    assert store.billed_usage(ALL) == []


def test_a_month_line_is_stored_on_the_month_s_first_day(store: Any):
    with pytest.raises(InvalidRecord, match="day of a line billing a month must be the month's first day"):
        store.write_billed([line(2, "January invoice", "100", source="invoice", period="month")])
    store.write_billed([line(1, "January invoice", "100", source="invoice", period="month")])
    (stored,) = store.billed_lines(BilledQuery(*JAN, source="invoice"))
    assert (stored.day, stored.period) == (day(1), "month")


# ----------------------------------------------------------------------------------------------------- reads


def test_reads_filter_by_days_provider_source_and_environments_the_organization_wide_ones_included(store: Any):
    store.replace_billed(pull(1, 31, [
        line(1, "a", "1", environment="production"),
        line(2, "b", "2", environment=""),
        line(3, "c", "3", environment="staging"),
        line(31, "d", "4", environment="production"),
    ], [usage(2, environment="production"), usage(3, environment="")]))  # fmt: skip
    store.replace_billed(BilledPull("anthropic_cost_report", day(2), day(2), [
        BilledLine("anthropic", day(2), "anthropic_cost_report", "e", Decimal("5"), environment="production")
    ]))  # fmt: skip
    store.write_billed([BilledLine("openai", date(2026, 2, 1), "invoice", "f", Decimal("6"))])

    def lines(**query: Any) -> list[str]:
        start, end = query.pop("days", JAN)
        return [row.line for row in store.billed_lines(BilledQuery(start, end, **query))]

    assert lines() == ["a", "e", "b", "c", "d"]  # by day, then source, account and line
    assert lines(days=(day(2), day(3))) == ["e", "b", "c"]
    assert lines(days=(day(31), date(2026, 2, 1))) == ["d", "f"]
    assert lines(days=(day(3), day(2))) == []
    assert lines(provider="anthropic") == ["e"]
    assert lines(source=SOURCE) == ["a", "b", "c", "d"]
    assert lines(provider="openai", source="anthropic_cost_report") == []
    assert lines(environments=None) == ["a", "e", "b", "c", "d"]
    assert lines(environments=frozenset({"production"})) == ["a", "e", "d"]
    assert lines(environments=frozenset({""})) == ["b"]
    assert lines(environments=frozenset({"production", ""})) == ["a", "e", "b", "d"]
    assert lines(environments=frozenset()) == []
    assert lines(environments=frozenset({"nowhere"})) == []
    assert lines(days=(date(2025, 1, 1), date(2025, 12, 31))) == []

    def usage_days(**query: Any) -> list[int]:
        return [row.day.day for row in store.billed_usage(BilledQuery(*JAN, **query))]

    assert usage_days() == [2, 3]
    assert usage_days(environments=frozenset({""})) == [3]
    assert usage_days(provider="anthropic") == []
    assert usage_days(source=SOURCE, environments=frozenset({"production"})) == [2]


def test_billed_rows_never_count_as_tracked_spend(store: Any, make_record: Any):
    record = make_record(n=1, environment="production")
    store.write([record])
    before = (store.totals("production", "2026-01"), store.totals("production", "2026-01-30"),
              store.aggregate(UsageQuery(), ["day", "provider", "model"]), list(store.query(UsageQuery())))  # fmt: skip

    billed_day = date(2026, 1, 30)
    store.replace_billed(BilledPull(SOURCE, billed_day, billed_day, [
        BilledLine("openai", billed_day, SOURCE, "gpt-4o-mini, input", Decimal("123.45"), environment="production",
                   model="gpt-4o-mini-2024-07-18"),
        BilledLine("openai", billed_day, SOURCE, "credit", Decimal("-3"), environment=""),
    ], [BilledUsage("openai", billed_day, SOURCE, "gpt-4o-mini-2024-07-18", environment="production",
                    input_tokens=10**12)]))  # fmt: skip
    store.write_billed([BilledLine("xai", billed_day, "dashboard", "xAI", Decimal("40"), environment="production")])
    store.write_reconciliation(run("r1", T0, [verdict(30, "r1", T0, environment="production")]))

    after = (store.totals("production", "2026-01"), store.totals("production", "2026-01-30"),
             store.aggregate(UsageQuery(), ["day", "provider", "model"]), list(store.query(UsageQuery())))  # fmt: skip
    assert after == before
    assert before[0].amount == record.amount and before[0].calls == 1
    assert store.aggregate(UsageQuery(provider="xai"), []) == []
    assert store.totals("", "2026-01").calls == 0  # organization-wide billed lines are not an environment's records
    if isinstance(store, DynamoDBStore):
        assert store.environments() == {"production": 2}  # no billed item reads as an environment


# ------------------------------------------------------------------------------------------------------- runs


def test_runs_are_listed_newest_first_with_their_days_and_documents(store: Any):
    runs = [run(f"run-{i}", T0 + timedelta(hours=h), [verdict(1, f"run-{i}", T0 + timedelta(hours=h))],
                {"i": i, "rows": [{"tracked": "0.98", "billed": None}], "ok": True})
            for i, h in enumerate([2, 0, 5, 1])]  # fmt: skip
    for each in runs:
        store.write_reconciliation(each)
    listed = store.reconciliation_runs()
    assert [each.run_id for each in listed] == ["run-2", "run-0", "run-3", "run-1"]
    assert [each.run_id for each in store.reconciliation_runs(limit=2)] == ["run-2", "run-0"]
    assert store.reconciliation_runs(limit=0) == []
    newest = listed[0]
    assert (newest.finished_at, newest.start_day, newest.end_day) == (T0 + timedelta(hours=5), day(1), day(31))
    assert list(newest.days) == list(runs[2].days) and newest.document == runs[2].document
    assert newest.finished_at.tzinfo is not None

    # A run written again under its id is replaced, not listed twice.
    store.write_reconciliation(dataclasses.replace(runs[2], document={"i": "again"}))
    assert [each.document for each in store.reconciliation_runs() if each.run_id == "run-2"] == [{"i": "again"}]
    with pytest.raises(ValueError, match="limit"):
        store.reconciliation_runs(limit=-1)


def test_the_latest_run_s_verdict_wins_per_provider_day_and_environment_whatever_the_write_order(store: Any):
    early, late, later = T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    store.write_reconciliation(run("late", late, [
        verdict(1, "late", late, billed="1.00"),
        verdict(1, "late", late, billed="7.00", environment="production"),
        verdict(2, "late", late, billed=None, verdict="no bill yet", final=False),
    ]))  # fmt: skip
    # An older run written afterwards (a slow job) does not replace the newer verdicts; its new key is stored.
    store.write_reconciliation(run("early", early, [
        verdict(1, "early", early, billed="0.50", verdict="under"),
        verdict(3, "early", early, billed="3.00", unknown_cost_calls=4),
    ]))  # fmt: skip
    store.write_reconciliation(run("later", later, [
        verdict(2, "later", later, billed="2.00", tracked=Decimal("-0.000000000000000000000000001")),
        verdict(1, "later", later, billed="9.00", provider="anthropic"),
    ]))  # fmt: skip

    days = store.reconciled_days(BilledQuery(*JAN))
    assert [(d.day.day, d.provider, d.environment, d.run_id, d.billed) for d in days] == [
        (1, "anthropic", "", "later", Decimal("9.00")),
        (1, "openai", "", "late", Decimal("1.00")),
        (1, "openai", "production", "late", Decimal("7.00")),
        (2, "openai", "", "later", Decimal("2.00")),
        (3, "openai", "", "early", Decimal("3.00")),
    ]
    by_key = {d.key: d for d in days}
    assert by_key[("openai", "2026-01-02", "")].tracked == Decimal("-0.000000000000000000000000001")
    assert by_key[("openai", "2026-01-02", "")].final is True
    assert by_key[("openai", "2026-01-03", "")].unknown_cost_calls == 4
    assert by_key[("openai", "2026-01-01", "")].finished_at == late

    def keys(**query: Any) -> list[tuple[str, str, str]]:
        return [d.key for d in store.reconciled_days(BilledQuery(*JAN, **query))]

    assert keys(provider="anthropic") == [("anthropic", "2026-01-01", "")]
    assert keys(environments=frozenset({"production"})) == [("openai", "2026-01-01", "production")]
    assert keys(environments=frozenset({""}), provider="openai") == [
        ("openai", "2026-01-01", ""), ("openai", "2026-01-02", ""), ("openai", "2026-01-03", "")
    ]  # fmt: skip
    assert [d.key for d in store.reconciled_days(BilledQuery(day(2), day(2)))] == [("openai", "2026-01-02", "")]


def test_a_big_run_document_round_trips(store: Any):
    # Random text does not compress: about 1.6 MB of JSON stays over a megabyte compressed, beyond one DynamoDB
    # item (400 KB), so the DynamoDB store keeps it in chunk items.
    rows = [{"line": os.urandom(400).hex(), "amount": f"{i}.01"} for i in range(2000)]
    days = [verdict(n, "big", T0, provider=f"provider-{p}") for n in range(1, 32) for p in range(10)]
    big = run("big", T0, days, {"rows": rows, "unicode": "é ✓"})
    store.write_reconciliation(big)
    store.write_reconciliation(run("small", T0 - timedelta(days=1)))
    (stored, small) = store.reconciliation_runs()
    assert stored.document == big.document and list(stored.days) == days
    assert small.run_id == "small"
    assert len(store.reconciled_days(BilledQuery(*JAN))) == 310
    if isinstance(store, DynamoDBStore):
        assert _chunk_items(store) >= 3


def test_a_run_document_that_is_not_json_ready_or_too_big_is_refused(store: Any, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(InvalidRecord, match="document is not JSON-ready"):
        store.write_reconciliation(run("bad", T0, [verdict(1, "bad", T0)], {"amount": Decimal("1.5")}))
    with pytest.raises(InvalidRecord, match="document is not JSON-ready"):
        store.write_reconciliation(run("bad", T0, document={"ratio": float("nan")}))
    monkeypatch.setattr(run_codec, "MAX_RUN_DOCUMENT_BYTES", 1000)
    with pytest.raises(InvalidRecord, match="at most 1000 are kept"):
        store.write_reconciliation(run("bad", T0, document={"text": "x" * 1000}))
    with pytest.raises(InvalidRecord, match="tracked must be a finite Decimal"):
        store.write_reconciliation(run("bad", T0, [verdict(1, "bad", T0, tracked=Decimal("Infinity"))]))
    with pytest.raises(InvalidRecord, match="finished_at must be a timezone-aware"):
        store.write_reconciliation(run("bad", datetime(2026, 2, 1)))
    with pytest.raises(ValueError, match="in the run twice"):
        store.write_reconciliation(run("bad", T0, [verdict(1, "bad", T0), verdict(1, "bad", T0)]))
    assert store.reconciliation_runs() == [] and store.reconciled_days(ALL) == []


def _chunk_items(store: DynamoDBStore) -> int:
    """The run chunk items in the table (a test may Scan; the store never does)."""
    items = store.client.scan(TableName=store.table)["Items"]
    return sum(1 for item in items if item["SK"]["S"].startswith("CHUNK#"))


# ---------------------------------------------------------------------------------------------- SQLite schema


_BILLED_TABLES = {"billed_lines", "billed_usage", "reconciliation_runs", "reconciled_days"}


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def test_a_version_3_file_is_migrated_to_4_keeping_every_record_and_total(tmp_path: Path, make_record: Any):
    path = tmp_path / "v3.db"
    records = [make_record(n=n, amount=Decimal(f"0.{n:06d}"), environment=("production", "staging")[n % 2])
               for n in range(1, 40)]  # fmt: skip
    with SQLiteStore(path) as store:
        store.write(records)
        before = (
            {env: store.totals(env, "2026-01") for env in ("production", "staging")},
            store.aggregate(UsageQuery(), ["environment", "provider", "model"]),
            list(store.query(UsageQuery())),
        )
    # A version 3 file: the same file without the version 4 tables (and what version 5 added), as version 3 wrote it.
    conn = sqlite3.connect(path)
    for table in _tables(path) - {"records", "daily", "totals"}:
        conn.execute(f"DROP TABLE {table}")
    for column in sqlite_store._ADDED_COLUMNS.get(5, ()):
        conn.execute(f"ALTER TABLE records DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    assert _tables(path) == {"records", "daily", "totals"}

    with SQLiteStore(path) as store:
        after = (
            {env: store.totals(env, "2026-01") for env in ("production", "staging")},
            store.aggregate(UsageQuery(), ["environment", "provider", "model"]),
            list(store.query(UsageQuery())),
        )
        assert after == before and len(after[2]) == 39
        assert store.billed_lines(ALL) == [] and store.reconciliation_runs() == []
        store.replace_billed(pull(1, 1, [line(1, "a", "1.5")]))  # the new tables work at once
        assert [row.amount for row in store.billed_lines(ALL)] == [Decimal("1.5")]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    conn.close()
    assert _tables(path) >= {"records", "daily", "totals"} | _BILLED_TABLES  # and version 5's tables


def test_the_sqlite_tables_keep_every_field_of_the_billed_shapes(tmp_path: Path):
    """A field added to BilledLine, BilledUsage or ReconciledDay needs a column (and a schema migration)."""
    path = tmp_path / "ledger.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    try:
        for table, shape in (("billed_lines", BilledLine), ("billed_usage", BilledUsage),
                             ("reconciled_days", ReconciledDay)):  # fmt: skip
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            assert columns == {field.name for field in dataclasses.fields(shape)}, table
        stored = conn.execute("SELECT typeof(amount), typeof(quantity) FROM billed_lines").fetchall()
    finally:
        conn.close()
    assert stored == []
    with SQLiteStore(path) as store:
        store.write_billed([line(1, "a", "0.1", quantity=Decimal("3"), token_class=OTHER)])
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT typeof(amount), amount, typeof(quantity) FROM billed_lines").fetchall() == [
        ("text", "0.1", "text")
    ]  # exact decimal text, never a float
    conn.close()


def test_the_run_codec_is_json_with_amounts_as_text():
    payload = run_codec.encode_run(run("r", T0, [verdict(1, "r", T0, billed=None)], {"a": 1}))
    data = json.loads(payload)
    assert data["days"][0]["tracked"] == "0.98" and data["days"][0]["billed"] is None
    assert data["finished_at"] == "2026-02-01T06:00:00.000000Z" and data["document"] == {"a": 1}
    assert run_codec.decode_run(payload).days == [verdict(1, "r", T0, billed=None)]


# ------------------------------------------------------------------------------------------- DynamoDB specifics


@pytest.fixture
def dynamodb(request: pytest.FixtureRequest) -> Iterator[DynamoDBStore]:
    request.getfixturevalue("aws_environment")
    server = request.getfixturevalue("server")
    opened = DynamoDBStore(f"ledger-{uuid.uuid4().hex[:12]}", region=REGION, endpoint_url=server.endpoint_url,
                           shards=2)  # fmt: skip
    opened.ensure_table()
    yield opened
    opened.close()


class Calls:
    """The DynamoDB API calls a client makes (operation names and parameters), from botocore's own events."""

    def __init__(self, client: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []  # since the last clear()
        self.operations: list[str] = []  # every one, never cleared
        client.meta.events.register("provide-client-params.dynamodb", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))
        self.operations.append(model.name)

    def named(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]


def test_dynamodb_replaces_and_reads_with_bounded_queries_never_a_scan(dynamodb: DynamoDBStore):
    dynamodb.replace_billed(pull(1, 31, [line(n, "a", "1") for n in range(1, 32)], [usage(n) for n in range(1, 32)]))
    dynamodb.write_billed([BilledLine("openai", date(2026, 3, 1), "invoice", "March", Decimal("9"), period="month")])
    calls = Calls(dynamodb.client)

    # A re-pull of the trailing days: one key-range Query per kind in the window's month, then the writes.
    assert dynamodb.replace_billed(pull(29, 31, [line(30, "a", "2")])) == BilledWrite(written=1, removed=5)
    queries = calls.named("Query")
    assert len(queries) == 2 and {q["ExpressionAttributeValues"][":pk"]["S"] for q in queries} == {
        f"BILLED#2026-01#{SOURCE}"
    }
    assert sorted(q["ExpressionAttributeValues"][":low"]["S"] for q in queries) == [
        "LINE#2026-01-29#", "USAGE#2026-01-29#"
    ]  # fmt: skip

    # A read of a century: the registry, then one Query per source and month that holds anything (not 1,200).
    calls.calls.clear()
    assert len(dynamodb.billed_lines(ALL)) == 30
    partitions = sorted(q["ExpressionAttributeValues"][":pk"]["S"] for q in calls.named("Query"))
    assert partitions == ["BILLED#2026-01#openai_admin", "BILLED#2026-03#invoice", "BILLED#REGISTRY"]
    calls.calls.clear()
    assert [row.line for row in dynamodb.billed_lines(BilledQuery(date(2026, 3, 1), date(2026, 3, 31)))] == ["March"]
    assert sorted(q["ExpressionAttributeValues"][":pk"]["S"] for q in calls.named("Query")) == [
        "BILLED#2026-03#invoice", "BILLED#REGISTRY"
    ]  # fmt: skip
    calls.calls.clear()  # days in reverse order: nothing to read (DynamoDB would refuse the reversed BETWEEN)
    assert dynamodb.billed_lines(BilledQuery(day(3), day(2))) == dynamodb.reconciled_days(BilledQuery(day(3), day(2)))
    assert calls.calls == []
    assert "Scan" not in calls.operations and "Query" in calls.operations


def test_dynamodb_billed_items_are_in_no_record_index(dynamodb: DynamoDBStore, make_record: Any):
    dynamodb.write([make_record(n=1)])
    dynamodb.replace_billed(pull(30, 30, [line(30, "a", "5", environment="production")], [usage(30)]))
    dynamodb.write_reconciliation(run("r", T0, [verdict(30, "r", T0, environment="production")]))
    items = dynamodb.client.scan(TableName=dynamodb.table)["Items"]  # a test may Scan; the store never does
    billed = [item for item in items if not item["PK"]["S"].startswith(("ENV#", "ENVIRONMENTS"))]
    assert len(billed) >= 6  # line, usage, registry (2), reconciled day, run, run pointer
    assert all(not name.startswith("GSI") for item in billed for name in item)
    indexed = [item for item in items if "GSISK" in item]
    assert [item["PK"]["S"] for item in indexed] == [f"ENV#production#TRACE#{1:032x}"]  # the record alone


def test_dynamodb_a_throttled_write_is_retried_and_stored_once(dynamodb: DynamoDBStore):
    throttled: list[str] = []

    def throttle_once(**_: Any) -> Any:
        if throttled:
            return None  # sent as usual
        throttled.append("BatchWriteItem")
        error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"},
                 "ResponseMetadata": {"HTTPStatusCode": 400}}  # fmt: skip
        return type("Response", (), {"status_code": 400, "headers": {}})(), error

    dynamodb.client.meta.events.register("before-call.dynamodb.BatchWriteItem", throttle_once)
    result = dynamodb.replace_billed(pull(1, 2, [line(1, "a", "1.5"), line(2, "b", "2.5")]))
    assert throttled and result == BilledWrite(written=2, removed=0)
    assert [row.amount for row in dynamodb.billed_lines(ALL)] == [Decimal("1.5"), Decimal("2.5")]


def test_dynamodb_a_run_written_again_leaves_no_old_chunk_or_run_item(dynamodb: DynamoDBStore):
    big = {"rows": [os.urandom(500).hex() for _ in range(1500)]}  # ~1.5 MB of JSON, more than 400 KB compressed
    dynamodb.write_reconciliation(run("again", T0, document=big))
    first_chunks = _chunk_items(dynamodb)
    assert first_chunks >= 2
    dynamodb.write_reconciliation(run("again", T0 + timedelta(hours=1), document={"small": True}))
    (stored,) = dynamodb.reconciliation_runs()
    assert (stored.finished_at, stored.document) == (T0 + timedelta(hours=1), {"small": True})
    assert _chunk_items(dynamodb) == 0
    items = dynamodb.client.scan(TableName=dynamodb.table)["Items"]
    assert sum(1 for item in items if item["SK"]["S"].startswith("RUN#")) == 1


def test_dynamodb_refuses_a_reconciled_sum_beyond_38_digits_that_sqlite_keeps(dynamodb: DynamoDBStore,
                                                                              tmp_path: Path):  # fmt: skip
    wide = Decimal("123456789012345." + "1" * 30)  # 45 significant digits, within the bound of 10**15 USD
    wide_run = run("wide", T0, [verdict(1, "wide", T0, tracked=wide)])
    with pytest.raises(InvalidRecord, match="38"):
        dynamodb.write_reconciliation(wide_run)
    assert dynamodb.reconciliation_runs() == [] and dynamodb.reconciled_days(ALL) == []
    with SQLiteStore(tmp_path / "ledger.db") as sqlite_store:
        sqlite_store.write_reconciliation(wide_run)
        assert [d.tracked for d in sqlite_store.reconciled_days(ALL)] == [wide]
