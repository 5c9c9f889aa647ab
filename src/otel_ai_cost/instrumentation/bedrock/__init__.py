"""Cost instrumentation for Amazon Bedrock through boto3/botocore (`boto3.client("bedrock-runtime")`, sync).

Every `converse`, `converse_stream`, `invoke_model` and `invoke_model_with_response_stream` call becomes one GenAI
client span (`gen_ai.provider.name = "aws.bedrock"`) with the exact usage Bedrock reported, priced per token
class (plain input, cache reads, cache writes, output) at the price of the model and the serving region, plus the
usual cost metrics. botocore's retries happen inside one call, which counts once. Other operations
(`count_tokens`, `apply_guardrail`, async invoke, bidirectional streams) and other services are not recorded.

Usage::

    from otel_ai_cost.instrumentation.bedrock import BedrockCostInstrumentor

    BedrockCostInstrumentor().instrument()  # or opentelemetry-instrument (entry point `ai_cost_bedrock`)

Usage fields read (Bedrock's input counts exclude cache reads and writes; the span's `gen_ai.usage.input_tokens`
is the semconv total, cache reads and writes included):

- `converse`: `usage.inputTokens`, `outputTokens`, `cacheReadInputTokens`, `cacheWriteInputTokens` (the 1-hour
  part from `cacheDetails`; other writes are 5-minute writes), `stopReason`, `serviceTier.type`;
- `converse_stream`: the same from the final `metadata` event; the span ends when it arrives;
- `invoke_model`: the `X-Amzn-Bedrock-Input-Token-Count` / `-Output-Token-Count` / `-Cache-Read-Input-Token-Count`
  / `-Cache-Write-Input-Token-Count` response headers, Bedrock's own count for every model, preferred when
  present; the response body is then not touched (unless content capture is on). Without them, the model's body
  is read as the caller reads it (a transparent copy, the caller's `StreamingBody` stays as it was): Anthropic
  `usage`, Amazon Nova `usage`, Titan `inputTextTokenCount` / `results[].tokenCount`, Llama
  `prompt_token_count` / `generation_token_count`, OpenAI-style `usage.prompt_tokens` / `completion_tokens`
  (gpt-oss, DeepSeek, Mistral chat, Jamba). Mistral's and Cohere's text bodies carry no token counts;
- `invoke_model_with_response_stream`: the last chunk's `amazon-bedrock-invocationMetrics` (cache classes taken
  from the body's Anthropic/Nova usage when the metrics lack them), else the model's own usage in the chunks.

Pricing: the request's `modelId` against genai-prices' `aws` provider, which knows foundation-model ids and
inference-profile ids (`us.`, `eu.`, `apac.`, `jp.`, `au.`, `global.` prefixes: global profiles of Claude 4.5+
models price at the global rate, geographic ones and plain ids at the regional rate). Of an ARN only the last
path segment is kept (on the span too, so account ids stay off metric labels): a foundation-model or system
inference-profile ARN is priced like its id. The serving region is the client's region (`client.meta.region_name`,
also for cross-region profiles: AWS bills at the source region's price); it goes on the span as `cloud.region` and
to the catalog, where price-file entries with a `region:` apply (see `otel_ai_cost.pricing.price_file`).

Known limits: application inference profiles (`.../application-inference-profile/<id>`), provisioned throughput
(`.../provisioned-model/<id>`, billed per model unit and hour) and custom-model deployments are unpriced
(`ai_cost.pricing.status = unpriced`; map them with a price-file entry for the opaque id if they are
token-billed). Image and video generation, guardrail and knowledge-base charges are not recorded. The `reserved`
service tier is priced at standard rates (with a warning). `aiobotocore` (async) is not instrumented. A stream cut
mid-way ends its span with the transport error (e.g. `ProtocolError`); an in-stream exception event gives its
code (`ThrottlingException`); a stream abandoned early ends its span as partial on `close()` or when collected.

Entry-point name: `ai_cost_bedrock` (`OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=ai_cost_bedrock` disables it).
"""

from __future__ import annotations

from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from otel_ai_cost.instrumentation.common.instrumentor import CostInstrumentor
from otel_ai_cost.telemetry.recorder import Recorder


class BedrockCostInstrumentor(CostInstrumentor):
    sdk_module = "botocore"
    requirement = "botocore >= 1.34.116"  # the first with Converse

    def _patch(self, recorder: Recorder) -> None:
        import botocore.client

        from otel_ai_cost.instrumentation.bedrock.patch import make_api_call_wrapper

        wrap_function_wrapper(botocore.client, "BaseClient._make_api_call", make_api_call_wrapper(recorder))

    def _unpatch(self) -> None:
        import botocore.client

        unwrap(botocore.client.BaseClient, "_make_api_call")


__all__ = ["BedrockCostInstrumentor"]
