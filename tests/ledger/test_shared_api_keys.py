"""One API key per environment: the ledger knows, per key fingerprint, the environments its calls were recorded in,
and says which keys were seen in more than one: the store query (SQLite and DynamoDB, neither reading the records),
the ledger service's `ai_cost_ledger_shared_api_keys{provider}` (a count: fingerprints are never labels), and the
`doctor` check. The calls are real openai calls against the stand-in, from two "processes" (instrumented twice)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
from dynamodb_server import REGION, LoopbackDynamoDB

import otel_ai_cost
from otel_ai_cost.doctor.api_keys import check_api_keys
from otel_ai_cost.doctor.checks import Status
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.service import LedgerService
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery
from otel_ai_cost.telemetry.key_fingerprint import fingerprint

HI = [{"role": "user", "content": "hi"}]
PRODUCTION_KEY = "sk-proj-production-key-1111"
CI_KEY = "sk-proj-ci-key-2222"
TODAY = datetime.now(timezone.utc).date()


def calls_from(environment: str, key: str, stand_in: Any, monkeypatch: pytest.MonkeyPatch, n: int = 1) -> None:
    """A process in `environment` making `n` calls with `key` (its records go to OTEL_AI_COST_LEDGER)."""
    from opentelemetry.sdk.trace import TracerProvider

    monkeypatch.setenv("ENVIRONMENT", environment)
    provider = TracerProvider()
    otel_ai_cost.instrument(tracer_provider=provider)
    try:
        with openai.OpenAI(base_url=stand_in.openai_base_url, api_key=key, max_retries=0) as client:
            for _ in range(n):
                with otel_ai_cost.ai_usage_context("test"):
                    client.chat.completions.create(model="gpt-4o-mini", messages=HI)
        assert provider.force_flush()
    finally:
        otel_ai_cost.uninstrument()
        provider.shutdown()


@pytest.fixture
def sqlite_ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "usage.db"
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", f"sqlite://{path}")
    return path


def test_a_production_key_used_from_ci_is_reported_by_the_store_the_service_and_doctor(
    sqlite_ledger, stand_in, monkeypatch, start_service
):
    calls_from("production", PRODUCTION_KEY, stand_in, monkeypatch, n=2)
    calls_from("cicd", PRODUCTION_KEY, stand_in, monkeypatch)  # the leak
    calls_from("cicd", CI_KEY, stand_in, monkeypatch)  # CI's own key: one environment, fine

    with SQLiteStore(sqlite_ledger) as store:
        records = list(store.query(UsageQuery()))
        assert {(r.environment, r.api_key_fingerprint) for r in records} == {
            ("production", fingerprint(PRODUCTION_KEY)),
            ("cicd", fingerprint(PRODUCTION_KEY)),
            ("cicd", fingerprint(CI_KEY)),
        }
        [shared] = store.shared_api_keys(TODAY)
        assert (shared.fingerprint, shared.provider, shared.environments, shared.calls) == (
            fingerprint(PRODUCTION_KEY),
            "openai",
            ("cicd", "production"),
            3,
        )
        assert shared.last_day == TODAY.isoformat()
        assert store.shared_api_keys(TODAY + timedelta(days=1)) == []  # seen before the window only

        service = start_service(store)
        assert scrape(service) == [({"provider": "openai"}, "1")]

    result = check_api_keys()
    assert result.status is Status.WARN
    assert result.summary.startswith("1 API key recorded in more than one environment")
    [line] = result.details
    assert f"openai key {fingerprint(PRODUCTION_KEY)}" in line and "cicd, production" in line and "3 calls" in line
    assert PRODUCTION_KEY not in " ".join([result.summary, result.fix, *result.details])


def test_one_key_per_environment_is_all_well(sqlite_ledger, stand_in, monkeypatch, start_service):
    calls_from("production", PRODUCTION_KEY, stand_in, monkeypatch)
    calls_from("cicd", CI_KEY, stand_in, monkeypatch)
    with SQLiteStore(sqlite_ledger) as store:
        assert store.shared_api_keys(TODAY) == []
        assert scrape(start_service(store)) == []  # absent, as no key is shared
    assert check_api_keys().status is Status.OK


def test_doctor_skips_without_a_ledger(monkeypatch, tmp_path):
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", "none")
    assert check_api_keys().status is Status.SKIP
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", f"sqlite://{tmp_path / 'missing.db'}")
    assert check_api_keys().status is Status.SKIP
    assert not (tmp_path / "missing.db").exists()  # only read, never created


def record(n: int, environment: str, key: str, day: date, provider: str = "openai") -> LedgerRecord:
    return LedgerRecord(
        f"{n:032x}", f"{n:016x}", datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc), environment,
        "svc", provider, request_model="gpt-4o-mini", api_key_fingerprint=fingerprint(key),
    )  # fmt: skip


@pytest.fixture
def dynamodb(server: LoopbackDynamoDB, aws_environment: None) -> Iterator[DynamoDBStore]:
    store = DynamoDBStore(f"ledger-{uuid.uuid4().hex[:12]}", region=REGION, endpoint_url=server.endpoint_url)
    store.ensure_table()
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "dynamodb"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        with SQLiteStore(tmp_path / "ledger.db") as store:
            yield store
    else:
        yield request.getfixturevalue("dynamodb")


def test_the_window_the_doctor_environment_and_each_provider(any_store):
    old = TODAY - timedelta(days=30)
    any_store.write(
        [
            record(1, "production", PRODUCTION_KEY, TODAY),
            record(2, "development", PRODUCTION_KEY, old),  # shared, but a month ago
            record(3, "staging", CI_KEY, TODAY),
            record(4, "otel-ai-cost-doctor", CI_KEY, TODAY),  # doctor --write-test: no environment of a key
            record(5, "production", "sk-ant-one", TODAY, provider="anthropic"),
            record(6, "staging", "sk-ant-one", TODAY - timedelta(days=2), provider="anthropic"),
        ]
    )
    site = replace(record(8, "production", CI_KEY, TODAY), operation_type="(unattributed)", call_site="/app/x.py:3")
    any_store.write([record(7, "staging", "sk-ant-one", TODAY, provider="anthropic"), site])  # the same key again
    stored = {r.span_id: r for r in any_store.query(UsageQuery())}
    assert stored[site.span_id] == site  # both new fields round-trip
    assert stored[record(1, "production", PRODUCTION_KEY, TODAY).span_id].api_key_fingerprint == fingerprint(
        PRODUCTION_KEY
    )
    shared = any_store.shared_api_keys(TODAY - timedelta(days=6))
    assert [(k.provider, k.fingerprint, k.environments) for k in shared] == [
        ("anthropic", fingerprint("sk-ant-one"), ("production", "staging")),
        ("openai", fingerprint(CI_KEY), ("production", "staging")),
    ]
    everything = any_store.shared_api_keys(old)
    assert [(k.provider, k.environments) for k in everything] == [
        ("anthropic", ("production", "staging")),
        ("openai", ("development", "production")),
        ("openai", ("production", "staging")),
    ]
    expected_calls = 3 if isinstance(any_store, SQLiteStore) else None  # DynamoDB keeps no call counts
    assert everything[0].calls == expected_calls


_SAMPLE = re.compile(r"^ai_cost_ledger_shared_api_keys\{(.*)\} (\S+)$")


def scrape(service: LedgerService) -> list[tuple[dict[str, str], str]]:
    text = requests.get(f"{service.url}/metrics", timeout=30).text
    assert "# TYPE ai_cost_ledger_shared_api_keys gauge" in text
    out = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            out.append((dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))), match.group(2)))
    return out
