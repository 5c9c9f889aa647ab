"""`otel_ai_cost.api.lambda_handler` as AWS Lambda runs it: configured by environment variables, the ledger opened
once per execution environment and only read, scoped to the environments it may read; calls of unknown cost shown
as unknown; and the same answer, byte for byte, as the ledger service's `/ai_usage` over the same ledger."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from dynamodb_server import REGION
from gateway_events import body, http_event, rest_event

from otel_ai_cost.api import aws_lambda
from otel_ai_cost.api.aws_lambda import AiUsageHandler
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.service import LedgerService, ServiceConfig

NOW = datetime(2026, 11, 22, 18, tzinfo=timezone.utc)
SINCE = ("start_date", "2026-11-01")


def call(n: int, amount: str | None, *, provider: str = "openai", environment: str = "production",
         **fields: Any) -> LedgerRecord:  # fmt: skip
    values: dict[str, Any] = {
        "environment": environment, "service": "receipt-labeler", "provider": provider,
        "request_model": "claude-haiku-4-5" if provider == "anthropic" else "gpt-4o-mini", "operation": "chat",
        "input_tokens": 100, "output_tokens": 10, "amount": None if amount is None else Decimal(amount), **fields,
    }  # fmt: skip
    when = datetime(2026, 11, 21, 8 + n, tzinfo=timezone.utc)
    return LedgerRecord(f"{n:032x}", f"{n:016x}", when, **values)


RECORDS = [
    call(1, "0.01"),
    call(2, None, pricing_status="no_usage", outcome="partial"),  # a stream closed before its usage arrived
    call(3, "0.003", outcome="partial"),  # priced from part of its usage: a lower bound
    call(4, None, pricing_status="no_usage", outcome="error"),  # failed before any usage: $0, known
    call(5, None, provider="anthropic", pricing_status="unpriced"),  # no price for the model
    call(6, "0.01"),
    call(7, "2.5", environment="staging"),
]


@pytest.fixture(scope="module")
def ledger_url(make_ledger) -> str:
    return make_ledger(RECORDS)


@pytest.fixture
def handler(ledger_url: str) -> Iterator[AiUsageHandler]:
    made = AiUsageHandler(ledger_url, "production", clock=lambda: NOW)
    yield made
    made.close()


@pytest.fixture
def module_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`lambda_handler` as a fresh execution environment sees it (its cached handler closed afterwards)."""
    monkeypatch.setattr(aws_lambda, "_handler", None)
    yield
    if aws_lambda._handler is not None:
        aws_lambda._handler.close()


def test_calls_of_unknown_cost_are_shown_as_unknown_never_as_zero(handler):
    answer = handler(http_event([SINCE, ("aggregation", "service")]))
    document = body(answer)
    summary = document["summary"]
    # Known: 0.01 + 0.01 and the failed call's $0; 0.003 is only a lower bound of call 3's cost.
    assert summary["total_cost_usd"] == Decimal("0.023")
    assert (summary["total_api_calls"], summary["unknown_cost_calls"], summary["unpriced_calls"]) == (6, 3, 1)
    assert summary["note"] == "3 call(s) of unknown cost: total_cost_usd is a lower bound"
    assert summary["average_cost_per_call"] == Decimal("0.007666666667")  # 0.023 / 3 known calls, 12 places
    anthropic = document["aggregations"]["by_service"]["anthropic"]
    assert anthropic["cost_usd"] == 0 and anthropic["unknown_cost_calls"] == 1
    assert anthropic["note"] == "1 call(s) of unknown cost: cost_usd is a lower bound"
    assert anthropic["average_cost_per_call"] is None  # no call of known cost: unknown, not $0
    assert '"average_cost_per_call":null' in answer["body"]
    openai = document["aggregations"]["by_service"]["openai"]
    assert (openai["api_calls"], openai["unknown_cost_calls"], openai["average_cost_per_call"]) == (
        5, 2, Decimal("0.007666666667"),
    )  # fmt: skip


def test_no_calls_is_zero_with_an_average_of_zero_as_the_legacy_endpoint(handler):
    summary = body(handler(http_event([SINCE, ("service", "google_places")])))["summary"]
    assert (summary["total_cost_usd"], summary["total_api_calls"], summary["average_cost_per_call"]) == (0, 0, 0)
    assert "note" not in summary


def test_the_environment_list_scopes_every_read(ledger_url):
    staging = AiUsageHandler(ledger_url, "staging", clock=lambda: NOW)
    both = AiUsageHandler(ledger_url, "staging, production", clock=lambda: NOW)
    try:
        assert body(staging(http_event([SINCE])))["summary"]["total_cost_usd"] == Decimal("2.5")
        refused = staging(http_event([SINCE, ("environment", "production")]))
        assert refused["statusCode"] == 403
        assert body(refused)["parameter"] == "environment" and "production" in body(refused)["error"]
        assert body(both(http_event([SINCE])))["summary"]["total_cost_usd"] == Decimal("2.523")
        chosen = body(both(rest_event([SINCE, ("environment", "staging")])))
        assert chosen["summary"]["total_api_calls"] == 1
        assert chosen["query"]["environment"] == "staging"
    finally:
        staging.close()
        both.close()


def test_lambda_handler_opens_the_ledger_once_and_only_reads_it(module_handler, ledger_url, server, monkeypatch):
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", ledger_url)
    monkeypatch.delenv("OTEL_AI_COST_API_ENVIRONMENTS", raising=False)
    table = ledger_url.split("://", 1)[1].split("?", 1)[0]
    items_before = server.client().scan(TableName=table, Select="COUNT")["Count"]
    # As the Lambda runtime finds the handler string `otel_ai_cost.api.lambda_handler`.
    entry = getattr(importlib.import_module("otel_ai_cost.api"), "lambda_handler")  # noqa: B009 (as the runtime)
    first = entry(http_event([SINCE]), None)
    store = aws_lambda._handler._store
    second = entry(rest_event([SINCE, ("service", "openai")]), None)
    assert (first["statusCode"], second["statusCode"]) == (200, 200)
    assert body(first)["summary"]["total_api_calls"] == 7  # unset: every environment
    assert body(second)["summary"]["total_cost_usd"] == Decimal("2.523")
    assert aws_lambda._handler._store is store  # one ledger per execution environment
    assert server.client().scan(TableName=table, Select="COUNT")["Count"] == items_before


@pytest.mark.parametrize(
    ("ledger", "environments", "says"),
    [
        (None, None, "OTEL_AI_COST_LEDGER is not set"),
        ("none", None, "the ledger is disabled (OTEL_AI_COST_LEDGER=none)"),
        ("dynamodb://no-such-table?region={region}&endpoint_url={endpoint}", None, "no ledger table no-such-table"),
        ("{url}", "production,,staging", "OTEL_AI_COST_API_ENVIRONMENTS='production,,staging' names an empty"),
        ("{url}", "", "OTEL_AI_COST_API_ENVIRONMENTS='' names an empty"),
        ("{url}", "*,staging", "'*' means every environment: give it alone"),
    ],
)
def test_a_misconfigured_function_says_what_is_wrong_and_creates_nothing(
    module_handler, ledger_url, server, monkeypatch, ledger, environments, says
):
    if ledger is None:
        monkeypatch.delenv("OTEL_AI_COST_LEDGER", raising=False)
    else:
        monkeypatch.setenv(
            "OTEL_AI_COST_LEDGER", ledger.format(url=ledger_url, region=REGION, endpoint=server.endpoint_url)
        )
    if environments is None:
        monkeypatch.delenv("OTEL_AI_COST_API_ENVIRONMENTS", raising=False)
    else:
        monkeypatch.setenv("OTEL_AI_COST_API_ENVIRONMENTS", environments)
    tables = server.client().list_tables()["TableNames"]
    answer = aws_lambda.lambda_handler(http_event([SINCE]), None)
    assert answer["statusCode"] == 500
    assert answer["headers"]["Access-Control-Allow-Origin"] == "*"
    assert body(answer)["error"].startswith("misconfigured: ") and says in body(answer)["error"]
    assert server.client().list_tables()["TableNames"] == tables
    # Fixed, the next request opens the ledger: a failure is not kept.
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", ledger_url)
    monkeypatch.setenv("OTEL_AI_COST_API_ENVIRONMENTS", "*")
    assert aws_lambda.lambda_handler(http_event([SINCE]), None)["statusCode"] == 200


def test_importing_the_package_is_cheap():
    code = (
        "import sys, otel_ai_cost.api as api; "
        "heavy = [m for m in ('boto3', 'botocore', 'otel_ai_cost.api.aws_lambda', "
        "'otel_ai_cost.ledger.service.usage_api') if m in sys.modules]; "
        "assert not heavy, heavy; "
        "assert callable(api.lambda_handler); "
        "assert 'boto3' not in sys.modules, 'the handler imports boto3 only to open the ledger'; "
        "print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# -- one aggregation, two transports --------------------------------------------------------------------------------

QUERIES = [
    [SINCE, ("aggregation", "day,service,model,operation,hour")],
    [SINCE, ("service", "openai"), ("operation", "chat"), ("aggregation", "model,hour")],
    [("start_date", "2026-11-21"), ("end_date", "2026-11-21"), ("environment", "staging")],
    [],
    [("aggregation", "day"), ("aggregation", "service")],
    [("start_date", "2026-11-31")],
    [("provider", "openai")],
]


@pytest.fixture
def ledger_service(ledger_url: str) -> Iterator[LedgerService]:
    store = DynamoDBStore.from_url(ledger_url)
    with LedgerService(store, ServiceConfig(port=0)) as service:
        service.clock = lambda: NOW
        yield service


@pytest.mark.parametrize("query", QUERIES, ids=lambda query: urlencode(query) or "(none)")
def test_the_lambda_answers_what_the_ledger_service_answers(ledger_service, ledger_url, query):
    lambda_handler = AiUsageHandler(ledger_url, "*", clock=lambda: NOW)
    try:
        over_http = requests.get(f"{ledger_service.url}/ai_usage?{urlencode(query)}", timeout=30)
        for event in (http_event(query), rest_event(query)):
            answer = lambda_handler(event)
            assert answer["statusCode"] == over_http.status_code
            assert answer["body"].encode() == over_http.content
            assert over_http.headers["Content-Type"] == answer["headers"]["Content-Type"] == "application/json"
    finally:
        lambda_handler.close()
