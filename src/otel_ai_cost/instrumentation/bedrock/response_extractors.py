"""Pure functions from Bedrock Runtime responses (botocore's parsed dicts, headers, model bodies) to facts.

Bedrock counts like Anthropic: `inputTokens` (Converse), `X-Amzn-Bedrock-Input-Token-Count`, `inputTokenCount`
(invocation metrics) and the models' own input counts EXCLUDE cache reads and cache writes (Converse's
`totalTokens` is `inputTokens + outputTokens + cacheReadInputTokens + cacheWriteInputTokens`). The semconv input
total is therefore their sum; each class is priced at its own rate. Cache writes whose TTL is not reported (all
but Converse's `cacheDetails`) are 5-minute writes, the default TTL.

Every count is read through `TokenCounts` (pricing/usage.py): a null total, a string, float, bool, list, negative or
absurd count (in a body, a stream chunk, or a token-count header that is not plain digits) makes the usage
malformed, so the call is unpriced rather than priced as if those tokens were 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from otel_ai_cost.pricing.usage import TokenCounts, Usage

# Response headers (botocore lower-cases them in ResponseMetadata.HTTPHeaders).
INPUT_HEADER = "x-amzn-bedrock-input-token-count"
OUTPUT_HEADER = "x-amzn-bedrock-output-token-count"
CACHE_READ_HEADER = "x-amzn-bedrock-cache-read-input-token-count"
CACHE_WRITE_HEADER = "x-amzn-bedrock-cache-write-input-token-count"
SERVICE_TIER_HEADER = "x-amzn-bedrock-service-tier"
INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"

# Inference-profile prefixes: geographic (us., eu., apac., jp., au., ca., us-gov.) and global.
PROFILE_PREFIXES = ("us.", "eu.", "apac.", "jp.", "au.", "ca.", "us-gov.", "global.")
_EMBEDDING_MODELS = ("amazon.titan-embed", "cohere.embed", "amazon.nova-2-multimodal-embeddings", "twelvelabs.marengo")


def _counted(
    counts: TokenCounts, uncached: int, output: int, cache_read: int = 0, cache_write: int = 0, write_1h: int = 0
) -> Usage:
    """`bedrock_usage` of counts read through `counts`, or the malformed usage it found."""
    if counts.problem is not None:
        return Usage(malformed=counts.problem)
    return bedrock_usage(uncached, output, cache_read, cache_write, write_1h)


def bedrock_usage(
    uncached: int, output: int, cache_read: int = 0, cache_write: int = 0, cache_write_1h: int = 0
) -> Usage:
    """`Usage` from Bedrock's counts (input without cache tokens; `cache_write` all TTLs, of which `_1h`)."""
    write_1h = min(cache_write_1h, cache_write)
    return Usage(
        input_tokens=uncached + cache_read + cache_write,
        output_tokens=output,
        cache_read_input_tokens=cache_read,
        cache_write_5m_input_tokens=cache_write - write_1h,
        cache_write_1h_input_tokens=write_1h,
    )


def model_name(model_id: Any) -> str | None:
    """The request's model for the span: a model or inference-profile id as given; of an ARN, its last path
    segment (`.../inference-profile/us.anthropic.claude-...` gives the profile id; an application inference
    profile or a provisioned model gives an opaque id, which no price list knows)."""
    if not isinstance(model_id, str) or not model_id:
        return None
    if model_id.startswith("arn:") and "/" in model_id:
        return model_id.rsplit("/", 1)[1]
    return model_id


def base_model(model: str) -> str:
    """The foundation-model id without an inference-profile prefix."""
    lowered = model.lower()
    for prefix in PROFILE_PREFIXES:
        if lowered.startswith(prefix):
            return lowered[len(prefix) :]
    return lowered


def is_embedding_model(model: str | None) -> bool:
    return model is not None and base_model(model).startswith(_EMBEDDING_MODELS)


def error_code(error: BaseException) -> str | None:
    """A botocore `ClientError`'s code (`ThrottlingException`); in-stream errors are named like the event member
    (`throttlingException`) and are given the API's capitalised spelling."""
    response = getattr(error, "response", None)
    if not isinstance(response, Mapping):
        return None
    code = (response.get("Error") or {}).get("Code")
    if not isinstance(code, str) or not code:
        return None
    return code[:1].upper() + code[1:]


# --- Converse / ConverseStream -----------------------------------------------------------------------------------


def converse_usage(usage: Any) -> Usage | None:
    """From Converse's `usage` (also ConverseStream's `metadata.usage`)."""
    if not isinstance(usage, Mapping):
        return None
    counts = TokenCounts()
    cache_write = counts.key(usage, "cacheWriteInputTokens")
    details = usage.get("cacheDetails")
    write_1h = sum(
        counts.key(d, "inputTokens")
        for d in (details if isinstance(details, list) else ())
        if isinstance(d, Mapping) and d.get("ttl") == "1h"
    )
    counts.within("cacheWriteInputTokens", cache_write, "cacheDetails[ttl=1h].inputTokens", write_1h)
    return _counted(
        counts,
        counts.key(usage, "inputTokens", required=True),
        counts.key(usage, "outputTokens", required=True),
        counts.key(usage, "cacheReadInputTokens"),
        cache_write,
        write_1h,
    )


def service_tier(value: Any) -> str | None:
    """Converse's `serviceTier: {"type": ...}` or the header's plain string."""
    if isinstance(value, Mapping):
        value = value.get("type")
    return value if isinstance(value, str) and value else None


def converse_output(output: Any) -> list[dict[str, Any]] | None:
    message = output.get("message") if isinstance(output, Mapping) else None
    if not isinstance(message, Mapping):
        return None
    texts = [b.get("text") for b in message.get("content") or () if isinstance(b, Mapping)]
    return [{"role": message.get("role", "assistant"), "content": "".join(t for t in texts if isinstance(t, str))}]


# --- InvokeModel ---------------------------------------------------------------------------------------------------


def header_usage(headers: Any) -> Usage | None:
    """From the `X-Amzn-Bedrock-*-Token-Count` headers, when both input and output counts are there (a header
    that is there but is not plain digits is malformed usage, not an absent one)."""
    if not isinstance(headers, Mapping):
        return None
    if headers.get(INPUT_HEADER) is None or headers.get(OUTPUT_HEADER) is None:
        return None
    counts = TokenCounts()
    return _counted(
        counts,
        counts.text(headers.get(INPUT_HEADER), INPUT_HEADER),
        counts.text(headers.get(OUTPUT_HEADER), OUTPUT_HEADER),
        counts.text(headers.get(CACHE_READ_HEADER), CACHE_READ_HEADER),
        counts.text(headers.get(CACHE_WRITE_HEADER), CACHE_WRITE_HEADER),
    )


def metrics_usage(metrics: Any) -> Usage | None:
    """From `amazon-bedrock-invocationMetrics` (the last chunk of InvokeModelWithResponseStream)."""
    if not isinstance(metrics, Mapping) or "inputTokenCount" not in metrics:
        return None
    counts = TokenCounts()
    return _counted(
        counts,
        counts.key(metrics, "inputTokenCount", required=True),
        counts.key(metrics, "outputTokenCount", required=True),
        counts.key(metrics, "cacheReadInputTokenCount"),
        counts.key(metrics, "cacheWriteInputTokenCount"),
    )


def parse_json(data: Any) -> Mapping[str, Any] | None:
    if isinstance(data, (bytes, bytearray, str)):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    return data if isinstance(data, Mapping) else None


def body_usage(body: Mapping[str, Any]) -> Usage | None:
    """From a model's own `InvokeModel` body, whichever family wrote it:

    - Anthropic Messages: `usage.input_tokens` (uncached), `cache_read_input_tokens`, `cache_creation_input_tokens`,
      `output_tokens`;
    - Amazon Nova: `usage.inputTokens`, `outputTokens`, `cacheReadInputTokenCount`, `cacheWriteInputTokenCount`;
    - OpenAI-style bodies (gpt-oss, DeepSeek, Mistral chat models, AI21 Jamba): `usage.prompt_tokens`,
      `completion_tokens`;
    - Amazon Titan text: `inputTextTokenCount` and `results[].tokenCount`; Titan embeddings: `inputTextTokenCount`;
    - Meta Llama: `prompt_token_count`, `generation_token_count`;
    - any body carrying `amazon-bedrock-invocationMetrics`.

    Mistral's text-completion body and Cohere's carry no token counts: only the headers do.
    """
    usage = body.get("usage")
    counts = TokenCounts()
    if isinstance(usage, Mapping):
        if "input_tokens" in usage or "output_tokens" in usage:
            return _counted(
                counts,
                counts.key(usage, "input_tokens", required=True),
                counts.key(usage, "output_tokens", required=True),
                counts.key(usage, "cache_read_input_tokens"),
                counts.key(usage, "cache_creation_input_tokens"),
            )
        if "inputTokens" in usage or "outputTokens" in usage:
            return _counted(
                counts,
                counts.key(usage, "inputTokens", required=True),
                counts.key(usage, "outputTokens", required=True),
                _nova_cache(counts, usage, "cacheReadInputTokenCount", "cacheReadInputTokens"),
                _nova_cache(counts, usage, "cacheWriteInputTokenCount", "cacheWriteInputTokens"),
            )
        if "prompt_tokens" in usage or "completion_tokens" in usage:
            prompt = counts.key(usage, "prompt_tokens", required=True)
            cached = counts.key(usage.get("prompt_tokens_details"), "cached_tokens")
            counts.within("prompt_tokens", prompt, "cached_tokens", cached)
            return counts.usage(
                input_tokens=prompt,
                output_tokens=counts.key(usage, "completion_tokens", required=True),
                cache_read_input_tokens=cached,
            )
    metrics = metrics_usage(body.get(INVOCATION_METRICS))
    if metrics is not None:
        return metrics
    if "inputTextTokenCount" in body:
        results = body.get("results")
        items = results if isinstance(results, list) else ()
        output = sum(counts.key(r, "tokenCount") for r in items if isinstance(r, Mapping))
        return _counted(counts, counts.key(body, "inputTextTokenCount", required=True), output)
    if "prompt_token_count" in body or "generation_token_count" in body:
        return _counted(
            counts,
            counts.key(body, "prompt_token_count", required=True),
            counts.key(body, "generation_token_count", required=True),
        )
    return None


def _nova_cache(counts: TokenCounts, usage: Mapping[str, Any], name: str, other_name: str) -> int:
    """Nova names its cache counts two ways (`...TokenCount` in InvokeModel, `...Tokens` like Converse)."""
    return counts.key(usage, name if usage.get(name) is not None else other_name)


def body_facts(body: Mapping[str, Any]) -> tuple[str | None, list[str] | None]:
    """The response id and finish reasons a model body states (any family)."""
    response_id = body.get("id")
    reasons: list[Any] = []
    for key in ("stop_reason", "stopReason"):
        if key in body:
            reasons.append(body[key])
    for item in body.get("results") or body.get("outputs") or body.get("choices") or ():
        if isinstance(item, Mapping):
            reasons.append(item.get("completionReason") or item.get("stop_reason") or item.get("finish_reason"))
    finish = [r for r in reasons if isinstance(r, str) and r]
    return (response_id if isinstance(response_id, str) else None), (finish or None)


def body_text(body: Mapping[str, Any]) -> str | None:
    """The generated text of a model body (any family), for content capture."""
    content = body.get("content")
    if isinstance(content, list):  # Anthropic
        return "".join(b.get("text", "") for b in content if isinstance(b, Mapping) and b.get("type") == "text")
    output = converse_output(body.get("output"))  # Nova
    if output:
        return output[0]["content"]
    if isinstance(body.get("generation"), str):  # Llama
        return body["generation"]
    for key, text_key in (("results", "outputText"), ("outputs", "text")):  # Titan, Mistral
        items = body.get(key)
        if isinstance(items, list):
            return "".join(i.get(text_key, "") for i in items if isinstance(i, Mapping))
    choices = body.get("choices")
    if isinstance(choices, list):  # OpenAI-style
        return "".join(str((c.get("message") or {}).get("content") or "") for c in choices if isinstance(c, Mapping))
    return None


def request_input(body: Mapping[str, Any]) -> Any:
    """What a model request body sends as input (messages, prompt, inputText), for content capture."""
    for key in ("messages", "prompt", "inputText", "texts"):
        if key in body:
            return body[key]
    return None


class StreamState:
    """What the chunks of an InvokeModelWithResponseStream said so far (any family); `update` takes one decoded
    chunk and returns True once the final chunk (with the invocation metrics) has been seen."""

    __slots__ = (
        "cache_read",
        "cache_write",
        "counts",
        "finish_reasons",
        "input",
        "metrics",
        "output",
        "response_id",
        "seen_usage",
        "texts",
    )

    def __init__(self) -> None:
        self.input = self.output = self.cache_read = self.cache_write = 0
        self.counts = TokenCounts()  # every chunk's counts pass through it; one bad count makes the usage malformed
        self.seen_usage = False
        self.metrics: Usage | None = None
        self.response_id: str | None = None
        self.finish_reasons: list[str] = []
        self.texts: list[str] | None = None  # set to a list to collect the generated text

    def update(self, chunk: Mapping[str, Any]) -> bool:
        kind = chunk.get("type")
        if kind == "message_start":  # Anthropic
            message = chunk.get("message")
            if isinstance(message, Mapping):
                self.response_id = message.get("id") if isinstance(message.get("id"), str) else self.response_id
                self._anthropic(message.get("usage"))
        elif kind == "message_delta":
            self._anthropic(chunk.get("usage"))
            self._reason((chunk.get("delta") or {}).get("stop_reason"))
        elif kind == "content_block_delta":
            self._text((chunk.get("delta") or {}).get("text"))
        else:
            self._other(chunk)
        metrics = metrics_usage(chunk.get(INVOCATION_METRICS))
        if metrics is not None:
            self.metrics = metrics
            return True
        return False

    def _anthropic(self, usage: Any) -> None:
        if not isinstance(usage, Mapping):
            return
        self.seen_usage = True
        counts = self.counts
        if "input_tokens" in usage:
            self.input = counts.key(usage, "input_tokens", required=True)
        if "output_tokens" in usage:
            self.output = counts.key(usage, "output_tokens", required=True)
        if "cache_read_input_tokens" in usage:
            self.cache_read = counts.key(usage, "cache_read_input_tokens")
        if "cache_creation_input_tokens" in usage:
            self.cache_write = counts.key(usage, "cache_creation_input_tokens")

    def _other(self, chunk: Mapping[str, Any]) -> None:
        counts = self.counts
        metadata = chunk.get("metadata")  # Nova
        if isinstance(metadata, Mapping) and isinstance(metadata.get("usage"), Mapping):
            usage = metadata["usage"]
            self.seen_usage = True
            self.input = counts.key(usage, "inputTokens", required=True)
            self.output = counts.key(usage, "outputTokens", required=True)
            self.cache_read = _nova_cache(counts, usage, "cacheReadInputTokenCount", "cacheReadInputTokens")
            self.cache_write = _nova_cache(counts, usage, "cacheWriteInputTokenCount", "cacheWriteInputTokens")
        stop = chunk.get("messageStop")
        if isinstance(stop, Mapping):
            self._reason(stop.get("stopReason"))
        delta = chunk.get("contentBlockDelta")
        if isinstance(delta, Mapping):
            self._text((delta.get("delta") or {}).get("text"))
        # Titan (input, then the output total); Llama (the prompt in the first chunk, a running output total). A
        # chunk may carry the key as null (Llama's later chunks): only a value is a count.
        for key, side in (
            ("inputTextTokenCount", "input"),
            ("totalOutputTextTokenCount", "output"),
            ("prompt_token_count", "input"),
            ("generation_token_count", "output"),
        ):
            if chunk.get(key) is not None:
                self.seen_usage = True
                setattr(self, side, counts.key(chunk, key))
        for key in ("completionReason", "stop_reason"):  # Titan, Llama
            self._reason(chunk.get(key))
        for key in ("outputText", "generation"):
            self._text(chunk.get(key))
        for item in chunk.get("outputs") or chunk.get("choices") or ():  # Mistral, OpenAI-style
            if isinstance(item, Mapping):
                self._reason(item.get("stop_reason") or item.get("finish_reason"))
                self._text(item.get("text") or (item.get("delta") or {}).get("content"))

    def _reason(self, reason: Any) -> None:
        if isinstance(reason, str) and reason:
            self.finish_reasons.append(reason)

    def _text(self, text: Any) -> None:
        if self.texts is not None and isinstance(text, str):
            self.texts.append(text)

    def usage(self) -> Usage | None:
        """The invocation metrics (Bedrock's own count), cache classes from the body when the metrics lack them;
        else the body's counts; None when no chunk said anything."""
        if self.counts.problem is not None:
            return Usage(malformed=self.counts.problem)
        metrics = self.metrics
        if metrics is not None:
            if metrics.malformed is not None:
                return metrics
            if not metrics.cache_read_input_tokens and not metrics.cache_creation_input_tokens:
                if self.cache_read or self.cache_write:
                    return bedrock_usage(metrics.input_tokens, metrics.output_tokens, self.cache_read, self.cache_write)
            return metrics
        if not self.seen_usage:
            return None
        return bedrock_usage(self.input, self.output, self.cache_read, self.cache_write)
