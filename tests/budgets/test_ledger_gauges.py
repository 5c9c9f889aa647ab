"""The ledger's per-team and per-operation-type spend gauges that team / operation-type budgets read."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from otel_ai_cost import contract
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.service.metrics import EnvironmentFinder, ServiceStats, render
from otel_ai_cost.ledger.sqlite_store import SQLiteStore

NOW = datetime(2026, 3, 15, 12, tzinfo=timezone.utc)


def _record(n: int, when: datetime, amount: str, **extra: str) -> LedgerRecord:
    return LedgerRecord(
        trace_id=f"{n:032x}", span_id=f"{n:016x}", timestamp=when, environment="cicd", service="svc",
        provider="openai", request_model="m", operation="chat", input_tokens=1, output_tokens=1,
        amount=Decimal(amount), **extra,
    )  # fmt: skip


def test_team_and_operation_type_gauges_are_exact_per_day_and_month(tmp_path: Path):
    store = SQLiteStore(tmp_path / "u.db")
    earlier = datetime(2026, 3, 2, tzinfo=timezone.utc)
    store.write(
        [
            _record(1, NOW, "1.10", team="platform", operation_type="integration_test"),
            _record(2, NOW, "0.20", team="platform"),
            _record(3, earlier, "5", team="platform", operation_type="integration_test"),
            _record(4, NOW, "7"),  # no team, no operation type: in neither gauge
        ]
    )
    stats = ServiceStats()
    text = render(stats, store, EnvironmentFinder(store, stats), now=lambda: NOW)
    store.close()
    team, op = contract.LEDGER_SPEND_BY_TEAM.name, contract.LEDGER_SPEND_BY_OPERATION_TYPE.name
    lines = set(text.splitlines())
    values = {line.rsplit(" ", 1)[0]: Decimal(line.rsplit(" ", 1)[1]) for line in lines if not line.startswith("#")}
    assert values[f'{team}{{environment="cicd",period="day",team="platform"}}'] == Decimal("1.30")
    assert values[f'{team}{{environment="cicd",period="month",team="platform"}}'] == Decimal("6.30")
    assert values[f'{op}{{environment="cicd",period="day",operation_type="integration_test"}}'] == Decimal("1.10")
    assert values[f'{op}{{environment="cicd",period="month",operation_type="integration_test"}}'] == Decimal("6.10")
    assert len([key for key in values if key.startswith((team, op))]) == 4  # records without the field: left out
    assert f"# TYPE {team} gauge" in lines
