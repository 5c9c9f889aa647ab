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

The SDK's own span: `anthropic` 2.x emits a CLIENT span per API call when a tracer provider exists. Ours wraps the
call from outside, so the SDK's span is its child, in the same trace. The two describe one call: cost, attribution
and every metric are recorded once, by our span (instrumentation scope `otel_ai_cost`); the SDK's span is left as
the SDK made it (it repeats the token counts, so a backend that sums tokens from spans should select our scope or
the `ai_cost.pricing.status` attribute). To keep only ours, set `ANTHROPIC_OPEN_TELEMETRY=false`.

Entry-point name: `ai_cost_anthropic` (`OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=ai_cost_anthropic` disables it).
"""

from __future__ import annotations

from typing import Any

from otel_ai_cost.instrumentation.common.instrumentor import SdkCostInstrumentor


class AnthropicCostInstrumentor(SdkCostInstrumentor):
    sdk_module = "anthropic"
    requirement = "anthropic >= 2.0"

    def _adapter(self) -> Any:
        from otel_ai_cost.instrumentation.anthropic.patch import AnthropicAdapter

        return AnthropicAdapter()


__all__ = ["AnthropicCostInstrumentor"]
