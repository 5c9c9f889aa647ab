"""Anthropic answers: Messages (JSON and SSE events, also for `client.beta.messages`), count_tokens, errors.

Shapes follow the Anthropic API as the `anthropic` SDK parses it (`anthropic/types/message.py`, `usage.py`,
`cache_creation.py`, `raw_message_*_event.py`, `message_tokens_count.py`). `usage.input_tokens` EXCLUDES cache
reads and writes; in a stream, `message_start` carries the input side, `message_delta` the cumulative totals.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .scenario import (
    Answer,
    PromptCache,
    RecordedRequest,
    Scenario,
    SSEEvent,
    collect_text,
    default_text,
    digest,
    estimate_tokens,
    last_user_text,
    retry_headers,
    sample_from_schema,
    split_text,
    sse_json,
    tools_tokens,
)

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request (stand-in)."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found (stand-in)."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit (stand-in)."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timeout (stand-in)."),
    529: ("overloaded_error", "Overloaded"),
}


def _base62(length: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def base_headers() -> dict[str, str]:
    """Headers the Anthropic API sends on every answer."""
    return {"request-id": f"req_011C{_base62(20)}", "anthropic-organization-id": "00000000-stand-in"}


def error_body(status: int, scenario: Scenario | None = None, message: str | None = None) -> dict[str, Any]:
    """`{"type": "error", "error": {"type", "message"}, "request_id"}` as Anthropic sends it."""
    kind, text = _ERRORS.get(status, ("api_error" if status >= 500 else "invalid_request_error", ""))
    text = text or f"Error {status} (stand-in)."
    error: dict[str, Any] = {"type": kind, "message": text}
    if scenario is not None:
        error["type"] = scenario.error_type or kind
        error["message"] = scenario.error_message or text
        if scenario.error_code:
            error["details"] = {"error_code": scenario.error_code}
    if message:
        error["message"] = message
    return {"type": "error", "error": error, "request_id": f"req_011C{_base62(20)}"}


def error_answer(status: int, scenario: Scenario | None = None, message: str | None = None) -> Answer:
    headers = {**base_headers(), **retry_headers(scenario)}
    return Answer(status=status, headers=headers, body=error_body(status, scenario, message))


# --- Usage --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnthropicUsage:
    """Usage in Anthropic's terms: `input_tokens` excludes cache reads and writes."""

    input_tokens: int
    cache_read_input_tokens: int
    cache_write_5m_input_tokens: int
    cache_write_1h_input_tokens: int
    output_tokens: int
    service_tier: str
    web_search_requests: int | None = None
    thinking_tokens: int | None = None

    @property
    def cache_creation_input_tokens(self) -> int:
        return self.cache_write_5m_input_tokens + self.cache_write_1h_input_tokens

    def _extras(self) -> dict[str, Any]:
        extras: dict[str, Any] = {}
        if self.web_search_requests is not None:
            extras["server_tool_use"] = {
                "web_search_requests": self.web_search_requests,
                "web_fetch_requests": 0,
            }
        if self.thinking_tokens is not None:
            extras["output_tokens_details"] = {"thinking_tokens": self.thinking_tokens}
        return extras

    def message(self) -> dict[str, Any]:
        """The `usage` of a Message."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_write_5m_input_tokens,
                "ephemeral_1h_input_tokens": self.cache_write_1h_input_tokens,
            },
            "output_tokens": self.output_tokens,
            "service_tier": self.service_tier,
            **self._extras(),
        }

    def message_start(self) -> dict[str, Any]:
        """`message_start` usage: the input side in full, output only the first token or so."""
        return {**self.message(), "output_tokens": min(1, self.output_tokens)}

    def message_delta(self) -> dict[str, Any]:
        """`message_delta` usage: cumulative totals."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": self.output_tokens,
            **self._extras(),
        }


@dataclass(frozen=True)
class _Block:
    """One prompt block in cache-prefix order (tools, system, messages)."""

    value: Any
    tokens: int
    ttl: str | None  # "5m"/"1h" when the block carries a cache_control breakpoint


def _blocks(body: Mapping[str, Any]) -> list[_Block]:
    blocks: list[_Block] = []

    def add(value: Any, tokens: int) -> None:
        control = value.get("cache_control") if isinstance(value, Mapping) else None
        ttl = str(control.get("ttl", "5m")) if isinstance(control, Mapping) else None
        blocks.append(_Block(value, tokens, ttl))

    for tool in body.get("tools") or []:
        add(tool, tools_tokens([tool]))
    system = body.get("system")
    for item in [system] if isinstance(system, str) else system or []:
        add(item, estimate_tokens(collect_text({"content": item})))
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else message
        parts = [content] if isinstance(content, str) else content or []
        for index, part in enumerate(parts):
            overhead = 3 if index == 0 else 0
            add(part, overhead + estimate_tokens(collect_text({"content": part})))
    control = body.get("cache_control")
    if isinstance(control, Mapping) and blocks:
        # Top-level (automatic) caching: a breakpoint on the last block.
        last = blocks[-1]
        blocks[-1] = _Block(last.value, last.tokens, str(control.get("ttl", "5m")))
    return blocks


def prompt_tokens(body: Mapping[str, Any]) -> int:
    """The default total input of a request (what count_tokens answers)."""
    return 3 + sum(block.tokens for block in _blocks(body))


def _cache_split(body: Mapping[str, Any], cache: PromptCache) -> tuple[int, int, str]:
    """Simulated prompt caching: (read, write, ttl) from the request's `cache_control` breakpoints.

    The longest breakpoint prefix seen before is read; the rest up to the last breakpoint is written.
    """
    blocks = _blocks(body)
    model = str(body.get("model"))
    read = total = 0
    last_prefix = 0
    ttl = "5m"
    for index, block in enumerate(blocks):
        total += block.tokens
        if block.ttl is None:
            continue
        key = digest("anthropic", model, [b.value for b in blocks[: index + 1]])
        if cache.seen(key):
            read = total
        cache.add(key)
        last_prefix, ttl = total, block.ttl
    return read, max(0, last_prefix - read), ttl


def _usage(scenario: Scenario, body: Mapping[str, Any], cache: PromptCache, text: str) -> AnthropicUsage:
    total = prompt_tokens(body)
    read, write, ttl = _cache_split(body, cache)
    read = scenario.cache_read_input_tokens if scenario.cache_read_input_tokens is not None else read
    write_5m = scenario.cache_write_5m_input_tokens
    write_1h = scenario.cache_write_1h_input_tokens
    if write_5m is None:
        write_5m = write if ttl != "1h" else 0
    if write_1h is None:
        write_1h = write if ttl == "1h" else 0
    uncached = scenario.input_tokens
    if uncached is None:
        uncached = max(0, total - read - write_5m - write_1h)
    output = scenario.output_tokens
    if output is None:
        output = estimate_tokens(text) + (scenario.thinking_tokens or 0)
    tier = scenario.service_tier or "standard"
    return AnthropicUsage(
        uncached,
        read,
        write_5m,
        write_1h,
        output,
        tier,
        scenario.web_search_requests,
        scenario.thinking_tokens,
    )


def _answer_text(scenario: Scenario, body: Mapping[str, Any]) -> list[str]:
    deltas = scenario.deltas()
    if deltas is not None:
        return deltas
    config = body.get("output_config") or {}
    fmt = config.get("format") if isinstance(config, Mapping) else None
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        return split_text(json.dumps(sample_from_schema(fmt.get("schema") or {})))
    return split_text(default_text(last_user_text(body.get("messages"))))


# --- Messages -----------------------------------------------------------------------------------------------


def messages(request: RecordedRequest, scenario: Scenario, cache: PromptCache) -> Answer:
    """`POST /v1/messages` (also `?beta=true`): a Message, or with `stream: true` the raw event stream."""
    body: Mapping[str, Any] = request.body or {}
    deltas = _answer_text(scenario, body)
    text = "".join(deltas)
    usage = _usage(scenario, body, cache, text)
    stop_reason = scenario.finish_reason or "end_turn"
    message = {
        "id": f"msg_01{_base62(22)}",
        "type": "message",
        "role": "assistant",
        "model": scenario.model or str(body.get("model", "claude-sonnet-4-5")),
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage.message(),
    }
    headers = {**base_headers(), **scenario.headers}
    if not body.get("stream"):
        return Answer(headers=headers, body=message)

    events = [
        sse_json(
            {
                "type": "message_start",
                "message": {**message, "content": [], "stop_reason": None, "usage": usage.message_start()},
            },
            "message_start",
        ),
        sse_json(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        ),
        SSEEvent(data='{"type": "ping"}', event="ping"),
    ]
    limit = scenario.stream_error_after
    for piece in deltas if limit is None else deltas[:limit]:
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        events.append(sse_json(delta, "content_block_delta"))
    headers["content-type"] = "text/event-stream; charset=utf-8"
    if limit is not None:
        if scenario.stream_error_mode == "disconnect":
            return Answer(headers=headers, events=events, cut=True, chunk_delay_s=scenario.chunk_delay_s)
        error = error_body(529, scenario)
        events.append(sse_json(error, "error"))
        return Answer(headers=headers, events=events, chunk_delay_s=scenario.chunk_delay_s)
    events += [
        sse_json({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse_json(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": usage.message_delta(),
            },
            "message_delta",
        ),
        sse_json({"type": "message_stop"}, "message_stop"),
    ]
    return Answer(headers=headers, events=events, chunk_delay_s=scenario.chunk_delay_s)


def count_tokens(request: RecordedRequest, scenario: Scenario, cache: PromptCache) -> Answer:
    """`POST /v1/messages/count_tokens`: `{"input_tokens": N}` (the scenario's `input_tokens`, if set)."""
    del cache
    body: Mapping[str, Any] = request.body or {}
    count = scenario.input_tokens if scenario.input_tokens is not None else prompt_tokens(body)
    return Answer(headers={**base_headers(), **scenario.headers}, body={"input_tokens": count})
