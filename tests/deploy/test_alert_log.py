"""`otel-ai-cost budgets alert-log` over real HTTP: a server on a free loopback port (in a thread), Alertmanager's
version 4 webhook payloads POSTed to it, the printed lines and the status codes checked."""

from __future__ import annotations

import http.client
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from otel_ai_cost.budgets.alert_log import AlertLogServer, alert_records, parse_payload

BUDGET_LABELS = {
    "alertname": "AICostBudgetThreshold",
    "budget": "production/day",
    "environment": "production",
    "period": "day",
    "scope": "environment",
    "severity": "warning",
    "threshold": "80",
}
SUMMARY = "AI spend reached 80% of the daily production budget"


def alert(status: str = "firing", labels: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    """One alert as Alertmanager 0.25 sends it."""
    return {
        "status": status,
        "labels": dict(BUDGET_LABELS) if labels is None else labels,
        "annotations": {
            "summary": SUMMARY,
            "description": "81.20 USD spent of the daily production budget of 100.00 USD (threshold 80% = 80.00 USD).",
            "runbook_url": "docs/operations.md#aicostbudgetthreshold",
        },
        "startsAt": "2025-03-04T10:15:30.123Z",
        "endsAt": "2025-03-04T11:02:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=ai_cost%3Abudget_spend_USD&g0.tab=1",
        "fingerprint": "5d3c0f1e9a7b2c44",
        **fields,
    }


def payload(*alerts: dict[str, Any], receiver: str = "default-webhook") -> dict[str, Any]:
    """A version 4 webhook payload as Alertmanager 0.25 posts it."""
    return {
        "receiver": receiver,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "alerts": list(alerts),
        "groupLabels": {"alertname": "AICostBudgetThreshold", "budget": "production/day"},
        "commonLabels": {"alertname": "AICostBudgetThreshold"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}/{}:{alertname="AICostBudgetThreshold", budget="production/day"}',
        "truncatedAlerts": 0,
    }


class Receiver:
    def __init__(self) -> None:
        self.out = io.StringIO()
        self.err = io.StringIO()
        self.server = AlertLogServer("127.0.0.1", 0, out=self.out, err=self.err).start()
        self.url = self.server.url

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]

    def errors(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.err.getvalue().splitlines()]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    try:
        yield running
    finally:
        running.server.stop()


def test_one_line_per_alert(receiver: Receiver) -> None:
    resolved = alert("resolved", {**BUDGET_LABELS, "severity": "critical", "threshold": "95"}, fingerprint="77aa")
    answer = requests.post(f"{receiver.url}/alerts", json=payload(alert(), resolved), timeout=5)
    assert answer.status_code == 200 and answer.json() == {"status": "ok", "alerts": 2}
    common = {k: BUDGET_LABELS[k] for k in ("alertname", "environment", "budget", "period", "scope")}
    assert receiver.lines() == [
        {
            **common,
            "status": "firing",
            "severity": "warning",
            "threshold": "80",
            "startsAt": "2025-03-04T10:15:30.123Z",
            "summary": SUMMARY,
            "receiver": "default-webhook",
            "fingerprint": "5d3c0f1e9a7b2c44",
        },
        {
            **common,
            "status": "resolved",
            "severity": "critical",
            "threshold": "95",
            "startsAt": "2025-03-04T10:15:30.123Z",
            "endsAt": "2025-03-04T11:02:00Z",
            "summary": SUMMARY,
            "receiver": "default-webhook",
            "fingerprint": "77aa",
        },
    ]
    # Field order is part of the format (people read these lines): status first, then what and where.
    first = receiver.out.getvalue().splitlines()[0]
    assert list(json.loads(first))[:4] == ["status", "alertname", "severity", "environment"]
    assert receiver.errors() == []


def test_scoped_budget_and_operations_alerts(receiver: Receiver) -> None:
    scoped = alert(labels={**BUDGET_LABELS, "budget": "cicd/day/team=platform", "scope": "team", "team": "platform"})
    operations = alert(
        labels={"alertname": "AICostUnpricedCalls", "severity": "warning", "deployment_environment_name": "staging"}
    )
    del operations["annotations"]  # optional in the payload
    assert requests.post(f"{receiver.url}/", json=payload(scoped, operations), timeout=5).status_code == 200
    first, second = receiver.lines()
    assert first["team"] == "platform" and first["scope"] == "team" and "provider" not in first
    assert second["environment"] == "staging" and second["summary"] is None
    assert not set(second) & {"budget", "period", "scope", "threshold"}


def test_an_empty_notification_is_accepted(receiver: Receiver) -> None:
    answer = requests.post(f"{receiver.url}/alerts", json=payload(), timeout=5)
    assert answer.status_code == 200 and answer.json()["alerts"] == 0
    assert receiver.out.getvalue() == ""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty body"),
        (b"{not json", "body is not JSON: Expecting property name"),
        (b"\xff\xfe{}", "body is not"),
        (b"[]", "expected a JSON object (Alertmanager's webhook payload), got an array"),
        (json.dumps({**payload(alert()), "version": "3"}).encode(), 'version "3": this receiver reads'),
        (json.dumps({k: v for k, v in payload(alert()).items() if k != "version"}).encode(), 'no "version"'),
        (json.dumps({"version": "4"}).encode(), "alerts: expected an array, got nothing"),
        (json.dumps({**payload(), "alerts": {}}).encode(), "alerts: expected an array, got an object"),
        (json.dumps(payload(alert(), "x")).encode(), "alerts[1]: expected an object, got a string"),
        (json.dumps(payload(alert(status="pending"))).encode(), 'alerts[0].status: expected "firing" or "resolved"'),
        (json.dumps(payload(alert(labels=["a"]))).encode(), "alerts[0].labels: expected an object of strings"),
        (json.dumps(payload(alert(labels={"x": 1}))).encode(), "alerts[0].labels.x: expected a string, got a number"),
        (json.dumps(payload(alert(startsAt=5))).encode(), "alerts[0].startsAt: expected a string"),
    ],
)
def test_malformed_payloads_get_400_saying_what_is_wrong(receiver: Receiver, body: bytes, message: str) -> None:
    answer = requests.post(f"{receiver.url}/alerts", data=body, headers={"Content-Type": "application/json"}, timeout=5)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"], answer.json()
    assert receiver.out.getvalue() == "", "nothing is logged as an alert from a rejected payload"
    assert receiver.errors() == [{"error": answer.json()["error"], "path": "/alerts"}]


def test_health_and_other_requests(receiver: Receiver) -> None:
    health = requests.get(f"{receiver.url}/healthz", timeout=5)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert requests.get(f"{receiver.url}/alerts", timeout=5).status_code == 404
    assert requests.post(f"{receiver.url}/healthz", json=payload(alert()), timeout=5).status_code == 405
    assert receiver.out.getvalue() == ""


def test_keep_alive_and_a_missing_length(receiver: Receiver) -> None:
    """Alertmanager reuses its connections: several posts on one connection; a body without a length is refused."""
    connection = http.client.HTTPConnection("127.0.0.1", receiver.server.port, timeout=5)
    try:
        for _ in range(3):
            connection.request("POST", "/alerts", body=json.dumps(payload(alert())))
            answer = connection.getresponse()
            assert answer.status == 200 and json.loads(answer.read())["alerts"] == 1
        connection.putrequest("POST", "/alerts")
        connection.endheaders()
        answer = connection.getresponse()
        assert answer.status == 411 and "Content-Length" in json.loads(answer.read())["error"]
    finally:
        connection.close()
    assert len(receiver.lines()) == 3


def test_records_without_a_server() -> None:
    assert alert_records(parse_payload(json.dumps(payload(alert())).encode()))[0]["budget"] == "production/day"
