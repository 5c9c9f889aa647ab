"""The bounds of a ledger record (`ledger/limits.py`), and the SQLite store's exact sums at and beyond them (issue 10,
items 1, 6 and 17): every numeric and text field bounded with a reason naming it; sums at the bound exact integers;
a ledger an older version wrote beyond the bounds still reported exactly; a conflicting replay counted."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from otel_ai_cost.contract import Cost, GenAI, PricingStatus, RecordSource
from otel_ai_cost.ledger import limits
from otel_ai_cost.ledger import sqlite_store as sqlite_module
from otel_ai_cost.ledger.from_span import InvalidSpan, record_from_attributes
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import InvalidRecord, RetryBatch, UsageQuery
from otel_ai_cost.ledger.unknown_cost import is_cost_unknown

MakeRecord = Callable[..., LedgerRecord]  # the `make_record` fixture of conftest.py
INT64_MAX = 2**63 - 1
DAY = datetime(2026, 1, 30, 12, 0, tzinfo=timezone.utc)


# --- the bounds, field by field --------------------------------------------------------------------------------------
OUT_OF_BOUNDS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "input-tokens-2**63-1": ({"input_tokens": INT64_MAX}, ("input_tokens", "1000000000")),
    "output-tokens-negative": ({"output_tokens": -1}, ("output_tokens", "non-negative")),
    "reasoning-tokens-float": ({"reasoning_output_tokens": 1e20}, ("reasoning_output_tokens",)),
    "cache-write-1h-bool": ({"cache_write_1h_input_tokens": True}, ("cache_write_1h_input_tokens",)),
    "web-searches": ({"web_search_requests": 10**6 + 1}, ("web_search_requests", "1000000")),
    "amount-1e13": ({"amount": Decimal("1E+13")}, ("amount", "10000000 USD")),
    "computed-amount-1e13": ({"computed_amount": Decimal("1E+13")}, ("computed_amount",)),
    "amount-negative": ({"amount": Decimal("-0.01")}, ("amount",)),
    "amount-nan": ({"amount": Decimal("NaN")}, ("amount", "finite")),
    "amount-1e-1000": ({"amount": Decimal("1E-1000")}, ("amount", "30 decimal places")),
    "year-2262": ({"timestamp": datetime(2262, 4, 11, tzinfo=timezone.utc)}, ("timestamp", "2100")),
    "year-1970": ({"timestamp": datetime(1970, 1, 1, tzinfo=timezone.utc)}, ("timestamp", "2000")),
    "naive-timestamp": ({"timestamp": datetime(2026, 1, 30)}, ("timestamp", "timezone-aware")),
    "duration-inf": ({"duration_ms": float("inf")}, ("duration_ms", "finite")),
    "duration-a-month": ({"duration_ms": 30 * 24 * 3600 * 1000.0}, ("duration_ms", "7 days")),
    "model-100000-chars": ({"request_model": "m" * 100_000}, ("request_model", "100000", "200")),
    "response-model-201-chars": ({"response_model": "m" * 201}, ("response_model", "201")),
    "pricing-status-1000-chars": ({"pricing_status": "p" * 1000}, ("pricing_status", "priced, unpriced, no_usage")),
    "outcome": ({"outcome": "exploded"}, ("outcome", "success")),
    "record-source": ({"record_source": "fax"}, ("record_source", "span")),
    "currency": ({"currency": "EUR"}, ("currency", "USD")),
    "cost-source-of-a-span": ({"cost_source": "invoice"}, ("cost_source", "local, provider")),
    "environment-empty": ({"environment": ""}, ("environment", "empty")),
    "team-lone-surrogate": ({"team": "a\ud800b"}, ("team", "surrogate")),
    "job-id-nul": ({"job_id": "a\x00b"}, ("job_id", "NUL")),
    "note-2001-chars": ({"note": "n" * 2001}, ("note", "2000")),
    "url-2049-chars": ({"cicd_run_url": "https://ci/" + "x" * 2040}, ("cicd_run_url", "2048")),
    "65-tags": ({"tags": {f"k{i}": "v" for i in range(65)}}, ("tags", "64")),
    "tag-value-201-chars": ({"tags": {"k": "v" * 201}}, ("tag 'k'", "200")),
    "tag-key-empty": ({"tags": {"": "v"}}, ("tags", "empty")),
    "trace-id-uppercase": ({"trace_id": "A" * 32}, ("trace_id", "lowercase hex")),
    "span-id-short": ({"span_id": "abc"}, ("span_id", "16")),
    "schema-version-2": ({"schema_version": 2}, ("schema_version",)),
}


@pytest.mark.parametrize("case", list(OUT_OF_BOUNDS), ids=list(OUT_OF_BOUNDS))
def test_a_record_beyond_a_bound_is_invalid_with_a_reason_naming_the_field_and_the_bound(
    make_record: MakeRecord, case: str
):
    overrides, words = OUT_OF_BOUNDS[case]
    record = make_record(**overrides)
    with pytest.raises(InvalidRecord) as raised:
        limits.validate_record(record)
    message = str(raised.value)
    assert raised.value.key == (record.trace_id, record.span_id)
    assert message.startswith(f"record {record.trace_id}/{record.span_id}: ")
    for word in words:
        assert word in message, message
    assert len(message) < 400  # a 100,000-character value is quoted shortened


def test_records_at_every_bound_are_valid(make_record: MakeRecord):
    at_bounds = make_record(
        **{name: maximum for name, maximum in limits.COUNT_LIMITS.items()},
        amount=limits.MAX_AMOUNT_USD,
        computed_amount=Decimal("0." + "1" * limits.MAX_AMOUNT_DECIMAL_PLACES),
        timestamp=limits.MAX_TIMESTAMP - timedelta(microseconds=1),
        duration_ms=limits.MAX_DURATION_MS,
        request_model="m" * limits.MAX_NAME_CHARS,
        tags={f"{i:0{limits.MAX_TAG_KEY_CHARS}d}": "v" * limits.MAX_TAG_VALUE_CHARS for i in range(limits.MAX_TAGS)},
        note="n" * limits.MAX_NOTE_CHARS,
        vcs_repository_url="u" * limits.MAX_URL_CHARS,
    )
    limits.validate_record(at_bounds)
    limits.validate_record(
        make_record(timestamp=limits.MIN_TIMESTAMP, amount=Decimal("1.500000000000000000000000000000000"))
    )
    # manual and imported entries name the figure's origin in cost_source
    limits.validate_record(make_record(cost_source="invoice", record_source=RecordSource.MANUAL.value))
    limits.validate_record(make_record(amount=None, pricing_status=PricingStatus.UNPRICED.value))


def test_every_text_field_of_a_record_is_bounded():
    texts = {f.name for f in fields(LedgerRecord) if f.type in ("str", str)}
    choices = {"pricing_status", "outcome", "record_source", "currency"}
    ids = {"trace_id", "span_id"}
    assert texts - ids - choices == set(limits.TEXT_LIMITS)
    ints = {f.name for f in fields(LedgerRecord) if f.type in ("int", int)} - {"schema_version"}
    assert ints == set(limits.COUNT_LIMITS)


def test_the_helpers_check_one_value_at_another_edge():
    assert limits.check_count("tokens_input", 5) == 5
    with pytest.raises(limits.OutOfBounds, match=r"tokens_input must be a non-negative integer of at most 1000000000"):
        limits.check_count("tokens_input", 10**20)
    with pytest.raises(limits.OutOfBounds, match="cost_usd must be from 0 to 10000000 USD"):
        limits.check_amount("cost_usd", Decimal("1E+13"))
    with pytest.raises(limits.OutOfBounds, match="model has 300 characters; at most 200"):
        limits.check_text("model", "x" * 300)
    with pytest.raises(limits.OutOfBounds, match="2000 to 2100"):
        limits.check_timestamp("timestamp", datetime(2262, 1, 1, tzinfo=timezone.utc))
    assert limits.decimal_places(Decimal("1.500000")) == 1
    assert limits.decimal_places(Decimal("1E+3")) == 0


# --- the span edge ---------------------------------------------------------------------------------------------------
def span_attributes(**extra: Any) -> dict[str, Any]:
    return {
        GenAI.PROVIDER_NAME: "openai",
        GenAI.REQUEST_MODEL: "gpt-4o-mini",
        GenAI.USAGE_INPUT_TOKENS: 10,
        Cost.AMOUNT: "0.01",
        Cost.PRICING_STATUS: "priced",
        **extra,
    }


START_NS = int(DAY.timestamp()) * 10**9


def from_span(attributes: dict[str, Any], start_ns: int = START_NS, end_ns: int | None = None) -> Any:
    return record_from_attributes(
        trace_id="a" * 32,
        span_id="b" * 16,
        start_time_ns=start_ns,
        end_time_ns=start_ns + 10**6 if end_ns is None else end_ns,
        resource={"deployment.environment.name": "production"},
        attributes=attributes,
    )


@pytest.mark.parametrize(
    ("attributes", "start_ns", "end_ns", "words"),
    [
        (span_attributes(**{GenAI.USAGE_INPUT_TOKENS: INT64_MAX}), START_NS, None, ("gen_ai.usage.input_tokens",)),
        (span_attributes(**{GenAI.USAGE_OUTPUT_TOKENS: 1e20}), START_NS, None, ("gen_ai.usage.output_tokens",)),
        (span_attributes(**{Cost.PRICING_STATUS: "x" * 1000}), START_NS, None, ("pricing_status", "ai_cost.pricing")),
        (span_attributes(**{GenAI.REQUEST_MODEL: "m" * 100_000}), START_NS, None, ("gen_ai.request.model", "200")),
        (span_attributes(**{Cost.AMOUNT: "1E+13"}), START_NS, None, ("ai_cost.amount", "10000000")),
        (span_attributes(), 2**63, None, ("start time", "2100")),
        (span_attributes(), START_NS, 2**64 - 1, ("duration_ms", "7 days")),
    ],
    ids=[
        "tokens-2**63-1",
        "tokens-1e20",
        "status-1000-chars",
        "model-100000-chars",
        "amount-1e13",
        "start-2**63-ns",
        "end-2**64-ns",
    ],
)
def test_a_span_beyond_a_bound_is_an_invalid_span_naming_the_attribute(attributes, start_ns, end_ns, words):
    with pytest.raises(InvalidSpan) as raised:
        from_span(attributes, start_ns, end_ns)
    for word in words:
        assert word in str(raised.value), raised.value


def test_a_span_within_the_bounds_becomes_a_record():
    record = from_span(span_attributes(**{GenAI.USAGE_INPUT_TOKENS: limits.MAX_TOKENS}))
    assert record.input_tokens == limits.MAX_TOKENS and record.timestamp == DAY


# --- the SQLite store: its own check, exact sums at the bound, sums beyond it ------------------------------------
def test_the_sqlite_store_checks_the_bounds_itself_and_stores_nothing_of_the_batch(
    sqlite_store: SQLiteStore, make_record: MakeRecord
):
    """Records also come from `record` and `import`, which do not pass the span edge."""
    bad = make_record(input_tokens=INT64_MAX)
    with pytest.raises(InvalidRecord, match="input_tokens") as raised:
        sqlite_store.write([make_record(), bad, make_record()])
    assert raised.value.key == bad.key
    assert list(sqlite_store.query(UsageQuery())) == []


def test_sums_at_the_bound_stay_exact_integers(sqlite_store: SQLiteStore, make_record: MakeRecord):
    n = 50
    at_bound = dict.fromkeys(limits.COUNT_LIMITS, limits.MAX_TOKENS)
    at_bound["web_search_requests"] = limits.MAX_WEB_SEARCH_REQUESTS
    for _ in range(2):
        sqlite_store.write(
            [make_record(job_id="big", amount=limits.MAX_AMOUNT_USD, **at_bound) for _i in range(n // 2)]
        )
    for group_by in (["job_id"], ["day"], ["month", "team"], []):
        (row,) = sqlite_store.aggregate(UsageQuery(), group_by)
        assert row.amount == limits.MAX_AMOUNT_USD * n
        assert row.input_tokens == row.output_tokens == row.reasoning_output_tokens == limits.MAX_TOKENS * n
        assert row.cache_write_input_tokens == 2 * limits.MAX_TOKENS * n
        assert all(type(v) is int for v in (row.calls, row.input_tokens, row.cache_write_input_tokens))
    assert sqlite_store.totals("production", "2026-01").amount == limits.MAX_AMOUNT_USD * n
    with sqlite_store._lock:
        kinds = sqlite_store._conn.execute(
            "SELECT DISTINCT typeof(amount_micro), typeof(input_tokens), typeof(cache_write_1h_input_tokens) FROM daily"
        ).fetchall()
    assert kinds == [("integer", "integer", "integer")]


def _seed_rollup(store: SQLiteStore, column: str, value: int) -> None:
    """Sets a rollup sum the way a ledger written before the bounds (or after millions of records) can hold it."""
    with store._lock:
        store._conn.execute(f"UPDATE daily SET {column} = ?", (value,))


@pytest.mark.parametrize("column", ["input_tokens", "amount_micro", "calls", "cache_write_5m_input_tokens"])
def test_a_rollup_row_at_the_edge_of_int64_refuses_the_record_instead_of_becoming_a_float(
    sqlite_store: SQLiteStore, make_record: MakeRecord, column: str
):
    sqlite_store.write([make_record(cache_write_5m_input_tokens=1)])
    _seed_rollup(sqlite_store, column, INT64_MAX)
    one = make_record(amount=Decimal("1"), cache_write_5m_input_tokens=100)
    with pytest.raises(InvalidRecord, match="overflow") as raised:
        sqlite_store.write([one])
    assert raised.value.key == one.key
    with pytest.raises(RetryBatch, match="smaller slices"):  # several records: which one is the caller's search
        sqlite_store.write([make_record(amount=Decimal("1"), cache_write_5m_input_tokens=100) for _ in range(3)])
    with sqlite_store._lock:
        (kind,) = sqlite_store._conn.execute(f"SELECT typeof({column}) FROM daily").fetchone()
    assert kind == "integer"
    assert len(list(sqlite_store.query(UsageQuery()))) == 1  # nothing of the refused writes


def _insert_raw(store: SQLiteStore, record: Any) -> None:
    """Inserts a record row as an older version, without the bounds, did (rollup and totals included)."""
    with store._lock:
        conn = store._conn
        row = sqlite_module._row(record)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(sqlite_module._INSERT, row)
        key = [row[sqlite_module._ROW_INDEX[name]] for name in sqlite_module._DAILY_KEY]
        measures = [1, 0, row[sqlite_module._ROW_INDEX["amount_micro"]], row[sqlite_module._ROW_INDEX["amount_pico"]]]
        measures += [
            int(is_cost_unknown(record)) if name == "unknown_cost_calls" else getattr(record, name)
            for name in sqlite_module._DAILY_MEASURES[4:]
        ]
        columns = [*sqlite_module._DAILY_KEY, "model", *sqlite_module._DAILY_MEASURES]
        conn.execute(  # the rollup upsert of version 2, whose `+` let a sum overflow into a float
            f"INSERT INTO daily ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT ({', '.join(sqlite_module._DAILY_KEY)}) DO UPDATE SET "
            + ", ".join(f"{m} = {m} + excluded.{m}" for m in sqlite_module._DAILY_MEASURES),
            (*key, row[sqlite_module._ROW_INDEX["model"]], *measures),
        )
        conn.execute("COMMIT")


def test_a_ledger_with_sums_beyond_int64_is_still_reported_exactly(sqlite_store: SQLiteStore, make_record: MakeRecord):
    """issue 10 item 6: `report --by job_id` died with 'integer overflow' on such a ledger."""
    for day in (1, 2, 3):
        record = make_record(
            job_id="j", input_tokens=2**62, cache_write_5m_input_tokens=2**62, cache_write_1h_input_tokens=2**62,
            timestamp=DAY.replace(day=day),
        )  # fmt: skip
        _insert_raw(sqlite_store, record)
    for group_by in (["job_id"], ["month"], []):
        (row,) = sqlite_store.aggregate(UsageQuery(), group_by)
        assert row.input_tokens == 3 * 2**62 and type(row.input_tokens) is int
        assert row.cache_write_input_tokens == 6 * 2**62
        assert row.calls == 3 and row.amount == Decimal("0.000081")
    (by_job,) = sqlite_store.aggregate(UsageQuery(job_id="j"), ["day"])[:1]
    assert by_job.input_tokens == 2**62


def test_usage_by_job_id_over_such_a_ledger_answers_exactly(sqlite_store: SQLiteStore, make_record: MakeRecord):
    """The issue's `/v1/usage?aggregation=job_id` answered 500 ('integer overflow')."""
    import requests

    from otel_ai_cost.ledger.service import LedgerService, ServiceConfig

    for _ in range(2):
        _insert_raw(sqlite_store, make_record(job_id="j", input_tokens=INT64_MAX))
    service = LedgerService(sqlite_store, ServiceConfig(port=0)).start()
    try:
        for aggregation in ("job_id", "day"):
            usage = requests.get(f"{service.url}/v1/usage", params={"aggregation": aggregation}, timeout=10)
            assert usage.status_code == 200, usage.text
            (row,) = usage.json()["rows"]
            assert row["input_tokens"] == 2 * INT64_MAX
    finally:
        service.shutdown(timeout=5)


def test_totals_counts_at_the_edge_of_int64_refuse_the_record(sqlite_store: SQLiteStore, make_record: MakeRecord):
    sqlite_store.write([make_record()])
    with sqlite_store._lock:
        sqlite_store._conn.execute("UPDATE totals SET calls = ?", (INT64_MAX,))
    with pytest.raises(InvalidRecord, match="overflow"):
        sqlite_store.write([make_record()])
    with sqlite_store._lock:
        kinds = sqlite_store._conn.execute("SELECT DISTINCT typeof(calls) FROM totals").fetchall()
    assert kinds == [("integer",)]


def test_a_rollup_an_older_version_let_overflow_into_a_float_is_bypassed(
    sqlite_store: SQLiteStore, make_record: MakeRecord
):
    _insert_raw(sqlite_store, make_record(input_tokens=INT64_MAX))
    _insert_raw(sqlite_store, make_record(input_tokens=5))  # the older version's `+` made the row a float
    with sqlite_store._lock:
        (kind,) = sqlite_store._conn.execute("SELECT typeof(input_tokens) FROM daily").fetchone()
    assert kind == "real"
    (row,) = sqlite_store.aggregate(UsageQuery(), ["day"])
    assert row.input_tokens == INT64_MAX + 5 and type(row.input_tokens) is int


def test_a_value_sqlite_cannot_bind_is_an_invalid_record_naming_it(make_record: MakeRecord):
    """Second line of defence below the bounds: an error a record's value causes is that record's."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for version in sorted(sqlite_module._MIGRATIONS):  # a new file: every version's statements
        for statement in sqlite_module._MIGRATIONS[version]:
            conn.execute(statement)
    record = make_record()
    for bad_value in (2**64, "a\ud800", object()):
        row = list(sqlite_module._row(record))
        row[sqlite_module._ROW_INDEX["team"]] = bad_value
        with pytest.raises(InvalidRecord, match=record.span_id) as raised:
            sqlite_module._insert_one(conn.cursor(), record, tuple(row))
        assert raised.value.key == record.key
    conn.close()


# --- identity conflicts ------------------------------------------------------------------------------------------
def test_a_replay_with_other_content_is_counted_as_a_conflict_and_logged_once(
    sqlite_store: SQLiteStore, make_record: MakeRecord, monkeypatch, caplog
):
    monkeypatch.setattr(sqlite_module, "_conflict_logged", False)
    first = make_record(n=7, amount=Decimal("0.10"))
    assert sqlite_store.write([first]).conflicts == 0
    caplog.set_level(logging.WARNING, logger="otel_ai_cost.ledger")

    replay = sqlite_store.write([first, replace(first, amount=Decimal("0.100"))])  # the same amount, other digits
    assert (replay.written, replay.duplicates, replay.conflicts) == (0, 2, 0)
    other = sqlite_store.write([replace(first, amount=Decimal("0.2")), replace(first, input_tokens=1)])
    assert (other.written, other.duplicates, other.conflicts) == (0, 2, 2)
    within = sqlite_store.write([make_record(n=8), make_record(n=8, amount=Decimal("9"))])  # repeated in a batch
    assert (within.written, within.duplicates, within.conflicts) == (1, 1, 1)
    assert sqlite_store.write([replace(first, amount=None)]).conflicts == 1

    assert [r.amount for r in sqlite_store.query(UsageQuery(trace_id=first.trace_id))] == [Decimal("0.10")]
    warnings = [r.getMessage() for r in caplog.records if "different content" in r.getMessage()]
    assert len(warnings) == 1
    assert first.span_id in warnings[0] and "0.10" in warnings[0] and "0.2" in warnings[0]
    assert sqlite_module._conflict_logged


# --- running totals per team and operation type ------------------------------------------------------------------
def test_totals_carry_exact_spend_per_team_and_operation_type_from_the_rollup(
    sqlite_store: SQLiteStore, make_record: MakeRecord
):
    day2 = DAY + timedelta(days=1)
    sqlite_store.write(
        [
            make_record(team="search", operation_type="rank", amount=Decimal("0.1")),
            make_record(team="search", operation_type="summarize", amount=Decimal("0.0000000000001")),
            make_record(team="ads", amount=Decimal("2.5"), timestamp=day2),
            make_record(amount=Decimal("1")),  # no team, no operation type
            make_record(team="ads", amount=None, pricing_status=PricingStatus.UNPRICED.value),
            make_record(team="ads", amount=Decimal("100"), environment="staging"),
            make_record(team="ads", amount=Decimal("7"), timestamp=datetime(2026, 2, 3, tzinfo=timezone.utc)),
        ]
    )
    month = sqlite_store.totals("production", "2026-01")
    assert month.by_team == {"search": Decimal("0.1000000000001"), "ads": Decimal("2.5"), "": Decimal("1")}
    assert month.by_operation_type == {"rank": Decimal("0.1"), "summarize": Decimal("0.0000000000001"),
                                       "": Decimal("3.5")}  # fmt: skip
    assert sum(month.by_team.values()) == month.amount == sum(month.by_operation_type.values())
    day = sqlite_store.totals("production", "2026-01-30")
    assert day.by_team == {"search": Decimal("0.1000000000001"), "": Decimal("1"), "ads": Decimal("0")}
    assert sqlite_store.totals("staging", "2026-01").by_team == {"ads": Decimal("100")}
    assert sqlite_store.totals("nowhere", "2026-01").by_team == {}
    for period, start, end in (("2026-01", DAY.replace(day=1), DAY.replace(day=31)), ("2026-01-30", DAY, DAY)):
        for field in ("team", "operation_type"):
            rows = sqlite_store.aggregate(
                UsageQuery(environment="production", start_day=start.date(), end_day=end.date()), [field]
            )
            expected = {dict(r.group)[field]: r.amount for r in rows}
            totals = sqlite_store.totals("production", period)
            assert (totals.by_team if field == "team" else totals.by_operation_type) == expected
