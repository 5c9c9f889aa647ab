"""The figures behind the usage quotas: cached briefly, updated by this process's calls, read again near the line,
never hammering the ledger once over it; SQLite and DynamoDB ledgers (a moto server on loopback).

The book is driven with a clock of the test's own (`refresh_seconds` elapse when the test says so); the ledger is
real, and "another process" is another store object writing to it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ledger"))  # the ledger tests' moto server

from dynamodb_server import REGION, LoopbackDynamoDB, fake_aws_environment, start_server

import otel_ai_cost
from otel_ai_cost import BudgetExceeded, ai_usage_context
from otel_ai_cost.budgets.config import QuotaLimit, parse_budgets
from otel_ai_cost.budgets.quota_book import QuotaBook
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.stand_in.scenario import Scenario

TODAY = datetime.now(timezone.utc)
DAY = TODAY.date().isoformat()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(n: int, amount: str | None, **fields: Any) -> LedgerRecord:
    values: dict[str, Any] = {
        "trace_id": f"{n + 1:032x}", "span_id": f"{n + 1:016x}", "timestamp": TODAY, "environment": "cicd",
        "service": "other-worker", "provider": "openai", "request_model": "gpt-4o-mini", "operation": "chat",
        "input_tokens": 10, "output_tokens": 5, "amount": None if amount is None else Decimal(amount),
    }  # fmt: skip
    values.update(fields)
    return LedgerRecord(**values)


def limit(text: str) -> QuotaLimit:
    [only] = parse_budgets(f"budgets:\n  enforce:\n    - {text}\n").limits
    return only


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "usage.db"
    SQLiteStore(path).close()
    yield path


def test_far_from_the_limit_the_ledger_is_read_once_per_refresh_interval(ledger: Path):
    clock = Clock()
    book = QuotaBook(lambda: SQLiteStore(ledger), clock=clock)
    day = limit("{environment: cicd, period: day, amount: 100, mode: block, refresh_seconds: 5}")
    key = (day.name, DAY, "")
    other = SQLiteStore(ledger)  # another process of the environment
    other.write([record(1, "10")])

    assert book.figures([(key, day)], Decimal(0))[0].spent == Decimal("10")
    assert book.reads == 1
    book.add([key], Decimal("0.5"))  # this process's own call, counted at once...
    mine = SQLiteStore(ledger)
    mine.write([record(100, "0.5")])  # ...and in the ledger (this process's exporter wrote it)
    other.write([record(2, "20")])
    for _ in range(50):  # within the interval: no read, whatever the number of calls
        assert book.figures([(key, day)], Decimal(0))[0].spent == Decimal("10.5")
    assert book.reads == 1
    clock.now += 5
    assert book.figures([(key, day)], Decimal(0))[0].spent == Decimal("30.5")  # the other's spend; ours once
    assert book.reads == 2
    other.close()
    mine.close()


def test_near_the_line_every_call_reads_the_ledger_and_over_it_none_does(ledger: Path):
    clock = Clock()
    book = QuotaBook(lambda: SQLiteStore(ledger), clock=clock)
    cap = limit("{environment: cicd, period: day, amount: 10, mode: block, refresh_seconds: 60}")
    key = (cap.name, DAY, "")
    other = SQLiteStore(ledger)
    other.write([record(1, "9")])
    assert book.figures([(key, cap)], Decimal("0.6"))[0].spent == Decimal("9")  # first read
    # $9 of $10 with calls of $0.60 expected: within the margin (2 x 0.60), so every call asks the ledger
    for n in range(2):
        book.figures([(key, cap)], Decimal("0.6"))
        assert book.reads == 2 + n
    other.write([record(2, "0.2")])
    assert book.figures([(key, cap)], Decimal("0.6"))[0].spent == Decimal("9.2")  # seen at the very next call
    other.write([record(3, "0.3")])
    assert book.figures([(key, cap)], Decimal("0.6"))[0].spent == Decimal("9.5")  # now a call would pass it
    reads = book.reads
    for _ in range(100):  # a retry loop against the blocked limit: the figure only grows, no need to ask
        book.figures([(key, cap)], Decimal("0.6"))
    assert book.reads == reads
    clock.now += 60
    book.figures([(key, cap)], Decimal("0.6"))
    assert book.reads == reads + 1
    other.close()


def test_what_other_processes_add_widens_the_margin(ledger: Path):
    clock = Clock()
    book = QuotaBook(lambda: SQLiteStore(ledger), clock=clock)
    cap = limit("{environment: cicd, period: day, amount: 100, mode: block, refresh_seconds: 5}")
    key = (cap.name, DAY, "")
    other = SQLiteStore(ledger)
    book.figures([(key, cap)], Decimal("0.01"))
    other.write([record(n, "20") for n in range(4)])  # $80 in one interval, elsewhere
    clock.now += 5
    assert book.figures([(key, cap)], Decimal("0.01"))[0].spent == Decimal("80")
    reads = book.reads
    book.figures([(key, cap)], Decimal("0.01"))  # $80 of $100, others add $80 an interval: read at every call
    assert book.reads == reads + 1
    other.close()


def test_a_ledger_that_cannot_be_read_is_logged_once_and_local_spend_still_counts(tmp_path: Path, caplog):
    caplog.set_level(logging.WARNING, logger="otel_ai_cost")
    clock = Clock()
    missing = tmp_path / "not-a-directory"
    missing.write_text("a file where the ledger's directory should be")

    def unreachable() -> SQLiteStore:
        return SQLiteStore(missing / "usage.db")

    book = QuotaBook(unreachable, where="the ledger sqlite://x", clock=clock)
    cap = limit("{environment: cicd, period: job, amount: 1, mode: block}")
    key = (cap.name, "", "job-1")
    book.add([key], Decimal("0.6"))
    for _ in range(3):
        assert book.figures([(key, cap)], Decimal(0))[0].spent == Decimal("0.6")
    clock.now += 2
    book.add([key], Decimal("0.6"))
    assert book.figures([(key, cap)], Decimal(0))[0].spent == Decimal("1.2")
    logged = [
        r.getMessage() for r in caplog.records if "usage quotas cannot read the ledger sqlite://x" in r.getMessage()
    ]
    assert len(logged) == 1


def test_each_scope_reads_its_own_figure(ledger: Path):
    book = QuotaBook(lambda: SQLiteStore(ledger), clock=Clock())
    other = SQLiteStore(ledger)
    other.write(
        [
            record(1, "1", team="search", user_id="ana", job_id="job-1", operation_type="batch_processing"),
            record(2, "2", team="ads", user_id="bo", job_id="job-2"),
            record(3, None, team="ads", user_id="bo", job_id="job-2", pricing_status="unpriced"),
        ]
    )
    month = DAY[:7]
    cases = [
        ("{environment: cicd, period: day, amount: 9, mode: block}", (DAY, ""), Decimal(3), 1),
        ("{environment: cicd, period: month, team: ads, amount: 9, mode: block}", (month, "ads"), Decimal(2), 0),
        ('{environment: cicd, period: day, user_id: "*", amount: 9, mode: block}', (DAY, "bo"), Decimal(2), 1),
        ("{environment: cicd, period: job, amount: 9, mode: block}", ("", "job-1"), Decimal(1), 0),
        ("{environment: cicd, period: day, job_id: job-2, amount: 9, mode: block}", (DAY, "job-2"), Decimal(2), 1),
        (
            "{environment: cicd, period: day, operation_type: batch_processing, amount: 9, mode: block}",
            (DAY, "batch_processing"),
            Decimal(1),
            0,
        ),
    ]
    for text, (period, value), spent, unknown in cases:
        cap = limit(text)
        [figure] = book.figures([((cap.name, period, value), cap)], Decimal(0))
        assert (figure.spent, figure.unknown_cost_calls) == (spent, unknown), text
    other.close()


# -- DynamoDB --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[LoopbackDynamoDB]:
    running = start_server()
    yield running
    running.stop()


def test_a_dynamodb_ledger_shared_by_processes_enforces_the_limits(dynamodb, stand_in, tmp_path, monkeypatch):
    fake_aws_environment(monkeypatch)
    table = f"ledger-quota-{tmp_path.name[-12:]}".replace("_", "-")
    other = DynamoDBStore(table, region=REGION, endpoint_url=dynamodb.endpoint_url, shards=2)
    other.ensure_table()
    other.write([record(1, "4.999", team="search"), record(2, "0.02", job_id="job-9")])  # another process's calls
    url = f"dynamodb://{table}?region={REGION}&endpoint_url={dynamodb.endpoint_url}"
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(
        "budgets:\n  enforce:\n"
        "    - {environment: cicd, period: day, team: search, amount: 5, mode: block}\n"
        "    - {environment: cicd, period: job, amount: 0.02, mode: block}\n"
    )
    monkeypatch.setenv("OTEL_AI_COST_BUDGETS", str(budgets))
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", url)
    monkeypatch.setenv("ENVIRONMENT", "cicd")
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    otel_ai_cost.instrument(tracer_provider=provider)
    try:
        client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0)
        msgs = [{"role": "user", "content": "hi"}]
        stand_in.push(Scenario(prompt_tokens=10_000, cached_tokens=0, completion_tokens=0))  # $0.0015
        with ai_usage_context(team="search"):  # $4.999 of $5 spent elsewhere: one call, then none
            client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
            with pytest.raises(BudgetExceeded, match=r"cicd/day/team=search"):
                client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
        with ai_usage_context(job_id="job-9"), pytest.raises(BudgetExceeded, match=r"\$0\.02 spent by the job"):
            client.chat.completions.create(model="gpt-4o-mini", messages=msgs)  # the job spent its cap elsewhere
        assert len(stand_in.requests) == 1
    finally:
        otel_ai_cost.uninstrument()
        provider.shutdown()
    totals = other.totals("cicd", DAY)  # this process's call reached the shared ledger
    assert totals.calls == 3 and totals.by_team["search"] == Decimal("5.0005")
    other.close()
