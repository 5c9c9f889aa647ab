"""Pure functions from OpenAI SDK objects to facts: usage, model, id, finish reasons, service tier.

OpenAI's `prompt_tokens` (chat) and `input_tokens` (responses) already include cached tokens, and
`completion_tokens`/`output_tokens` already include reasoning tokens: they map onto the semconv totals as they are,
and the cached/reasoning figures are subsets. OpenAI charges nothing for cache writes.

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

from otel_ai_cost.pricing.usage import Usage


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def chat_usage(usage: Any) -> Usage | None:
    """From a `CompletionUsage` (chat completions, final stream chunk)."""
    if usage is None:
        return None
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return Usage(
        input_tokens=_int(getattr(usage, "prompt_tokens", 0)),
        output_tokens=_int(getattr(usage, "completion_tokens", 0)),
        cache_read_input_tokens=_int(getattr(prompt_details, "cached_tokens", 0)),
        reasoning_output_tokens=_int(getattr(completion_details, "reasoning_tokens", 0)),
        audio_input_tokens=_int(getattr(prompt_details, "audio_tokens", 0)),
        audio_output_tokens=_int(getattr(completion_details, "audio_tokens", 0)),
    )


def responses_usage(usage: Any, output: Any = None) -> Usage | None:
    """From a `ResponseUsage`; web search tool calls are counted from the response's output items."""
    if usage is None:
        return None
    input_details = getattr(usage, "input_tokens_details", None)
    output_details = getattr(usage, "output_tokens_details", None)
    return Usage(
        input_tokens=_int(getattr(usage, "input_tokens", 0)),
        output_tokens=_int(getattr(usage, "output_tokens", 0)),
        cache_read_input_tokens=_int(getattr(input_details, "cached_tokens", 0)),
        reasoning_output_tokens=_int(getattr(output_details, "reasoning_tokens", 0)),
        web_search_requests=sum(1 for item in output or () if getattr(item, "type", None) == "web_search_call"),
    )


def image_usage(usage: Any) -> Usage | None:
    """From an `ImagesResponse.usage` (GPT Image models; DALL-E reports none). Output without a breakdown is the
    image itself."""
    if usage is None:
        return None
    input_details = getattr(usage, "input_tokens_details", None)
    output_details = getattr(usage, "output_tokens_details", None)
    output = _int(getattr(usage, "output_tokens", 0))
    image_output = _int(getattr(output_details, "image_tokens", 0)) if output_details is not None else output
    return Usage(
        input_tokens=_int(getattr(usage, "input_tokens", 0)),
        output_tokens=output,
        image_input_tokens=_int(getattr(input_details, "image_tokens", 0)),
        image_output_tokens=image_output,
    )


def transcription_usage(usage: Any) -> Usage | None:
    """From a `Transcription.usage`: tokens (gpt-4o-transcribe, `{"type": "tokens"}`) or seconds of audio
    (whisper-1, `{"type": "duration", "seconds": 3.2}`)."""
    kind = getattr(usage, "type", None)
    if kind == "duration":
        seconds = _decimal(getattr(usage, "seconds", None))
        return None if seconds is None else Usage(input_audio_seconds=seconds)
    if kind != "tokens":
        return None
    details = getattr(usage, "input_token_details", None)
    return Usage(
        input_tokens=_int(getattr(usage, "input_tokens", 0)),
        output_tokens=_int(getattr(usage, "output_tokens", 0)),
        audio_input_tokens=_int(getattr(details, "audio_tokens", 0)),
    )


def embeddings_usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    return Usage(input_tokens=_int(getattr(usage, "prompt_tokens", 0)))


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
    """The cost the provider reported for the call, in USD, where the provider documents one."""
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
