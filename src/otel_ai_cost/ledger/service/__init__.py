"""The ledger service: OTLP/HTTP ingest of cost spans into a ledger store, plus health, metrics and a query API.

    store = SQLiteStore("usage.db")
    with LedgerService(store, ServiceConfig(port=4319)) as service:
        ...  # POST {service.url}/v1/traces, GET /healthz, /metrics, /v1/usage

`otel-ai-cost ledger serve` runs it in the foreground (`run_until_signalled`).
"""

from __future__ import annotations

from otel_ai_cost.ledger.service.app import LedgerService, ServiceConfig
from otel_ai_cost.ledger.service.run import run_until_signalled

__all__ = ["LedgerService", "ServiceConfig", "run_until_signalled"]
