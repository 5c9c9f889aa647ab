"""A local stand-in for the Gemini API (and Vertex AI's `generateContent`), driven by the real `google-genai` client.

Stdlib only (`http.server`). It answers:

- `POST /{version}/models/{model}:generateContent` with a `GenerateContentResponse` JSON object,
- `POST /{version}/models/{model}:streamGenerateContent?alt=sse` with `data: {...}` server-sent events, one
  `GenerateContentResponse` chunk each,

and the same under Vertex AI's paths (`/{version}/publishers/google/models/{model}:...` and
`/{version}/projects/{p}/locations/{l}/publishers/google/models/{model}:...`). Shapes follow the REST reference
(https://ai.google.dev/api/generate-content#v1beta.GenerateContentResponse): camelCase keys, `usageMetadata`
with `promptTokenCount` (which includes `cachedContentTokenCount`), `candidatesTokenCount`, `thoughtsTokenCount`,
`toolUsePromptTokenCount` (neither included in the other two) and `totalTokenCount` (the sum of prompt, candidates,
tool-use prompt and thoughts). In a stream every chunk carries `usageMetadata` with the prompt side; the last chunk
carries the final totals and the `finishReason`. Errors are `{"error": {"code", "message", "status"}}`.

Usage::

    with GeminiStandIn() as server:
        server.push(GeminiScenario(prompt_tokens=1200, candidates_tokens=50))
        client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=server.base_url))
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
        assert server.requests[-1].model == "gemini-2.5-flash"
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from otel_ai_cost.stand_in.scripted import ScriptedServer

_PATH = re.compile(
    r"^/(?P<version>[^/]+)/(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/[^/]+/)?models/"
    r"(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$"
)

_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)

# google.rpc.Code names, as the API puts them in `error.status`.
_STATUS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "models/unknown is not found for API version v1beta."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}


@dataclass
class GeminiScenario:
    """How to answer one request. Token figures default to a deterministic estimate from the request.

    `prompt_tokens` is the API's `promptTokenCount`: it INCLUDES `cached_tokens`. `thoughts_tokens` and
    `tool_use_prompt_tokens` are reported apart (not in `candidates_tokens` / `prompt_tokens`).
    `stream_cut_after`: in a stream, close the connection after that many chunks (no final usage).
    `stream_error_after`: in a stream, send an `{"error": ...}` event after that many chunks.
    """

    prompt_tokens: int | None = None
    candidates_tokens: int | None = None
    cached_tokens: int | None = None
    thoughts_tokens: int | None = None
    tool_use_prompt_tokens: int | None = None
    traffic_type: str | None = None  # Vertex AI only, e.g. "ON_DEMAND"
    text: str = "Hello from the Gemini stand-in."
    chunks: int = 3  # how many pieces a stream splits the text into
    model_version: str | None = None  # default: the model of the request path
    response_id: str | None = None
    finish_reason: str = "STOP"
    error_status: int | None = None
    error_message: str | None = None
    stream_cut_after: int | None = None
    stream_error_after: int | None = None
    chunk_delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GeminiRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    model: str | None
    stream: bool


def _estimate_tokens(value: Any) -> int:
    text = json.dumps(value) if not isinstance(value, str) else value
    return max(1, len(text) // 4)


def _split(text: str, pieces: int) -> list[str]:
    pieces = max(1, pieces)
    size = max(1, -(-len(text) // pieces))
    parts = [text[i : i + size] for i in range(0, len(text), size)] or [""]
    return parts


@dataclass(frozen=True)
class _Usage:
    prompt: int
    candidates: int
    cached: int | None
    thoughts: int | None
    tool_use: int | None
    traffic_type: str | None

    def metadata(self, *, final: bool = True) -> dict[str, Any]:
        """`usageMetadata` as the API sends it (mid-stream chunks: the prompt side and the output so far)."""
        candidates = self.candidates if final else None
        thoughts = self.thoughts if final else None
        out: dict[str, Any] = {"promptTokenCount": self.prompt}
        if candidates is not None:
            out["candidatesTokenCount"] = candidates
        out["totalTokenCount"] = self.prompt + (candidates or 0) + (self.tool_use or 0) + (thoughts or 0)
        if self.cached is not None:
            out["cachedContentTokenCount"] = self.cached
        out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.prompt - (self.cached or 0)}]
        if self.cached is not None:
            out["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.cached}]
        if candidates is not None:
            out["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": candidates}]
        if thoughts is not None:
            out["thoughtsTokenCount"] = thoughts
        if self.tool_use is not None:
            out["toolUsePromptTokenCount"] = self.tool_use
        if self.traffic_type is not None:
            out["trafficType"] = self.traffic_type
        return out


def _usage(scenario: GeminiScenario, body: Any) -> _Usage:
    prompt = scenario.prompt_tokens
    if prompt is None:
        prompt = _estimate_tokens((body or {}).get("contents", ""))
    candidates = scenario.candidates_tokens
    if candidates is None:
        candidates = _estimate_tokens(scenario.text)
    return _Usage(
        prompt,
        candidates,
        scenario.cached_tokens,
        scenario.thoughts_tokens,
        scenario.tool_use_prompt_tokens,
        scenario.traffic_type,
    )


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    name, text = _STATUS.get(status, ("UNKNOWN", f"Error {status} (stand-in)."))
    return {"error": {"code": status, "message": message or text, "status": name}}


def _response(
    scenario: GeminiScenario,
    model: str,
    response_id: str,
    text: str,
    usage: _Usage,
    *,
    final: bool,
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if final:
        candidate["finishReason"] = scenario.finish_reason
    return {
        "candidates": [candidate],
        "usageMetadata": usage.metadata(final=final),
        "modelVersion": scenario.model_version or model,
        "responseId": response_id,
    }


class GeminiStandIn(ScriptedServer[GeminiScenario, GeminiRequest]):
    """A local server answering like the Gemini API; script it with `push(GeminiScenario(...))`.

    Queued scenarios answer the next requests in order; with the queue empty, a default answer is computed
    from the request. `requests` records what was received.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(_Handler, GeminiScenario, name="gemini-stand-in", host=host, port=port)

    @property
    def base_url(self) -> str:
        """For `types.HttpOptions(base_url=...)`."""
        return f"{self.url}/"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except _CLIENT_GONE:  # the client dropped the connection (an abandoned stream): nothing to answer
            self.close_connection = True

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        match = _PATH.match(parts.path)
        model = match.group("model") if match else None
        stream = bool(match and match.group("method") == "streamGenerateContent")
        request = GeminiRequest(
            "POST", parts.path, query, {k.lower(): v for k, v in self.headers.items()}, body, model, stream
        )
        if match is None:
            self._json(404, error_body(404, f"no such method: {parts.path}"))
            return
        scenario = self.server.stand_in._next(request)  # type: ignore[attr-defined]
        if scenario.error_status is not None:
            self._json(scenario.error_status, error_body(scenario.error_status, scenario.error_message), scenario)
            return
        assert model is not None
        response_id = scenario.response_id or secrets.token_urlsafe(16)
        usage = _usage(scenario, body)
        if not stream:
            self._json(200, _response(scenario, model, response_id, scenario.text, usage, final=True), scenario)
            return
        self._stream(scenario, model, response_id, usage)

    def _json(self, status: int, payload: Any, scenario: GeminiScenario | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=UTF-8")
        self.send_header("content-length", str(len(data)))
        for key, value in (scenario.headers if scenario else {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _events(self, scenario: GeminiScenario, model: str, response_id: str, usage: _Usage) -> Iterator[bytes]:
        pieces = _split(scenario.text, scenario.chunks)
        for index, piece in enumerate(pieces):
            if scenario.stream_error_after is not None and index == scenario.stream_error_after:
                yield b"data: " + json.dumps(error_body(503, scenario.error_message)).encode() + b"\r\n\r\n"
                return
            if scenario.stream_cut_after is not None and index == scenario.stream_cut_after:
                return
            final = index == len(pieces) - 1
            chunk = _response(scenario, model, response_id, piece, usage, final=final)
            yield b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"

    def _stream(self, scenario: GeminiScenario, model: str, response_id: str, usage: _Usage) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        for key, value in scenario.headers.items():
            self.send_header(key, value)
        self.end_headers()
        try:
            for event in self._events(scenario, model, response_id, usage):
                if scenario.chunk_delay_s:
                    time.sleep(scenario.chunk_delay_s)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
            if scenario.stream_cut_after is not None:
                # A chunked body that stops without its terminator: the client sees the connection drop.
                self.close_connection = True
                return
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except _CLIENT_GONE:
            self.close_connection = True


def serve(port: int = 8083) -> None:
    """Run in the foreground until interrupted."""
    with GeminiStandIn(port=port) as server:
        print(f"Gemini stand-in on {server.base_url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


__all__ = ["GeminiRequest", "GeminiScenario", "GeminiStandIn", "error_body", "serve"]
