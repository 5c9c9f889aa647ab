"""The ledger service's HTTP server: OTLP/HTTP trace ingest, health, Prometheus metrics and the usage query API.

Standard library only (`http.server.ThreadingHTTPServer`). Semantics the OTel Collector's `otlp_http` exporter relies
on: 200 with an `ExportTraceServiceResponse` (`partial_success` for rejected cost spans); 503 with `Retry-After`
when the store cannot take the write (the collector retries only 429/502/503/504 and drops on anything else, so a
store failure is never a 500); 400 for malformed payloads; 413 for oversize ones; 401 without the bearer token.
Writes are idempotent in the store, so a retry of a batch that was in fact written never counts twice.

Limits (`connections.py`; the table in docs/ledger.md): connections (`max_connections` in all,
`max_connections_per_client` per address; at a cap the longest-idle connection is closed to make room, and when every
connection is busy a reserved slot still answers `/healthz`; beyond that a connection is answered 503 at once); the
time a request head (`header_timeout_s`) and a body (`body_timeout_s`, then 408) may take; the body bytes buffered by
all requests together (`max_buffered_body_bytes`, then 503); requests processed at once (`workers`, each decoding one
`ResourceSpans` at a time). A worker is taken only once the body has arrived, so slow senders never hold one.
Shutdown stops accepting, answers requests that arrive meanwhile with 503 (the sender retries elsewhere or later),
waits for the in-flight writes, then closes the store.
"""

from __future__ import annotations

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

from otel_ai_cost.ledger.isolation import write_isolating
from otel_ai_cost.ledger.service import access, metrics, otlp, usage_api
from otel_ai_cost.ledger.service.connections import (
    Admission,
    BudgetSpent,
    ByteBudget,
    Connection,
    ConnectionTable,
    Limits,
    Phase,
    release_memory,
)
from otel_ai_cost.ledger.store import LedgerStore, StoreUnavailable, WriteResult

logger = logging.getLogger("otel_ai_cost.ledger.service")

TRACES_PATH = "/v1/traces"
USAGE_PATH = "/v1/usage"
METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
AI_USAGE_PATH = "/ai_usage"  # the seeds' route: `service` means the provider
_READ = ("GET", "HEAD")
_ROUTES = {
    TRACES_PATH: ("POST",), USAGE_PATH: _READ, AI_USAGE_PATH: _READ, METRICS_PATH: _READ, HEALTH_PATH: _READ,
}  # fmt: skip
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
_LINGER_S = 2.0  # after an early error answer, how long to swallow the rest of the body so the client reads it
_LINGER_BYTES = 64 * 1024 * 1024
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
_READ_CHUNK = 256 * 1024  # body bytes read (and reserved from the budget) at a time


@dataclass(frozen=True)
class ServiceConfig:
    host: str = "127.0.0.1"
    port: int = 4319  # next to the collector's 4318
    token: str | None = None  # one bearer token for every environment; None (and no `tokens`): no authentication
    tokens: access.TokenTable | None = None  # per-environment scoped tokens (the tokens file); excludes `token`
    max_body_bytes: int = 16 * 1024 * 1024  # compressed (Content-Length) and decompressed
    max_connections: int = 64  # at the cap, the longest-idle connection is closed to make room
    max_connections_per_client: int = 16  # per client address, likewise
    health_slots: int = 4  # connections beyond the caps, for /healthz only, when no connection is idle
    workers: int = 8  # requests decoded and written at once (memory: docs/ledger.md "Limits")
    max_buffered_body_bytes: int | None = None  # body bytes held by all requests together; None: workers x body
    header_timeout_s: float = 10.0  # a request head (or a new connection's first request) must be complete by then
    body_timeout_s: float = 30.0  # a body must have arrived this long after its head, else 408
    idle_timeout_s: float = 60.0  # an idle keep-alive connection is closed after this long
    drain_timeout_s: float = 30.0  # how long shutdown waits for in-flight requests
    metrics_top_n: int = metrics.DEFAULT_TOP_N  # /metrics: models, teams, operation types per environment and period
    metrics_max_environments: int = metrics.DEFAULT_MAX_ENVIRONMENTS  # /metrics: environments shown; rest `other`
    warn_open_binding: bool = True  # start() warns when beyond loopback without a token (`serve` warns earlier)

    def __post_init__(self) -> None:
        for name in _POSITIVE_LIMITS:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)!r}")
        if self.token is not None and self.tokens is not None:
            raise ValueError("give either one token (every environment) or a tokens file, not both")
        metrics.LabelBounds(self.metrics_top_n, self.metrics_max_environments)  # validates them

    @property
    def buffered_body_bytes(self) -> int:
        return self.max_buffered_body_bytes or self.workers * self.max_body_bytes

    def connection_limits(self) -> Limits:
        return Limits(
            max_connections=self.max_connections,
            max_connections_per_client=self.max_connections_per_client,
            health_slots=self.health_slots,
            header_timeout_s=self.header_timeout_s,
            body_timeout_s=self.body_timeout_s,
            idle_timeout_s=self.idle_timeout_s,
        )

    @property
    def access_tokens(self) -> access.TokenTable | None:
        """The accepted tokens, whichever way they were given; None: no authentication."""
        return access.TokenTable.single(self.token) if self.token is not None else self.tokens


_POSITIVE_LIMITS = (
    "max_body_bytes", "max_connections", "max_connections_per_client", "workers", "header_timeout_s",
    "body_timeout_s", "idle_timeout_s",
)  # fmt: skip


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
        self._connections = ConnectionTable(self.config.connection_limits())
        self._body_budget = ByteBudget(self.config.buffered_body_bytes)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> LedgerService:
        self._observe_connections()
        self._server = _Server((self.config.host, self.config.port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="ledger-accept", daemon=True
        )  # a short poll interval: shutdown() waits up to one interval for the accept loop
        self._thread.start()
        logger.info("ledger service listening on %s", self.url)
        self._warn_if_open()
        return self

    def _observe_connections(self) -> None:
        """The connection table's counts of connections it closed or refused, exposed on /metrics."""
        table = self._connections
        self.stats.observe(metrics.CONNECTIONS_EVICTED, lambda: table.evicted)
        self.stats.observe(metrics.CONNECTIONS_TIMED_OUT, lambda: table.timed_out)
        self.stats.observe(metrics.CONNECTIONS_REFUSED, lambda: table.refused)

    def _warn_if_open(self) -> None:
        """Anyone who can reach a non-loopback address without a token can read and write every environment."""
        if not self.config.warn_open_binding:
            return
        warning = access.open_binding_warning(self.config.host, self.config.access_tokens is not None)
        if warning:
            logger.warning("%s", warning)

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

    def _open_connections(self) -> list[socket.socket]:
        return self._connections.sockets()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # shutdown waits for in-flight requests itself, not for idle keep-alive connections
    block_on_close = False
    allow_reuse_address = True  # restart on the same port at once after a crash
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[_Handler], service: LedgerService) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.service = service
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        connection = self.service._connections.admit(request, str(client_address[0]))
        if connection.admission is Admission.REFUSED:
            # Shed load instead of blocking the accept loop: 503 is retried by every OTLP sender.
            _refuse(request)
            self.shutdown_request(request)
            return
        thread = threading.Thread(
            target=self._serve, args=(request, client_address, connection), name="ledger-connection", daemon=True
        )
        try:
            thread.start()
        except BaseException:
            self.service._connections.remove(connection)
            self.shutdown_request(request)
            raise

    def _serve(self, request: Any, client_address: Any, connection: Connection) -> None:
        try:
            _Handler(request, client_address, self, connection)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.service._connections.remove(connection)
            self.shutdown_request(request)

    def service_actions(self) -> None:
        """Run by the accept loop between accepts: closes connections past their phase's deadline."""
        self.service._connections.sweep()

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
    def __init__(self, request: Any, client_address: Any, server: _Server, entry: Connection) -> None:
        self._entry = entry  # this connection in the service's table: its phase, deadline and admission
        self._requests_served = 0
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        self.timeout = self.server.service.config.idle_timeout_s
        super().setup()
        # Headers and body leave as separate writes: without this, Nagle + delayed ACK add ~40 ms per answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass

    def handle_one_request(self) -> None:
        """Waits for the next request's first byte (an idle, evictable connection), then reads its head against the
        header deadline; only a complete head is dispatched."""
        table = self.server.service._connections
        first = self._requests_served == 0
        table.enter(self._entry, Phase.WAITING, first_request=first)
        try:
            ready = self.rfile.peek(1)
        except (OSError, ValueError):  # timed out, reset, or shut down by the table
            ready = b""
        if not ready or self._entry.closed_by_server:
            self.close_connection = True
            return
        table.enter(self._entry, Phase.HEAD, first_request=first)
        self._requests_served += 1
        super().handle_one_request()

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
        if self._entry.closed_by_server:  # past the header deadline: what was read is not a whole request
            self.close_connection = True
            return
        service._connections.enter(self._entry, Phase.BUSY)
        if self._entry.admission is Admission.HEALTH_ONLY:
            self._health_only(split.path)
            return
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

    def _health_only(self, path: str) -> None:
        """A connection admitted beyond the caps: `/healthz` is answered, anything else 503; then it is closed."""
        self.close_connection = True
        if path == HEALTH_PATH and self.command in _READ:
            self._health()
        else:
            self._reply(503, b"too many connections\n", _TEXT, {"Retry-After": "1", "Connection": "close"})

    def _authorized(self) -> bool:
        """Authenticates the request and keeps its scope (the environments it may write and read) in `_scope`."""
        scope = access.request_scope(self.server.service.config.access_tokens, self.headers.get("Authorization", ""))
        self._scope = scope or access.Scope("(refused)", frozenset(), frozenset())
        return scope is not None

    # --- POST /v1/traces ------------------------------------------------------------------------------------------
    def _traces(self) -> None:
        service = self.server.service
        limit = service.config.max_body_bytes
        try:
            encoding = otlp.encoding_of(self.headers.get("Content-Type"))
        except otlp.PayloadError as error:
            self._reply(error.status, (error.message + "\n").encode(), _TEXT)
            return
        self._reserved = 0
        size = 0
        try:
            length = self._content_length()
            if length is not None and length > limit:
                raise otlp.PayloadError(413, f"body of {length} bytes exceeds the limit of {limit} bytes")
            body = self._read_body(length, limit)  # before taking a worker: a slow sender holds none
            with service._work:
                payload = otlp.decompress(body, self.headers.get("Content-Encoding"), limit)
                size = max(len(body), len(payload))
                del body  # a compressed body; the payload (or the body itself) stays until its records exist
                extracted = otlp.decode_records(payload, encoding)  # one ResourceSpans at a time
                del payload
                access.restrict_writes(self._scope, extracted)  # records outside the token's environments
                self._write(extracted, encoding)
                del extracted
        except otlp.PayloadError as error:
            headers = {"Retry-After": "1"} if error.status == 503 else None
            body_out = otlp.encode_status(encoding, error.status, error.message)
            self._reply(error.status, body_out, encoding.content_type, headers)
        finally:
            service._body_budget.give_back(self._reserved)
            release_memory(size)

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
            stats.add(metrics.RECORD_CONFLICTS, result.conflicts)
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

    def _read_body(self, length: int | None, limit: int) -> bytearray:
        """The body, read against the body deadline (408 past it), each chunk reserved from the budget of body bytes
        all requests may buffer together (503 when it is spent)."""
        service = self.server.service
        service._connections.enter(self._entry, Phase.BODY)
        self._body_deadline = time.monotonic() + service.config.body_timeout_s
        try:
            if length is None:
                body = self._read_chunked(limit)
            else:
                body = bytearray()
                while len(body) < length:
                    body += self._receive(self.rfile.read1, min(length - len(body), _READ_CHUNK))
        finally:
            self.connection.settimeout(service.config.idle_timeout_s)
            service._connections.enter(self._entry, Phase.BUSY)
        self._body_read = True
        return body

    def _receive(self, read: Callable[[int], bytes], size: int, reserve: bool = True) -> bytes:
        """One read of the body, bounded by what is left of the body deadline."""
        remaining = self._body_deadline - time.monotonic()
        timeout = self.server.service.config.body_timeout_s
        late = otlp.PayloadError(408, f"request body not received within {timeout:g} s")
        if remaining <= 0:
            raise late
        self.connection.settimeout(remaining)
        try:
            data = read(size)
        except TimeoutError:
            raise late from None
        if not data:
            raise ConnectionAbortedError("client closed the connection mid-body")
        if reserve:
            try:
                self.server.service._body_budget.take(len(data))
            except BudgetSpent as error:
                raise otlp.PayloadError(503, f"the service is busy receiving other bodies ({error})") from None
            self._reserved += len(data)
        return data

    def _read_chunked(self, limit: int) -> bytearray:
        out = bytearray()
        while True:
            line = self._receive(self.rfile.readline, 1024, reserve=False)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise otlp.PayloadError(400, "invalid chunked transfer encoding") from None
            if size == 0:
                while self._receive(self.rfile.readline, 8192, reserve=False).strip():  # trailers, if any
                    pass
                return out
            if len(out) + size > limit:
                raise otlp.PayloadError(413, f"body exceeds the limit of {limit} bytes")
            end = len(out) + size
            while len(out) < end:
                out += self._receive(self.rfile.read1, min(end - len(out), _READ_CHUNK))
            self._receive(self.rfile.readline, 16, reserve=False)  # the CRLF after the chunk

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
        config = service.config
        bounds = metrics.LabelBounds(config.metrics_top_n, config.metrics_max_environments)
        scope = self._scope
        text = metrics.render(service.stats, service.store, service.environments, service.clock, bounds, scope.may_read)
        self._reply(200, text.encode(), metrics.CONTENT_TYPE)

    def _usage(self, query_string: str) -> None:
        """GET /v1/usage and the seeds' /ai_usage, limited to the environments the token may read."""
        service = self.server.service
        params = parse_qs(query_string, keep_blank_values=True)
        try:
            request: usage_api.UsageRequest | usage_api.AiUsageRequest
            if self._route == AI_USAGE_PATH:
                request = usage_api.parse_ai_usage(params, service.clock().astimezone(timezone.utc).date())
            else:
                request = usage_api.parse_parameters(params)
        except usage_api.BadParameter as error:
            self._reply(400, _json({"error": error.message, "parameter": error.parameter}), _JSON)
            return
        try:
            document = usage_api.answer(access.ScopedReader(service.store, self._scope), request)
        except access.OutOfScope as error:
            self._reply(403, _json({"error": str(error), "parameter": "environment"}), _JSON)
            return
        except StoreUnavailable as error:
            retry_after = str(max(1, math.ceil(error.retry_after_s)))
            self._reply(503, _json({"error": "ledger store unavailable"}), _JSON, {"Retry-After": retry_after})
            return
        except Exception as error:
            logger.error("usage query failed", exc_info=True)
            self._reply(500, _json({"error": f"query failed: {type(error).__name__}"}), _JSON)
            return
        self._reply(200, usage_api.to_json(document), _JSON)

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
    """Writes the batch; a record the store can never hold is rejected alone (partial_success, with the store's
    reason) instead of a 503 that every retry of the batch would hit again (`ledger/isolation.py`).
    `extracted.records` keeps the records that were written or already stored."""
    outcome = write_isolating(store, extracted.records)
    for record, error in outcome.rejected:
        extracted.reject(f"span {record.trace_id}/{record.span_id}: {error}")
    extracted.records = outcome.stored
    return outcome.result
