"""A local stand-in for Amazon Bedrock Runtime, driven by a real `boto3.client("bedrock-runtime")`.

Answers `Converse`, `ConverseStream`, `InvokeModel` and `InvokeModelWithResponseStream` (`POST /model/{modelId}/
converse`, `/converse-stream`, `/invoke`, `/invoke-with-response-stream`) with the JSON bodies AWS documents, the
`X-Amzn-Bedrock-*-Token-Count` headers, and the `application/vnd.amazon.eventstream` framing of the two streaming
operations (botocore only decodes event streams; `encode_event` writes them). Stdlib only::

    with BedrockStandIn() as server:
        server.push(BedrockScenario(input_tokens=1200, cache_read_input_tokens=1000, output_tokens=50))
        client = boto3.client("bedrock-runtime", endpoint_url=server.url, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
        client.converse(modelId="amazon.nova-lite-v1:0", messages=[...])

`invoke_model` bodies follow the model family in the model id (inference-profile prefixes and ARNs allowed):
`anthropic.*` (Messages API), `amazon.nova-*`, `amazon.titan-text-*`, `amazon.titan-embed-*`, `meta.*` (Llama),
`mistral.*` (text completion: no usage in the body, as on AWS). Token counts follow Converse's convention:
`input_tokens` is the uncached input; cache reads and writes are counted apart.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from otel_ai_cost.stand_in.scripted import ScriptedServer

__all__ = [
    "BedrockRequest",
    "BedrockScenario",
    "BedrockStandIn",
    "encode_event",
    "model_family",
]

_OPERATIONS = {
    "converse": "Converse",
    "converse-stream": "ConverseStream",
    "invoke": "InvokeModel",
    "invoke-with-response-stream": "InvokeModelWithResponseStream",
}
# HTTP status of each Bedrock Runtime error (API reference, "Errors").
ERROR_STATUS: dict[str, int] = {
    "AccessDeniedException": 403,
    "InternalServerException": 500,
    "ModelErrorException": 424,
    "ModelNotReadyException": 429,
    "ModelTimeoutException": 408,
    "ResourceNotFoundException": 404,
    "ServiceQuotaExceededException": 400,
    "ServiceUnavailableException": 503,
    "ThrottlingException": 429,
    "ValidationException": 400,
}
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


@dataclass
class BedrockScenario:
    """The next answer. Defaults make a small successful call."""

    input_tokens: int = 12  # uncached input
    output_tokens: int = 7
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    text: str = "Hello from the Bedrock stand-in."
    stop_reason: str | None = None  # None: the family's usual "done" reason (end_turn, stop, FINISH)
    token_headers: bool = True  # X-Amzn-Bedrock-*-Token-Count headers (InvokeModel, as AWS sends them)
    body_usage: bool = True  # usage inside invoke bodies and stream chunks
    error: str | None = None  # e.g. "ThrottlingException": the call fails with that error's HTTP status
    error_message: str = "Too many requests, please wait before trying again."
    stream_error: str | None = None  # streams: an exception event (e.g. "throttlingException") after `cut_after`
    cut_after: int | None = None  # streams: only this many events, then the connection is dropped (or the error)
    service_tier: str | None = None  # Converse `serviceTier.type` / the X-Amzn-Bedrock-Service-Tier header
    latency_ms: int = 5


@dataclass
class BedrockRequest:
    operation: str
    model_id: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


# --- event-stream encoding (the inverse of botocore.eventstream.EventStreamBuffer) ------------------------------


def encode_event(headers: dict[str, str], payload: bytes) -> bytes:
    """One `application/vnd.amazon.eventstream` message: prelude (total and headers lengths), prelude CRC32,
    headers (all strings, type 7), payload, message CRC32."""
    encoded = b"".join(
        struct.pack(">B", len(name_bytes)) + name_bytes + b"\x07" + struct.pack(">H", len(value_bytes)) + value_bytes
        for name_bytes, value_bytes in ((k.encode(), v.encode()) for k, v in headers.items())
    )
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF)


def _event(event_type: str, body: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_event(headers, json.dumps(body, separators=(",", ":")).encode())


def _exception(exception_type: str, message: str) -> bytes:
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_event(headers, json.dumps({"message": message}).encode())


def _chunk(body: dict[str, Any]) -> bytes:
    data = base64.b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()
    return _event("chunk", {"bytes": data, "p": "abcdefgh"})


# --- bodies -----------------------------------------------------------------------------------------------------


def model_family(model_id: str) -> str:
    """anthropic | nova | titan-text | titan-embed | llama | mistral, from a model id, profile id or ARN."""
    ref = model_id.rsplit("/", 1)[-1].lower()
    for prefix in ("us.", "eu.", "apac.", "global.", "jp.", "au.", "ca.", "us-gov."):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            break
    if ref.startswith("amazon.nova"):
        return "nova"
    if ref.startswith("amazon.titan-embed"):
        return "titan-embed"
    if ref.startswith("amazon.titan"):
        return "titan-text"
    if ref.startswith("meta."):
        return "llama"
    if ref.startswith("mistral."):
        return "mistral"
    return "anthropic"


def _stop(s: BedrockScenario, default: str) -> str:
    return s.stop_reason or default


def _converse_usage(s: BedrockScenario) -> dict[str, int]:
    usage = {
        "inputTokens": s.input_tokens,
        "outputTokens": s.output_tokens,
        "totalTokens": s.input_tokens + s.output_tokens + s.cache_read_input_tokens + s.cache_write_input_tokens,
    }
    if s.cache_read_input_tokens or s.cache_write_input_tokens:
        usage["cacheReadInputTokens"] = s.cache_read_input_tokens
        usage["cacheWriteInputTokens"] = s.cache_write_input_tokens
    return usage


def converse_body(s: BedrockScenario) -> dict[str, Any]:
    body: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": [{"text": s.text}]}},
        "stopReason": _stop(s, "end_turn"),
        "usage": _converse_usage(s),
        "metrics": {"latencyMs": s.latency_ms},
    }
    if s.service_tier:
        body["serviceTier"] = {"type": s.service_tier}
    return body


def converse_stream_events(s: BedrockScenario) -> list[bytes]:
    events = [_event("messageStart", {"role": "assistant", "p": "abcd"})]
    for piece in _pieces(s.text):
        events.append(_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}, "p": "ab"}))
    events.append(_event("contentBlockStop", {"contentBlockIndex": 0, "p": "abc"}))
    events.append(_event("messageStop", {"stopReason": _stop(s, "end_turn"), "p": "abc"}))
    metadata: dict[str, Any] = {"usage": _converse_usage(s), "metrics": {"latencyMs": s.latency_ms}, "p": "a"}
    if s.service_tier:
        metadata["serviceTier"] = {"type": s.service_tier}
    events.append(_event("metadata", metadata))
    return events


def invoke_body(family: str, s: BedrockScenario, model_id: str) -> dict[str, Any]:
    """What `InvokeModel` returns for the model family (model-parameters pages of the Bedrock user guide)."""
    if family == "nova":
        body: dict[str, Any] = {
            "output": {"message": {"content": [{"text": s.text}], "role": "assistant"}},
            "stopReason": _stop(s, "end_turn"),
        }
        if s.body_usage:
            body["usage"] = {
                "inputTokens": s.input_tokens,
                "outputTokens": s.output_tokens,
                "totalTokens": s.input_tokens + s.output_tokens,
                "cacheReadInputTokenCount": s.cache_read_input_tokens,
                "cacheWriteInputTokenCount": s.cache_write_input_tokens,
            }
        return body
    if family == "titan-text":
        result: dict[str, Any] = {"outputText": s.text, "completionReason": _stop(s, "FINISH")}
        body = {"results": [result]}
        if s.body_usage:
            body["inputTextTokenCount"] = s.input_tokens
            result["tokenCount"] = s.output_tokens
        return body
    if family == "titan-embed":
        body = {"embedding": [0.125, -0.25, 0.5], "embeddingsByType": {"float": [0.125, -0.25, 0.5]}}
        if s.body_usage:
            body["inputTextTokenCount"] = s.input_tokens
        return body
    if family == "llama":
        body = {"generation": s.text, "stop_reason": _stop(s, "stop")}
        if s.body_usage:
            body["prompt_token_count"] = s.input_tokens
            body["generation_token_count"] = s.output_tokens
        return body
    if family == "mistral":  # the text-completion format carries no token counts: only the headers do
        return {"outputs": [{"text": s.text, "stop_reason": _stop(s, "stop")}]}
    body = {
        "id": "msg_bdrk_01StandIn",
        "type": "message",
        "role": "assistant",
        "model": _anthropic_model(model_id),
        "content": [{"type": "text", "text": s.text}],
        "stop_reason": _stop(s, "end_turn"),
        "stop_sequence": None,
    }
    if s.body_usage:
        body["usage"] = {
            "input_tokens": s.input_tokens,
            "cache_creation_input_tokens": s.cache_write_input_tokens,
            "cache_read_input_tokens": s.cache_read_input_tokens,
            "output_tokens": s.output_tokens,
        }
    return body


def _anthropic_model(model_id: str) -> str:
    ref = model_id.rsplit("/", 1)[-1]
    name = ref.split("anthropic.", 1)[-1]
    return name.rsplit("-v", 1)[0] if "-v" in name else name


def _invocation_metrics(s: BedrockScenario) -> dict[str, int]:
    metrics = {
        "inputTokenCount": s.input_tokens,
        "outputTokenCount": s.output_tokens,
        "invocationLatency": s.latency_ms,
        "firstByteLatency": 1,
    }
    if s.cache_read_input_tokens or s.cache_write_input_tokens:
        metrics["cacheReadInputTokenCount"] = s.cache_read_input_tokens
        metrics["cacheWriteInputTokenCount"] = s.cache_write_input_tokens
    return metrics


def invoke_stream_chunks(family: str, s: BedrockScenario, model_id: str) -> list[dict[str, Any]]:
    """The JSON objects `InvokeModelWithResponseStream` sends, one per `chunk` event (base64 in `bytes`); the last
    one carries `amazon-bedrock-invocationMetrics`."""
    pieces = _pieces(s.text)
    chunks: list[dict[str, Any]]
    if family == "nova":
        chunks = [{"messageStart": {"role": "assistant"}}]
        chunks += [{"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}} for p in pieces]
        chunks += [
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": _stop(s, "end_turn")}},
        ]
        if s.body_usage:
            chunks.append({"metadata": {"usage": {"inputTokens": s.input_tokens, "outputTokens": s.output_tokens}}})
    elif family == "titan-text":
        chunks = [{"outputText": p, "index": 0, "completionReason": None} for p in pieces]
        chunks[-1]["completionReason"] = _stop(s, "FINISH")
        if s.body_usage:
            chunks[0]["inputTextTokenCount"] = s.input_tokens
            chunks[-1]["totalOutputTextTokenCount"] = s.output_tokens
    elif family == "llama":
        chunks = [{"generation": p, "prompt_token_count": None, "generation_token_count": i + 1, "stop_reason": None}
                  for i, p in enumerate(pieces)]  # fmt: skip
        chunks[-1]["stop_reason"] = _stop(s, "stop")
        if s.body_usage:
            chunks[0]["prompt_token_count"] = s.input_tokens
            chunks[-1]["generation_token_count"] = s.output_tokens
    elif family == "mistral":
        chunks = [{"outputs": [{"text": p, "stop_reason": None}]} for p in pieces]
        chunks[-1]["outputs"][0]["stop_reason"] = _stop(s, "stop")
    else:
        start_usage = {"input_tokens": s.input_tokens, "output_tokens": 1}
        if s.cache_read_input_tokens or s.cache_write_input_tokens:
            start_usage["cache_creation_input_tokens"] = s.cache_write_input_tokens
            start_usage["cache_read_input_tokens"] = s.cache_read_input_tokens
        message = {
            "id": "msg_bdrk_01StandIn",
            "type": "message",
            "role": "assistant",
            "model": _anthropic_model(model_id),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start_usage,
        }
        chunks = [{"type": "message_start", "message": message}]
        chunks.append({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        chunks += [
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}} for p in pieces
        ]
        chunks.append({"type": "content_block_stop", "index": 0})
        chunks.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop(s, "end_turn"), "stop_sequence": None},
                "usage": {"output_tokens": s.output_tokens},
            }
        )
        chunks.append({"type": "message_stop"})
        if not s.body_usage:
            message.pop("usage")
            chunks[-2].pop("usage")
    if s.body_usage:
        chunks[-1]["amazon-bedrock-invocationMetrics"] = _invocation_metrics(s)
    return chunks


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)] or [""]


def token_headers(s: BedrockScenario) -> dict[str, str]:
    headers = {
        "X-Amzn-Bedrock-Input-Token-Count": str(s.input_tokens),
        "X-Amzn-Bedrock-Output-Token-Count": str(s.output_tokens),
        "X-Amzn-Bedrock-Invocation-Latency": str(s.latency_ms),
    }
    if s.cache_read_input_tokens or s.cache_write_input_tokens:
        headers["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = str(s.cache_read_input_tokens)
        headers["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = str(s.cache_write_input_tokens)
    return headers


# --- the server -------------------------------------------------------------------------------------------------


class BedrockStandIn(ScriptedServer[BedrockScenario, BedrockRequest]):
    """A local server answering like Bedrock Runtime; scripted with `push(BedrockScenario(...))`.

    Queued scenarios answer the next requests in order; with the queue empty, `BedrockScenario()` answers.
    Every request is kept in `requests`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(_Handler, BedrockScenario, name="bedrock-stand-in", host=host, port=port)


@dataclass
class _Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    events: list[bytes] | None = None  # streaming: sent chunked, one event per chunk
    drop_after_events: bool = False  # close the connection without ending the chunked body


def answer(request: BedrockRequest, s: BedrockScenario) -> _Reply:
    """The reply to one request (pure: the handler only writes it)."""
    if s.error:
        body = json.dumps({"message": s.error_message}).encode()
        return _Reply(
            ERROR_STATUS.get(s.error, 400),
            {
                "Content-Type": "application/json",
                "x-amzn-ErrorType": f"{s.error}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            },
            body,
        )
    family = model_family(request.model_id)
    headers: dict[str, str] = {}
    if request.operation == "InvokeModel" and s.token_headers:  # a stream's headers leave before its tokens exist
        headers.update(token_headers(s))
    if s.service_tier and request.operation.startswith("Invoke"):
        headers["X-Amzn-Bedrock-Service-Tier"] = s.service_tier
    if request.operation == "Converse":
        headers["Content-Type"] = "application/json"
        return _Reply(200, headers, json.dumps(converse_body(s)).encode())
    if request.operation == "InvokeModel":
        headers["Content-Type"] = "application/json"
        return _Reply(200, headers, json.dumps(invoke_body(family, s, request.model_id)).encode())
    if request.operation == "ConverseStream":
        events = converse_stream_events(s)
    else:
        events = [_chunk(c) for c in invoke_stream_chunks(family, s, request.model_id)]
        headers["X-Amzn-Bedrock-Content-Type"] = "application/json"
    headers["Content-Type"] = "application/vnd.amazon.eventstream"
    drop = False
    if s.cut_after is not None:
        events = events[: s.cut_after]
        drop = s.stream_error is None
    if s.stream_error:
        events.append(_exception(s.stream_error, s.error_message))
    return _Reply(200, headers, events=events, drop_after_events=drop)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "BedrockStandIn/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = self.path.split("?", 1)[0].split("/")
        # /model/{modelId}/{operation}; the model id is URL-encoded (ARNs contain '/' and ':').
        operation = _OPERATIONS.get(parts[-1]) if len(parts) >= 4 and parts[1] == "model" else None
        if operation is None:
            self._send(_Reply(404, {"Content-Type": "application/json"}, b'{"message":"unknown route"}'))
            return
        request = BedrockRequest(operation, unquote("/".join(parts[2:-1])), dict(self.headers.items()), body)
        stand_in: BedrockStandIn = self.server.stand_in  # type: ignore[attr-defined]
        try:
            self._send(answer(request, stand_in._next(request)))
        except _CLIENT_GONE:
            self.close_connection = True

    def _send(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        self.send_header("x-amzn-RequestId", "00000000-0000-4000-8000-000000000000")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.events is None:
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in _chunked(reply.events):
            self.wfile.write(event)
            self.wfile.flush()
        if reply.drop_after_events:
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")


def _chunked(events: list[bytes]) -> Iterator[bytes]:
    for event in events:
        yield f"{len(event):x}\r\n".encode() + event + b"\r\n"
