"""Cost instrumentation for the `openai` SDK (3.x).

Every call made through an `openai.OpenAI` or `openai.AsyncOpenAI` client (and clients built on them, such as
`AzureOpenAI`) to chat completions, the Responses API or embeddings becomes one GenAI client span, named
`{gen_ai.operation.name} {gen_ai.request.model}`, carrying the exact token usage the API reported, the cost priced
from the catalog (`ai_cost.amount`, exact decimal, USD) and the attribution of `ai_usage_context` and baggage. The
same call feeds the `gen_ai.client.*` histograms and the `ai_cost.spend`, `ai_cost.tokens` and `ai_cost.requests`
counters.

Usage::

    from otel_ai_cost.instrumentation.openai import OpenAICostInstrumentor

    OpenAICostInstrumentor().instrument()  # or: otel_ai_cost.instrument(), or opentelemetry-instrument

What is covered, sync and async alike: `chat.completions.create` (also with `stream=True`),
`chat.completions.parse`, the `chat.completions.stream()` helper, `responses.create` (streamed too: usage arrives
in the `response.completed` event), `responses.parse`/`responses.stream()`, `embeddings.create`, and each of these
through `with_raw_response` / `with_streaming_response` (recorded when the body is parsed).

Streams: a chat stream opened without `stream_options.include_usage` is sent with it, so its usage is exact; the
extra usage-only chunk this produces is withheld from the caller, who sees exactly the chunks it would have seen
uninstrumented. Set `OTEL_AI_COST_INJECT_STREAM_USAGE=false` for an OpenAI-compatible server that rejects the
option. A stream abandoned early (`break`, an exception, `close()`, never read, garbage-collected) still ends its
span, with what is known and `ai_cost.usage.partial=true`.

Errors (HTTP 4xx/5xx, timeouts, connection errors) end the span with status ERROR and `error.type` set to the SDK
exception's name; there is no spend unless the provider reported usage. The SDK's retries happen inside one call,
which counts once.

**Cost per call.** The call's own path starts one span with the attributes known then, reads the usage from the
typed response, prices it, and sets the rest in one `set_attributes`. Metric observations are queued and aggregated
when a reader collects, and the ledger record, built from the same typed values, is written by a background thread.
`benchmarks/instructions_per_call.py` (2026-12-08, every thread counted) measured a chat call adding 535 k
instructions, 0.47x the official `opentelemetry-instrumentation-genai-openai`, and 867 k (0.73x to 0.76x, as the
official's count varies) with the default SQLite ledger; a stream 0.20x and 0.31x. `benchmarks/call_path.py`
measured the caller's wait: +82 us on a 580 us mocked call.

The entry-point name is `ai_cost_openai` (`OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=ai_cost_openai` disables it);
the official `openai` instrumentation can run beside it, each producing its own span.
"""

from __future__ import annotations

from typing import Any

from otel_ai_cost.instrumentation.common.instrumentor import SdkCostInstrumentor


class OpenAICostInstrumentor(SdkCostInstrumentor):
    sdk_module = "openai"
    requirement = "openai >= 3.0"

    def _adapter(self) -> Any:
        from otel_ai_cost.instrumentation.openai.patch import OpenAIAdapter

        return OpenAIAdapter()


__all__ = ["OpenAICostInstrumentor"]
