"""otel-ai-cost: every AI API call as an exactly priced, attributed OpenTelemetry GenAI span plus cost metrics.

import otel_ai_cost

otel_ai_cost.instrument()
with otel_ai_cost.ai_usage_context(operation_type="batch_processing", job_id="job-42", team="search"):
    client.chat.completions.create(...)

@otel_ai_cost.track_request("google_places", "place_details")  # per-request APIs without an SDK of their own
def place_details(place_id): ...

otel_ai_cost.flush(timeout_s=5)  # before a process is frozen or killed; AWS Lambda: otel_ai_cost.aws_lambda.traced

PYTEST_DONT_REWRITE: pytest rewrites the asserts of a package that ships a plugin (ours: `pytest --ai-cost`), and
warns when it was imported first (`opentelemetry-instrument pytest`); this package holds no tests to rewrite.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "BudgetExceeded",
    "__version__",
    "ai_usage_context",
    "aws_lambda",
    "flush",
    "instrument",
    "track_request",
    "uninstrument",
]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing a submodule (the contract, the CLI) does not load the instrumentation.
    if name == "ai_usage_context":
        from otel_ai_cost.attribution import ai_usage_context

        return ai_usage_context
    if name == "track_request":
        from otel_ai_cost.instrumentation.per_request import track_request

        return track_request
    if name == "BudgetExceeded":
        from otel_ai_cost.budgets.quota import BudgetExceeded

        return BudgetExceeded
    if name == "flush":
        from otel_ai_cost.flushing import flush

        return flush
    if name == "aws_lambda":
        import importlib

        return importlib.import_module("otel_ai_cost.aws_lambda")
    if name in ("instrument", "uninstrument"):
        from otel_ai_cost import instrument_api

        return getattr(instrument_api, name)
    raise AttributeError(f"module 'otel_ai_cost' has no attribute {name!r}")
