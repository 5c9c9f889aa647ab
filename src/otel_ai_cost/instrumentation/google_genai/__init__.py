"""Cost instrumentation for Google Gemini through the `google-genai` SDK (tested with 3.4).

Covered: `client.models.generate_content` and `client.models.generate_content_stream`, and the same on
`client.aio.models` (async), hence also `client.chats` / `client.aio.chats` sessions, which call them. Each HTTP
request to `generateContent` / `streamGenerateContent` becomes one GenAI client span (`gen_ai.operation.name`
`generate_content`) with the exact usage the API reported, priced per token class, plus its metric points.
A call that the SDK turns into several requests (automatic function calling, automatic continuation) gives one
span per request, each priced on its own: every request is billed, and the long-context tier is per request.

Provider (`gen_ai.provider.name`): `gcp.vertex_ai` when the client is configured for Vertex AI
(`genai.Client(vertexai=True, ...)` or `GOOGLE_GENAI_USE_VERTEXAI=true`), else `gcp.gemini` (the Gemini Developer
API). Both are priced from genai-prices' `google` provider (Google's published Gemini API prices,
https://ai.google.dev/gemini-api/docs/pricing), with the shipped catalog and the user's overrides layered on top.

Fields read (`GenerateContentResponse`):

- `usage_metadata.prompt_token_count` (includes `cached_content_token_count`) + `tool_use_prompt_token_count`
  (results of server-side tools fed back to the model; reported apart, billed as input) ->
  `gen_ai.usage.input_tokens`;
- `cached_content_token_count` -> `gen_ai.usage.cache_read.input_tokens` (priced at the cache-read rate);
- `candidates_token_count` + `thoughts_token_count` -> `gen_ai.usage.output_tokens` (thinking is billed as
  output and reported apart from the candidates); `thoughts_token_count` -> `gen_ai.usage.reasoning.output_tokens`;
- `model_version` -> `gen_ai.response.model`; `response_id` -> `gen_ai.response.id`; each candidate's
  `finish_reason`, lower-cased (`stop`, `max_tokens`, `safety`...) -> `gen_ai.response.finish_reasons`;
- `usage_metadata.traffic_type` (Vertex AI): `ON_DEMAND_FLEX` / `ON_DEMAND_PRIORITY` select the flex / priority
  tier. The Gemini API does not echo the tier, so there the requested `config.service_tier` is used.
- request: `model` -> `gen_ai.request.model` (as given, e.g. `models/gemini-2.5-flash`; pricing strips the path),
  `config.max_output_tokens` -> `gen_ai.request.max_tokens`; `contents` / the candidates' text only when content
  capture is on.

Long-context prices (e.g. Gemini 2.5 Pro above 200k input tokens) apply to the whole request, as Google bills
them, decided on the request's total input (prompt + tool-use prompt).

Streams: the caller gets the very same chunk objects. The last chunk's `usage_metadata` holds the final usage. A
stream abandoned early (`break`, `close()`, garbage collection) still ends its span, with
`ai_cost.usage.partial=true` and the usage of the last chunk read (the prompt side, which the API reports on
every chunk). A stream cut by the network or an `{"error": ...}` event ends its span with status ERROR.

Errors: `google.genai.errors.APIError` (`ClientError` 4xx, `ServerError` 5xx) ends the span with status ERROR and
`error.type` the HTTP status code (`"429"`, `"503"`); other exceptions give their class name. The SDK's retries
(`HttpOptions.retry_options`) happen inside one request, so a retried request is one span.

Limits: `embed_content`, `count_tokens` (free), `generate_images` / `generate_videos`, the Batch API
(`client.batches`), the Live API and `client.interactions` are not recorded. Provisioned-throughput traffic
(Vertex AI `traffic_type=PROVISIONED_THROUGHPUT`) is priced at pay-as-you-go rates. Per-modality prices (audio
input on Flash models) are not distinguished: all input is priced at the text rate.

Usage::

    from otel_ai_cost.instrumentation.google_genai import GoogleGenAICostInstrumentor

    GoogleGenAICostInstrumentor().instrument()  # or opentelemetry-instrument

Entry-point name: `ai_cost_google_genai` (`OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=ai_cost_google_genai` disables
it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from otel_ai_cost.instrumentation.common.instrumentor import CostInstrumentor, logger
from otel_ai_cost.telemetry.recorder import Recorder

# (class, method) pairs in `google.genai.models` and the wrapper factory for each (names in patch.py).
_TARGETS: tuple[tuple[str, str, str], ...] = (
    ("Models", "_generate_content", "generate_content_wrapper"),
    ("Models", "_generate_content_stream", "generate_content_stream_wrapper"),
    ("AsyncModels", "_generate_content", "async_generate_content_wrapper"),
    ("AsyncModels", "_generate_content_stream", "async_generate_content_stream_wrapper"),
)


class GoogleGenAICostInstrumentor(CostInstrumentor):
    sdk_module = "google.genai"
    requirement = "google-genai >= 1.0"

    def _patch(self, recorder: Recorder) -> None:
        from otel_ai_cost.instrumentation.google_genai import patch

        models = importlib.import_module("google.genai.models")
        for cls_name, method, factory in _TARGETS:
            cls = getattr(models, cls_name, None)
            if cls is None or not callable(getattr(cls, method, None)):
                logger.warning("otel-ai-cost: google.genai.models.%s.%s not found; not instrumented", cls_name, method)
                continue
            make: Callable[[Recorder], Any] = getattr(patch, factory)
            wrap_function_wrapper(models, f"{cls_name}.{method}", make(recorder))

    def _unpatch(self) -> None:
        models = importlib.import_module("google.genai.models")
        for cls_name, method, _ in _TARGETS:
            cls = getattr(models, cls_name, None)
            if cls is not None:
                unwrap(cls, method)


__all__ = ["GoogleGenAICostInstrumentor"]
