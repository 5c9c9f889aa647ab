"""SQLiteStore on real files: idempotency, exact money, running totals, every query path, isolation, grouping."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from otel_ai_cost.contract import PricingStatus
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SCHEMA_VERSION, SchemaVersionError, SQLiteStore, split_amount
from otel_ai_cost.ledger.store import GROUP_BY_FIELDS, UsageQuery, WriteResult

MakeRecord = Callable[..., LedgerRecord]  # the `make_record` fixture of conftest.py


def _at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


# -- file, schema ---------------------------------------------------------------------------------------------


def test_one_file_created_with_its_parent_directories_in_wal_mode(tmp_path: Path):
    path = tmp_path / "a" / "b" / "usage.db"
    with SQLiteStore(path):
        pass
    assert path.is_file()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_reopening_keeps_the_records(ledger_path: Path, make_record: MakeRecord):
    with SQLiteStore(ledger_path) as store:
        store.write([make_record(n=1)])
    with SQLiteStore(ledger_path) as store:
        assert [r.trace_id for r in store.query(UsageQuery())] == [f"{1:032x}"]


def test_a_ledger_of_a_newer_schema_is_refused(ledger_path: Path):
    SQLiteStore(ledger_path).close()
    conn = sqlite3.connect(ledger_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaVersionError, match="upgrade otel-ai-cost"):
        SQLiteStore(ledger_path)


def test_money_is_never_stored_as_floating_point(sqlite_store: SQLiteStore, make_record: MakeRecord):
    sqlite_store.write([make_record(amount=Decimal("0.123456789012345"))])
    conn = sqlite3.connect(sqlite_store.path)
    row = conn.execute(
        "SELECT typeof(amount), typeof(amount_micro), typeof(amount_pico), typeof(amount_residual) FROM records"
    ).fetchone()
    assert row == ("text", "integer", "integer", "text")
    assert conn.execute("SELECT typeof(amount) FROM totals").fetchall() == [("text",), ("text",)]


# -- write, idempotency ---------------------------------------------------------------------------------------


def test_records_round_trip_exactly(sqlite_store: SQLiteStore, make_record: MakeRecord):
    full = make_record(
        amount=Decimal("0.000123456789012345678"),
        tags={"feature": "labels", "ticket": "T-1"},
        job_id="job-1",
        batch_id="b-1",
        cicd_run_id="987",
        team="search",
        duration_ms=12.5,
        cache_write_1h_input_tokens=7,
        note="n",
    )
    unpriced = make_record(amount=None, pricing_status=PricingStatus.UNPRICED.value, request_model="acme")
    sqlite_store.write([full, unpriced])
    assert list(sqlite_store.query(UsageQuery())) == [full, unpriced]


def test_the_same_batch_twice_counts_once(sqlite_store: SQLiteStore, make_record: MakeRecord):
    batch = [make_record(amount=Decimal("0.1")) for _ in range(5)]
    assert sqlite_store.write(batch) == WriteResult(written=5, duplicates=0)
    before = (sqlite_store.totals("production", "2026-01-30"), sqlite_store.aggregate(UsageQuery(), ["day"]))
    assert sqlite_store.write(batch) == WriteResult(written=0, duplicates=5)
    assert sqlite_store.write([*batch[:2], make_record(amount=Decimal("1"))]) == WriteResult(1, 2)
    day = sqlite_store.totals("production", "2026-01-30")
    assert before[0].calls == 5 and before[0].amount == Decimal("0.5")
    assert (day.calls, day.amount) == (6, Decimal("1.5"))
    assert sqlite_store.aggregate(UsageQuery(), ["day"])[0].calls == 6


def test_a_repeated_identity_inside_one_batch_counts_once(sqlite_store: SQLiteStore, make_record: MakeRecord):
    record = make_record(n=7)
    assert sqlite_store.write([record, record, record]) == WriteResult(1, 2)
    assert sqlite_store.totals("production", "2026-01").calls == 1


def test_empty_write(sqlite_store: SQLiteStore):
    assert sqlite_store.write([]) == WriteResult(0, 0)


def test_a_record_without_timezone_is_rejected_before_anything_is_written(
    sqlite_store: SQLiteStore, make_record: MakeRecord
):
    with pytest.raises(ValueError, match="timezone"):
        sqlite_store.write([make_record(), make_record(timestamp=datetime(2026, 1, 30))])
    assert list(sqlite_store.query(UsageQuery())) == []


# -- exact money ----------------------------------------------------------------------------------------------


def test_amounts_with_9_to_12_decimal_places_sum_exactly(sqlite_store: SQLiteStore, make_record: MakeRecord):
    amounts = [Decimal("0.100000001"), Decimal("0.2000000000002"), Decimal("0.123456789012")]
    expected = Decimal("0.4234567900122")
    assert sum(map(float, amounts)) != float(expected)  # a float (REAL) sum would be off
    sqlite_store.write([make_record(amount=a) for a in amounts])
    assert sqlite_store.aggregate(UsageQuery(), [])[0].amount == expected
    assert sqlite_store.aggregate(UsageQuery(), ["day", "provider"])[0].amount == expected
    assert sqlite_store.totals("production", "2026-01-30").amount == expected
    assert sqlite_store.totals("production", "2026-01").amount == expected


def test_amounts_beyond_12_decimal_places_are_kept_exactly(sqlite_store: SQLiteStore, make_record: MakeRecord):
    amounts = [Decimal("0.0000000000001"), Decimal("0.3333333333333333333"), Decimal("2.5")]
    sqlite_store.write([make_record(amount=a, team=str(i % 2)) for i, a in enumerate(amounts)])
    expected = Decimal("2.8333333333334333333")
    assert sqlite_store.aggregate(UsageQuery(), [])[0].amount == expected
    by_team = {r.group[0][1]: r.amount for r in sqlite_store.aggregate(UsageQuery(), ["team"])}
    assert by_team == {"0": Decimal("2.5000000000001"), "1": Decimal("0.3333333333333333333")}
    assert sqlite_store.totals("production", "2026-01").amount == expected


def test_large_totals_stay_exact(sqlite_store: SQLiteStore, make_record: MakeRecord):
    # 2000 calls of 9,999,999.999999999999 USD: far beyond what one 64-bit pico-USD integer could hold.
    amount = Decimal("9999999.999999999999")
    sqlite_store.write([make_record(amount=amount) for _ in range(2000)])
    assert sqlite_store.aggregate(UsageQuery(), [])[0].amount == amount * 2000
    assert sqlite_store.totals("production", "2026-01").amount == amount * 2000


@pytest.mark.parametrize(
    "amount", ["0", "1", "0.000000000001", "0.123456789012345", "123456789.5", "1E+3", "0.0000223500", "-0.5"]
)
def test_split_amount_is_exact(amount: str):
    micro, pico, residual = split_amount(Decimal(amount))
    assert 0 <= pico < 10**6
    assert Decimal(micro) / 10**6 + Decimal(pico) / 10**12 + Decimal(residual or 0) == Decimal(amount)


# -- running totals -------------------------------------------------------------------------------------------


def test_running_totals_per_environment_day_month_and_provider_model(
    sqlite_store: SQLiteStore, make_record: MakeRecord
):
    sqlite_store.write(
        [
            make_record(timestamp=_at("2026-01-30"), amount=Decimal("1.25")),
            make_record(
                timestamp=_at("2026-01-31"),
                amount=Decimal("2"),
                provider="anthropic",
                request_model="claude-haiku-4-5",
                response_model="",
            ),
            make_record(
                timestamp=_at("2026-01-31"),
                amount=None,
                pricing_status="unpriced",
                request_model="acme",
                response_model="",
            ),
            make_record(timestamp=_at("2026-02-01"), amount=Decimal("4")),
            make_record(timestamp=_at("2026-01-31"), amount=Decimal("100"), environment="staging"),
        ]
    )
    month = sqlite_store.totals("production", "2026-01")
    assert (month.amount, month.calls, month.unpriced_calls) == (Decimal("3.25"), 3, 1)
    assert month.by_provider_model == {
        ("openai", "gpt-4o-mini-2024-07-18"): Decimal("1.25"),
        ("anthropic", "claude-haiku-4-5"): Decimal("2"),
        ("openai", "acme"): Decimal("0"),
    }
    day = sqlite_store.totals("production", "2026-01-31")
    assert (day.amount, day.calls, day.unpriced_calls) == (Decimal("2"), 2, 1)
    assert sqlite_store.totals("production", "2026-02").amount == Decimal("4")
    assert sqlite_store.totals("staging", "2026-01").amount == Decimal("100")
    empty = sqlite_store.totals("production", "2025-12")
    assert (empty.amount, empty.calls, empty.by_provider_model) == (Decimal("0"), 0, {})


def test_totals_never_scan_records(sqlite_store: SQLiteStore, make_record: MakeRecord):
    sqlite_store.write([make_record(amount=Decimal("1"))])
    # Delete the records behind the store's back: totals are kept apart, so they are still there.
    sqlite3.connect(sqlite_store.path, isolation_level=None).execute("DELETE FROM records")
    assert sqlite_store.totals("production", "2026-01").amount == Decimal("1")


def test_totals_period_must_be_a_day_or_a_month(sqlite_store: SQLiteStore):
    with pytest.raises(ValueError, match="YYYY-MM"):
        sqlite_store.totals("production", "2026")


# -- query paths ----------------------------------------------------------------------------------------------


@pytest.fixture
def varied(sqlite_store: SQLiteStore, make_record: MakeRecord) -> SQLiteStore:
    sqlite_store.write(
        [
            make_record(n=1, timestamp=_at("2026-01-29"), job_id="job-1", batch_id="b-1", team="search"),
            make_record(n=2, timestamp=_at("2026-01-30"), job_id="job-1", batch_id="b-2", operation_type="labels"),
            make_record(
                n=3,
                timestamp=_at("2026-01-31"),
                provider="anthropic",
                request_model="claude-haiku-4-5",
                response_model="claude-haiku-4-5-20251001",
                cicd_run_id="987",
                service="ci-eval",
            ),
            make_record(n=4, timestamp=_at("2026-01-30", 1), environment="staging", job_id="job-1", team="search"),
            make_record(n=5, timestamp=_at("2026-02-01"), request_model="gpt-4.1", response_model=""),
        ]
    )
    return sqlite_store


def _ids(store: SQLiteStore, **filters: object) -> list[int]:
    return [int(r.trace_id, 16) for r in store.query(UsageQuery(**filters))]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [1, 4, 2, 3, 5]),  # oldest first
        ({"start_day": date(2026, 1, 30)}, [4, 2, 3, 5]),
        ({"end_day": date(2026, 1, 30)}, [1, 4, 2]),
        ({"start_day": date(2026, 1, 30), "end_day": date(2026, 1, 31), "environment": "production"}, [2, 3]),
        ({"environment": "staging"}, [4]),
        ({"service": "ci-eval"}, [3]),
        ({"provider": "anthropic"}, [3]),
        ({"model": "gpt-4o-mini"}, [1, 4, 2]),  # the requested model
        ({"model": "claude-haiku-4-5-20251001"}, [3]),  # the responded model
        ({"model": "gpt-4.1"}, [5]),
        ({"provider": "openai", "model": "gpt-4o-mini-2024-07-18", "end_day": date(2026, 1, 29)}, [1]),
        ({"operation_type": "labels"}, [2]),
        ({"team": "search"}, [1, 4]),
        ({"job_id": "job-1"}, [1, 4, 2]),
        ({"job_id": "job-1", "environment": "production"}, [1, 2]),
        ({"batch_id": "b-2"}, [2]),
        ({"cicd_run_id": "987"}, [3]),
        ({"trace_id": f"{3:032X}"}, [3]),  # case-insensitive hex
        ({"job_id": "nope"}, []),
    ],
)
def test_every_query_filter(varied: SQLiteStore, filters: dict, expected: list[int]):
    assert _ids(varied, **filters) == expected


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        (
            {"environment": "production", "start_day": date(2026, 1, 1), "end_day": date(2026, 1, 31)},
            "records_environment_day",
        ),
        ({"provider": "openai", "model": "gpt-4o", "start_day": date(2026, 1, 1)}, "records_provider_model_day"),
        ({"start_day": date(2026, 1, 1), "end_day": date(2026, 1, 31)}, "records_day"),
        ({"model": "gpt-4o"}, "records_model_day"),
        ({"job_id": "job-1"}, "records_job"),
        ({"batch_id": "b-1"}, "records_batch"),
        ({"cicd_run_id": "987"}, "records_cicd_run"),
        ({"trace_id": "0" * 32}, "sqlite_autoindex_records_1"),  # the primary key
    ],
)
def test_access_paths_use_an_index(varied: SQLiteStore, filters: dict, index: str):
    from otel_ai_cost.ledger.sqlite_store import _where

    where, params = _where(UsageQuery(**filters))
    plan = " ".join(
        row[-1]
        for row in sqlite3.connect(varied.path).execute(f"EXPLAIN QUERY PLAN SELECT * FROM records{where}", params)
    )
    assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
    assert index in plan and "SCAN records" not in plan, plan


def test_environment_isolation(varied: SQLiteStore):
    assert {r.environment for r in varied.query(UsageQuery(environment="staging"))} == {"staging"}
    assert all(
        r.environment == "production" for r in varied.query(UsageQuery(environment="production", job_id="job-1"))
    )
    rows = varied.aggregate(UsageQuery(environment="staging"), ["environment", "job_id"])
    assert [r.group for r in rows] == [(("environment", "staging"), ("job_id", "job-1"))]
    assert list(varied.query(UsageQuery(environment="Production"))) == []  # names are exact, not case-folded


# -- aggregate ------------------------------------------------------------------------------------------------


def test_aggregate_by_day_provider_and_model(varied: SQLiteStore):
    rows = varied.aggregate(UsageQuery(environment="production"), ["day", "provider", "model"])
    assert [tuple(v for _, v in r.group) for r in rows] == [
        ("2026-01-29", "openai", "gpt-4o-mini-2024-07-18"),
        ("2026-01-30", "openai", "gpt-4o-mini-2024-07-18"),
        ("2026-01-31", "anthropic", "claude-haiku-4-5-20251001"),  # the responded model
        ("2026-02-01", "openai", "gpt-4.1"),  # no response model: the requested one
    ]
    assert all(r.calls == 1 and r.amount == Decimal("0.000027") and r.input_tokens == 100 for r in rows)


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        (["month"], {("2026-01",): 4, ("2026-02",): 1}),
        (["environment"], {("production",): 4, ("staging",): 1}),
        (["service"], {("receipts",): 4, ("ci-eval",): 1}),
        (["operation", "operation_type"], {("chat", ""): 4, ("chat", "labels"): 1}),
        (["team"], {("search",): 2, ("",): 3}),
        (["job_id", "batch_id"], {("job-1", "b-1"): 1, ("job-1", "b-2"): 1, ("job-1", ""): 1, ("", ""): 2}),
        (["cicd_run_id"], {("987",): 1, ("",): 4}),
        ([], {(): 5}),
    ],
)
def test_aggregate_groupings(varied: SQLiteStore, group_by: list[str], expected: dict):
    rows = varied.aggregate(UsageQuery(), group_by)
    assert {tuple(v for _, v in r.group): r.calls for r in rows} == expected
    assert all([name for name, _ in r.group] == group_by for r in rows)


def test_aggregate_sums_every_measure(sqlite_store: SQLiteStore, make_record: MakeRecord):
    sqlite_store.write(
        [
            make_record(
                input_tokens=10,
                output_tokens=5,
                cache_read_input_tokens=3,
                cache_write_5m_input_tokens=2,
                cache_write_1h_input_tokens=1,
                reasoning_output_tokens=4,
                amount=Decimal("0.5"),
            ),
            make_record(amount=None, pricing_status=PricingStatus.UNPRICED.value, input_tokens=7, output_tokens=0),
            make_record(amount=None, pricing_status=PricingStatus.NO_USAGE.value, input_tokens=0, output_tokens=0),
        ]
    )
    (row,) = sqlite_store.aggregate(UsageQuery(), [])
    assert (row.calls, row.unpriced_calls, row.amount) == (3, 1, Decimal("0.5"))
    assert (row.input_tokens, row.output_tokens, row.cache_read_input_tokens) == (17, 5, 3)
    assert (row.cache_write_input_tokens, row.reasoning_output_tokens) == (3, 4)


def test_aggregate_of_nothing_is_empty(sqlite_store: SQLiteStore):
    assert sqlite_store.aggregate(UsageQuery(), []) == []
    assert sqlite_store.aggregate(UsageQuery(), ["day"]) == []


def test_aggregate_rejects_unknown_fields(sqlite_store: SQLiteStore):
    with pytest.raises(ValueError, match="cannot group by trace_id"):
        sqlite_store.aggregate(UsageQuery(), ["day", "trace_id"])
    assert "model" in GROUP_BY_FIELDS


def test_closed_store_refuses_work(ledger_path: Path, make_record: MakeRecord):
    from otel_ai_cost.ledger.store import StoreUnavailable

    store = SQLiteStore(ledger_path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreUnavailable, match="closed"):
        store.write([make_record()])


# -- the daily rollup -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStore]:
    import random

    rng = random.Random(3)
    records = []
    for n in range(600):
        amount = rng.choice([None, Decimal(rng.randrange(10**9)).scaleb(-rng.choice([6, 9, 12, 15]))])
        records.append(
            LedgerRecord(
                trace_id=f"{n + 1:032x}",
                span_id=f"{n + 1:016x}",
                timestamp=_at(f"2026-01-{rng.randrange(28, 32):02d}", rng.randrange(24)),
                environment=rng.choice(["production", "staging"]),
                service=rng.choice(["a", "b"]),
                provider=rng.choice(["openai", "anthropic"]),
                request_model=rng.choice(["m1", "m2"]),
                response_model=rng.choice(["", "m1", "m1-2025"]),
                operation=rng.choice(["chat", "embeddings"]),
                operation_type=rng.choice(["", "labels"]),
                team=rng.choice(["", "search", "platform"]),
                job_id=rng.choice(["", "j1", "j2"]),
                amount=amount,
                pricing_status=PricingStatus.UNPRICED.value if amount is None else "priced",
                input_tokens=rng.randrange(1000),
                cache_write_1h_input_tokens=rng.randrange(3),
                reasoning_output_tokens=rng.randrange(5),
            )
        )
    store = SQLiteStore(tmp_path_factory.mktemp("rollup") / "usage.db")
    for i in range(0, 600, 64):  # batches, and a replay of each: the rollup must not double count either
        store.write(records[i : i + 64])
        store.write(records[i : i + 32])
    yield store
    store.close()


@pytest.mark.parametrize(
    "group_by",
    [
        [],
        ["day"],
        ["month"],
        ["environment", "day"],
        ["service"],
        ["provider", "model"],
        ["model"],
        ["operation", "operation_type"],
        ["team", "month", "provider"],
    ],
)
@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"environment": "staging"},
        {"start_day": date(2026, 1, 29), "end_day": date(2026, 1, 30)},
        {"model": "m1"},
        {"model": "m1-2025", "provider": "openai"},
        {"team": "search", "service": "b"},
        {"operation_type": "labels"},
    ],
)
def test_the_daily_rollup_answers_exactly_as_the_records_do(random_ledger: SQLiteStore, group_by, filters):
    query = UsageQuery(**filters)
    from_records = random_ledger._aggregate_from("records", query, group_by)
    assert from_records  # the case is not vacuous
    assert random_ledger._aggregate_from("daily", query, group_by) == from_records
    assert random_ledger.aggregate(query, group_by) == from_records


def test_reports_read_the_rollup_and_job_queries_read_the_records(random_ledger: SQLiteStore, tmp_path: Path):
    with sqlite3.connect(random_ledger.path) as source, sqlite3.connect(tmp_path / "copy.db") as copy:
        source.backup(copy)  # (a file copy would miss what is still in the WAL)
    with SQLiteStore(tmp_path / "copy.db") as store:
        by_day = store.aggregate(UsageQuery(), ["day"])
        by_job = store.aggregate(UsageQuery(), ["job_id"])
        one_job = store.aggregate(UsageQuery(job_id="j1"), ["day"])
        sqlite3.connect(store.path, isolation_level=None).execute("DELETE FROM records")
        assert store.aggregate(UsageQuery(), ["day"]) == by_day  # from the rollup
        assert by_job and store.aggregate(UsageQuery(), ["job_id"]) == []  # from the records
        assert one_job and store.aggregate(UsageQuery(job_id="j1"), ["day"]) == []
