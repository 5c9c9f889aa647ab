"""Pure functions from Anthropic SDK objects to facts.

Anthropic's `input_tokens` EXCLUDES cache reads and cache writes, so the semconv input total is
`input_tokens + cache_read_input_tokens + cache_creation_input_tokens`, while pricing charges each class at its own
rate. Cache writes are split by TTL (`cache_creation.ephemeral_5m_input_tokens` / `_1h_`); a response without the
split is all 5-minute writes, the API's default TTL. `output_tokens` includes thinking tokens.
"""

from __future__ import annotations

from typing import Any

from otel_ai_cost.pricing.usage import TokenCounts, Usage


def message_usage(usage: Any) -> Usage | None:
    """From a `Usage` (a Message) or the merged usage of a stream. Counts are read through `TokenCounts`: the
    totals (`input_tokens`, `output_tokens`) are required, the cache counts optional (null: none)."""
    if usage is None:
        return None
    counts = TokenCounts()
    uncached = counts.attr(usage, "input_tokens", required=True)
    cache_read = counts.attr(usage, "cache_read_input_tokens")
    cache_write = counts.attr(usage, "cache_creation_input_tokens")
    split = getattr(usage, "cache_creation", None)
    write_1h = counts.attr(split, "ephemeral_1h_input_tokens")
    write_5m = counts.attr(split, "ephemeral_5m_input_tokens")
    # Whatever the split does not account for was written with the default 5-minute TTL.
    write_5m += max(0, cache_write - write_5m - write_1h)
    output = counts.attr(usage, "output_tokens", required=True)
    thinking = counts.attr(getattr(usage, "output_tokens_details", None), "thinking_tokens")
    counts.within("output_tokens", output, "thinking_tokens", thinking)
    return counts.usage(
        input_tokens=uncached + cache_read + write_5m + write_1h,
        output_tokens=output,
        cache_read_input_tokens=cache_read,
        cache_write_5m_input_tokens=write_5m,
        cache_write_1h_input_tokens=write_1h,
        reasoning_output_tokens=thinking,
        web_search_requests=counts.attr(getattr(usage, "server_tool_use", None), "web_search_requests"),
    )


class StreamUsage:
    """Usage of a streamed message: `message_start` carries the input side, each `message_delta` the cumulative
    totals so far (any field it sets replaces the earlier value)."""

    __slots__ = ("fields",)

    _FIELDS = (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "cache_creation",
        "output_tokens_details",
        "server_tool_use",
        "service_tier",
    )

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}

    def update(self, usage: Any) -> None:
        for name in self._FIELDS:
            value = getattr(usage, name, None)
            if value is not None:
                self.fields[name] = value

    def __getattr__(self, name: str) -> Any:
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None


def service_tier(usage: Any) -> str | None:
    tier = getattr(usage, "service_tier", None)
    return tier if isinstance(tier, str) else None


def output_messages(content: Any) -> list[dict[str, Any]]:
    texts = [getattr(block, "text", None) for block in content or () if getattr(block, "type", None) == "text"]
    return [{"role": "assistant", "content": "".join(t for t in texts if t)}]
