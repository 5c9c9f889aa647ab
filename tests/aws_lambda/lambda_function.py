"""A user's Lambda function module, as a real deployment would have it (run by `lambda_runtime_child.py`).

At import (the Lambda init phase): OTLP/HTTP tracer and meter providers when `FUNCTION_TELEMETRY=otlp` (what a
function without the OTel layer sets up itself; with `OTEL_BSP_SCHEDULE_DELAY` and `OTEL_METRIC_EXPORT_INTERVAL`
set long by the tests, nothing leaves the process unless it is flushed), `otel_ai_cost.instrument()` when
`INSTRUMENT_AT_IMPORT=1`, and one real `openai` client pointed at the stand-in. The handlers make
`event["calls"]` chat calls, and raise afterwards when `event["fail"]` is set.
"""

from __future__ import annotations

import os
from typing import Any

import openai

import otel_ai_cost
from otel_ai_cost.aws_lambda import traced

if os.environ.get("FUNCTION_TELEMETRY") == "otlp":
    from user_telemetry import set_up_otlp

    set_up_otlp(os.environ["OTLP_ENDPOINT"])

if os.environ.get("INSTRUMENT_AT_IMPORT") == "1":
    otel_ai_cost.instrument()

client = openai.OpenAI(base_url=os.environ["STAND_IN_OPENAI"], api_key="sk-lambda-test", max_retries=0)


def _work(event: dict[str, Any]) -> dict[str, Any]:
    for n in range(event["calls"]):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"receipt {n}"}])
    if event.get("fail"):
        raise RuntimeError("the handler failed after its calls")
    return {"statusCode": 200, "calls": event["calls"]}


@traced
def traced_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _work(event)


def bare_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The same work without `traced` (and so without a flush): the control."""
    return _work(event)
