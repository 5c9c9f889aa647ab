"""Retention of the SQLite ledger (`SQLiteStore.prune`, `otel-ai-cost ledger prune`): old records go, the daily
rollup and the running totals stay, so reports over the pruned days add up exactly as before; a pruned record
written again is refused (never counted twice); a dry run changes nothing; a failure midway changes nothing; a
version 4 file gets the horizon table."""

from __future__ import annotations

import logging
import sqlite3
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import MakeRecord
from otel_ai_cost.ledger import sqlite_store
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_prune import PruneRefused, pruned_notes
from otel_ai_cost.ledger.sqlite_store import SCHEMA_VERSION, SQLiteStore, answers_from_rollup
from otel_ai_cost.ledger.store import StoreUnavailable, UsageQuery

BEFORE = date(2026, 1, 20)  # production's records of 2026-01-01 .. 2026-01-19 go
ROLLUP_GROUPINGS = ([], ["day"], ["month"], ["environment"], ["day", "environment", "provider", "model"],
                    ["team", "operation"], ["operation_type", "service"], ["day", "team"])  # fmt: skip
ENVIRONMENTS = ("production", "staging")
VERSION_4_TABLES = {"records", "daily", "totals", "billed_lines", "billed_usage", "reconciliation_runs",
                    "reconciled_days"}  # fmt: skip


def history(make_record: MakeRecord) -> list[LedgerRecord]:
    """Three records a day from 2026-01-01 to 2026-02-09 in production and staging: two providers, teams,
    operation types, one unpriced call a week and amounts with more than 12 decimal places (the rollup's
    remainders)."""
    records = []
    for n in range(120):
        day = datetime(2026, 1, 1, 8, tzinfo=timezone.utc) + timedelta(days=n // 3, minutes=n)
        unpriced = n % 21 == 0
        records.append(
            make_record(
                timestamp=day,
                environment=ENVIRONMENTS[n % 2],
                provider=("openai", "anthropic")[n % 3 == 0],
                team=("search", "billing", "")[n % 3],
                operation_type=("summarize", "classify")[n % 2],
                amount=None if unpriced else Decimal("0.0123") * (n + 1) + Decimal("1e-15") * n,
                pricing_status="unpriced" if unpriced else "priced",
            )
        )
    return records


def figures(store: SQLiteStore) -> tuple[Any, ...]:
    """What the reports and the running totals say: every rollup-answered grouping, and totals per day and
    month."""
    aggregates = [store.aggregate(UsageQuery(), group) for group in ROLLUP_GROUPINGS]
    aggregates.append(store.aggregate(UsageQuery(environment="production", end_day=BEFORE), ["day", "model"]))
    totals = [
        store.totals(env, period)
        for env in ENVIRONMENTS
        for period in ("2026-01", "2026-02", "2026-01-01", "2026-01-19", "2026-01-20")
    ]
    return aggregates, totals


def stored(store: SQLiteStore, environment: str) -> list[LedgerRecord]:
    return list(store.query(UsageQuery(environment=environment)))


@pytest.fixture
def store(sqlite_store: SQLiteStore, make_record: MakeRecord) -> SQLiteStore:
    sqlite_store.write(history(make_record))
    return sqlite_store


def test_prune_deletes_old_records_and_keeps_every_report_figure_exact(store: SQLiteStore):
    before_prune = figures(store)
    old = [r for r in stored(store, "production") if r.timestamp.date() < BEFORE]
    assert len(old) == 29  # 2026-01-01 .. 2026-01-19

    (plan,) = store.prune({"production": BEFORE})

    assert (plan.records, plan.days, plan.first_day, plan.last_day) == (29, 19, date(2026, 1, 1), date(2026, 1, 19))
    expected = sum((r.amount for r in old if r.amount is not None), Decimal(0))
    assert plan.amount == expected and expected % Decimal("1e-12")  # exact, the remainders below 1e-12 included
    assert plan.unknown_cost_calls == sum(r.amount is None for r in old) > 0
    assert figures(store) == before_prune  # rollup and totals kept: the reports add up exactly as before
    assert all(r.timestamp.date() >= BEFORE for r in stored(store, "production"))
    assert len(stored(store, "staging")) == 60  # another environment is not touched
    assert store.prune_horizons() == {"production": date(2026, 1, 19)}


def test_a_dry_run_says_what_would_go_and_changes_nothing(store: SQLiteStore, make_record: MakeRecord):
    before_prune = (figures(store), stored(store, "production"))
    (plan,) = store.prune_plan({"production": BEFORE})
    assert (plan.records, plan.days, plan.horizon) == (29, 19, date(2026, 1, 19))
    assert (figures(store), stored(store, "production")) == before_prune
    assert store.prune_horizons() == {}
    # no horizon: an old record is still accepted
    assert store.write([make_record(timestamp=datetime(2026, 1, 2, tzinfo=timezone.utc))]).written == 1
    assert store.prune({"production": BEFORE})[0].records == 30


def test_pruned_records_written_again_are_refused_and_counted_never_added_twice(
    store: SQLiteStore, make_record: MakeRecord, ledger_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    monkeypatch.setattr(sqlite_store, "_pruned_logged", False)
    old = [r for r in stored(store, "production") if r.timestamp.date() < BEFORE]
    other_writer = SQLiteStore(ledger_path)  # another process's connection, opened before the prune
    store.prune({"production": BEFORE})
    after_prune = figures(store)

    with caplog.at_level(logging.WARNING, logger="otel_ai_cost.ledger"):
        replay = store.write(old)  # a JSONL file imported again, a collector retrying
        again = other_writer.write(old[:5])
    assert (replay.written, replay.duplicates, replay.pruned, replay.conflicts) == (0, 29, 29, 0)
    assert (again.written, again.pruned) == (0, 5)
    assert figures(store) == after_prune  # totals and every report unchanged
    assert [r.message for r in caplog.records if "pruned through" in r.message] == [
        f"otel-ai-cost ledger: record {old[0].trace_id}/{old[0].span_id} of production is dated 2026-01-01, on or "
        "before the day its records were pruned through (2026-01-19): refused, because the daily rollup already "
        "holds the pruned records and a replay would count twice. Such records are counted (WriteResult.pruned, "
        "as duplicates) and logged once per process"
    ]

    on_horizon = make_record(timestamp=datetime(2026, 1, 19, 23, 59, tzinfo=timezone.utc))
    next_day = make_record(timestamp=datetime(2026, 1, 20, 0, 0, tzinfo=timezone.utc))
    other_env = make_record(timestamp=datetime(2026, 1, 2, tzinfo=timezone.utc), environment="staging")
    result = other_writer.write([on_horizon, next_day, other_env])
    assert (result.written, result.duplicates, result.pruned) == (2, 1, 1)
    assert {r.key for r in store.query(UsageQuery(start_day=date(2026, 1, 19), end_day=date(2026, 1, 20)))} >= {
        next_day.key
    }
    other_writer.close()


def test_the_horizon_only_moves_forward_and_an_empty_prune_sets_none(store: SQLiteStore):
    assert store.prune({"staging": date(2025, 12, 1)})[0].records == 0
    assert store.prune_horizons() == {}
    store.prune({"production": BEFORE})
    later = store.prune({"production": date(2026, 1, 25)})[0]
    assert (later.records, later.previous_horizon, later.horizon) == (7, date(2026, 1, 19), date(2026, 1, 24))
    earlier = store.prune({"production": date(2026, 1, 10)})[0]  # nothing left before it: the horizon stays
    assert (earlier.records, earlier.horizon) == (0, date(2026, 1, 24))
    assert store.prune_horizons() == {"production": date(2026, 1, 24)}


def test_several_environments_in_one_prune(store: SQLiteStore):
    before_prune = figures(store)
    plans = store.prune({"staging": BEFORE, "production": date(2026, 1, 10)})
    assert [(p.environment, p.records) for p in plans] == [("production", 14), ("staging", 28)]
    assert figures(store) == before_prune
    assert store.prune_horizons() == {"production": date(2026, 1, 9), "staging": date(2026, 1, 19)}


def test_ctrl_c_midway_leaves_everything_as_it_was(store: SQLiteStore, make_record: MakeRecord):
    before_prune = (figures(store), stored(store, "production"))
    seen: list[tuple[int, int]] = []

    def interrupt(done: int, total: int) -> None:
        seen.append((done, total))
        if done >= 10:  # after the second chunk of 5 was deleted
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.prune({"production": BEFORE}, progress=interrupt, chunk=5)
    assert seen == [(0, 29), (5, 29), (10, 29)]
    assert (figures(store), stored(store, "production")) == before_prune
    assert store.prune_horizons() == {}
    assert store.write([make_record(timestamp=datetime(2026, 1, 2, tzinfo=timezone.utc))]).written == 1


def test_a_sqlite_error_midway_rolls_the_whole_prune_back(store: SQLiteStore, ledger_path: Path):
    before_prune = (figures(store), stored(store, "production"))
    last = [r for r in stored(store, "production") if r.timestamp.date() < BEFORE][-1]
    conn = sqlite3.connect(ledger_path)  # the disk says no at the last record, after 28 were deleted
    conn.execute(
        f"CREATE TRIGGER refuse BEFORE DELETE ON records WHEN old.span_id = '{last.span_id}' "
        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    )
    conn.commit()
    conn.close()
    with pytest.raises(StoreUnavailable, match="refused by the test"):
        store.prune({"production": BEFORE}, chunk=4)
    assert (figures(store), stored(store, "production")) == before_prune
    assert store.prune_horizons() == {}


def test_a_rollup_that_does_not_match_its_records_is_never_pruned(store: SQLiteStore, ledger_path: Path):
    conn = sqlite3.connect(ledger_path)
    conn.execute("DELETE FROM daily WHERE environment = 'production' AND day = '2026-01-05'")
    conn.commit()
    conn.close()
    with pytest.raises(PruneRefused, match="counts 27 calls but 29 records"):
        store.prune({"production": BEFORE})
    assert len(stored(store, "production")) == 60 and store.prune_horizons() == {}


def test_a_version_4_file_is_migrated_to_5_and_can_be_pruned(tmp_path: Path, make_record: MakeRecord):
    path = tmp_path / "v4.db"
    with SQLiteStore(path) as store:
        store.write(history(make_record))
        before = (figures(store), list(store.query(UsageQuery())))
    # A version 4 file: the same file without what version 5 added (tables, and the records' new columns).
    conn = sqlite3.connect(path)
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        if table not in VERSION_4_TABLES:
            conn.execute(f"DROP TABLE {table}")
    for column in sqlite_store._ADDED_COLUMNS.get(5, ()):
        conn.execute(f"ALTER TABLE records DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()

    with SQLiteStore(path) as store:
        assert (figures(store), list(store.query(UsageQuery()))) == before
        assert store.prune_horizons() == {}
        assert store.prune({"production": BEFORE})[0].records == 29
        assert figures(store) == before[0]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    columns = [row[1] for row in conn.execute("PRAGMA table_info(prune_horizons)")]
    conn.close()
    assert columns == ["environment", "through_day", "records", "pruned_at"]


def test_what_needs_the_records_says_the_pruned_days_are_missing():
    assert answers_from_rollup(UsageQuery(environment="production"), ["day", "team", "operation_type"])
    assert not answers_from_rollup(UsageQuery(job_id="job-1"), [])
    assert not answers_from_rollup(UsageQuery(), ["cost_source"])
    horizons = {"production": date(2026, 1, 19), "staging": date(2026, 1, 9)}
    notes = pruned_notes(horizons, None, date(2026, 1, 10), from_rollup=True, what="this report")
    assert notes == [
        "note: records of production dated 2026-01-19 or earlier were pruned (otel-ai-cost ledger prune); calls, "
        "cost and tokens of those days come from the daily rollup and are complete (a catalog USD column counts "
        "the kept records only)"
    ]  # staging's pruned days are before the range
    (warning,) = pruned_notes(horizons, "staging", None, from_rollup=False, what="jobs show")
    assert warning.startswith("warning: records of staging dated 2026-01-09 or earlier were pruned")
    assert warning.endswith("jobs show reads the records themselves, so it misses those days' calls")
