"""HTTP answers of otel-ai-cost outside the ledger service.

`otel_ai_cost.api.lambda_handler` is an AWS Lambda handler for API Gateway (REST and HTTP APIs) serving the legacy
tracker's `GET /ai_usage` from the ledger, a drop-in for the legacy route's handler: set the function's handler
to `otel_ai_cost.api.lambda_handler` and `OTEL_AI_COST_LEDGER=dynamodb://TABLE?region=REGION` (the full guide:
docs/migration.md, section 3; the handler's reference: `otel_ai_cost.api.aws_lambda`).

Importing this package is cheap: the handler's module (and with it the ledger, boto3 and the query API) is
imported the first time `lambda_handler` is looked up.
"""

from __future__ import annotations

from typing import Any

__all__ = ["lambda_handler"]


def __getattr__(name: str) -> Any:
    # Lazy: a function's cold start, or a program importing otel_ai_cost.api for something else, pays for the
    # handler's imports only when it is used. (The Lambda runtime looks the handler up with getattr, which lands here.)
    if name == "lambda_handler":
        from otel_ai_cost.api.aws_lambda import lambda_handler

        return lambda_handler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
