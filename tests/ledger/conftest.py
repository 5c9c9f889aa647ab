"""Shared fixtures of the ledger tests: ledger records made to measure, a SQLite ledger in `tmp_path`, ledger
services on free ports, and a moto DynamoDB server."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dynamodb_server import LoopbackDynamoDB, fake_aws_environment, start_server

from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.service import LedgerService, ServiceConfig
from otel_ai_cost.ledger.sqlite_store import SQLiteStore

MakeRecord = Callable[..., LedgerRecord]


def build_record(n: int, **overrides: Any) -> LedgerRecord:
    """Record number `n` (its identity derives from `n`): a priced openai call in production on 2026-01-30."""
    values: dict[str, Any] = {
        "trace_id": f"{n:032x}",
        "span_id": f"{n:016x}",
        "timestamp": datetime(2026, 1, 30, 12, 0, tzinfo=timezone.utc),
        "environment": "production",
        "service": "receipts",
        "provider": "openai",
        "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18",
        "operation": "chat",
        "input_tokens": 100,
        "output_tokens": 20,
        "amount": Decimal("0.000027"),
    }
    values.update(overrides)
    return LedgerRecord(**values)


@pytest.fixture
def make_record() -> MakeRecord:
    """`make_record(**overrides)`: a new record (fresh identity) each call; `n=` to choose the identity."""
    counter = itertools.count(1)

    def make(n: int | None = None, **overrides: Any) -> LedgerRecord:
        return build_record(next(counter) if n is None else n, **overrides)

    return make


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger" / "usage.db"


@pytest.fixture
def sqlite_store(ledger_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(ledger_path)
    yield store
    store.close()


# -- DynamoDB: a moto server on loopback --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackDynamoDB]:
    """A DynamoDB API server (moto) on a loopback port, one per test module."""
    running = start_server()
    yield running
    running.stop()


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no AWS config files: botocore never reaches for a real account."""
    fake_aws_environment(monkeypatch)


# -- the ledger service ---------------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """The store the test's services write to (a module may define its own `store`)."""
    store = SQLiteStore(tmp_path / "ledger.db")
    yield store
    store.close()


@pytest.fixture
def start_service(store: Any) -> Iterator[Callable[..., LedgerService]]:
    """Starts a service on a free port over `store` (or the store given), its clock fixed when `clock` is given,
    with `ServiceConfig` fields as keywords; every one is shut down after the test."""
    started: list[LedgerService] = []

    def start(
        service_store: Any = None, *, clock: Callable[[], datetime] | None = None, **config: Any
    ) -> LedgerService:
        service = LedgerService(service_store or store, ServiceConfig(port=0, **config))
        if clock is not None:
            service.clock = clock
        started.append(service.start())
        return service

    yield start
    for service in started:
        service.shutdown(timeout=5)
