"""`GET /ai_usage`: the legacy tracker's query route, where `service` means the provider (as in the seeds and
`usage.jsonl`), answered in the legacy tracker's shape (`summary.total_cost_usd`, `aggregations.by_day`, ...) with
its amounts as JSON numbers written from their exact decimal text. Records are written to a real SQLite store, then
queried over HTTP. (The same route from a DynamoDB ledger, and its AWS Lambda twin: tests/api.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.service import LedgerService, ServiceConfig
from otel_ai_cost.ledger.sqlite_store import SQLiteStore

NOW = datetime(2026, 11, 22, 18, tzinfo=timezone.utc)
T1 = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)
T2 = datetime(2026, 11, 21, 14, 0, tzinfo=timezone.utc)
NOTE = "1 call(s) of unknown cost: cost_usd is a lower bound"  # on a group that includes the unpriced call


def record(n: int, timestamp: datetime, **fields: Any) -> LedgerRecord:
    values: dict[str, Any] = {
        "environment": "production", "service": "receipt-labeler", "provider": "openai", "operation": "chat",
        "request_model": "gpt-4o-mini", "input_tokens": 1000, "output_tokens": 200, "amount": Decimal("0.00027"),
        **fields,
    }  # fmt: skip
    return LedgerRecord(f"{n:032x}", f"{n:016x}", timestamp, **values)


RECORDS = [
    record(1, T1),
    record(2, T1, amount=Decimal("0.1")),
    record(3, T1.replace(hour=10), provider="anthropic", request_model="claude-haiku-4-5", amount=Decimal("0.002")),
    record(4, T2, operation="embeddings", request_model="text-embedding-3-small", amount=Decimal("0.00001"),
           output_tokens=0),
    record(5, T2, amount=None, pricing_status="unpriced"),
    record(6, datetime(2026, 9, 1, tzinfo=timezone.utc), amount=Decimal("9")),  # before the default 30 days
]  # fmt: skip


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LedgerService]:
    store = SQLiteStore(tmp_path / "ledger.db")
    store.write(RECORDS)
    with LedgerService(store, ServiceConfig(port=0)) as service:
        service.clock = lambda: NOW
        yield service


def ai_usage(ledger: LedgerService, /, **params: str) -> requests.Response:
    return requests.get(f"{ledger.url}/ai_usage", params=params, timeout=10)


def document_of(response: requests.Response) -> Any:
    """The JSON answer, its numbers read exactly (a float would round them)."""
    return json.loads(response.content, parse_float=Decimal)


def test_the_seeds_query_answers_per_provider_in_the_legacy_shape(service):
    response = ai_usage(service, start_date="2026-11-01", service="openai", aggregation="day,service")
    assert response.status_code == 200
    assert '"total_cost_usd":0.10028,' in response.text  # a JSON number, as the legacy answer's
    document = document_of(response)
    summary = document["summary"]
    # openai only: 0.00027 + 0.1 + 0.00001 (+ one unpriced call, unknown, never $0)
    assert summary["total_cost_usd"] == Decimal("0.10028")
    assert summary["total_api_calls"] == 4
    assert summary["unpriced_calls"] == summary["unknown_cost_calls"] == 1
    assert summary["total_tokens"] == 1200 * 3 + 1000
    assert summary["average_cost_per_call"] == Decimal("0.033426666667")  # over the 3 priced calls, 12 places
    assert summary["date_range"] == {"start": "2026-11-01", "end": "2026-11-22"}
    assert "lower bound" in summary["note"]
    assert document["query"] == {"service": "openai", "operation": None, "aggregation": ["day", "service"]}
    by_day = document["aggregations"]["by_day"]
    assert by_day == {
        "2026-11-20": {"cost_usd": Decimal("0.10027"), "tokens": 2400, "api_calls": 2, "unpriced_calls": 0,
                       "unknown_cost_calls": 0, "services": ["openai"]},
        "2026-11-21": {"cost_usd": Decimal("0.00001"), "tokens": 2200, "api_calls": 2, "unpriced_calls": 1,
                       "unknown_cost_calls": 1, "services": ["openai"], "note": NOTE},
    }  # fmt: skip
    openai = document["aggregations"]["by_service"]["openai"]
    assert openai["cost_usd"] == Decimal("0.10028")
    assert openai["models"] == ["gpt-4o-mini", "text-embedding-3-small"]
    assert openai["operations"] == ["chat", "embeddings"]
    assert set(document["aggregations"]) == {"by_day", "by_service"}


def test_v1_usage_keeps_service_as_the_otel_service_name(service):
    seeds_meaning = requests.get(f"{service.url}/v1/usage", params={"service": "openai", "aggregation": "day"})
    assert seeds_meaning.json()["rows"] == []  # no OTel service is called openai
    ours = requests.get(f"{service.url}/v1/usage", params={"service": "receipt-labeler", "aggregation": "provider"})
    assert {row["provider"] for row in ours.json()["rows"]} == {"openai", "anthropic"}


def test_by_model_operation_and_hour(service):
    document = document_of(ai_usage(service, aggregation="model,operation,hour"))
    aggregations = document["aggregations"]
    assert list(aggregations) == ["by_model", "by_operation", "by_hour"]  # in the order asked
    assert aggregations["by_model"]["claude-haiku-4-5"] == {
        "cost_usd": Decimal("0.002"), "tokens": 1200, "api_calls": 1, "unpriced_calls": 0, "unknown_cost_calls": 0,
        "service": "anthropic", "average_tokens_per_call": Decimal("1200.00"),
    }  # fmt: skip
    assert aggregations["by_operation"]["embeddings"]["cost_usd"] == Decimal("0.00001")
    assert aggregations["by_operation"]["chat"]["services"] == ["anthropic", "openai"]
    assert aggregations["by_hour"] == {
        "09": {"cost_usd": Decimal("0.10027"), "api_calls": 2, "unpriced_calls": 0, "unknown_cost_calls": 0},
        "10": {"cost_usd": Decimal("0.002"), "api_calls": 1, "unpriced_calls": 0, "unknown_cost_calls": 0},
        "14": {"cost_usd": Decimal("0.00001"), "api_calls": 2, "unpriced_calls": 1, "unknown_cost_calls": 1,
               "note": NOTE},
    }  # fmt: skip
    # The default range is the last 30 days: September's record is out.
    assert document["summary"]["total_cost_usd"] == Decimal("0.10228")
    assert document["summary"]["date_range"] == {"start": "2026-10-23", "end": "2026-11-22"}


def test_operation_filter_and_default_aggregation(service):
    document = document_of(ai_usage(service, operation="embeddings"))
    assert list(document["aggregations"]) == ["by_day"]
    assert document["summary"]["total_cost_usd"] == Decimal("0.00001")
    assert document["summary"]["total_api_calls"] == 1
    assert "note" not in document["summary"]


def test_no_calls_is_a_zero_total_and_a_zero_average_as_the_legacy_endpoint(service):
    summary = document_of(ai_usage(service, service="google_places"))["summary"]
    assert (summary["total_cost_usd"], summary["total_api_calls"], summary["average_cost_per_call"]) == (0, 0, 0)


def test_an_all_unknown_group_has_no_average(service):
    # 2026-11-21 14:00, openai, embeddings and an unpriced chat: the chat group's only call has no known cost.
    document = document_of(ai_usage(service, start_date="2026-11-21", end_date="2026-11-21", operation="chat"))
    summary = document["summary"]
    assert (summary["total_cost_usd"], summary["unknown_cost_calls"], summary["average_cost_per_call"]) == (0, 1, None)
    assert summary["note"] == "1 call(s) of unknown cost: total_cost_usd is a lower bound"


def test_default_start_is_30_days_before_today_even_with_an_end_date(service):
    summary = document_of(ai_usage(service, end_date="2026-11-20"))["summary"]
    assert summary["date_range"] == {"start": "2026-10-23", "end": "2026-11-20"}
    assert summary["total_api_calls"] == 3
    early = ai_usage(service, end_date="2026-10-01")
    assert early.status_code == 400
    assert early.json()["parameter"] == "start_date" and "give start_date" in early.json()["error"]


def test_empty_service_and_operation_mean_every_one_and_aggregation_may_repeat(service):
    document = document_of(ai_usage(service, service="", operation="", start_date="2026-11-01"))
    assert document["summary"]["total_api_calls"] == 5
    assert document["query"] == {"service": None, "operation": None, "aggregation": ["day"]}
    url = f"{service.url}/ai_usage?start_date=2026-11-01&aggregation=day&aggregation=model"
    repeated = document_of(requests.get(url, timeout=10))
    assert list(repeated["aggregations"]) == ["by_day", "by_model"]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"provider": "openai"}, "provider"),
        ({"aggregation": "day,week"}, "aggregation"),
        ({"start_date": "2026-13-01"}, "start_date"),
        ({"start_date": "2026-11-22", "end_date": "2026-11-01"}, "start_date"),
        ({"environment": ""}, "environment"),
        ({"start_date": "20261101"}, "start_date"),
        ({"end_date": ""}, "end_date"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(service, params, parameter):
    response = ai_usage(service, **params)
    assert response.status_code == 400
    assert response.json()["parameter"] == parameter
