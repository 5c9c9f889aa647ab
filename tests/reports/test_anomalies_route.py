"""`GET /v1/usage?anomalies=true` of the ledger service over HTTP: the daily report's anomalies, limited to the
environments a token may read, and 400s naming the parameter. A real service over a real SQLite store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import requests
from report_records import Ledger

from otel_ai_cost.ledger.service import LedgerService, ServiceConfig
from otel_ai_cost.ledger.service.access import parse_tokens
from otel_ai_cost.ledger.sqlite_store import SQLiteStore

DAY = date(2026, 11, 22)
WEEK = [DAY - timedelta(days=n) for n in range(7, 0, -1)]
CI_TOKEN = "ci-reader-5b7d9f1e3a"
ADMIN_TOKEN = "admin-reader-0c2e4a6b8d"
TOKENS = f"""\
tokens:
  - name: ci
    sha256: {hashlib.sha256(CI_TOKEN.encode()).hexdigest()}
    read: [cicd, staging]
  - name: admin
    sha256: {hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()}
    read: ["*"]
"""


@pytest.fixture
def service(tmp_path) -> Iterator[LedgerService]:
    ledger = Ledger()
    records = []
    for day in WEEK:
        records += [ledger.call(day, "10.00", environment="production"),
                    ledger.call(day, "1.00", environment="cicd", operation_type="integration_test")]  # fmt: skip
    records += [
        ledger.call(DAY, "50.00", environment="production"),  # 5x
        ledger.call(DAY, "4.00", environment="cicd", operation_type="integration_test"),  # 4x
        ledger.call(DAY + timedelta(days=1), "1.00", environment="cicd", operation_type="integration_test"),
    ]
    store = SQLiteStore(tmp_path / "ledger.db")
    store.write(records)
    with LedgerService(store, ServiceConfig(port=0, tokens=parse_tokens(TOKENS))) as running:
        yield running
    store.close()


def get(service: LedgerService, token: str = ADMIN_TOKEN, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.get(f"{service.url}/v1/usage", params=params, headers=headers, timeout=10)


def test_the_anomalies_of_a_day(service):
    response = get(service, anomalies="true", end_date="2026-11-22")

    assert response.status_code == 200
    document = response.json()
    assert document["query"] == {"start_date": "2026-11-22", "end_date": "2026-11-22", "anomalies": True,
                                 "factor": "3"}  # fmt: skip
    assert (document["days"], document["factor"], document["baseline_days"]) == (["2026-11-22"], "3", 7)
    spikes = [(a["type"], a["environment"], a["amount"], a["baseline"], a["factor"]) for a in document["anomalies"]]
    assert spikes == [("spike", "cicd", "4.00", "1.00", "4"), ("spike", "production", "50.00", "10.00", "5")]
    assert "a 300% increase in usage compared to the 7-day average" in document["anomalies"][0]["description"]

    calm = get(service, anomalies="true", start_date="2026-11-22", end_date="2026-11-23", factor="4.5").json()
    assert [(a["day"], a["environment"]) for a in calm["anomalies"]] == [("2026-11-22", "production")]


def test_a_token_sees_the_anomalies_of_its_environments_only(service):
    scoped = get(service, CI_TOKEN, anomalies="true", end_date="2026-11-22")
    assert [a["environment"] for a in scoped.json()["anomalies"]] == ["cicd"]

    refused = get(service, CI_TOKEN, anomalies="true", end_date="2026-11-22", environment="production")
    assert refused.status_code == 403 and refused.json()["parameter"] == "environment"
    assert get(service, "wrong-token", anomalies="true", end_date="2026-11-22").status_code == 401


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"anomalies": "yes", "end_date": "2026-11-22"}, "anomalies"),
        ({"anomalies": "true"}, "end_date"),
        ({"anomalies": "true", "end_date": "2026-11-22", "aggregation": "day"}, "aggregation"),
        ({"anomalies": "true", "end_date": "2026-11-22", "provider": "openai"}, "provider"),
        ({"anomalies": "true", "start_date": "2026-01-01", "end_date": "2026-11-22"}, "start_date"),
        ({"anomalies": "true", "end_date": "2026-11-22", "factor": "1"}, "factor"),
        ({"anomalies": "true", "end_date": "2026-11-22", "factor": "NaN"}, "factor"),
        ({"factor": "3", "aggregation": "day"}, "factor"),
    ],
)
def test_bad_parameters_are_refused_by_name(service, params, parameter):
    response = get(service, **params)
    assert response.status_code == 400
    assert response.json()["parameter"] == parameter
