"""`otel_ai_cost.api.lambda_handler`: the legacy `GET /ai_usage` over API Gateway events (REST and HTTP API), read
from a DynamoDB ledger (moto on loopback) written through the real `DynamoDBStore`: exact totals and every
aggregation, the filters, the legacy defaults, bad parameters, the routes' status codes and CORS headers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from gateway_events import body, http_event, rest_event

from otel_ai_cost.api.aws_lambda import AiUsageHandler
from otel_ai_cost.ledger.record import LedgerRecord

NOW = datetime(2026, 11, 22, 18, tzinfo=timezone.utc)
CORS = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}
ALL_LEVELS = ("aggregation", "day,service,model,operation,hour")
NOTE = "1 call(s) of unknown cost: cost_usd is a lower bound"


def call(n: int, when: datetime, provider: str, model: str, operation: str, tokens: tuple[int, int],
         amount: str | None, **fields: Any) -> LedgerRecord:  # fmt: skip
    values: dict[str, Any] = {
        "environment": "production", "service": "receipt-labeler", "provider": provider, "request_model": model,
        "operation": operation, "input_tokens": tokens[0], "output_tokens": tokens[1],
        "amount": None if amount is None else Decimal(amount), **fields,
    }  # fmt: skip
    return LedgerRecord(f"{n:032x}", f"{n:016x}", when, **values)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=timezone.utc)


RECORDS = [
    call(1, at(20, 9, 30), "openai", "gpt-4o-mini", "chat", (1000, 200), "0.000450000000000001"),
    call(2, at(20, 9, 45), "openai", "gpt-4o-mini", "chat", (2000, 100), "0.1"),
    call(3, at(20, 10), "anthropic", "claude-haiku-4-5", "chat", (500, 50), "0.002"),
    call(4, at(21, 14), "openai", "text-embedding-3-small", "embeddings", (300, 0), "0.00001"),
    call(5, at(21, 14, 30), "google_places", "text_search", "place_lookup", (0, 0), "0.017"),
    call(6, at(21, 15), "openai", "gpt-4o-mini", "chat", (100, 10), None, pricing_status="unpriced"),
    call(7, at(21, 15, 10), "openai", "gpt-4o-mini", "chat", (100, 20), "5", environment="staging"),
    call(8, datetime(2026, 9, 1, 12, tzinfo=timezone.utc), "openai", "gpt-4o-mini", "chat", (10, 1), "9"),
]


@pytest.fixture(scope="module")
def ledger_url(make_ledger) -> str:
    return make_ledger(RECORDS)


@pytest.fixture
def handler(ledger_url: str) -> Any:
    made = AiUsageHandler(ledger_url, "*", clock=lambda: NOW)
    yield made
    made.close()


Event = Callable[..., dict[str, Any]]
BOTH = pytest.mark.parametrize("event", [rest_event, http_event], ids=["rest-v1", "http-v2"])


@BOTH
def test_every_aggregation_is_exact(handler, event: Event):
    answer = handler(event([("start_date", "2026-11-01"), ("end_date", "2026-11-22"), ALL_LEVELS]))
    assert answer["statusCode"] == 200
    assert answer["headers"] == CORS
    assert answer["isBase64Encoded"] is False
    document = body(answer)
    # Amounts are JSON numbers written from their exact decimal text (a float would have rounded the last digit).
    assert '"total_cost_usd":5.119460000000000001,' in answer["body"]
    assert document["summary"] == {
        "total_cost_usd": Decimal("5.119460000000000001"), "total_tokens": 4380, "total_api_calls": 7,
        "average_cost_per_call": Decimal("0.8532433333333333335"),  # over the 6 calls of known cost, exact
        "date_range": {"start": "2026-11-01", "end": "2026-11-22"},
        "unpriced_calls": 1, "unknown_cost_calls": 1, "currency": "USD",
        "note": "1 call(s) of unknown cost: total_cost_usd is a lower bound",
    }  # fmt: skip
    aggregations = document["aggregations"]
    assert list(aggregations) == ["by_day", "by_service", "by_model", "by_operation", "by_hour"]
    assert aggregations["by_day"] == {
        "2026-11-20": {"cost_usd": Decimal("0.102450000000000001"), "tokens": 3850, "api_calls": 3,
                       "services": ["anthropic", "openai"], "unpriced_calls": 0, "unknown_cost_calls": 0},
        "2026-11-21": {"cost_usd": Decimal("5.01701"), "tokens": 530, "api_calls": 4,
                       "services": ["google_places", "openai"], "unpriced_calls": 1, "unknown_cost_calls": 1,
                       "note": NOTE},
    }  # fmt: skip
    assert aggregations["by_service"] == {
        "anthropic": {"cost_usd": Decimal("0.002"), "tokens": 550, "api_calls": 1, "models": ["claude-haiku-4-5"],
                      "operations": ["chat"], "unpriced_calls": 0, "unknown_cost_calls": 0,
                      "average_cost_per_call": Decimal("0.002")},
        "google_places": {"cost_usd": Decimal("0.017"), "tokens": 0, "api_calls": 1, "models": ["text_search"],
                          "operations": ["place_lookup"], "unpriced_calls": 0, "unknown_cost_calls": 0,
                          "average_cost_per_call": Decimal("0.017")},
        "openai": {"cost_usd": Decimal("5.100460000000000001"), "tokens": 3830, "api_calls": 5,
                   "models": ["gpt-4o-mini", "text-embedding-3-small"], "operations": ["chat", "embeddings"],
                   "unpriced_calls": 1, "unknown_cost_calls": 1, "note": NOTE,
                   "average_cost_per_call": Decimal("1.27511500000000000025")},  # exact: the division ends
    }  # fmt: skip
    assert aggregations["by_model"] == {
        "claude-haiku-4-5": {"cost_usd": Decimal("0.002"), "tokens": 550, "api_calls": 1, "unpriced_calls": 0,
                             "unknown_cost_calls": 0, "service": "anthropic",
                             "average_tokens_per_call": Decimal("550.00")},
        "gpt-4o-mini": {"cost_usd": Decimal("5.100450000000000001"), "tokens": 3530, "api_calls": 4,
                        "unpriced_calls": 1, "unknown_cost_calls": 1, "note": NOTE, "service": "openai",
                        "average_tokens_per_call": Decimal("882.50")},
        "text-embedding-3-small": {"cost_usd": Decimal("0.00001"), "tokens": 300, "api_calls": 1,
                                   "unpriced_calls": 0, "unknown_cost_calls": 0, "service": "openai",
                                   "average_tokens_per_call": Decimal("300.00")},
        "text_search": {"cost_usd": Decimal("0.017"), "tokens": 0, "api_calls": 1, "unpriced_calls": 0,
                        "unknown_cost_calls": 0, "service": "google_places",
                        "average_tokens_per_call": Decimal("0.00")},
    }  # fmt: skip
    assert aggregations["by_operation"] == {
        "chat": {"cost_usd": Decimal("5.102450000000000001"), "tokens": 4080, "api_calls": 5,
                 "services": ["anthropic", "openai"], "unpriced_calls": 1, "unknown_cost_calls": 1, "note": NOTE},
        "embeddings": {"cost_usd": Decimal("0.00001"), "tokens": 300, "api_calls": 1, "services": ["openai"],
                       "unpriced_calls": 0, "unknown_cost_calls": 0},
        "place_lookup": {"cost_usd": Decimal("0.017"), "tokens": 0, "api_calls": 1, "services": ["google_places"],
                         "unpriced_calls": 0, "unknown_cost_calls": 0},
    }  # fmt: skip
    assert aggregations["by_hour"] == {
        "09": {"cost_usd": Decimal("0.100450000000000001"), "api_calls": 2, "unpriced_calls": 0,
               "unknown_cost_calls": 0},
        "10": {"cost_usd": Decimal("0.002"), "api_calls": 1, "unpriced_calls": 0, "unknown_cost_calls": 0},
        "14": {"cost_usd": Decimal("0.01701"), "api_calls": 2, "unpriced_calls": 0, "unknown_cost_calls": 0},
        "15": {"cost_usd": Decimal("5"), "api_calls": 2, "unpriced_calls": 1, "unknown_cost_calls": 1,
               "note": NOTE},
    }  # fmt: skip
    assert document["query"] == {
        "service": None, "operation": None, "aggregation": ["day", "service", "model", "operation", "hour"],
    }  # fmt: skip


def test_rest_and_http_api_events_get_the_same_answer(handler):
    query = [("start_date", "2026-11-20"), ("service", "openai"), ("aggregation", "day,model")]
    assert handler(rest_event(query)) == handler(http_event(query))


@BOTH
def test_service_operation_and_dates_filter(handler, event: Event):
    query = [("start_date", "2026-11-21"), ("end_date", "2026-11-21"), ("service", "openai"), ("operation", "chat")]
    summary = body(handler(event([*query, ("aggregation", "model")])))["summary"]
    # records 6 (unpriced) and 7 (staging): the unpriced call is counted, not priced at $0
    assert (summary["total_cost_usd"], summary["total_api_calls"], summary["unknown_cost_calls"]) == (5, 2, 1)
    assert summary["average_cost_per_call"] == 5  # over the one call of known cost
    embeddings = body(handler(event([("start_date", "2026-11-01"), ("operation", "embeddings")])))
    assert embeddings["summary"]["total_cost_usd"] == Decimal("0.00001")
    assert list(embeddings["aggregations"]) == ["by_day"]  # the legacy default aggregation
    assert "note" not in embeddings["summary"]
    anthropic = body(handler(event([("start_date", "2026-11-01"), ("service", "anthropic")])))["summary"]
    assert (anthropic["total_cost_usd"], anthropic["total_api_calls"]) == (Decimal("0.002"), 1)


@BOTH
def test_default_dates_are_the_legacy_ones(handler, event: Event):
    summary = body(handler(event()))["summary"]
    # start_date: 30 days before today; end_date: today (September's record is out)
    assert summary["date_range"] == {"start": "2026-10-23", "end": "2026-11-22"}
    assert summary["total_cost_usd"] == Decimal("5.119460000000000001")
    # start_date defaults to 30 days before today even when end_date is given, as the legacy endpoint
    ended = body(handler(event([("end_date", "2026-11-20")])))["summary"]
    assert ended["date_range"] == {"start": "2026-10-23", "end": "2026-11-20"}
    assert ended["total_api_calls"] == 3
    since_september = body(handler(event([("start_date", "2026-09-01")])))["summary"]
    assert since_september["total_cost_usd"] == Decimal("14.119460000000000001")


@BOTH
def test_empty_service_and_operation_mean_every_one_as_the_legacy_endpoint(handler, event: Event):
    document = body(handler(event([("start_date", "2026-11-01"), ("service", ""), ("operation", "")])))
    assert document["summary"]["total_api_calls"] == 7
    assert (document["query"]["service"], document["query"]["operation"]) == (None, None)


def test_a_repeated_aggregation_is_the_levels_together_as_the_http_api_joins_them(handler):
    repeated = [("start_date", "2026-11-01"), ("aggregation", "day"), ("aggregation", "model")]
    joined = [("start_date", "2026-11-01"), ("aggregation", "day,model")]
    for event in (rest_event, http_event):
        assert body(handler(event(repeated))) == body(handler(event(joined)))
        assert list(body(handler(event(repeated)))["aggregations"]) == ["by_day", "by_model"]


def test_a_direct_invocation_reads_the_query_string_parameters_as_the_legacy_handler(handler):
    assert body(handler({"queryStringParameters": None}))["summary"]["total_api_calls"] == 7
    direct = handler({"queryStringParameters": {"service": "anthropic", "start_date": "2026-11-01"}})
    assert body(direct)["summary"]["total_cost_usd"] == Decimal("0.002")
    refused = handler({"queryStringParameters": {"start_date": 20261101}})
    assert refused["statusCode"] == 400 and body(refused)["parameter"] == "start_date"


def test_a_named_stage_prefix_on_the_raw_path_is_the_route(handler):
    answer = handler(http_event([("start_date", "2026-11-01")], stage="prod"))
    assert answer["statusCode"] == 200
    assert body(answer)["summary"]["total_api_calls"] == 7


@pytest.mark.parametrize(
    ("query", "parameter", "says"),
    [
        ([("provider", "openai")], "provider", "unknown parameter"),
        ([("_", "1700000000")], "_", "unknown parameter"),
        ([("aggregation", "day,week")], "aggregation", "'week'"),
        ([("aggregation", "")], "aggregation", "a comma list of levels"),
        ([("start_date", "2026-13-01")], "start_date", "not a date (YYYY-MM-DD)"),
        ([("start_date", "20261101")], "start_date", "not a date (YYYY-MM-DD)"),
        ([("end_date", "")], "end_date", "empty"),
        ([("start_date", "2026-11-22"), ("end_date", "2026-11-01")], "start_date", "after end_date 2026-11-01"),
        ([("end_date", "2026-10-01")], "start_date", "give start_date"),
        ([("service", "openai"), ("service", "anthropic")], "service", "given more than once"),
        ([("environment", "")], "environment", "empty"),
    ],
)
@BOTH
def test_bad_parameters_are_400_naming_the_parameter(handler, event: Event, query, parameter, says):
    answer = handler(event(query))
    assert answer["statusCode"] == 400
    assert answer["headers"] == CORS
    document = body(answer)
    assert document["parameter"] == parameter
    assert says in document["error"]


@BOTH
def test_other_paths_are_404_other_methods_405_and_a_preflight_is_answered(handler, event: Event):
    missing = handler(event(path="/receipts"))
    assert missing["statusCode"] == 404 and missing["headers"] == CORS
    assert "GET /ai_usage" in body(missing)["error"]
    posted = handler(event(method="POST"))
    assert posted["statusCode"] == 405
    assert posted["headers"] == {**CORS, "Allow": "GET, OPTIONS"}
    preflight = handler(event(method="OPTIONS"))
    assert preflight["statusCode"] == 204 and preflight["body"] == ""
    assert preflight["headers"]["Access-Control-Allow-Origin"] == "*"
    assert preflight["headers"]["Access-Control-Allow-Methods"] == "GET, OPTIONS"
    assert preflight["headers"]["Access-Control-Allow-Headers"] == "Content-Type"


def test_a_route_with_a_trailing_slash_is_the_route(handler):
    assert handler(rest_event(path="/ai_usage/"))["statusCode"] == 200


@BOTH
def test_legacy_operation_names_find_the_calls_they_became(handler, event: Event):
    # `import legacy-dynamodb` maps completion -> chat and embedding -> embeddings: old filters keep working.
    completion = body(handler(event([("start_date", "2026-11-01"), ("operation", "completion")])))
    chat = body(handler(event([("start_date", "2026-11-01"), ("operation", "chat")])))
    assert completion == chat
    assert (chat["summary"]["total_api_calls"], chat["query"]["operation"]) == (5, "chat")
    embedding = body(handler(event([("start_date", "2026-11-01"), ("operation", "embedding")])))
    assert embedding["summary"]["total_cost_usd"] == Decimal("0.00001")
