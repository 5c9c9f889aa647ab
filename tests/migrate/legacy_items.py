"""Legacy tracker items, written the way tnorlund/Portfolio's `AIUsageMetric.to_dynamodb_item` writes them.

Attribute by attribute, as that method does (read from the public repository, not copied): key and GSI strings,
`TYPE` `AIUsageMetric`, `timestamp` the datetime's `isoformat()`, numbers as `{"N": str(value)}`, `costUSD` as
`str(Decimal(str(cost_usd)))` of the float the tracker computed, optional attributes only when set, `metadata` as
a map whose values are S/N/BOOL/NULL/M/L. `environment` is written only when given (later entity versions).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

BASE_TIME = datetime(2025, 7, 14, 9, 30, 0, 123456, tzinfo=timezone.utc)


def dynamodb_value(value: Any) -> dict[str, Any]:
    """The tracker's `_to_dynamodb_value`: None -> NULL, bool -> BOOL, int/float -> N (str), str -> S, ..."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float)):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, dict):
        return {"M": {k: dynamodb_value(v) for k, v in value.items()}}
    if isinstance(value, list):
        return {"L": [dynamodb_value(v) for v in value]}
    return {"S": str(value)}


def legacy_item(
    *,
    service: str = "openai",
    model: str = "gpt-4o-mini",
    operation: str = "completion",
    timestamp: datetime = BASE_TIME,
    request_id: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    total_tokens: int | None = None,
    api_calls: int = 1,
    cost_usd: float | None = None,
    latency_ms: int | None = None,
    user_id: str | None = None,
    job_id: str | None = None,
    batch_id: str | None = None,
    github_pr: int | None = None,
    environment: str | None = None,
    error: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One item exactly as `to_dynamodb_item` writes it."""
    service = service.lower()
    request_id = request_id or str(uuid.uuid4())
    if total_tokens is None and (input_tokens or output_tokens):
        total_tokens = (input_tokens or 0) + (output_tokens or 0)
    date, month, hour = timestamp.strftime("%Y-%m-%d"), timestamp.strftime("%Y-%m"), timestamp.strftime("%Y-%m-%d-%H")
    item: dict[str, Any] = {
        "PK": {"S": f"AI_USAGE#{service}#{model}"},
        "SK": {"S": f"USAGE#{timestamp.isoformat()}#{request_id}"},
        "GSI1PK": {"S": f"AI_USAGE#{service}"},
        "GSI1SK": {"S": f"DATE#{date}"},
        "GSI2PK": {"S": "AI_USAGE_COST"},
        "GSI2SK": {"S": f"COST#{date}#{service}"},
        "TYPE": {"S": "AIUsageMetric"},
        "service": {"S": service},
        "model": {"S": model},
        "operation": {"S": operation},
        "timestamp": {"S": timestamp.isoformat()},
        "requestId": {"S": request_id},
        "apiCalls": {"N": str(api_calls)},
        "date": {"S": date},
        "month": {"S": month},
        "hour": {"S": hour},
    }
    scope = (
        f"JOB#{job_id}"
        if job_id
        else f"USER#{user_id}"
        if user_id
        else f"BATCH#{batch_id}"
        if batch_id
        else f"ENV#{environment}"
        if environment
        else None
    )
    if scope:
        item["GSI3PK"] = {"S": scope}
        item["GSI3SK"] = {"S": f"AI_USAGE#{timestamp.isoformat()}"}
    if input_tokens is not None:
        item["inputTokens"] = {"N": str(input_tokens)}
    if output_tokens is not None:
        item["outputTokens"] = {"N": str(output_tokens)}
    if total_tokens is not None:
        item["totalTokens"] = {"N": str(total_tokens)}
    if cost_usd is not None:
        item["costUSD"] = {"N": str(Decimal(str(cost_usd)))}
    if latency_ms is not None:
        item["latencyMs"] = {"N": str(latency_ms)}
    if user_id:
        item["userId"] = {"S": user_id}
    if job_id:
        item["jobId"] = {"S": job_id}
    if batch_id:
        item["batchId"] = {"S": batch_id}
    if github_pr is not None:
        item["githubPR"] = {"N": str(github_pr)}
    if environment:
        item["environment"] = {"S": environment}
    if error:
        item["error"] = {"S": error}
    if metadata:
        item["metadata"] = dynamodb_value(metadata)
    return item


def receipt_item(n: int) -> dict[str, Any]:
    """An item of another entity sharing the table (a receipt): never imported."""
    return {
        "PK": {"S": f"IMAGE#{uuid.UUID(int=n)}"},
        "SK": {"S": f"RECEIPT#{n:05d}"},
        "TYPE": {"S": "RECEIPT"},
        "width": {"N": "1024"},
        "timestamp": {"S": BASE_TIME.isoformat()},
        "service": {"S": "openai"},
        "requestId": {"S": f"not-a-metric-{n}"},
    }
