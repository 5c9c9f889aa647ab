"""Pure functions from OpenAI SDK objects to facts: usage, model, id, finish reasons, service tier.

OpenAI's `prompt_tokens` (chat) and `input_tokens` (responses) already include cached tokens, and
`completion_tokens`/`output_tokens` already include reasoning tokens: they map onto the semconv totals as they are,
and the cached/reasoning figures are subsets.

Cache writes (`prompt_tokens_details.cache_write_tokens`, Responses `input_tokens_details.cache_write_tokens`,
reported by newer models) are, like `cached_tokens`, a subset of the prompt total: the SDK documents them as "prompt
tokens written to cache", and genai-prices' OpenAI extractors map `prompt_tokens` to the input total and subtract
both cache classes from it. They become `gen_ai.usage.cache_creation.input_tokens`, in our default-TTL
(`cache_write_5m`) class: OpenAI's own retentions (30 minutes, 12 hours) have no separate price in the price data,
whose `cache_write_mtok` rate both our cache-write classes take. A model whose price has no cache-write rate bills
them at its input rate, as genai-prices does (and as OpenAI billed them before it priced cache writes), never $0.
Cache reads and writes together beyond the prompt total are malformed usage (the call is unpriced).

Every token count is read through `TokenCounts` (pricing/usage.py): a count that is null where the API always
sends one, a string, float, bool, list, negative or absurd number makes the usage malformed, never a priced zero.

Some OpenAI-compatible providers also say what the call cost (`provider_cost`): xAI in integer ticks
(`usage.cost_in_usd_ticks`, 10^10 ticks to the dollar), Perplexity as a breakdown (`usage.cost.total_cost`,
request fee included), OpenRouter as a number of credits (`usage.cost`, USD). JSON numbers (costs, whisper-1's
seconds of audio) reach us as floats; their shortest repr is the decimal the provider sent, which is what
`Decimal(repr(x))` reads.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

from otel_ai_cost.ledger.limits import MAX_AMOUNT_USD
from otel_ai_cost.pricing.usage import TokenCounts, Usage


def chat_usage(usage: Any) -> Usage | None:
    """From a `CompletionUsage` (chat completions, final stream chunk)."""
    if usage is None:
        return None
    counts = TokenCounts()
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    prompt = counts.attr(usage, "prompt_tokens", required=True)
    cached = counts.attr(prompt_details, "cached_tokens")
    written = counts.attr(prompt_details, "cache_write_tokens")
    completion = counts.attr(usage, "completion_tokens", required=True)
    reasoning = counts.attr(completion_details, "reasoning_tokens")
    counts.within("prompt_tokens", prompt, "cached_tokens + cache_write_tokens", cached + written)
    counts.within("completion_tokens", completion, "reasoning_tokens", reasoning)
    return counts.usage(
        input_tokens=prompt,
        output_tokens=completion,
        cache_read_input_tokens=cached,
        cache_write_5m_input_tokens=written,
        reasoning_output_tokens=reasoning,
        audio_input_tokens=counts.attr(prompt_details, "audio_tokens"),
        audio_output_tokens=counts.attr(completion_details, "audio_tokens"),
    )


def responses_usage(usage: Any, output: Any = None) -> Usage | None:
    """From a `ResponseUsage`; web search tool calls are counted from the response's output items."""
    if usage is None:
        return None
    counts = TokenCounts()
    input_details = getattr(usage, "input_tokens_details", None)
    output_details = getattr(usage, "output_tokens_details", None)
    prompt = counts.attr(usage, "input_tokens", required=True)
    cached = counts.attr(input_details, "cached_tokens")
    written = counts.attr(input_details, "cache_write_tokens")
    output_total = counts.attr(usage, "output_tokens", required=True)
    reasoning = counts.attr(output_details, "reasoning_tokens")
    counts.within("input_tokens", prompt, "cached_tokens + cache_write_tokens", cached + written)
    counts.within("output_tokens", output_total, "reasoning_tokens", reasoning)
    return counts.usage(
        input_tokens=prompt,
        output_tokens=output_total,
        cache_read_input_tokens=cached,
        cache_write_5m_input_tokens=written,
        reasoning_output_tokens=reasoning,
        web_search_requests=sum(1 for item in output or () if getattr(item, "type", None) == "web_search_call"),
    )


def image_usage(usage: Any) -> Usage | None:
    """From an `ImagesResponse.usage` (GPT Image models; DALL-E reports none). Output without a breakdown is the
    image itself."""
    if usage is None:
        return None
    counts = TokenCounts()
    input_details = getattr(usage, "input_tokens_details", None)
    output_details = getattr(usage, "output_tokens_details", None)
    # Image models billed per image (xAI) report no tokens at all; once one total is there, both must be.
    reported = getattr(usage, "input_tokens", None) is not None or getattr(usage, "output_tokens", None) is not None
    output = counts.attr(usage, "output_tokens", required=reported)
    image_output = counts.attr(output_details, "image_tokens") if output_details is not None else output
    return counts.usage(
        input_tokens=counts.attr(usage, "input_tokens", required=reported),
        output_tokens=output,
        image_input_tokens=counts.attr(input_details, "image_tokens"),
        image_output_tokens=image_output,
    )


def transcription_usage(usage: Any) -> Usage | None:
    """From a `Transcription.usage`: tokens (gpt-4o-transcribe, `{"type": "tokens"}`) or seconds of audio
    (whisper-1, `{"type": "duration", "seconds": 3.2}`)."""
    kind = getattr(usage, "type", None)
    if kind == "duration":
        raw = getattr(usage, "seconds", None)
        seconds = _decimal(raw)
        if seconds is None:
            return None if raw is None else Usage(malformed=f"seconds={raw!r:.40}")
        return Usage(input_audio_seconds=seconds)
    if kind != "tokens":
        return None
    counts = TokenCounts()
    details = getattr(usage, "input_token_details", None)
    return counts.usage(
        input_tokens=counts.attr(usage, "input_tokens", required=True),
        output_tokens=counts.attr(usage, "output_tokens", required=True),
        audio_input_tokens=counts.attr(details, "audio_tokens"),
    )


def embeddings_usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    counts = TokenCounts()
    return counts.usage(input_tokens=counts.attr(usage, "prompt_tokens", required=True))


def chat_finish_reasons(choices: Any) -> list[str]:
    return [c.finish_reason for c in choices or () if getattr(c, "finish_reason", None)]


def chat_output_messages(choices: Any) -> list[dict[str, Any]]:
    return [
        {"role": "assistant", "content": getattr(getattr(c, "message", None), "content", None)} for c in choices or ()
    ]


def responses_finish_reasons(response: Any) -> list[str]:
    status = getattr(response, "status", None)
    if status == "incomplete":
        reason = getattr(getattr(response, "incomplete_details", None), "reason", None)
        return [reason or "incomplete"]
    return [status] if isinstance(status, str) else []


def service_tier(obj: Any) -> str | None:
    tier = getattr(obj, "service_tier", None)
    return tier if isinstance(tier, str) else None


def provider_cost(provider: str, usage: Any) -> Decimal | None:
    """The cost the provider reported for the call, in USD, where the provider documents one. A figure beyond what
    one call can cost (the ledger's per-record bound) is not believed: the catalog prices the call instead."""
    cost = _reported_cost(provider, usage)
    return cost if cost is None or cost <= MAX_AMOUNT_USD else None


def _reported_cost(provider: str, usage: Any) -> Decimal | None:
    if usage is None:
        return None
    if provider == "x_ai":
        ticks = getattr(usage, "cost_in_usd_ticks", None)
        if isinstance(ticks, int) and not isinstance(ticks, bool) and ticks >= 0:
            return Decimal(ticks).scaleb(-10)
        return None
    if provider == "perplexity":
        cost = getattr(usage, "cost", None)
        return _decimal(cost.get("total_cost") if isinstance(cost, dict) else getattr(cost, "total_cost", None))
    if provider == "openrouter":
        return _decimal(getattr(usage, "cost", None))
    return None


def _decimal(value: Any) -> Decimal | None:
    """A non-negative finite JSON number (or numeric string) as the exact decimal that was sent."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = repr(value)
    if isinstance(value, int | str):
        try:
            amount = Decimal(value)
        except InvalidOperation:
            return None
        return amount if amount.is_finite() and amount >= 0 else None
    return None
