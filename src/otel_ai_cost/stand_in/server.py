"""The stand-in HTTP server: answers the real `openai` and `anthropic` SDKs exactly like the providers do.

Stdlib only (`http.server.ThreadingHTTPServer`), so it ships inside the package and the demo can run it on a
fresh machine::

    with StandInServer() as server:
        server.push(Scenario(prompt_tokens=1200, cached_tokens=1024, completion_tokens=50))
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="test")
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        assert server.requests[-1].path == "/v1/chat/completions"

`serve(port)` runs it in the foreground (for a CLI command).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType, TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import anthropic_api, anthropic_billing, openai_api, openai_billing
from .billing_book import BillingBook
from .scenario import Answer, PromptCache, Provider, RecordedRequest, Scenario

Handler = Callable[[RecordedRequest, Scenario, PromptCache], Answer]

ROUTES: dict[str, tuple[Provider, Handler]] = {
    "/v1/chat/completions": ("openai", openai_api.chat_completions),
    "/v1/responses": ("openai", openai_api.responses),
    "/v1/embeddings": ("openai", openai_api.embeddings),
    "/v1/images/generations": ("openai", openai_api.images),
    "/v1/audio/transcriptions": ("openai", openai_api.transcriptions),
    "/v1/messages": ("anthropic", anthropic_api.messages),
    "/v1/messages/count_tokens": ("anthropic", anthropic_api.count_tokens),
}
_APIS: dict[Provider, ModuleType] = {"openai": openai_api, "anthropic": anthropic_api}
_BILLING: dict[Provider, ModuleType] = {"openai": openai_billing, "anthropic": anthropic_billing}
# The providers' billing endpoints (GET), answered from `StandInServer.billing`.
BILLING_ROUTES: dict[str, tuple[Provider, Any]] = {
    **{path: ("openai", handler) for path, handler in openai_billing.ROUTES.items()},
    **{path: ("anthropic", handler) for path, handler in anthropic_billing.ROUTES.items()},
}
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class StandInServer:
    """A local server answering like the OpenAI and Anthropic APIs; scripted with `push(Scenario(...))`.

    Binds `host` on `port` (0: a free port) when started; serves each connection in a daemon thread.
    Queued scenarios answer the next requests in order (any endpoint, or only `path` when pushed with one);
    with the queue empty, a deterministic default answer is computed from the request.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._queue: deque[tuple[Scenario, str | None]] = deque()
        self._requests: list[RecordedRequest] = []
        self._caches: dict[Provider, PromptCache] = {"openai": PromptCache(), "anthropic": PromptCache()}
        # What the billing endpoints bill: every successful model answer adds its usage (see `billing_book`).
        self.billing = BillingBook()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> StandInServer:
        """Bind and serve in a daemon thread. Returns self."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer((self._host, self._requested_port), _RequestHandler)
        httpd.stand_in = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="stand-in-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections (ending delays and streams at once), join the threads."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections.items())
        for conn, _ in connections:
            _shutdown(conn)
        for _, handler_thread in connections:
            handler_thread.join(timeout=2)
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=2)
        self._httpd = self._thread = None

    def __enter__(self) -> StandInServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- addresses ------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the stand-in server is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://{self._host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """`http://127.0.0.1:PORT/v1`, for `openai.OpenAI(base_url=...)`."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """`http://127.0.0.1:PORT`, for `anthropic.Anthropic(base_url=...)`."""
        return self.url

    # --- scripting ------------------------------------------------------------------------------------------

    def push(self, *scenarios: Scenario, path: str | None = None) -> None:
        """Queue scenarios for the next requests, in order. With `path` (e.g. `"/v1/messages"`), they only
        answer requests to that path; other requests skip them."""
        for scenario in scenarios:
            if not isinstance(scenario, Scenario):
                raise TypeError(f"push() takes Scenario objects, not {type(scenario).__name__}")
        with self._lock:
            self._queue.extend((scenario, path) for scenario in scenarios)

    @property
    def pending(self) -> int:
        """How many pushed scenarios are still unused."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a copy), oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The requests received on `path` (query string excluded)."""
        return [request for request in self.requests if request.path == path]

    def reset(self) -> None:
        """Forget queued scenarios, recorded requests and the simulated prompt caches."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
        self.billing.clear()
        with self._build_lock:
            for cache in self._caches.values():
                cache.clear()

    # --- used by the request handler ------------------------------------------------------------------------

    def _take(self, path: str) -> Scenario | None:
        with self._lock:
            for index, (scenario, only) in enumerate(self._queue):
                if only is None or only == path:
                    del self._queue[index]
                    return scenario
        return None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _register(self, conn: socket.socket, thread: threading.Thread | None) -> None:
        with self._lock:
            if thread is None:
                self._connections.pop(conn, None)
            else:
                self._connections[conn] = thread

    def _wait(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def _answer(self, request: RecordedRequest, scenario: Scenario) -> Answer:
        if request.method == "GET" and request.path in BILLING_ROUTES:
            return self._billing_answer(request, scenario)
        answer = self._model_answer(request, scenario)
        route = ROUTES.get(request.path)
        if route is not None and answer.status == 200:
            served = _BILLING[route[0]].served_usage(request, answer)
            if served is not None:
                self.billing.add(served)
        return answer

    def _billing_answer(self, request: RecordedRequest, scenario: Scenario) -> Answer:
        provider, handler = BILLING_ROUTES[request.path]
        api = _APIS[provider]
        if scenario.status is not None:
            answer = api.error_answer(scenario.status, scenario)
            answer.headers.update(scenario.headers)
            return answer
        try:
            return handler(request, self.billing)
        except Exception as err:  # a stand-in bug or a bad query: say so, and stop the SDK retrying
            return api.error_answer(
                500, Scenario(should_retry=False), message=f"stand-in failed: {type(err).__name__}: {err}"
            )

    def _model_answer(self, request: RecordedRequest, scenario: Scenario) -> Answer:
        route = ROUTES.get(request.path) if request.method == "POST" else None
        if route is None:
            api = anthropic_api if _is_anthropic(request.headers) else openai_api
            return api.error_answer(404, message=f"Unknown request URL: {request.method} {request.path}.")
        provider, handler = route
        api = _APIS[provider]
        if scenario.provider is not None and scenario.provider != provider:
            fields = scenario.openai_fields_set() or scenario.anthropic_fields_set()
            return api.error_answer(
                400,
                Scenario(should_retry=False),
                message=f"stand-in: the scenario sets {scenario.provider} usage fields {fields}, "
                f"but was consumed by {request.path} ({provider})",
            )
        if scenario.status is not None:
            answer: Answer = api.error_answer(scenario.status, scenario)
            answer.headers.update(scenario.headers)
            return answer
        try:
            with self._build_lock:
                return handler(request, scenario, self._caches[provider])
        except Exception as err:  # a stand-in bug or an unexpected body: say so, and stop the SDK retrying
            return api.error_answer(
                500, Scenario(should_retry=False), message=f"stand-in failed: {type(err).__name__}: {err}"
            )


def canonical_path(path: str) -> str:
    """The provider path a gateway-style or Azure-style URL stands for, so one server answers them all:
    `/xai/v1/chat/completions` -> `/v1/chat/completions`, and Azure's
    `/openai/deployments/{name}/chat/completions` -> `/v1/chat/completions`."""
    path = path.rstrip("/") or "/"
    if "/deployments/" in path:
        _, _, rest = path.partition("/deployments/")
        _, _, endpoint = rest.partition("/")
        return f"/v1/{endpoint}"
    if "/v1/" in path and not path.startswith("/v1/"):
        return path[path.index("/v1/") :]
    return path


def _is_anthropic(headers: dict[str, str]) -> bool:
    return "anthropic-version" in headers or "x-api-key" in headers


def _shutdown(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    stand_in: StandInServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (timeouts, disconnect tests) are normal; report anything else."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    server_version = "stand-in"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate writes: without this, Nagle + delayed ACK add ~40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.stand_in._register(self.connection, threading.current_thread())

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.stand_in._register(self.connection, None)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests and the demo read `server.requests` instead."""

    def do_POST(self) -> None:
        self._handle()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def _handle(self) -> None:
        stand_in = self.server.stand_in
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        split = urlsplit(self.path)
        path = canonical_path(split.path)
        scenario = stand_in._take(path) if path in ROUTES or path in BILLING_ROUTES else None
        request = RecordedRequest(
            method=self.command,
            path=path,
            query=dict(parse_qsl(split.query)),
            query_list=parse_qsl(split.query),
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
            scenario=scenario,
        )
        stand_in._record(request)
        scenario = scenario or Scenario()
        stand_in._wait(scenario.delay_s)
        if scenario.disconnect:
            self._drop()
            return
        try:
            self._send(stand_in._answer(request, scenario))
        except _CLIENT_GONE:
            self.close_connection = True

    def _drop(self) -> None:
        """Close the socket without (finishing) an answer."""
        self.close_connection = True
        _shutdown(self.connection)

    def _send(self, answer: Answer) -> None:
        headers = {key.lower(): value for key, value in answer.headers.items()}
        self.send_response(answer.status)
        if answer.events is None:
            # Bytes are sent as they are: billing answers encode exact decimal amounts as JSON numbers themselves.
            data = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
            headers.setdefault("content-type", "application/json")
            headers["content-length"] = str(len(data))
            self._headers(headers)
            self.wfile.write(data)
            return
        headers.setdefault("content-type", "text/event-stream; charset=utf-8")
        headers.update({"transfer-encoding": "chunked", "cache-control": "no-cache"})
        self._headers(headers)
        for index, event in enumerate(answer.events):
            if index:
                self.server.stand_in._wait(answer.chunk_delay_s)
            data = event.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        if answer.cut:
            self._drop()
            return
        self.wfile.write(b"0\r\n\r\n")

    def _headers(self, headers: dict[str, str]) -> None:
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()


def serve(port: int = 0, host: str = "127.0.0.1") -> None:
    """Serve in the foreground until interrupted (Ctrl-C), printing the base URLs. For a CLI command."""
    server = StandInServer(host=host, port=port).start()
    print(f"OpenAI base URL:    {server.openai_base_url}", flush=True)
    print(f"Anthropic base URL: {server.anthropic_base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
