"""The ledger service under hostile connections and payloads (issue 10, items 11, 12, 14): idle and slow sockets never
lock others out, `/healthz` is answered under load, every limit answers promptly, memory per request is bounded,
deeply nested payloads are a 400.

Real sockets on loopback, the OpenTelemetry SDK's real OTLP/HTTP exporter, a real SQLite file.
"""

from __future__ import annotations

import dataclasses
import gzip
import re
import socket
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import requests
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SpanExportResult
from test_service_http import cost_attributes, exporter_for, make_spans, records

from otel_ai_cost.cli import ledger as ledger_cli
from otel_ai_cost.contract import Attribution, Cost, GenAI, Server
from otel_ai_cost.ledger.service import LedgerService, ServiceConfig
from otel_ai_cost.ledger.service import otlp as otlp_codec
from otel_ai_cost.ledger.sqlite_store import SQLiteStore

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def connect(service: LedgerService, opened: list[socket.socket]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=10)
    opened.append(sock)
    return sock


def slow_upload(service: LedgerService, opened: list[socket.socket], length: int = 100_000) -> socket.socket:
    """A connection that sent a complete request head and the first bytes of a body it never finishes."""
    sock = connect(service, opened)
    head = f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: {length}"
    sock.sendall(head.encode() + b"\r\n\r\n" + b"\x0a" * 10)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes the connection (EOF or reset) within `seconds`; what it sent first is skipped."""
    sock.settimeout(0.1)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response (head and Content-Length body) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def export_promptly(service: LedgerService, store: SQLiteStore, seconds: float = 3.0) -> None:
    """A real SDK export succeeds, and is stored, within `seconds`."""
    spans = make_spans(cost_attributes("0.5"))
    exporter = exporter_for(service, timeout=seconds)
    start = time.monotonic()
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert time.monotonic() - start < seconds
    exporter.shutdown()
    assert len(records(store)) == 1


def health_promptly(service: LedgerService, seconds: float = 2.0) -> None:
    start = time.monotonic()
    assert requests.get(f"{service.url}/healthz", timeout=seconds).status_code == 200
    assert time.monotonic() - start < seconds


# --- item 12: connections ----------------------------------------------------------------------------------------
def test_64_idle_sockets_do_not_lock_out_an_export_or_healthz(start_service, store, sockets):
    service = start_service()  # the defaults: 64 connections
    for _ in range(64):
        connect(service, sockets)  # opened before any authentication, never sending a byte
    time.sleep(0.2)
    health_promptly(service)
    export_promptly(service, store)


def test_idle_connections_are_evicted_first_when_the_cap_is_reached(start_service, store, sockets):
    service = start_service(max_connections=4, max_connections_per_client=4)
    idle = [connect(service, sockets) for _ in range(4)]
    time.sleep(0.2)
    export_promptly(service, store)
    assert closed_within(idle[0], 1.0), "the longest-idle connection makes room"


def test_keep_alive_connection_outlives_the_header_timeout_between_requests(start_service, sockets):
    service = start_service(header_timeout_s=0.5, idle_timeout_s=10)
    sock = connect(service, sockets)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    for _ in range(2):
        sock.sendall(request)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(1.0)  # idle keep-alive: the idle timeout applies, not the header timeout


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "slowloris"])
def test_an_incomplete_request_head_is_closed_after_the_header_timeout(start_service, sockets, trickle):
    service = start_service(header_timeout_s=1.0)
    sock = connect(service, sockets)
    start = time.monotonic()
    if trickle:
        sock.sendall(b"POST /v1/traces HTTP/1.1\r\n")
        for n in range(12):  # a header line every 0.25 s: each read succeeds, the head never completes
            time.sleep(0.25)
            try:
                sock.sendall(f"X-Slow-{n}: y\r\n".encode())
            except OSError:
                break
    assert closed_within(sock, 3.0)
    assert 0.8 < time.monotonic() - start < 3.5


def test_slow_uploads_do_not_block_a_normal_export(start_service, store, sockets):
    service = start_service()  # 8 workers
    for _ in range(8):
        slow_upload(service, sockets)
    time.sleep(0.2)
    export_promptly(service, store)
    health_promptly(service)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_slower_than_the_body_timeout_is_answered_408(start_service, sockets, chunked):
    service = start_service(body_timeout_s=1.0)
    if chunked:
        sock = connect(service, sockets)
        head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n3e8\r\n" + b"\x0a" * 10)  # 10 of a 1000-byte chunk
    else:
        sock = slow_upload(service, sockets, length=1000)
    start = time.monotonic()
    sock.settimeout(4)
    answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert 0.8 < time.monotonic() - start < 3.0


def test_the_per_client_cap_refuses_busy_extra_connections_but_healthz_is_answered(start_service, sockets):
    service = start_service(max_connections_per_client=2)
    for _ in range(2):
        slow_upload(service, sockets)  # busy, not idle: nothing to evict
    time.sleep(0.2)
    response = requests.post(f"{service.url}/v1/traces", data=b"", headers=PROTOBUF, timeout=3)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    health_promptly(service)


def test_healthz_is_answered_when_every_connection_slot_is_busy(start_service, store, sockets):
    service = start_service(max_connections=3, max_connections_per_client=3)
    for _ in range(3):
        slow_upload(service, sockets)
    time.sleep(0.2)
    health_promptly(service)
    health_promptly(service)  # the reserved slot is given back
    response = requests.post(f"{service.url}/v1/traces", data=b"", headers=PROTOBUF, timeout=3)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"


def test_bodies_being_uploaded_are_bounded_in_total(start_service, store, sockets):
    service = start_service(max_body_bytes=100_000, max_buffered_body_bytes=150_000)
    sock = slow_upload(service, sockets, length=100_000)
    sock.sendall(b"\x0a" * 90_000)  # 90 kB held for a body still arriving
    time.sleep(0.3)
    body = encode_spans(make_spans(*[cost_attributes("0.5")] * 200)).SerializeToString()
    assert 60_000 < len(body) < 100_000, len(body)
    response = requests.post(f"{service.url}/v1/traces", data=body, headers=PROTOBUF, timeout=3)
    assert response.status_code == 503 and "Retry-After" in response.headers
    sock.close()
    time.sleep(0.3)
    assert requests.post(f"{service.url}/v1/traces", data=body, headers=PROTOBUF, timeout=3).status_code == 200
    assert len(records(store)) == 200


# --- item 14: nesting ---------------------------------------------------------------------------------------------
def nested_any_value_json(depth: int) -> bytes:
    value = '{"arrayValue": {"values": [' * depth + '{"stringValue": "x"}' + "]}}" * depth  # text: json.dumps recurses
    return ('{"resourceSpans": [{"resource": {"attributes": [{"key": "a", "value": ' + value + "}]}}]}").encode()


def _length_delimited(field: int, payload: bytes) -> bytes:
    return otlp_codec._varint(field << 3 | 2) + otlp_codec._varint(len(payload)) + payload


def nested_any_value_protobuf(depth: int) -> bytes:
    value = _length_delimited(1, b"x")  # AnyValue.string_value
    for _ in range(depth):
        value = _length_delimited(5, _length_delimited(1, value))  # AnyValue.array_value -> ArrayValue.values
    key_value = _length_delimited(1, b"a") + _length_delimited(2, value)
    resource = _length_delimited(1, key_value)  # Resource.attributes
    return _length_delimited(1, _length_delimited(1, resource))  # request.resource_spans -> .resource


@pytest.mark.parametrize(
    "body",
    [
        b'{"resourceSpans": [{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}]}",
        nested_any_value_json(5000),
        nested_any_value_json(150),
    ],
    ids=["json-unknown-field-5000", "json-attribute-5000", "json-attribute-150"],
)
def test_deeply_nested_json_is_a_400_naming_the_limit(start_service, body):
    service = start_service()
    response = requests.post(
        f"{service.url}/v1/traces", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert response.status_code == 400
    assert "nested" in response.json()["message"]


@pytest.mark.parametrize("depth", [150, 5000])
def test_deeply_nested_protobuf_is_a_400(start_service, depth):
    service = start_service()
    response = requests.post(f"{service.url}/v1/traces", data=nested_any_value_protobuf(depth), headers=PROTOBUF)
    assert response.status_code == 400
    assert b"nested" in response.content


def test_nesting_within_the_limit_is_accepted():
    levels = otlp_codec.MAX_NESTING // 2 - 8  # each array level is two messages (AnyValue, ArrayValue)
    for body, encoding in [
        (nested_any_value_json(levels), otlp_codec.Encoding.JSON),
        (nested_any_value_protobuf(levels), otlp_codec.Encoding.PROTOBUF),
    ]:
        request = otlp_codec.parse_request(body, encoding)
        assert request.resource_spans[0].resource.attributes[0].key == "a"


# --- item 11: memory ------------------------------------------------------------------------------------------------
MEMORY_MULTIPLE = 2.5  # docs/ledger.md: the Python heap of one request peaks below 2.5 x its decoded size


REAL_SHAPED = {  # what the instrumentation sets beside the usage and cost: spans of about 800 bytes on the wire
    GenAI.RESPONSE_ID: "chatcmpl-000000000000000000000042",
    GenAI.RESPONSE_FINISH_REASONS: ("stop",),
    GenAI.USAGE_CACHE_READ_INPUT_TOKENS: 512,
    Server.ADDRESS: "api.openai.com",
    Server.PORT: 443,
    Cost.PRICING_VERSION: "genai-prices-0.0.40",
    Cost.PRICING_TIER: "standard",
    Attribution.OPERATION_TYPE: "receipt_labeling",
    Attribution.JOB_ID: "job-42",
    Attribution.TEAM: "ml",
}


def big_request(spans: int) -> bytes:
    template = encode_spans(make_spans(*[cost_attributes("0.5", **REAL_SHAPED)] * 256))
    request = ExportTraceServiceRequest()
    for n in range(spans // 256):
        copy = request.resource_spans.add()
        copy.CopyFrom(template.resource_spans[0])
        for span in copy.scope_spans[0].spans:
            span.trace_id = n.to_bytes(4, "big") + span.trace_id[4:]
    return request.SerializeToString()


@pytest.mark.parametrize("compress", [False, True], ids=["identity", "gzip"])
def test_one_large_request_peaks_below_a_small_multiple_of_its_size(start_service, store, compress):
    body = big_request(4096)
    service = start_service()
    headers = dict(PROTOBUF, **({"Content-Encoding": "gzip"} if compress else {}))
    data = gzip.compress(body, compresslevel=1) if compress else body
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        assert requests.post(f"{service.url}/v1/traces", data=data, headers=headers, timeout=30).status_code == 200
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert len(records(store)) == 4096
    assert peak < MEMORY_MULTIPLE * len(body), f"peak {peak / 2**20:.1f} MiB for a {len(body) / 2**20:.1f} MiB body"


# --- the limits table in docs/ledger.md is the code's ----------------------------------------------------------------
LIMIT_FIELDS = {
    "max_connections", "max_connections_per_client", "health_slots", "header_timeout_s", "body_timeout_s",
    "idle_timeout_s", "max_body_bytes", "max_buffered_body_bytes", "workers",
}  # fmt: skip


def limits_table() -> list[tuple[str | None, str, str]]:
    """(option, field, default text) per row of the "Limits" table."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "ledger.md").read_text()
    section = text.split("### Limits: connections, timeouts, memory", 1)[1].split("\n\n")[2]  # heading, intro, table
    rows = []
    for line in section.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        found = re.fullmatch(r"(?:`(--[\w-]+)` )?\(`([\w.]+)`\)", cells[1])
        assert found, line
        rows.append((found.group(1), found.group(2), cells[2]))
    return rows


def documented_value(text: str) -> float | None:
    number = re.match(r"([\d.]+)( MiB| s| levels)?$", text)
    if number is None:
        return None  # a formula, such as the buffered bytes default
    return float(number.group(1)) * (1024 * 1024 if number.group(2) == " MiB" else 1)


def test_the_limits_table_lists_every_limit_with_the_codes_default():
    defaults = {f.name: f.default for f in dataclasses.fields(ServiceConfig)}
    options = {p.opts[0]: p for p in ledger_cli.serve.params if isinstance(p, click.Option)}
    rows = limits_table()
    assert {name for _, name, _ in rows} >= LIMIT_FIELDS
    for option, name, text in rows:
        code = otlp_codec.MAX_NESTING if name == "otlp.MAX_NESTING" else defaults[name]
        assert documented_value(text) == (None if code is None else float(code)), name
        if option is not None:
            cli_default = options[option].default
            cli_default = cli_default if isinstance(cli_default, (int, float)) else None  # click's "no default"
            scale = 1024 * 1024 if option.endswith("-mib") else 1
            assert (None if cli_default is None else cli_default * scale) == code, option
