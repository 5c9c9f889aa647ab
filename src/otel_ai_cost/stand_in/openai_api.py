"""OpenAI answers: chat completions (JSON, SSE chunks), Responses (JSON, SSE events), embeddings, errors.

Shapes follow the OpenAI API as the `openai` SDK parses it (`openai/types/chat/chat_completion*.py`,
`openai/types/responses/*.py`, `openai/types/create_embedding_response.py`).
"""

from __future__ import annotations

import base64
import json
import math
import random
import secrets
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
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

SYSTEM_FINGERPRINT = "fp_5d1c7e3a9b"
REASONING_BY_EFFORT = {"none": 0, "minimal": 0, "low": 64, "medium": 192, "high": 512, "xhigh": 1024}
# OpenAI caches prompts of at least 1024 tokens, in 128-token increments.
CACHE_MIN_TOKENS = 1024
CACHE_INCREMENT = 128

_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (stand-in)."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
    ),
    403: ("permission_error", None, "You are not allowed to perform this request (stand-in)."),
    404: ("invalid_request_error", "unknown_url", "Unknown request URL (stand-in)."),
    409: ("invalid_request_error", "conflict", "The request conflicts with another request (stand-in)."),
    422: ("invalid_request_error", None, "Unprocessable request (stand-in)."),
    429: (
        "tokens",
        "rate_limit_exceeded",
        "Rate limit reached on tokens per min (TPM) (stand-in). Please try again in 1ms.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def _request_id() -> str:
    return f"req_{secrets.token_hex(16)}"


def base_headers() -> dict[str, str]:
    """Headers the OpenAI API sends on every answer."""
    return {
        "x-request-id": _request_id(),
        "openai-organization": "stand-in",
        "openai-processing-ms": "1",
        "openai-version": "2020-10-01",
    }


def error_body(status: int, scenario: Scenario | None = None, message: str | None = None) -> dict[str, Any]:
    """`{"error": {message, type, param, code}}` as OpenAI sends it."""
    kind, code, text = _ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None, ""))
    text = text or f"Error {status} (stand-in)."
    if scenario is not None:
        kind = scenario.error_type or kind
        code = scenario.error_code or code
        text = scenario.error_message or text
    return {"error": {"message": message or text, "type": kind, "param": None, "code": code}}


def error_answer(status: int, scenario: Scenario | None = None, message: str | None = None) -> Answer:
    headers = {**base_headers(), **retry_headers(scenario)}
    return Answer(status=status, headers=headers, body=error_body(status, scenario, message))


# --- Usage --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenAIUsage:
    """Usage in OpenAI's terms: `prompt_tokens` includes `cached_tokens`, `completion_tokens` reasoning."""

    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    extra: Mapping[str, Any] = field(default_factory=dict)  # added or overriding fields, e.g. xAI's cost ticks

    def chat(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
            **self.extra,
        }

    def responses(self) -> dict[str, Any]:
        return {
            "input_tokens": self.prompt_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens, "cache_write_tokens": 0},
            "output_tokens": self.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            **self.extra,
        }


def _prompt_segments(items: list[Any], tools: Any) -> list[int]:
    """Tokens of each prompt segment (one per message), the tool definitions counted in the first."""
    base = 3 + tools_tokens(tools)
    tokens = [3 + estimate_tokens(collect_text({"content": item})) for item in items] or [0]
    tokens[0] += base
    return tokens


def _cached_prefix(cache: PromptCache, model: str, items: list[Any], tools: Any, segments: list[int]) -> int:
    """Simulated automatic prompt caching: the longest message prefix already seen, if >= 1024 tokens."""
    cached = 0
    running = 0
    keys = []
    for count in range(1, len(items) + 1):
        running += segments[count - 1]
        key = digest("openai", model, tools, items[:count])
        keys.append(key)
        if cache.seen(key) and running >= CACHE_MIN_TOKENS:
            cached = running
    cache.add_all(keys)
    return cached // CACHE_INCREMENT * CACHE_INCREMENT


def _usage(
    scenario: Scenario,
    cache: PromptCache,
    *,
    model: str,
    items: list[Any],
    tools: Any,
    text: str,
    effort: Any,
) -> OpenAIUsage:
    segments = _prompt_segments(items, tools)
    default_prompt = sum(segments)
    default_cached = 0
    if scenario.cached_tokens is None:
        default_cached = min(_cached_prefix(cache, model, items, tools, segments), default_prompt)
    cached = scenario.cached_tokens if scenario.cached_tokens is not None else default_cached
    prompt = scenario.prompt_tokens if scenario.prompt_tokens is not None else max(default_prompt, cached)
    if scenario.reasoning_tokens is not None:
        reasoning = scenario.reasoning_tokens
    else:
        reasoning = REASONING_BY_EFFORT.get(str(effort), 0) if effort is not None else 0
    completion = scenario.completion_tokens
    if completion is None:
        completion = estimate_tokens(text) + reasoning
    return OpenAIUsage(prompt, cached, completion, reasoning, scenario.usage_extra)


def _service_tier(scenario: Scenario, body: Mapping[str, Any]) -> str:
    if scenario.service_tier is not None:
        return scenario.service_tier
    requested = body.get("service_tier")
    if requested in (None, "auto"):
        return "default"
    return "priority" if requested == "fast" else str(requested)


def _answer_text(scenario: Scenario, schema_holder: Any, question: str) -> list[str]:
    """The answer as deltas: the scenario's, an instance of a requested JSON schema, or the default."""
    deltas = scenario.deltas()
    if deltas is not None:
        return deltas
    if isinstance(schema_holder, Mapping):
        fmt_type = schema_holder.get("type")
        if fmt_type == "json_schema":
            schema = schema_holder.get("schema")
            if schema is None and isinstance(schema_holder.get("json_schema"), Mapping):
                schema = schema_holder["json_schema"].get("schema")
            return split_text(json.dumps(sample_from_schema(schema or {}), separators=(", ", ": ")))
        if fmt_type == "json_object":
            return split_text(json.dumps({"answer": default_text(question)}))
    return split_text(default_text(question))


def _new_id(prefix: str, length: int = 29) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


# --- Chat completions ---------------------------------------------------------------------------------------


def chat_completions(request: RecordedRequest, scenario: Scenario, cache: PromptCache) -> Answer:
    """`POST /v1/chat/completions`: a ChatCompletion, or with `stream: true` SSE chunks and `[DONE]`."""
    body: Mapping[str, Any] = request.body or {}
    messages = body.get("messages") or []
    model = scenario.model or str(body.get("model", "gpt-4o-mini"))
    deltas = _answer_text(scenario, body.get("response_format"), last_user_text(messages))
    text = "".join(deltas)
    usage = _usage(
        scenario,
        cache,
        model=str(body.get("model")),
        items=list(messages),
        tools=body.get("tools") or body.get("functions"),
        text=text,
        effort=body.get("reasoning_effort"),
    )
    finish = scenario.finish_reason or "stop"
    common = {
        "id": _new_id("chatcmpl-"),
        "created": int(time.time()),
        "model": model,
        "service_tier": _service_tier(scenario, body),
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    headers = {**base_headers(), **scenario.headers}
    if not body.get("stream"):
        message = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
        payload = {
            "id": common["id"],
            "object": "chat.completion",
            "created": common["created"],
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage.chat(),
            "service_tier": common["service_tier"],
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
        return Answer(headers=headers, body=payload)
    return Answer(
        headers={**headers, "content-type": "text/event-stream; charset=utf-8"},
        **_chat_stream(body, scenario, common, deltas, finish, usage),
    )


def _chat_stream(
    body: Mapping[str, Any],
    scenario: Scenario,
    common: dict[str, Any],
    deltas: list[str],
    finish: str,
    usage: OpenAIUsage,
) -> dict[str, Any]:
    options = body.get("stream_options") or {}
    include_usage = bool(options.get("include_usage"))
    obfuscate = options.get("include_obfuscation", True) is not False

    def chunk(choices: list[dict[str, Any]], usage_value: Any = None) -> SSEEvent:
        payload: dict[str, Any] = {
            "id": common["id"],
            "object": "chat.completion.chunk",
            "created": common["created"],
            "model": common["model"],
            "service_tier": common["service_tier"],
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
        }
        if include_usage:
            payload["usage"] = usage_value
        if obfuscate:
            payload["obfuscation"] = secrets.token_urlsafe(6)[:8]
        return sse_json(payload)

    def choice(delta: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]

    limit = scenario.stream_error_after
    sent = deltas if limit is None else deltas[:limit]
    events = [chunk(choice({"role": "assistant", "content": "", "refusal": None}))]
    events.extend(chunk(choice({"content": piece})) for piece in sent)
    if limit is None:
        events.append(chunk(choice({}, finish)))
        if include_usage:
            events.append(chunk([], usage.chat()))
        events.append(SSEEvent(data="[DONE]"))
        return {"events": events, "chunk_delay_s": scenario.chunk_delay_s}
    if scenario.stream_error_mode == "disconnect":
        return {"events": events, "cut": True, "chunk_delay_s": scenario.chunk_delay_s}
    events.append(sse_json(error_body(500, scenario)))
    return {"events": events, "chunk_delay_s": scenario.chunk_delay_s}


# --- Responses ----------------------------------------------------------------------------------------------


def _response_items(body: Mapping[str, Any]) -> list[Any]:
    items: list[Any] = []
    if body.get("instructions"):
        items.append(body["instructions"])
    value = body.get("input")
    if isinstance(value, list):
        items.extend(value)
    elif value is not None:
        items.append(value)
    return items


def _response_object(
    body: Mapping[str, Any],
    *,
    response_id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    service_tier: str,
    incomplete_reason: str | None = None,
) -> dict[str, Any]:
    text_config = body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": None,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": service_tier,
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": text_config,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def responses(request: RecordedRequest, scenario: Scenario, cache: PromptCache) -> Answer:
    """`POST /v1/responses`: a Response, or with `stream: true` the SSE event sequence ending in
    `response.completed` (or `response.incomplete`) whose `response` carries the usage."""
    body: Mapping[str, Any] = request.body or {}
    items = _response_items(body)
    model = scenario.model or str(body.get("model", "gpt-4o-mini"))
    text_config = body.get("text") or {}
    deltas = _answer_text(scenario, text_config.get("format"), last_user_text(body.get("input")))
    text = "".join(deltas)
    reasoning_cfg = body.get("reasoning") or {}
    usage = _usage(
        scenario,
        cache,
        model=str(body.get("model")),
        items=items,
        tools=body.get("tools"),
        text=text,
        effort=reasoning_cfg.get("effort") if isinstance(reasoning_cfg, Mapping) else None,
    )
    incomplete = scenario.finish_reason in ("length", "max_output_tokens")
    final_status = "incomplete" if incomplete else "completed"
    response_id = f"resp_{secrets.token_hex(24)}"
    message_id = f"msg_{secrets.token_hex(24)}"
    reasoning_item = (
        {"id": f"rs_{secrets.token_hex(24)}", "type": "reasoning", "summary": []} if usage.reasoning_tokens else None
    )

    def message(status: str, content_text: str | None) -> dict[str, Any]:
        content = [] if content_text is None else [_output_text(content_text)]
        return {
            "id": message_id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def response(status: str, output: list[dict[str, Any]], with_usage: bool) -> dict[str, Any]:
        return _response_object(
            body,
            response_id=response_id,
            created_at=created_at,
            model=model,
            status=status,
            output=output,
            usage=usage.responses() if with_usage else None,
            service_tier=_service_tier(scenario, body),
            incomplete_reason="max_output_tokens" if incomplete and status == "incomplete" else None,
        )

    created_at = int(time.time())
    final_output = [*([reasoning_item] if reasoning_item else []), message(final_status, text)]
    headers = {**base_headers(), **scenario.headers}
    if not body.get("stream"):
        return Answer(headers=headers, body=response(final_status, final_output, True))

    stream = _ResponseStream()
    stream.add("response.created", response=response("in_progress", [], False))
    stream.add("response.in_progress", response=response("in_progress", [], False))
    index = 0
    if reasoning_item:
        stream.add("response.output_item.added", output_index=0, item=reasoning_item)
        stream.add("response.output_item.done", output_index=0, item=reasoning_item)
        index = 1
    stream.add("response.output_item.added", output_index=index, item=message("in_progress", None))
    part_ids = {"item_id": message_id, "output_index": index, "content_index": 0}
    stream.add("response.content_part.added", **part_ids, part=_output_text(""))
    limit = scenario.stream_error_after
    for piece in deltas if limit is None else deltas[:limit]:
        stream.add("response.output_text.delta", **part_ids, delta=piece, logprobs=[])
    if limit is not None:
        if scenario.stream_error_mode == "disconnect":
            return Answer(headers=_sse(headers), events=stream.events, cut=True, chunk_delay_s=scenario.chunk_delay_s)
        error = error_body(500, scenario)["error"]
        stream.add("error", code=error["code"], message=error["message"], param=None)
        return Answer(headers=_sse(headers), events=stream.events, chunk_delay_s=scenario.chunk_delay_s)
    stream.add("response.output_text.done", **part_ids, text=text, logprobs=[])
    stream.add("response.content_part.done", **part_ids, part=_output_text(text))
    stream.add("response.output_item.done", output_index=index, item=message(final_status, text))
    stream.add(f"response.{final_status}", response=response(final_status, final_output, True))
    return Answer(headers=_sse(headers), events=stream.events, chunk_delay_s=scenario.chunk_delay_s)


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _sse(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "content-type": "text/event-stream; charset=utf-8"}


class _ResponseStream:
    """Builds `event: <type>` / `data: {..., "sequence_number": n}` events."""

    def __init__(self) -> None:
        self.events: list[SSEEvent] = []

    def add(self, kind: str, **fields: Any) -> None:
        payload = {"type": kind, "sequence_number": len(self.events), **fields}
        self.events.append(sse_json(payload, event=kind))


# --- Embeddings ---------------------------------------------------------------------------------------------


def _embedding_inputs(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [value]
    return list(value) if isinstance(value, list) else [value]


def _input_tokens(value: Any) -> int:
    if isinstance(value, list):
        return len(value)
    return estimate_tokens(str(value))


def _vector(value: Any, dimensions: int) -> list[float]:
    rng = random.Random(digest("embedding", value))
    raw = [rng.uniform(-1.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def embeddings(request: RecordedRequest, scenario: Scenario, cache: PromptCache) -> Answer:
    """`POST /v1/embeddings`: deterministic unit vectors (floats, or base64 float32 when asked)."""
    del cache
    body: Mapping[str, Any] = request.body or {}
    model = scenario.model or str(body.get("model", "text-embedding-3-small"))
    inputs = _embedding_inputs(body.get("input", ""))
    default_dims = 3072 if "large" in str(body.get("model")) else 1536
    dimensions = int(body.get("dimensions") or default_dims)
    data = []
    for index, value in enumerate(inputs):
        vector = _vector(value, dimensions)
        encoded: Any = vector
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    prompt = scenario.prompt_tokens
    if prompt is None:
        prompt = sum(_input_tokens(v) for v in inputs)
    payload = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    }
    return Answer(headers={**base_headers(), **scenario.headers}, body=payload)


# --- Images and audio ----------------------------------------------------------------------------------------

# A 1x1 transparent PNG: the stand-in's every generated image.
_PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def images(request: RecordedRequest, scenario: Scenario, cache: PromptCache) -> Answer:
    """`POST /v1/images/generations`: `n` images; GPT Image models report usage (`prompt_tokens` -> input,
    `completion_tokens` -> output image tokens; `usage_extra` adds or overrides fields such as
    `input_tokens_details`); other providers' image models (xAI) report just `usage_extra`; DALL-E models report
    none."""
    del cache
    body: Mapping[str, Any] = request.body or {}
    model = str(body.get("model") or "dall-e-2")
    payload: dict[str, Any] = {
        "created": int(time.time()),
        "data": [{"b64_json": _PIXEL_PNG} for _ in range(int(body.get("n") or 1))],
    }
    if model.startswith("gpt-image") or scenario.prompt_tokens is not None:
        prompt = scenario.prompt_tokens if scenario.prompt_tokens is not None else estimate_tokens(str(body))
        output = scenario.completion_tokens if scenario.completion_tokens is not None else 1056
        payload["usage"] = {
            "input_tokens": prompt,
            "input_tokens_details": {"text_tokens": prompt, "image_tokens": 0},
            "output_tokens": output,
            "total_tokens": prompt + output,
            **scenario.usage_extra,
        }
    elif scenario.usage_extra:
        payload["usage"] = dict(scenario.usage_extra)
    return Answer(headers={**base_headers(), **scenario.headers}, body=payload)


def transcriptions(request: RecordedRequest, scenario: Scenario, cache: PromptCache) -> Answer:
    """`POST /v1/audio/transcriptions` (multipart, not parsed): token usage (`prompt_tokens` audio input tokens,
    `completion_tokens` output), or whisper-1's duration usage when `usage_extra` says `{"type": "duration"}`."""
    del cache
    text = scenario.text if isinstance(scenario.text, str) else "Two coffees and a bagel."
    prompt = scenario.prompt_tokens if scenario.prompt_tokens is not None else 120
    output = scenario.completion_tokens if scenario.completion_tokens is not None else estimate_tokens(text)
    usage: dict[str, Any] = {
        "type": "tokens",
        "input_tokens": prompt,
        "input_token_details": {"text_tokens": 0, "audio_tokens": prompt},
        "output_tokens": output,
        "total_tokens": prompt + output,
    }
    if scenario.usage_extra.get("type") == "duration":
        usage = dict(scenario.usage_extra)
    return Answer(headers={**base_headers(), **scenario.headers}, body={"text": text, "usage": usage})
