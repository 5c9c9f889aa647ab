"""Pure functions from OpenAI SDK objects to facts: usage, model, id, finish reasons, service tier.

OpenAI's `prompt_tokens` (chat) and `input_tokens` (responses) already include cached tokens, and
`completion_tokens`/`output_tokens` already include reasoning tokens: they map onto the semconv totals as they are,
and the cached/reasoning figures are subsets. OpenAI charges nothing for cache writes.
"""

from __future__ import annotations

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
