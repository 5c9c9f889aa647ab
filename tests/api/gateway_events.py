"""API Gateway events for the Lambda handler's tests, made from AWS's sample events.

`events/api_gateway_rest_v1.json` and `events/api_gateway_http_v2.json` are the REST API (payload 1.0) and HTTP API
(payload 2.0) proxy events of AWS's documentation, as aws-lambda-powertools keeps them
(`tests/events/apiGatewayProxyEvent.json`, `tests/events/apiGatewayProxyV2Event_GET.json`). Each event here sets
only what a real request to `/ai_usage` changes in them: the method, the path and the query string, in both the
forms API Gateway gives it (REST: `queryStringParameters` with the last value of a repeated parameter, beside
`multiValueQueryStringParameters`; HTTP API: `queryStringParameters` with the values comma-joined, beside
`rawQueryString`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

EVENTS = Path(__file__).with_name("events")
Query = Sequence[tuple[str, str]]  # a query string's parameters in order, repeats included


def _sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


REST_SAMPLE = _sample("api_gateway_rest_v1.json")
HTTP_SAMPLE = _sample("api_gateway_http_v2.json")


def rest_event(query: Query = (), *, method: str = "GET", path: str = "/ai_usage") -> dict[str, Any]:
    """A REST API proxy event (payload 1.0) for `method path?query`."""
    event = copy.deepcopy(REST_SAMPLE)
    event.update(resource=path, path=path, httpMethod=method, body=None)
    event["requestContext"].update(httpMethod=method, path=path, resourcePath=path)
    multi: dict[str, list[str]] = {}
    for name, value in query:
        multi.setdefault(name, []).append(value)
    # REST APIs give the last value of a repeated parameter, and null for both without a query string.
    event["queryStringParameters"] = {name: values[-1] for name, values in multi.items()} or None
    event["multiValueQueryStringParameters"] = multi or None
    return event


def http_event(
    query: Query = (), *, method: str = "GET", path: str = "/ai_usage", stage: str = "$default"
) -> dict[str, Any]:
    """An HTTP API proxy event (payload 2.0) for `method path?query`, routed by `METHOD path` as the legacy route
    (`GET /ai_usage`); on a named stage the raw path carries the stage's name."""
    event = copy.deepcopy(HTTP_SAMPLE)
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    event.update(routeKey=f"{method} {path}", rawPath=raw_path, rawQueryString=urlencode(list(query)))
    event["requestContext"].update(routeKey=f"{method} {path}", stage=stage)
    event["requestContext"]["http"].update(method=method, path=raw_path)
    event.pop("pathParameters", None)
    joined: dict[str, list[str]] = {}
    for name, value in query:
        joined.setdefault(name, []).append(value)
    if joined:  # HTTP APIs join repeats with commas, and leave the field out without a query string
        event["queryStringParameters"] = {name: ",".join(values) for name, values in joined.items()}
    else:
        event.pop("queryStringParameters", None)
    return event


def body(answer: dict[str, Any]) -> Any:
    """The answer's JSON body, its numbers read exactly (as Decimal: a float would round them)."""
    return json.loads(answer["body"], parse_float=Decimal)
