"""The ledger service's HTTP server: OTLP/HTTP trace ingest, health, Prometheus metrics and the usage query API.

Standard library only (`http.server.ThreadingHTTPServer`). Semantics the OTel Collector's `otlp_http` exporter relies
on: 200 with an `ExportTraceServiceResponse` (`partial_success` for rejected cost spans); 503 with `Retry-After`
when the store cannot take the write (the collector retries only 429/502/503/504 and drops on anything else, so a
store failure is never a 500); 400 for malformed payloads; 413 for oversize ones; 401 without the bearer token.
Writes are idempotent in the store, so a retry of a batch that was in fact written never counts twice.

Concurrency is bounded twice: connections (`max_connections`, beyond which a connection is answered 503 at once) and
requests being processed (`workers`, each holding at most `max_body_bytes` of decompressed payload). Shutdown stops
accepting, answers requests that arrive meanwhile with 503 (the sender retries elsewhere or later), waits for the
in-flight writes, then closes the store.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from otel_ai_cost.ledger.service import metrics, otlp, usage_api
from otel_ai_cost.ledger.store import InvalidRecord, LedgerStore, StoreUnavailable, WriteResult

logger = logging.getLogger("otel_ai_cost.ledger.service")

TRACES_PATH = "/v1/traces"
USAGE_PATH = "/v1/usage"
METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
_READ = ("GET", "HEAD")
_ROUTES = {TRACES_PATH: ("POST",), USAGE_PATH: _READ, METRICS_PATH: _READ, HEALTH_PATH: _READ}
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
_LINGER_S = 2.0  # after an early error answer, how long to swallow the rest of the body so the client reads it
_LINGER_BYTES = 64 * 1024 * 1024
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


@dataclass(frozen=True)
class ServiceConfig:
    host: str = "127.0.0.1"
    port: int = 4319  # next to the collector's 4318
    token: str | None = None  # bearer token; None: no authentication
    max_body_bytes: int = 16 * 1024 * 1024  # compressed (Content-Length) and decompressed
    max_connections: int = 64
    workers: int = 8  # requests processed at once: bounds memory to about workers x max_body_bytes
    idle_timeout_s: float = 60.0  # a connection silent this long (idle keep-alive, slow client) is closed
    drain_timeout_s: float = 30.0  # how long shutdown waits for in-flight requests


class LedgerService:
    """The running service. `start()` binds and serves in a background thread; `shutdown()` drains and closes.

    The store is closed by `shutdown()`: the service owns it once started.
    """

    def __init__(self, store: LedgerStore, config: ServiceConfig | None = None) -> None:
        self.store = store
        self.config = config or ServiceConfig()
        self.stats = metrics.ServiceStats()
        self.environments = metrics.EnvironmentFinder(store, self.stats)
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self._work = threading.BoundedSemaphore(self.config.workers)
        self._idle = threading.Condition()
        self._inflight = 0
        self._draining = False
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> LedgerService:
        self._server = _Server((self.config.host, self.config.port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="ledger-accept", daemon=True
        )  # a short poll interval: shutdown() waits up to one interval for the accept loop
        self._thread.start()
        logger.info("ledger service listening on %s", self.url)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"http://{host}:{self.port}"

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stops accepting, waits up to `timeout` (default `drain_timeout_s`) for in-flight requests, closes idle
        connections and the store. True when everything in flight finished."""
        if self._closed:
            return True
        self._closed = True
        with self._idle:
            self._draining = True
        if self._server is not None:
            # New connections are refused from now on (the sender retries them), and requests arriving on
            # connections already open are answered 503 with Retry-After.
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        deadline = time.monotonic() + (self.config.drain_timeout_s if timeout is None else timeout)
        with self._idle:
            drained = self._idle.wait_for(lambda: self._inflight == 0, max(0.0, deadline - time.monotonic()))
        for connection in self._open_connections():
            _shutdown_socket(connection)  # idle keep-alive connections: their threads end at once
        if not drained:
            logger.warning("shutdown: requests still in flight after the drain timeout")
        self.store.close()
        logger.info("ledger service stopped")
        return drained

    def __enter__(self) -> LedgerService:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # --- bookkeeping used by the handler -----------------------------------------------------------------------
    def _enter(self) -> bool:
        with self._idle:
            if self._draining:
                return False
            self._inflight += 1
            return True

    def _leave(self) -> None:
        with self._idle:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.notify_all()

    @property
    def draining(self) -> bool:
        return self._draining

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._idle:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _open_connections(self) -> list[socket.socket]:
        with self._idle:
            return list(self._connections)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # shutdown waits for in-flight requests itself, not for idle keep-alive connections
    block_on_close = False
    allow_reuse_address = True  # restart on the same port at once after a crash
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[_Handler], service: LedgerService) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.service = service
        self._slots = threading.BoundedSemaphore(service.config.max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            # Shed load instead of blocking the accept loop: 503 is retried by every OTLP sender.
            _refuse(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up are normal; anything else is logged without payload contents."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        logger.error("unexpected error while serving a request", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the exporters reuse their connections
    server_version = "otel-ai-cost-ledger"
    sys_version = ""
    server: _Server

    # --- connection ---------------------------------------------------------------------------------------------
    def setup(self) -> None:
        self.timeout = self.server.service.config.idle_timeout_s
        super().setup()
        # Headers and body leave as separate writes: without this, Nagle + delayed ACK add ~40 ms per answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.service._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.service._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines only (method, path, status), at debug level: never headers (the token) nor bodies.
        logger.debug("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)

    # --- dispatch -------------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        service = self.server.service
        split = urlsplit(self.path)
        self._route = split.path if split.path in _ROUTES else "other"
        self._body_read = False
        self._replied = False
        if not service._enter():
            self._reply(503, b"shutting down\n", _TEXT, {"Retry-After": "1", "Connection": "close"})
            return
        try:
            if split.path not in _ROUTES:
                self._reply(404, b"not found\n", _TEXT)
            elif self.command not in _ROUTES[split.path]:
                self._reply(405, b"method not allowed\n", _TEXT, {"Allow": ", ".join(_ROUTES[split.path])})
            elif split.path == HEALTH_PATH:
                self._health()
            elif not self._authorized():
                self._reply(401, b"missing or wrong bearer token\n", _TEXT, {"WWW-Authenticate": "Bearer"})
            elif split.path == TRACES_PATH:
                self._traces()
            elif split.path == METRICS_PATH:
                self._metrics()
            else:
                self._usage(split.query)
        except _CLIENT_GONE:
            self.close_connection = True
        except Exception:
            # A bug, not a bad payload (those are PayloadError/InvalidSpan): say so rather than drop the connection,
            # which every sender would retry forever.
            logger.error("unexpected error answering %s %s", self.command, self._route, exc_info=True)
            if not self._replied:
                self._reply(500, b"internal error\n", _TEXT)
        finally:
            service._leave()

    def _authorized(self) -> bool:
        token = self.server.service.config.token
        if token is None:
            return True
        given = self.headers.get("Authorization", "")
        scheme, _, credentials = given.partition(" ")
        # Compare even when the scheme is wrong, so timing tells nothing about the token.
        ok = hmac.compare_digest(credentials.strip().encode(), token.encode())
        return ok and scheme.lower() == "bearer"

    # --- POST /v1/traces ------------------------------------------------------------------------------------------
    def _traces(self) -> None:
        service = self.server.service
        limit = service.config.max_body_bytes
        try:
            encoding = otlp.encoding_of(self.headers.get("Content-Type"))
        except otlp.PayloadError as error:
            self._reply(error.status, (error.message + "\n").encode(), _TEXT)
            return
        try:
            length = self._content_length()
            if length is not None and length > limit:
                raise otlp.PayloadError(413, f"body of {length} bytes exceeds the limit of {limit} bytes")
            with service._work:
                body = self._read_body(length, limit)
                payload = otlp.decompress(body, self.headers.get("Content-Encoding"), limit)
                del body
                request = otlp.parse_request(payload, encoding)
                del payload
                extracted = otlp.extract_records(request)
                del request
                self._write(extracted, encoding)
        except otlp.PayloadError as error:
            self._reply(error.status, otlp.encode_status(encoding, error.status, error.message), encoding.content_type)

    def _write(self, extracted: otlp.Extracted, encoding: otlp.Encoding) -> None:
        service = self.server.service
        stats = service.stats
        stats.add(metrics.SPANS_RECEIVED, extracted.spans)
        stats.add(metrics.SPANS_IGNORED, extracted.ignored)
        if extracted.records:
            try:
                result = _write_or_reject(service.store, extracted)
            except StoreUnavailable as error:
                stats.add(metrics.WRITE_FAILURES)
                logger.warning("store unavailable, answering 503: %s", error)
                self._unavailable(encoding, f"ledger store unavailable: {error}", error.retry_after_s)
                return
            except Exception as error:
                # Unknown store failure: still 503, so the sender keeps the batch (500 would make it drop it).
                stats.add(metrics.WRITE_FAILURES)
                logger.error("store write failed (%s), answering 503", type(error).__name__, exc_info=True)
                self._unavailable(encoding, f"ledger store write failed: {type(error).__name__}", 1.0)
                return
            stats.add(metrics.RECORDS_WRITTEN, result.written)
            stats.add(metrics.DUPLICATES, result.duplicates)
            stats.add(metrics.WRITE_RETRIES, result.retries)
            stats.saw_environments({record.environment for record in extracted.records})
        if extracted.rejected:
            stats.add(metrics.SPANS_REJECTED, extracted.rejected)
            logger.warning("rejected %d invalid cost span(s) (reported in partial_success)", extracted.rejected)
        body = otlp.encode_response(encoding, extracted.rejected, extracted.error_message())
        self._reply(200, body, encoding.content_type)

    def _unavailable(self, encoding: otlp.Encoding, message: str, retry_after_s: float) -> None:
        retry_after = str(max(1, math.ceil(retry_after_s)))  # whole seconds: what every client parses
        body = otlp.encode_status(encoding, 503, message)
        self._reply(503, body, encoding.content_type, {"Retry-After": retry_after})

    def _content_length(self) -> int | None:
        """The declared length; None for a chunked body. PayloadError when neither is usable."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        raw = self.headers.get("Content-Length")
        if raw is None:
            raise otlp.PayloadError(411, "Content-Length required")
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            raise otlp.PayloadError(400, f"invalid Content-Length {raw!r}")
        return length

    def _read_body(self, length: int | None, limit: int) -> bytes:
        if length is None:
            body = self._read_chunked(limit)
        else:
            body = self.rfile.read(length)
            if len(body) < length:
                raise ConnectionAbortedError("client closed the connection mid-body")
        self._body_read = True
        return body

    def _read_chunked(self, limit: int) -> bytes:
        out = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise otlp.PayloadError(400, "invalid chunked transfer encoding") from None
            if size == 0:
                while self.rfile.readline(8192).strip():  # trailers, if any
                    pass
                return bytes(out)
            if len(out) + size > limit:
                raise otlp.PayloadError(413, f"body exceeds the limit of {limit} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise ConnectionAbortedError("client closed the connection mid-body")
            out += chunk
            self.rfile.readline(16)  # the CRLF after the chunk

    # --- GET /healthz, /metrics, /v1/usage ------------------------------------------------------------------------
    def _health(self) -> None:
        service = self.server.service
        try:
            ping = getattr(service.store, "ping", None)
            if callable(ping):
                ping()
            else:
                service.store.totals("healthz", service.clock().strftime("%Y-%m-%d"))
        except Exception as error:
            body = {"status": "unavailable", "error": type(error).__name__}
            self._reply(503, _json(body), _JSON, {"Retry-After": "1"})
            return
        self._reply(200, _json({"status": "ok"}), _JSON)

    def _metrics(self) -> None:
        service = self.server.service
        text = metrics.render(service.stats, service.store, service.environments, service.clock)
        self._reply(200, text.encode(), metrics.CONTENT_TYPE)

    def _usage(self, query_string: str) -> None:
        store = self.server.service.store
        try:
            request = usage_api.parse_parameters(parse_qs(query_string, keep_blank_values=True))
        except usage_api.BadParameter as error:
            self._reply(400, _json({"error": error.message, "parameter": error.parameter}), _JSON)
            return
        try:
            document = usage_api.answer(store, request)
        except StoreUnavailable as error:
            retry_after = str(max(1, math.ceil(error.retry_after_s)))
            self._reply(503, _json({"error": "ledger store unavailable"}), _JSON, {"Retry-After": retry_after})
            return
        except Exception as error:
            logger.error("usage query failed", exc_info=True)
            self._reply(500, _json({"error": f"query failed: {type(error).__name__}"}), _JSON)
            return
        self._reply(200, _json(document), _JSON)

    # --- answers --------------------------------------------------------------------------------------------------
    def _reply(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        service = self.server.service
        # An answer before the body was read leaves it in the socket: the connection cannot be reused.
        has_body = self.headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in self.headers
        early = has_body and not self._body_read
        self._replied = True  # set first: a failed write must not be followed by a second answer
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if (early or service.draining) and "Connection" not in (headers or {}):
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        service.stats.add(metrics.HTTP_REQUESTS, labels=(self._route, str(status)))
        if early:
            self._linger()

    def _linger(self) -> None:
        """Swallows what remains of the body for a moment: closing with unread data makes the kernel reset the
        connection, and the client would see a connection error instead of our answer (e.g. the 413)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.2)
            deadline = time.monotonic() + _LINGER_S
            swallowed = 0
            while time.monotonic() < deadline and swallowed < _LINGER_BYTES:
                try:
                    chunk = self.connection.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                swallowed += len(chunk)
        except OSError:
            pass


def _json(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _refuse(connection: socket.socket) -> None:
    try:
        connection.settimeout(1.0)
        connection.sendall(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    except OSError:
        pass


def _shutdown_socket(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _write_or_reject(store: LedgerStore, extracted: otlp.Extracted) -> WriteResult:
    """Writes the batch; a record the store can never hold is rejected alone (partial_success), not answered with
    a 503 that would make the sender retry the whole batch forever."""
    try:
        return store.write(extracted.records)
    except InvalidRecord:
        pass
    written = duplicates = retries = 0
    kept = []
    for record in extracted.records:
        try:
            result = store.write([record])
        except InvalidRecord as error:
            extracted.reject(f"span {record.trace_id}/{record.span_id}: {error}")
            continue
        kept.append(record)
        written, duplicates, retries = (
            written + result.written,
            duplicates + result.duplicates,
            retries + result.retries,
        )
    extracted.records = kept
    return WriteResult(written, duplicates, retries)
