"""The ledger service's /metrics and scoped reads on the DynamoDB store, against a real DynamoDB-API server (moto) on
loopback: the per-team and per-operation-type gauges come from the running totals (no aggregate over the month's
records, which took 88 s for 4,000 records), bounded to the top N with exact sums; a scoped token's usage query is
answered for its environments only."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import requests
from dynamodb_server import REGION, LoopbackDynamoDB, fake_aws_environment, make_record, start_server

from otel_ai_cost import contract
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.service import LedgerService, ServiceConfig
from otel_ai_cost.ledger.service.access import parse_tokens
from otel_ai_cost.ledger.service.metrics import OTHER
from otel_ai_cost.ledger.store import AggregateRow, UsageQuery

NOW = datetime(2026, 11, 22, 18, tzinfo=timezone.utc)  # make_record's records are on 2026-11-22 from 10:00 UTC
RECORDS = 60
AMOUNT = Decimal("0.000450000000000001")


class CountingDynamoDBStore(DynamoDBStore):
    aggregates: list[tuple[str, ...]]

    def aggregate(self, query: UsageQuery, group_by: Sequence[str]) -> list[AggregateRow]:
        self.aggregates.append(tuple(group_by))
        return super().aggregate(query, group_by)


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackDynamoDB]:
    running = start_server()
    yield running
    running.stop()


@pytest.fixture
def store(server: LoopbackDynamoDB, monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingDynamoDBStore]:
    fake_aws_environment(monkeypatch)
    table = f"ledger-{uuid.uuid4().hex[:12]}"
    store = CountingDynamoDBStore(table, region=REGION, endpoint_url=server.endpoint_url, shards=4)
    store.ensure_table()
    store.aggregates = []
    yield store
    store.close()


def samples(service: LedgerService, metric: contract.PrometheusMetric, **headers: str) -> dict[str, Decimal]:
    """{the metric's last label's value: amount}, day period."""
    text = requests.get(f"{service.url}/metrics", headers=headers, timeout=30).text
    out = {}
    for line in text.splitlines():
        if line.startswith(metric.name + "{"):
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line))
            if labels["period"] == "day":
                out[labels[metric.labels[-1]] if len(metric.labels) > 2 else labels["environment"]] = Decimal(
                    line.rsplit(" ", 1)[1]
                )
    return out


def test_team_gauges_come_from_running_totals_bounded_and_exact(store):
    for first in range(1, RECORDS + 1, 20):  # small writes: each distinct team is one more running-total item
        store.write([make_record(n, team=f"team-{n:03d}", operation_type="ci") for n in range(first, first + 20)])
    with LedgerService(store, ServiceConfig(port=0, metrics_top_n=5)) as service:
        service.clock = lambda: NOW
        started = time.monotonic()
        teams = samples(service, contract.LEDGER_SPEND_BY_TEAM)
        elapsed = time.monotonic() - started
        operation_types = samples(service, contract.LEDGER_SPEND_BY_OPERATION_TYPE)
    assert len(teams) == 5 + 1
    assert teams[OTHER] == AMOUNT * (RECORDS - 5)
    assert sum(teams.values()) == AMOUNT * RECORDS
    assert operation_types == {"ci": AMOUNT * RECORDS}
    assert not [group for group in store.aggregates if {"team", "operation_type"} & set(group)]
    assert elapsed < 5, elapsed  # a few reads, not a scan of the month


def test_a_scoped_token_reads_only_its_environments(store):
    store.write([make_record(1), make_record(2, environment="cicd"), make_record(3, environment="staging")])
    sha = hashlib.sha256(b"reader-token-0123456789").hexdigest()
    tokens = parse_tokens(f"tokens:\n  - {{name: r, sha256: {sha}, read: [cicd, staging]}}\n")
    with LedgerService(store, ServiceConfig(port=0, tokens=tokens)) as service:
        service.clock = lambda: NOW
        headers = {"Authorization": "Bearer reader-token-0123456789"}
        rows = requests.get(
            f"{service.url}/v1/usage", params={"aggregation": "environment"}, headers=headers, timeout=30
        ).json()["rows"]
        spend = samples(service, contract.LEDGER_SPEND, **headers)
        forbidden = requests.get(
            f"{service.url}/ai_usage", params={"environment": "production"}, headers=headers, timeout=30
        )
    assert sorted(row["environment"] for row in rows) == ["cicd", "staging"]
    assert set(spend) == {"cicd", "staging"}
    assert forbidden.status_code == 403
