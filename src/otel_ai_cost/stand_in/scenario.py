"""The scenario model: what a test asks the stand-in to answer, what was asked, and what gets sent back.

A `Scenario` is one scripted answer. Usage numbers are given in the PROVIDER's own terms, so a test reads like
the provider's documentation:

* OpenAI endpoints (chat completions, responses, embeddings) read `prompt_tokens` (INCLUDES cached tokens),
  `cached_tokens`, `completion_tokens` (INCLUDES reasoning tokens) and `reasoning_tokens`. The Responses API
  reports them as `input_tokens` / `output_tokens`; the stand-in maps them.
* Anthropic endpoints (messages, count_tokens) read `input_tokens` (EXCLUDES cache reads and writes),
  `cache_read_input_tokens`, `cache_write_5m_input_tokens`, `cache_write_1h_input_tokens`, `output_tokens`,
  `web_search_requests` and `thinking_tokens`.

Every field left `None` takes the value of the default answer, which is computed deterministically from the
request (see `estimate_tokens`). A scenario that sets usage fields of one provider is refused by the other
provider's endpoints (answered with a 400 naming the mistake), and one that mixes both raises `ValueError`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

OPENAI_USAGE_FIELDS = ("prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens")
ANTHROPIC_USAGE_FIELDS = (
    "input_tokens",
    "cache_read_input_tokens",
    "cache_write_5m_input_tokens",
    "cache_write_1h_input_tokens",
    "output_tokens",
    "web_search_requests",
    "thinking_tokens",
)

Provider = Literal["openai", "anthropic"]


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One scripted answer of the stand-in server. All fields are optional.

    Content:
        model: the response's model id (default: the requested model, echoed).
        text: the answer's text. A `str` is streamed split into word-sized deltas; a `list[str]` gives the
            exact deltas (the non-streamed text is their concatenation). Default: a deterministic sentence
            built from the last user message, or, when the request asks for a JSON schema (`response_format`,
            `text.format`, `output_config.format`), a JSON instance of that schema.
        finish_reason: in the provider's terms: OpenAI `stop`/`length`/`content_filter`, Anthropic
            `end_turn`/`max_tokens`/`stop_sequence`/... (Responses: `length` makes the response `incomplete`).
        service_tier: the tier reported back (OpenAI response `service_tier`, Anthropic `usage.service_tier`).
            Default: OpenAI echoes the requested tier (`auto`/absent -> `default`, `fast` -> `priority`);
            Anthropic `standard`.

    OpenAI usage (chat completions, responses, embeddings):
        prompt_tokens: input tokens, INCLUDING `cached_tokens` (Responses: `input_tokens`).
        cached_tokens: cache reads (`prompt_tokens_details.cached_tokens`).
        completion_tokens: output tokens, INCLUDING `reasoning_tokens` (Responses: `output_tokens`).
        reasoning_tokens: `completion_tokens_details.reasoning_tokens`.
        usage_extra: more fields for the usage object, as OpenAI-compatible providers add them (xAI
            `cost_in_usd_ticks`, Perplexity `cost` and `search_context_size`, OpenRouter `cost`).

    Anthropic usage (messages, count_tokens):
        input_tokens: uncached input, EXCLUDING cache reads and writes (count_tokens: the count returned).
        cache_read_input_tokens: cache reads.
        cache_write_5m_input_tokens / cache_write_1h_input_tokens: cache writes per TTL; their sum is
            `cache_creation_input_tokens`.
        output_tokens: output tokens (including thinking).
        web_search_requests: `usage.server_tool_use.web_search_requests`; `server_tool_use` is only sent when
            this is set (the real API omits it when no server tool ran).
        thinking_tokens: `usage.output_tokens_details.thinking_tokens`, only sent when set.

    Failures:
        status: answer with this HTTP status and the provider's error body (e.g. 400, 401, 429, 500, 529).
        error_type / error_code / error_message: override the error body's fields.
        retry_after_ms: `retry-after-ms` header on error answers (default 1, so SDK retries are instant;
            `None` leaves it out and the SDK falls back to its own exponential backoff).
        should_retry: send `x-should-retry: true|false`, which both SDKs obey over the status code.
        headers: extra response headers.
        delay_s: sleep this long before answering (to trigger a client timeout).
        chunk_delay_s: sleep this long between streamed events.
        disconnect: read the request, then close the socket without answering (SDK connection error).
        stream_error_after: for streams, fail after this many text deltas: OpenAI chat sends an in-band
            `{"error": ...}` chunk, Responses an `error` event, Anthropic an `event: error`;
            with `stream_error_mode="disconnect"` the connection is cut instead.
    """

    model: str | None = None
    text: str | list[str] | None = None
    finish_reason: str | None = None
    service_tier: str | None = None

    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    usage_extra: Mapping[str, Any] = field(default_factory=dict)

    input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_write_5m_input_tokens: int | None = None
    cache_write_1h_input_tokens: int | None = None
    output_tokens: int | None = None
    web_search_requests: int | None = None
    thinking_tokens: int | None = None

    status: int | None = None
    error_type: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry_after_ms: int | None = 1
    should_retry: bool | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    disconnect: bool = False
    stream_error_after: int | None = None
    stream_error_mode: Literal["event", "disconnect"] = "event"

    def __post_init__(self) -> None:
        if self.openai_fields_set() and self.anthropic_fields_set():
            raise ValueError(
                "a Scenario mixes OpenAI usage fields "
                f"{self.openai_fields_set()} with Anthropic ones {self.anthropic_fields_set()}"
            )
        if self.stream_error_mode not in ("event", "disconnect"):
            raise ValueError(f"stream_error_mode must be 'event' or 'disconnect', not {self.stream_error_mode!r}")

    def openai_fields_set(self) -> list[str]:
        return [name for name in OPENAI_USAGE_FIELDS if getattr(self, name) is not None]

    def anthropic_fields_set(self) -> list[str]:
        return [name for name in ANTHROPIC_USAGE_FIELDS if getattr(self, name) is not None]

    @property
    def provider(self) -> Provider | None:
        """The provider whose usage fields this scenario sets, if any."""
        if self.openai_fields_set():
            return "openai"
        if self.anthropic_fields_set():
            return "anthropic"
        return None

    def deltas(self) -> list[str] | None:
        """The text as stream deltas, or None when the default text applies."""
        if self.text is None:
            return None
        return list(self.text) if isinstance(self.text, list) else split_text(self.text)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stand-in received.

    `path` has no query string (`query` holds it, e.g. `{"beta": "true"}` for `client.beta.messages`);
    `headers` keys are lowercased; `body` is the parsed JSON body (None when empty or not JSON);
    `scenario` is the scripted scenario that answered it (None for the default answer); `query_list` keeps every
    query parameter in order, repeated ones included (`group_by=a&group_by=b`), where `query` keeps the last.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    scenario: Scenario | None = None
    query_list: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class SSEEvent:
    """One server-sent event; `event` is the optional `event:` line."""

    data: str
    event: str | None = None

    def encode(self) -> bytes:
        head = f"event: {self.event}\n" if self.event is not None else ""
        return f"{head}data: {self.data}\n\n".encode()


def sse_json(payload: Any, event: str | None = None) -> SSEEvent:
    return SSEEvent(data=json.dumps(payload, separators=(",", ":")), event=event)


@dataclass
class Answer:
    """What the server sends back: a JSON `body`, or a list of SSE `events` (then `cut` closes the connection
    after them without finishing the response)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    events: list[SSEEvent] | None = None
    cut: bool = False
    chunk_delay_s: float = 0.0


# --- Default answers: deterministic numbers and text computed from the request -----------------------------

_TEXT_KEYS = frozenset({"content", "text", "input", "system", "instructions", "prompt", "arguments", "output"})
# Keys whose strings are not prompt text (ids, roles, binary payloads such as base64 images).
_SKIPPED_KEYS = frozenset(
    {"type", "role", "id", "cache_control", "name", "image_url", "source", "file_data", "image", "signature"}
)


def estimate_tokens(text: str) -> int:
    """A deterministic token estimate: about four characters a token, at least one for non-empty text."""
    return 0 if not text else max(1, (len(text) + 3) // 4)


def collect_text(value: Any) -> str:
    """All strings found under text-like keys (`content`, `text`, `input`, `system`, ...), concatenated."""
    parts: list[str] = []

    def gather_all(v: Any) -> None:
        if isinstance(v, str):
            parts.append(v)
        elif isinstance(v, Mapping):
            for key, item in v.items():
                if key not in _SKIPPED_KEYS:
                    gather_all(item)
        elif isinstance(v, list):
            for item in v:
                gather_all(item)

    def walk(v: Any) -> None:
        if isinstance(v, Mapping):
            for key, item in v.items():
                if key in _TEXT_KEYS:
                    gather_all(item)
                else:
                    walk(item)
        elif isinstance(v, list):
            for item in v:
                walk(item)

    walk(value)
    return " ".join(parts)


def tools_tokens(tools: Any) -> int:
    """Tool definitions count as input too."""
    return estimate_tokens(json.dumps(tools, sort_keys=True)) if tools else 0


def last_user_text(messages: Any) -> str:
    """The text of the last user message of a chat-shaped list (or a bare string)."""
    if isinstance(messages, str):
        return messages
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role", "user") == "user":
            return collect_text({"content": message.get("content")})
    return ""


def default_text(question: str) -> str:
    """The default answer: one deterministic sentence that varies with the question."""
    snippet = " ".join(question.split())[:60].rstrip()
    if not snippet:
        return "This is a deterministic answer from the otel-ai-cost stand-in server."
    return f'This is a deterministic answer from the otel-ai-cost stand-in server to: "{snippet}".'


def split_text(text: str) -> list[str]:
    """Word-sized stream deltas (`"Hello"`, `" world"`) whose concatenation is `text`."""
    pieces = re.findall(r"\s*\S+|\s+", text)
    return pieces or ([text] if text else [])


def sample_from_schema(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None, depth: int = 0) -> Any:
    """A minimal JSON instance valid for a (structured-outputs style) JSON schema."""
    root = root if root is not None else schema
    if depth > 12:
        return None
    if "$ref" in schema:
        target: Any = root
        for part in str(schema["$ref"]).lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        return sample_from_schema(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return sample_from_schema(options[0], root, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(part)
        return sample_from_schema(merged, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties", {})
        return {name: sample_from_schema(sub, root, depth + 1) for name, sub in props.items()}
    if kind == "array":
        items = schema.get("items", {})
        count = max(1, int(schema.get("minItems", 1)))
        return [sample_from_schema(items, root, depth + 1) for _ in range(count)]
    if kind == "string":
        return {"date-time": "2025-01-01T00:00:00Z", "date": "2025-01-01", "email": "a@example.com"}.get(
            str(schema.get("format")), "example"
        )
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    return None


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class PromptCache:
    """Remembers prompt prefixes, so default answers report cache writes then reads like the providers do."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def seen(self, key: str) -> bool:
        return key in self._seen

    def add(self, key: str) -> None:
        self._seen.add(key)

    def add_all(self, keys: Iterable[str]) -> None:
        self._seen.update(keys)

    def clear(self) -> None:
        self._seen.clear()


def retry_headers(scenario: Scenario | None) -> dict[str, str]:
    """The retry hints both SDKs obey on an error answer (`retry-after-ms`, `x-should-retry`)."""
    headers: dict[str, str] = {}
    if scenario is not None and scenario.retry_after_ms is not None:
        headers["retry-after-ms"] = str(scenario.retry_after_ms)
    if scenario is not None and scenario.should_retry is not None:
        headers["x-should-retry"] = "true" if scenario.should_retry else "false"
    return headers
