"""Bounded /metrics of the ledger service: sender-chosen label values (models, teams, operation types, environments)
keep the top N by spend per (environment, period) and sum the rest into `other`, so the series stay few and the
sums exact; and the per-team / per-operation-type gauges come from the running totals (fresh on every scrape, in a
bounded number of reads). Records are written straight into a real SQLite store, then scraped over HTTP."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from otel_ai_cost import contract
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.service import LedgerService, ServiceConfig
from otel_ai_cost.ledger.service.metrics import DEFAULT_TOP_N, OTHER
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import AggregateRow, UsageQuery

NOW = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
DISTINCT = 10_000
_SAMPLE = re.compile(r"^(\w+)\{(.*)\} (\S+)$")


def record(n: int, **fields: Any) -> LedgerRecord:
    values: dict[str, Any] = {
        "environment": "production", "service": "svc", "provider": "openai", "request_model": "gpt-4o-mini",
        "input_tokens": 10, "output_tokens": 1, "amount": Decimal(n).scaleb(-6), **fields,
    }  # fmt: skip
    return LedgerRecord(f"{n:032x}", f"{n:016x}", NOW, **values)


class CountingStore(SQLiteStore):
    """The real SQLite store, counting the aggregates asked of it (reads over records, not running totals)."""

    aggregates: list[tuple[str, ...]]

    def aggregate(self, query: UsageQuery, group_by: Sequence[str]) -> list[AggregateRow]:
        self.aggregates.append(tuple(group_by))
        return super().aggregate(query, group_by)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    store = CountingStore(tmp_path / "ledger.db")
    store.aggregates = []
    yield store
    store.close()


@pytest.fixture
def start(start_service: Callable[..., LedgerService]) -> Callable[..., LedgerService]:
    return functools.partial(start_service, clock=lambda: NOW)


def scrape(service: LedgerService, metric: contract.PrometheusMetric) -> list[tuple[dict[str, str], Decimal]]:
    text = requests.get(f"{service.url}/metrics", timeout=30).text
    out = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == metric.name:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2)))
            out.append((labels, Decimal(match.group(3))))
    return out


def of_period(samples: list[tuple[dict[str, str], Decimal]], period: str, **labels: str) -> dict[str, Decimal]:
    """{the last label's value: amount} of one period (and environment)."""
    picked = [(s, v) for s, v in samples if s["period"] == period and all(s[k] == v2 for k, v2 in labels.items())]
    return {"/".join(list(s.values())[2:]): v for s, v in picked}


def exact_total(n: int) -> Decimal:
    return Decimal(n * (n + 1) // 2).scaleb(-6)  # amounts 1..n micro-USD


def test_ten_thousand_models_give_at_most_n_plus_one_series_and_exact_sums(start, store):
    store.write([record(n, request_model=f"model-{n:05d}") for n in range(1, DISTINCT + 1)])
    samples = scrape(start(), contract.LEDGER_SPEND_BY_MODEL)
    for period in ("day", "month"):
        series = of_period(samples, period)
        assert len(series) == DEFAULT_TOP_N + 1
        assert sum(series.values()) == exact_total(DISTINCT)
        top = [f"openai/model-{n:05d}" for n in range(DISTINCT, DISTINCT - DEFAULT_TOP_N, -1)]  # the most spent
        assert set(series) == {*top, f"openai/{OTHER}"}
        assert series[f"openai/{OTHER}"] == exact_total(DISTINCT - DEFAULT_TOP_N)
    assert len(samples) <= 2 * (DEFAULT_TOP_N + 1)  # not 20,000


def test_each_providers_sum_stays_exact_for_provider_budgets(start, store):
    records = [record(n, request_model=f"m{n}", provider="openai") for n in range(1, 501)]
    records += [record(n, request_model=f"m{n}", provider="anthropic") for n in range(501, 601)]
    store.write(records)
    series = of_period(scrape(start(metrics_top_n=5), contract.LEDGER_SPEND_BY_MODEL), "month")
    openai = sum(v for k, v in series.items() if k.startswith("openai/"))
    anthropic = sum(v for k, v in series.items() if k.startswith("anthropic/"))
    assert openai == exact_total(500)
    assert anthropic == exact_total(600) - exact_total(500)
    assert len(series) == 5 + 2  # the top 5 (all anthropic's), plus each provider's other


@pytest.mark.parametrize(
    ("field", "metric"),
    [("team", contract.LEDGER_SPEND_BY_TEAM), ("operation_type", contract.LEDGER_SPEND_BY_OPERATION_TYPE)],
)
def test_ten_thousand_teams_or_operation_types_are_bounded_with_exact_sums(start, store, field, metric):
    store.write([record(n, **{field: f"{field}-{n:05d}"}) for n in range(1, DISTINCT + 1)])
    samples = scrape(start(metrics_top_n=7), metric)
    for period in ("day", "month"):
        series = of_period(samples, period)
        assert len(series) == 7 + 1
        assert sum(series.values()) == exact_total(DISTINCT)
        assert series[OTHER] == exact_total(DISTINCT - 7)
        assert f"{field}-{DISTINCT:05d}" in series


def test_environments_are_bounded_by_month_spend_with_exact_sums(start, store):
    store.write([record(n, environment=f"env-{n:04d}") for n in range(1, 301)])
    service = start(metrics_max_environments=4, metrics_top_n=3)
    for metric in (contract.LEDGER_SPEND, contract.LEDGER_CALLS, contract.LEDGER_SPEND_BY_MODEL):
        samples = scrape(service, metric)
        environments = {labels["environment"] for labels, _ in samples}
        assert environments == {"env-0300", "env-0299", "env-0298", "env-0297", OTHER}, metric.name
    spend = {
        labels["environment"]: v for labels, v in scrape(service, contract.LEDGER_SPEND) if labels["period"] == "day"
    }
    assert spend[OTHER] == exact_total(296)
    assert sum(spend.values()) == exact_total(300)
    calls = {
        labels["environment"]: v for labels, v in scrape(service, contract.LEDGER_CALLS) if labels["period"] == "month"
    }
    assert calls[OTHER] == 296


def test_bounds_below_one_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        ServiceConfig(metrics_top_n=0)


def test_team_and_operation_type_gauges_are_fresh_and_read_no_records(start, store):
    store.write([record(1, team="platform", operation_type="ci")])
    service = start()
    assert of_period(scrape(service, contract.LEDGER_SPEND_BY_TEAM), "day") == {"platform": Decimal("0.000001")}
    store.write([record(2, team="platform", operation_type="ci"), record(3, team="search")])
    # The next scrape already has them (no cache to wait out), read from the running totals.
    team = of_period(scrape(service, contract.LEDGER_SPEND_BY_TEAM), "day")
    assert team == {"platform": Decimal("0.000003"), "search": Decimal("0.000003")}
    assert of_period(scrape(service, contract.LEDGER_SPEND_BY_OPERATION_TYPE), "month") == {"ci": Decimal("0.000003")}
    assert not [group for group in store.aggregates if {"team", "operation_type"} & set(group)]
