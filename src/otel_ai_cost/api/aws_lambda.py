"""`otel_ai_cost.api.lambda_handler`: the legacy tracker's `GET /ai_usage`, answered from the ledger in AWS Lambda.

A drop-in for the legacy route's handler behind API Gateway (an HTTP API, payload 2.0, as the legacy route is
deployed; a REST API; a direct invocation): the same query parameters (`start_date`, `end_date`, `service`,
`operation`, `aggregation=day,service,model,operation,hour`), the same answer (`summary`, `aggregations.by_*`,
`query`) with the same headers (`Content-Type: application/json`, `Access-Control-Allow-Origin: *`), its amounts
exact, and the calls of unknown cost counted apart, never as $0. It is the ledger service's `/ai_usage`
(`otel_ai_cost.ledger.service.usage_api`: one parser, one aggregation, one encoder), read from the ledger directly.

Configuration (environment variables of the function):

- `OTEL_AI_COST_LEDGER`: the ledger, `dynamodb://TABLE?region=REGION` (required; the URLs of `open_store`);
- `OTEL_AI_COST_API_ENVIRONMENTS`: the environments the function may read, a comma list (`production,staging`),
  or `*` for every one (the default, when unset).

The ledger is opened on the first request and kept for the life of the execution environment (module level);
a ledger that cannot be opened (not configured, no such table) is answered 500 naming the problem, and tried
again on the next request. The handler only reads (`query` and `aggregate`, through `access.ScopedReader`): give
its role `dynamodb:Query` and `dynamodb:GetItem` on the table and its indexes, and `dynamodb:DescribeTable` (the
open checks the table exists rather than answering every request with an empty ledger).

`OTEL_AI_COST_API_ENVIRONMENTS` is the ledger service's read scope (`access.Scope.read`, a tokens file's `read:`)
for the whole function: without `environment=` a request covers the listed environments only; `environment=` one
outside them is 403, `{"error": ..., "parameter": "environment"}`.

Answers:

- `GET /ai_usage?...`: 200, the document;
- a parameter the route does not know, a repeated one (but `aggregation`), a malformed date or level, a start
  after the end: 400, `{"error": "...", "parameter": "<name>"}`;
- `environment=` outside `OTEL_AI_COST_API_ENVIRONMENTS`: 403, the same shape;
- another path: 404; `OPTIONS` (a CORS preflight that reached the function): 204 with `Access-Control-Allow-Methods:
  GET, OPTIONS` and `Access-Control-Allow-Headers: Content-Type`; another method: 405 with `Allow: GET, OPTIONS`;
- the function misconfigured (no ledger URL, no such table, a bad environment list): 500, `{"error":
  "misconfigured: ..."}` naming the variable; DynamoDB throttling or out of reach: 503 with `Retry-After`.

Every answer carries the CORS headers. (An HTTP API with a CORS configuration, as the legacy one, answers
preflights itself and puts its own CORS headers on every answer.)
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from otel_ai_cost.api import gateway
from otel_ai_cost.contract import Env
from otel_ai_cost.ledger.open_store import LedgerConfigError, open_store
from otel_ai_cost.ledger.service import access, usage_api
from otel_ai_cost.ledger.store import LedgerStore, StoreUnavailable

__all__ = ["API_ENVIRONMENTS_ENV", "ROUTE", "AiUsageHandler", "ConfigError", "lambda_handler", "read_scope"]

logger = logging.getLogger("otel_ai_cost.api")

ROUTE = "/ai_usage"
# Until contract.Env carries it (Env.API_ENVIRONMENTS): the environments the function may read.
API_ENVIRONMENTS_ENV = Env.API_ENVIRONMENTS
HEADERS = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}  # the legacy handler's
ALLOW = "GET, OPTIONS"
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": ALLOW,
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "3600",  # the legacy API's CORS max_age
}


class ConfigError(LedgerConfigError):
    """The function's configuration cannot be used (the message names the variable and what it takes)."""


def read_scope(text: str | None) -> access.Scope:
    """The read scope `OTEL_AI_COST_API_ENVIRONMENTS` gives (unset: every environment). Writes: none."""
    if text is None:
        return access.Scope("lambda (every environment)", frozenset(), None)
    names = [name.strip() for name in text.split(",")]
    if not text.strip() or "" in names:
        raise ConfigError(
            f"{API_ENVIRONMENTS_ENV}={text!r} names an empty environment: give a comma list (production,staging), "
            f"or * for every environment (or leave it unset)"
        )
    if access.ALL in names:
        if len(names) > 1:
            raise ConfigError(f"{API_ENVIRONMENTS_ENV}={text!r}: {access.ALL!r} means every environment: give it alone")
        return access.Scope("lambda (every environment)", frozenset(), None)
    return access.Scope(f"lambda ({API_ENVIRONMENTS_ENV})", frozenset(), frozenset(names))


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class AiUsageHandler:
    """The handler, with its ledger opened on first use and kept. `ledger_url` and `environments` default to the
    environment variables (read on the first request); `environments="*"` is every environment. `clock` gives
    "today" (UTC) for the default dates."""

    def __init__(
        self,
        ledger_url: str | None = None,
        environments: str | None = None,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._ledger_url = ledger_url
        self._environments = environments
        self.clock = clock
        self._reader: access.ScopedReader | None = None
        self._store: LedgerStore | None = None
        self._lock = threading.Lock()

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        try:
            request = gateway.read_event(event, ROUTE)
        except gateway.EventError as error:
            return _json(400, {"error": error.message, "parameter": error.parameter})
        if not request.is_for(ROUTE):
            return _json(404, {"error": f"not found: this function answers GET {ROUTE}"})
        if request.method == "OPTIONS":
            return gateway.response(204, "", PREFLIGHT_HEADERS)
        if request.method != "GET":
            return _json(405, {"error": f"method {request.method} not allowed on {ROUTE}"}, {"Allow": ALLOW})
        try:
            parsed = usage_api.parse_ai_usage(request.params, self.clock().astimezone(timezone.utc).date())
        except usage_api.BadParameter as error:
            return _json(400, {"error": error.message, "parameter": error.parameter})
        try:
            document = usage_api.answer(self._open(), parsed)
        except access.OutOfScope as error:
            return _json(403, {"error": str(error), "parameter": "environment"})
        except LedgerConfigError as error:
            logger.error("misconfigured: %s", error)
            return _json(500, {"error": f"misconfigured: {error}"})
        except StoreUnavailable as error:
            logger.warning("ledger store unavailable: %s", error)
            retry_after = str(max(1, math.ceil(error.retry_after_s)))
            return _json(503, {"error": "ledger store unavailable"}, {"Retry-After": retry_after})
        except Exception as error:
            logger.error("usage query failed", exc_info=True)
            return _json(500, {"error": f"query failed: {type(error).__name__}"})
        return _json(200, document)

    def _open(self) -> access.ScopedReader:
        """The ledger, limited to the readable environments: opened once, kept for the execution environment."""
        with self._lock:
            if self._reader is None:
                environments = self._environments
                if environments is None:
                    environments = os.environ.get(API_ENVIRONMENTS_ENV)
                scope = read_scope(environments)  # checked before the ledger is opened: a typo costs no reads
                url = self._ledger_url
                origin = "the ledger URL"
                if url is None:
                    url = os.environ.get(Env.LEDGER, "").strip()
                    origin = Env.LEDGER
                    if not url:
                        raise ConfigError(f"{Env.LEDGER} is not set: set it to dynamodb://TABLE?region=REGION")
                self._store = open_store(url, origin=origin, create=False)  # a read: never creates a table
                self._reader = access.ScopedReader(self._store, scope)
            return self._reader

    def close(self) -> None:
        """Closes the ledger (a test's, or a program's that made its own handler); the next request opens it again."""
        with self._lock:
            if self._store is not None:
                self._store.close()
            self._store = self._reader = None


def _json(status: int, document: Any, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    return gateway.response(status, usage_api.to_json(document).decode(), {**HEADERS, **(headers or {})})


_handler: AiUsageHandler | None = None
_handler_lock = threading.Lock()


def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The AWS Lambda entry point (handler string `otel_ai_cost.api.lambda_handler`), configured by the
    environment variables above; one `AiUsageHandler`, and one open ledger, per execution environment."""
    global _handler
    with _handler_lock:
        if _handler is None:
            _handler = AiUsageHandler()
        handler = _handler
    return handler(event, context)
