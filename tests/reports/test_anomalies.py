"""Anomalies on planted ledgers: a spike, a quiet week, a new model and operation type, unpriced spend appearing, an
environment up from about $0, and the first day of a ledger. Records go into a real SQLite store; the anomalies are
found from its aggregates (`reports.daily.store_anomalies`), as the daily report and the service find them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal

import pytest
from report_records import Ledger

from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import AggregateRow
from otel_ai_cost.reports.anomalies import find_anomalies
from otel_ai_cost.reports.daily import store_anomalies
from otel_ai_cost.reports.model import Anomaly

D = Decimal
DAY = date(2026, 11, 22)
WEEK = [DAY - timedelta(days=n) for n in range(7, 0, -1)]  # the 7 trailing days


@pytest.fixture
def anomalies(tmp_path) -> Callable[..., list[Anomaly]]:
    """Writes the records to a fresh SQLite ledger and returns the anomalies of `days` (default: DAY)."""

    def find(records: Sequence[LedgerRecord], days: Sequence[date] = (DAY,), **options) -> list[Anomaly]:
        store = SQLiteStore(tmp_path / f"ledger-{len(list(tmp_path.iterdir()))}.db")
        try:
            store.write(records)
            return store_anomalies(store, list(days), **options)
        finally:
            store.close()

    return find


def steady_week(ledger: Ledger, amount: str = "10.00", **fields) -> list[LedgerRecord]:
    return [ledger.call(day, amount, **fields) for day in WEEK]


def test_a_spike_reads_as_an_increase_over_the_7_day_average(anomalies):
    ledger = Ledger()
    records = steady_week(ledger, environment="cicd", operation_type="integration_test")
    records.append(ledger.call(DAY, "40.00", environment="cicd", operation_type="integration_test"))

    [spike] = anomalies(records)

    assert spike.kind == "spike"
    assert spike.subject == {"environment": "cicd"}
    assert (spike.amount, spike.baseline, spike.factor) == (D("40.00"), D(10), D(4))
    # 4x the average is a 300% increase (not "400%"), the seeds' wording.
    assert "a 300% increase in usage compared to the 7-day average" in spike.message
    assert "$40.00 on 2026-11-22" in spike.message and "$70.00 over the 7 days before" in spike.message
    # Its only service and operation type spike with the same figures: listed once, not three times.


def test_the_factor_is_inclusive_and_configurable(anomalies):
    ledger = Ledger()
    week = steady_week(ledger, environment="cicd")
    at_3x = [*week, ledger.call(DAY, "30.00", environment="cicd")]
    just_under = [*week, ledger.call(DAY, "29.99", environment="cicd")]

    [spike] = anomalies(at_3x)
    assert spike.factor == 3 and "a 200% increase" in spike.message
    assert anomalies(just_under) == []
    assert anomalies(at_3x, factor=D("3.5")) == []
    [low] = anomalies(just_under, factor=D("2.5"))
    assert "a 200% increase" in low.message  # 2.999x: rounded for the sentence only
    assert low.factor == D("2.999")


def test_a_service_or_operation_type_spikes_inside_a_steady_environment(anomalies):
    ledger = Ledger()
    records = [
        *steady_week(ledger, "10.00", environment="production", operation_type="chat"),
        *steady_week(
            ledger,
            "1.00",
            environment="production",
            provider="anthropic",
            request_model="claude-haiku-4-5",
            operation_type="summarize",
        ),
        ledger.call(DAY, "10.00", environment="production", operation_type="chat"),
        ledger.call(
            DAY,
            "5.00",
            environment="production",
            provider="anthropic",
            request_model="claude-haiku-4-5",
            operation_type="summarize",
        ),
    ]

    found = anomalies(records)

    # production: $15 against an average of $11 is no spike; anthropic and summarize went 5x.
    assert sorted(a.message.split(":")[0] for a in found if a.kind == "spike") == [
        "operation type summarize in production",
        "service anthropic in production",
    ]
    assert len(found) == 2
    assert all("$5.00 on 2026-11-22, a 400% increase" in a.message for a in found)


def test_a_quiet_week_has_no_anomaly(anomalies):
    ledger = Ledger()
    records = []
    for day in [*WEEK, DAY]:
        records += [
            ledger.call(day, "12.40", environment="production"),
            ledger.call(
                day, "3.10", environment="cicd", operation_type="integration_test", request_model="gpt-4o-mini"
            ),
            ledger.call(day, None, environment="staging", request_model="my-finetune"),  # unpriced every day
        ]
    records.append(ledger.call(DAY, "20.00", environment="production"))  # $32.40 against 12.40: 2.6x, under 3x

    assert anomalies(records) == []


def test_a_model_or_operation_type_seen_for_the_first_time(anomalies):
    ledger = Ledger()
    records = [
        *steady_week(ledger, environment="production"),
        *steady_week(ledger, "1.00", environment="staging", request_model="gpt-4o-mini"),
        ledger.call(DAY, "10.00", environment="production"),
        ledger.call(DAY, "0.25", environment="production", request_model="gpt-5", operation_type="triage"),
        # Used in staging all week: not new when production starts using it.
        ledger.call(DAY, "0.50", environment="production", request_model="gpt-4o-mini"),
        ledger.call(DAY, "1.00", environment="staging", request_model="gpt-4o-mini"),
    ]

    found = anomalies(records)

    assert [(a.kind, a.subject) for a in found] == [
        ("new_model", {"environment": "production", "provider": "openai", "model": "gpt-5"}),
        ("new_operation_type", {"environment": "production", "operation_type": "triage"}),
    ]
    assert found[0].message == (
        "model gpt-5 (openai) seen for the first time in 7 days, in production on 2026-11-22: 1 call(s), $0.25"
    )


def test_unpriced_spend_appearing(anomalies):
    ledger = Ledger()
    week = steady_week(ledger, environment="production")
    today = [ledger.call(DAY, "10.00", environment="production")]
    today += [ledger.call(DAY, None, environment="production") for _ in range(3)]  # gpt-4o, priced all week

    [unpriced] = anomalies([*week, *today])

    assert unpriced.kind == "unpriced"
    assert unpriced.subject == {"environment": "production", "provider": "openai", "model": "gpt-4o"}
    assert unpriced.message.startswith("3 call(s) of model gpt-4o (openai) in production on 2026-11-22 have an ")
    assert "3 of them without a price" in unpriced.message and "lower bounds" in unpriced.message
    # Unpriced in the trailing days too: nothing appeared.
    earlier = ledger.call(WEEK[2], None, environment="production")
    assert [a.kind for a in anomalies([*week, earlier, *today])] == []


def test_an_environment_up_from_about_zero(anomalies):
    ledger = Ledger()
    production = steady_week(ledger, environment="production")
    cents = [ledger.call(day, "0.009", environment="development") for day in WEEK]  # $0.063: under $0.01 a day

    [jump] = anomalies([*production, *cents, ledger.call(DAY, "2.00", environment="development")])
    assert jump.kind == "from_zero" and jump.subject == {"environment": "development"}
    assert jump.message == (
        "environment development: $2.00 on 2026-11-22 after about $0 in the 7 days before ($0.063 in all; a daily "
        "average under $0.01)"
    )
    assert jump.baseline == D("0.009")

    # Below $1.00 a day is no jump worth a line; at $0.01 a day on average, 3x is a spike, not a jump from zero.
    assert anomalies([*production, *cents, ledger.call(DAY, "0.99", environment="development")]) == []
    pennies = [ledger.call(day, "0.01", environment="development") for day in WEEK]
    assert [
        a.kind for a in anomalies([*production, *pennies, ledger.call(DAY, "2.00", environment="development")])
    ] == ["spike"]
    # A new environment, no call before at all: from $0.
    [new] = anomalies([*production, ledger.call(DAY, "3.00", environment="preview", request_model="gpt-4o")])
    assert new.kind == "from_zero" and "(no spend; " in new.message


def test_the_first_day_of_a_ledger_flags_nothing_new(anomalies):
    ledger = Ledger()
    first_day = [
        ledger.call(DAY, "5.00", environment="production"),
        ledger.call(DAY, None, environment="production", request_model="my-finetune"),
        ledger.call(DAY, "2.00", environment="cicd", operation_type="integration_test"),
    ]
    assert anomalies(first_day) == []


def test_a_call_weeks_before_the_window_is_history(anomalies):
    """A scope quiet for the 7 trailing days, with calls before them: its jump is from about $0."""
    ledger = Ledger()
    old = ledger.call(DAY - timedelta(days=20), "1.00", environment="staging")
    jump = ledger.call(DAY, "4.00", environment="staging")

    assert [a.kind for a in anomalies([old, jump], environment="staging")] == [
        "from_zero",
        "new_model",
        "new_operation_type",
    ]
    assert anomalies([jump], environment="staging") == []  # no history at all: the ledger's first day


def test_each_report_day_is_checked_against_its_own_trailing_days(anomalies):
    ledger = Ledger()
    records = steady_week(ledger, environment="cicd")
    records.append(ledger.call(DAY, "40.00", environment="cicd"))
    records.append(ledger.call(DAY + timedelta(days=1), "40.00", environment="cicd"))  # 40 vs (60 + 40) / 7: 2.8x

    found = anomalies(records, days=[DAY, DAY + timedelta(days=1)])

    assert [(a.kind, a.day) for a in found] == [("spike", DAY)]


def test_pure_rows_with_missing_fields_and_a_bad_factor():
    """`find_anomalies` reads rows of any grouping that has `day` (a field a row lacks counts as empty)."""

    def row(day: date, amount: str, environment: str) -> AggregateRow:
        group = (("day", day.isoformat()), ("environment", environment))
        return AggregateRow(group, D(amount), 1, 0, 0, 0, 0, 0, 0)

    rows = [row(day, "1.000000001", "production") for day in WEEK] + [row(DAY, "7", "production")]
    [spike] = find_anomalies(rows, [DAY], factor=D(5))
    assert spike.baseline == D("1.000000001")
    assert spike.factor == D("6.999999993000")  # 49 / 7.000000007: rounded half-even to 12 places
    with pytest.raises(ValueError, match="factor"):
        find_anomalies(rows, [DAY], factor=D(0))
