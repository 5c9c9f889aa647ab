"""API Gateway proxy events in, proxy responses out: the HTTP of an AWS Lambda function behind API Gateway.

Three shapes of event are read into one `HttpRequest` (method, path, query parameters as `urllib.parse.parse_qs`
gives them: every value of a repeated parameter, in order):

- an HTTP API's, payload 2.0 (`"version": "2.0"`): the method from `requestContext.http.method`, the path from
  `rawPath`, the parameters from `rawQueryString` (where repeats stay apart: `queryStringParameters` joins them
  with commas), else from `queryStringParameters`;
- a REST API's, or an HTTP API's payload 1.0 (`httpMethod`): `httpMethod`, `path` (and `resource`), and
  `multiValueQueryStringParameters`, else `queryStringParameters`;
- a direct invocation's (`aws lambda invoke`, another function: neither of the above): GET of the route itself,
  with `queryStringParameters` (or `multiValueQueryStringParameters`).

The direct invocation is what the legacy handler accepted too (it read `queryStringParameters` of any event).

A path is matched with the stage's name taken off (`/prod/ai_usage` on a named stage of an HTTP API, whose
`rawPath` carries it) and a trailing slash ignored; a REST API's `resource` and an HTTP API's `routeKey`
(`GET /ai_usage`) are matched too, so a custom domain's base path mapping still reaches the route.

A response is `{"statusCode", "headers", "body", "isBase64Encoded": false}`, which both payload versions accept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

__all__ = ["EventError", "HttpRequest", "read_event", "response"]


class EventError(ValueError):
    """An event whose query parameters are not strings (a direct invocation's hand-written event): answered 400.
    `parameter` names the parameter."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class HttpRequest:
    """One request: its method (upper case), the paths it may be matched by, and its query parameters."""

    method: str
    paths: tuple[str, ...]  # the request path, and the route it was routed by (resource / routeKey), stage-less
    params: dict[str, list[str]]

    def is_for(self, route: str) -> bool:
        return route in self.paths


def read_event(event: Mapping[str, Any], route: str) -> HttpRequest:
    """The request an API Gateway event carries (`route`: the path a direct invocation is taken to ask for)."""
    context = event.get("requestContext") or {}
    stage = str(context.get("stage") or "")
    if event.get("version") == "2.0" and isinstance(context.get("http"), Mapping):
        method = str(context["http"].get("method") or "")
        route_key = str(event.get("routeKey") or "")
        routed = route_key.split(" ", 1)[1] if " " in route_key else ""
        paths = _paths(stage, str(event.get("rawPath") or ""), routed)
        raw = event.get("rawQueryString")
        if isinstance(raw, str):
            params = parse_qs(raw, keep_blank_values=True)
        else:
            params = _single(event.get("queryStringParameters"))
        return HttpRequest(method.upper(), paths, params)
    if "httpMethod" in event:
        paths = _paths(stage, str(event.get("path") or ""), str(event.get("resource") or ""))
        multi = event.get("multiValueQueryStringParameters")
        params = _multi(multi) if multi else _single(event.get("queryStringParameters"))
        return HttpRequest(str(event["httpMethod"]).upper(), paths, params)
    multi = event.get("multiValueQueryStringParameters")
    params = _multi(multi) if multi else _single(event.get("queryStringParameters"))
    return HttpRequest("GET", (route,), params)


def _paths(stage: str, path: str, routed: str) -> tuple[str, ...]:
    """The request path without its stage prefix and trailing slash, and the route it matched when that is a plain
    path (not `$default` nor a `{proxy+}` template)."""
    out = []
    for candidate in (path, routed):
        if not candidate.startswith("/") or "{" in candidate:
            continue
        if stage and stage != "$default" and candidate.startswith(f"/{stage}/"):
            candidate = candidate[len(stage) + 1 :]
        out.append(candidate.rstrip("/") or "/")
    return tuple(out)


def _single(values: Any) -> dict[str, list[str]]:
    """`queryStringParameters`: one value each (null when the request has no query string)."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise EventError("queryStringParameters", "expected an object of parameter names to strings")
    out = {}
    for name, value in values.items():
        if not isinstance(value, str):
            raise EventError(str(name), f"expected a string, got {type(value).__name__}")
        out[str(name)] = [value]
    return out


def _multi(values: Any) -> dict[str, list[str]]:
    """`multiValueQueryStringParameters`: every value of each parameter, in order."""
    if not isinstance(values, Mapping):
        raise EventError("multiValueQueryStringParameters", "expected an object of parameter names to lists")
    out = {}
    for name, items in values.items():
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise EventError(str(name), "expected a list of strings")
        out[str(name)] = list(items)
    return out


def response(status: int, body: str, headers: Mapping[str, str]) -> dict[str, Any]:
    """A proxy integration's response (REST API, and HTTP API payload 1.0 and 2.0)."""
    return {"statusCode": status, "headers": dict(headers), "body": body, "isBase64Encoded": False}
