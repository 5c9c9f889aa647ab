"""What the single-provider stand-ins (Bedrock, Gemini) share: a stdlib HTTP server in a daemon thread that answers
from a queue of scripted scenarios and keeps every request it received."""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is 3.11+

S = TypeVar("S")  # a scenario
R = TypeVar("R")  # a recorded request


class ScriptedServer(Generic[S, R]):
    """Queued scenarios answer the next requests in order; with the queue empty, `default_scenario()` answers.

    The handler reaches this object as `self.server.stand_in` and asks it for the next scenario with `_next()`.
    """

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        default_scenario: Callable[[], S],
        *,
        name: str,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._handler = handler
        self._default = default_scenario
        self._name = name
        self._address = (host, port)
        self._lock = threading.Lock()
        self._queue: deque[S] = deque()
        self.requests: list[R] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._httpd is None:
            httpd = _QuietServer(self._address, self._handler)
            httpd.stand_in = self  # type: ignore[attr-defined]
            self._httpd = httpd
            self._thread = threading.Thread(
                target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=self._name, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"the {self._name} is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """`http://HOST:PORT`."""
        return f"http://{self._address[0]}:{self.port}"

    def push(self, *scenarios: S) -> None:
        with self._lock:
            self._queue.extend(scenarios)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    def _next(self, request: R) -> S:
        with self._lock:
            self.requests.append(request)
            return self._queue.popleft() if self._queue else self._default()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (cut streams, timeouts) are what these tests do; report anything else."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)
