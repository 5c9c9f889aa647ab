"""What `opentelemetry-instrument` does at start-up (its sitecustomize calls `initialize()`), on a machine where
no other SDK (`anthropic`, `botocore`, `google.genai`, `googlemaps`) can be imported."""

import os
import sys

for sdk in ("anthropic", "botocore", "google.genai", "googlemaps"):
    sys.modules[sdk] = None  # type: ignore[assignment]  # import anthropic -> ModuleNotFoundError

from opentelemetry.instrumentation.auto_instrumentation import initialize  # noqa: E402

initialize()

import openai  # noqa: E402

import otel_ai_cost  # noqa: E402

client = openai.OpenAI(base_url=os.environ["STAND_IN_OPENAI"], api_key="k", max_retries=0)
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
print("instrumented:", otel_ai_cost.instrument())
