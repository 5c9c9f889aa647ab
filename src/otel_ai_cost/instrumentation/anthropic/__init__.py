"""Cost instrumentation for the `anthropic` SDK (2.x).

Every `messages.create` call (also with `stream=True`), every `messages.stream()` helper, `messages.parse`, and the
same on `client.beta.messages`, sync and async, becomes one GenAI client span with the exact usage the API
reported, priced per token class: plain input, cache reads, 5-minute and 1-hour cache writes, output (thinking
included) and server-side web searches. On the span, `gen_ai.usage.input_tokens` is the semconv total
(`input_tokens + cache_read_input_tokens + cache_creation_input_tokens`); the TTL split of cache writes is in
`ai_cost.usage.cache_creation.5m.input_tokens` / `.1h.`. `messages.count_tokens` is free and is not recorded.

Usage::

    from otel_ai_cost.instrumentation.anthropic import AnthropicCostInstrumentor

    AnthropicCostInstrumentor().instrument()  # or otel_ai_cost.instrument(), or opentelemetry-instrument

**One span per call.** `anthropic` 2.x emits its own CLIENT span per API call whenever a tracer provider exists.
For the calls recorded here (`messages`), ours is the one span: while such a call runs, the SDK is told it has no
tracer, so it makes no span of its own, and its cost (about as much as ours again) is not paid. Ours carries
what the SDK's span told: the operation, model, server, token counts (cache reads and writes included),
finish reason and response id, plus `anthropic.request.id` (the `request-id` header, as the SDK names it) on
calls that are not streamed, plus the cost and attribution. Calls recorded nowhere else (`count_tokens`, the
models and batches APIs) keep the SDK's span. What is lost: the SDK's `traceparent` on the request to Anthropic
(its propagation), and its `http.*` and `anthropic.organization.id` / `.workspace.id` attributes. To keep the SDK's
span as well, as a child of ours (it then repeats the token counts: a backend summing tokens from spans should
select our scope, `otel_ai_cost`, or the `ai_cost.pricing.status` attribute), set
`OTEL_AI_COST_ANTHROPIC_SDK_SPANS=keep`; `ANTHROPIC_OPEN_TELEMETRY=false` turns the SDK's spans off everywhere.

**Cost per call.** One span, started with the attributes known then; usage read from the typed message; metric
observations aggregated when a reader collects; the ledger record written by a background thread.
`benchmarks/instructions_per_call.py` (2026-12-08) measured a `messages.create` adding 350 k instructions, 0.20x
the official `opentelemetry-instrumentation-genai-anthropic` with the SDK's span (1,768 k), and 667 k (0.38x) with
the default SQLite ledger. `benchmarks/call_path.py` measured the caller's wait: +72 us on a 362 us mocked call.

Entry-point name: `ai_cost_anthropic` (`OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=ai_cost_anthropic` disables it).
"""

from __future__ import annotations

import os
from typing import Any

from otel_ai_cost.contract import Env
from otel_ai_cost.instrumentation.common.instrumentor import SdkCostInstrumentor


class AnthropicCostInstrumentor(SdkCostInstrumentor):
    sdk_module = "anthropic"
    requirement = "anthropic >= 2.0"

    def _adapter(self) -> Any:
        from otel_ai_cost.instrumentation.anthropic.patch import AnthropicAdapter

        return AnthropicAdapter()

    def _patch(self, recorder: Any) -> None:
        super()._patch(recorder)
        if os.environ.get(Env.ANTHROPIC_SDK_SPANS, "").strip().lower() != "keep":
            from otel_ai_cost.instrumentation.anthropic.sdk_spans import silence_sdk_spans_of_recorded_calls

            silence_sdk_spans_of_recorded_calls()

    def _unpatch(self) -> None:
        from otel_ai_cost.instrumentation.anthropic.sdk_spans import restore_sdk_spans

        restore_sdk_spans()
        super()._unpatch()


__all__ = ["AnthropicCostInstrumentor"]
