"""OTLP/HTTP trace payloads <-> ledger records: content types, decompression, decoding, responses.

Pure functions, no I/O: the HTTP layer (`app.py`) reads the body and maps `PayloadError` to a status code.
Follows the OTLP/HTTP spec: protobuf (`application/x-protobuf`) and JSON (`application/json`, where trace and span
ids are hex strings, not the base64 of protobuf's JSON mapping), optionally gzip or deflate compressed; errors carry
a `google.rpc.Status` in the request's encoding; spans that cannot be recorded are reported in `partial_success`.

Memory: a request is decoded one `ResourceSpans` at a time (`decode_records`): the protobuf wire format of the
`ExportTraceServiceRequest` is walked field by field and each `resource_spans` submessage is parsed, turned into
records and dropped before the next, so the whole parsed message never exists at once; repeated short strings
(provider, model, environment...) are shared between the records of a request. Nesting is bounded
(`MAX_NESTING`): deeper payloads are a 400, never a RecursionError.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from otel_ai_cost.ledger.from_span import InvalidSpan, is_cost_span, record_from_attributes
from otel_ai_cost.ledger.record import LedgerRecord

MAX_REASONS = 5  # rejection reasons quoted in partial_success.error_message; the rest are counted
MAX_NESTING = 100  # message / JSON nesting levels accepted: the upb protobuf parser's own limit, for JSON as well
_SHARED_MAX_LEN = 256  # strings up to this length are shared between the records of one request
_SHARED_MAX_COUNT = 4096  # distinct shared strings per request (bounded: a request of unique values gains nothing)
_TOO_DEEP = f"nested deeper than {MAX_NESTING} levels"
_INFLATE_STEP = 1024 * 1024  # decompressed bytes produced at a time


class Encoding(str, Enum):
    PROTOBUF = "protobuf"
    JSON = "json"

    @property
    def content_type(self) -> str:
        return "application/x-protobuf" if self is Encoding.PROTOBUF else "application/json"


class PayloadError(Exception):
    """The request cannot be processed; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def encoding_of(content_type: str | None) -> Encoding:
    """The payload encoding named by a Content-Type header (parameters such as charset are ignored)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in ("application/x-protobuf", "application/protobuf"):
        return Encoding.PROTOBUF
    if media == "application/json":
        return Encoding.JSON
    raise PayloadError(415, f"unsupported content type {media or '(none)'!r}: use application/x-protobuf or json")


def decompress(body: bytes | bytearray, content_encoding: str | None, max_bytes: int) -> bytes | bytearray:
    """The body as sent, decompressed without ever holding more than `max_bytes + 1` decompressed bytes, so a
    compression bomb is refused (413) instead of eating memory. The output is made once, never copied."""
    name = (content_encoding or "identity").strip().lower()
    if name in ("", "identity"):
        return body
    if name in ("gzip", "x-gzip"):
        return _inflate(body, zlib.MAX_WBITS | 16, max_bytes, "gzip")
    if name == "deflate":
        # RFC 9110 "deflate" is the zlib format; some clients send raw deflate, which the zlib header tells apart.
        wbits = zlib.MAX_WBITS if _has_zlib_header(body) else -zlib.MAX_WBITS
        return _inflate(body, wbits, max_bytes, "deflate")
    raise PayloadError(415, f"unsupported content encoding {name!r}: use gzip, deflate or none")


def _has_zlib_header(body: bytes) -> bool:
    return len(body) >= 2 and (body[0] & 0x0F) == 8 and int.from_bytes(body[:2], "big") % 31 == 0


def _inflate(data: bytes | bytearray, wbits: int, max_bytes: int, name: str) -> bytearray:
    """Inflates `_INFLATE_STEP` bytes at a time into one buffer: zlib's own output buffer for a large `max_length`
    would allocate far ahead of the data and then copy it all once more."""
    out = bytearray()
    while True:  # a gzip body may hold several members, one after the other
        inflater = zlib.decompressobj(wbits)
        pending = data
        while not inflater.eof:
            step = min(_INFLATE_STEP, max_bytes - len(out) + 1)
            try:
                piece = inflater.decompress(pending, step)
            except zlib.error as error:
                raise PayloadError(400, f"invalid {name} body: {error}") from None
            out += piece
            if len(out) > max_bytes:
                raise PayloadError(413, f"decompressed body exceeds the limit of {max_bytes} bytes")
            pending = inflater.unconsumed_tail
            if not pending and len(piece) < step:
                break  # every input byte used and nothing held back: the stream ends early
        if not inflater.eof:
            raise PayloadError(400, f"invalid {name} body: truncated")
        data = inflater.unused_data
        if not data or wbits != zlib.MAX_WBITS | 16:
            return out


def parse_request(body: bytes | bytearray, encoding: Encoding) -> ExportTraceServiceRequest:
    """Decodes a whole `ExportTraceServiceRequest`; raises PayloadError(400) saying what is wrong. (The service
    uses `decode_records`, which never holds the whole parsed message.)"""
    request = ExportTraceServiceRequest()
    request.resource_spans.extend(iter_resource_spans(body, encoding))
    return request


def decode_records(payload: bytes | bytearray, encoding: Encoding) -> Extracted:
    """The records of a request, decoded one `ResourceSpans` at a time. PayloadError(400) when undecodable."""
    return extract_records(iter_resource_spans(payload, encoding))


def iter_resource_spans(payload: bytes | bytearray, encoding: Encoding) -> Iterator[ResourceSpans]:
    """The request's `resource_spans`, parsed one at a time (each is garbage once the caller moves on)."""
    if encoding is Encoding.PROTOBUF:
        return _protobuf_resource_spans(payload)
    return _json_resource_spans(payload)


_WIRE_VARINT, _WIRE_FIXED64, _WIRE_LENGTH, _WIRE_FIXED32 = 0, 1, 2, 5


def _protobuf_resource_spans(payload: bytes | bytearray) -> Iterator[ResourceSpans]:
    """Walks the top level of an ExportTraceServiceRequest in the wire format: field 1 is `resource_spans`
    (length-delimited), any other field is skipped, as a protobuf parser skips unknown fields."""
    view = memoryview(payload)
    position, end = 0, len(view)
    while position < end:
        tag, position = _read_varint(view, position)
        field, wire = tag >> 3, tag & 7
        if wire == _WIRE_VARINT:
            _, position = _read_varint(view, position)
        elif wire == _WIRE_FIXED64:
            position += 8
        elif wire == _WIRE_FIXED32:
            position += 4
        elif wire == _WIRE_LENGTH:
            length, position = _read_varint(view, position)
            start, position = position, position + length
            if position <= end and field == 1:
                yield _parse_resource_spans(view[start:position])
        else:
            raise _undecodable(f"unsupported wire type {wire} at byte {position}")
        if position > end:
            raise _undecodable("truncated message")


def _read_varint(view: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    for index in range(position, min(position + 10, len(view))):
        byte = view[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index + 1
        shift += 7
    raise _undecodable(f"invalid varint at byte {position}")


def _parse_resource_spans(data: memoryview) -> ResourceSpans:
    message = ResourceSpans()
    try:
        message.ParseFromString(data)
    except DecodeError as error:
        detail = _TOO_DEEP if "MaxDepth" in str(error) else str(error)
        raise _undecodable(f"resource_spans: {detail}") from None
    return message


def _undecodable(detail: str) -> PayloadError:
    return PayloadError(400, f"undecodable protobuf ExportTraceServiceRequest: {detail}")


def _json_resource_spans(payload: bytes | bytearray) -> Iterator[ResourceSpans]:
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PayloadError(400, f"invalid JSON: {error}") from None
    except RecursionError:
        raise PayloadError(400, f"invalid JSON: {_TOO_DEEP}") from None
    if not isinstance(document, dict):
        raise PayloadError(400, "invalid OTLP/JSON: the body must be a JSON object")
    items = document.get("resourceSpans", document.get("resource_spans"))
    if items is None:
        return
    if not isinstance(items, list):
        raise PayloadError(400, "invalid OTLP/JSON ExportTraceServiceRequest: resourceSpans must be a list")
    for index, item in enumerate(items):
        items[index] = None  # the parsed dict goes as soon as its message is built
        yield _json_one_resource_spans(item)


def _json_one_resource_spans(item: Any) -> ResourceSpans:
    if not isinstance(item, dict):
        raise PayloadError(400, "invalid OTLP/JSON ExportTraceServiceRequest: a resourceSpans item is not an object")
    _hex_ids_to_base64(item)
    message = ResourceSpans()
    try:
        # Unknown fields are ignored, as the OTLP spec asks of receivers (forward compatibility).
        json_format.ParseDict(item, message, ignore_unknown_fields=True, max_recursion_depth=MAX_NESTING)
    except json_format.ParseError as error:
        detail = _TOO_DEEP if "too deep" in str(error) else str(error)
        raise PayloadError(400, f"invalid OTLP/JSON ExportTraceServiceRequest: resourceSpans: {detail}") from None
    except RecursionError:
        raise PayloadError(400, f"invalid OTLP/JSON ExportTraceServiceRequest: {_TOO_DEEP}") from None
    return message


_ID_FIELDS = {"traceId": 32, "spanId": 16, "parentSpanId": 16}
_HEX = re.compile(r"[0-9a-fA-F]*")


def _hex_ids_to_base64(resource_spans: dict[str, Any]) -> None:
    """OTLP/JSON writes ids as hex; protobuf's JSON mapping expects base64 for bytes. A hex id of the right length
    (32/16 digits) is converted; anything else is left for the parser (a base64 id never has those lengths)."""

    def convert(obj: dict[str, Any]) -> None:
        for key, length in _ID_FIELDS.items():
            value = obj.get(key)
            if isinstance(value, str) and len(value) == length and _HEX.fullmatch(value):
                obj[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")

    for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
        for span in _list(scope_spans, "spans"):
            convert(span)
            for link in _list(span, "links"):
                convert(link)


def _list(obj: Any, *keys: str) -> list[dict[str, Any]]:
    if not isinstance(obj, dict):
        return []
    for key in keys:
        value = obj.get(key)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, dict)]
    return []


def attributes_of(key_values: Any, shared: dict[str, str] | None = None) -> dict[str, Any]:
    """OTLP KeyValue list -> plain dict (arrays as tuples, kvlists as dicts, unset values as None). With `shared`,
    short string values are taken from it (and added), so the records of a request share one copy of each."""
    out: dict[str, Any] = {}
    for kv in key_values:  # the ingest hot path: the common scalar kinds are read inline
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "string_value":
            text = value.string_value
            if shared is not None and len(text) <= _SHARED_MAX_LEN:
                text = shared.get(text) or _share(shared, text)
            out[kv.key] = text
        elif kind == "int_value":
            out[kv.key] = value.int_value
        else:
            out[kv.key] = _value(value, kind)
    return out


def _share(shared: dict[str, str], text: str) -> str:
    if len(shared) < _SHARED_MAX_COUNT:
        shared[text] = text
    return text


def _value(value: AnyValue, kind: str | None) -> Any:
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(_value(item, item.WhichOneof("value")) for item in value.array_value.values)
    if kind == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    return getattr(value, kind)


@dataclass
class Extracted:
    """What one request holds: the records of its valid cost spans, and why the others were rejected."""

    records: list[LedgerRecord] = field(default_factory=list)
    spans: int = 0  # every span in the request
    ignored: int = 0  # spans that are not cost spans (SDK, HTTP, ...): accepted, not recorded
    rejected: int = 0  # cost spans that cannot be recorded
    reasons: list[str] = field(default_factory=list)  # the first MAX_REASONS of them

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(reason)

    def error_message(self) -> str:
        if not self.rejected:
            return ""
        more = self.rejected - len(self.reasons)
        tail = f"; and {more} more" if more > 0 else ""
        return f"{self.rejected} cost span(s) rejected: " + "; ".join(self.reasons) + tail


def extract_records(request: ExportTraceServiceRequest | Iterable[ResourceSpans]) -> Extracted:
    """Records for every cost span; other spans are counted as ignored, invalid cost spans as rejected. Takes a
    whole request or its `resource_spans` one at a time (`iter_resource_spans`)."""
    out = Extracted()
    shared: dict[str, str] = {}
    all_resource_spans = request.resource_spans if isinstance(request, ExportTraceServiceRequest) else request
    for resource_spans in all_resource_spans:
        resource: Mapping[str, Any] | None = None  # decoded once per resource, and only if it has a cost span
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                out.spans += 1
                attributes = attributes_of(span.attributes, shared)
                if not is_cost_span(attributes):
                    out.ignored += 1
                    continue
                if resource is None:
                    resource = attributes_of(resource_spans.resource.attributes, shared)
                try:
                    out.records.append(
                        record_from_attributes(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            start_time_ns=span.start_time_unix_nano,
                            end_time_ns=span.end_time_unix_nano or span.start_time_unix_nano,
                            resource=resource,
                            attributes=attributes,
                        )
                    )
                except InvalidSpan as error:
                    out.reject(f"span {span.trace_id.hex()}/{span.span_id.hex()}: {error}")
    return out


def encode_response(encoding: Encoding, rejected: int = 0, error_message: str = "") -> bytes:
    """A valid `ExportTraceServiceResponse` (empty on full success, as the spec recommends)."""
    response = ExportTraceServiceResponse()
    if rejected or error_message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = error_message
    if encoding is Encoding.PROTOBUF:
        return response.SerializeToString()
    return json_format.MessageToJson(response, indent=None).encode()


# gRPC status codes for the `google.rpc.Status` of error responses, by HTTP status (OTLP/HTTP spec).
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 408: 4, 411: 3, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}


def encode_status(encoding: Encoding, http_status: int, message: str) -> bytes:
    """A `google.rpc.Status` {code, message} in the request's encoding, as OTLP/HTTP error bodies must be.
    Hand-encoded (two fields) so that the service does not need googleapis-common-protos."""
    code = _GRPC_CODES.get(http_status, 2)  # 2 = UNKNOWN
    if encoding is Encoding.JSON:
        return json.dumps({"code": code, "message": message}).encode()
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


__all__ = [
    "MAX_NESTING",
    "MAX_REASONS",
    "Encoding",
    "Extracted",
    "PayloadError",
    "attributes_of",
    "decode_records",
    "decompress",
    "encode_response",
    "encode_status",
    "encoding_of",
    "extract_records",
    "iter_resource_spans",
    "parse_request",
]
