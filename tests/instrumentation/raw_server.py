"""A loopback HTTP server that answers every request with exactly the JSON body (and headers) a test sets.

The provider stand-ins compute their usage from typed scenario fields, so they cannot send what a broken or
hostile upstream (a gateway, a proxy, a new API version) might: token counts that are null, strings, floats,
booleans, negative, lists or absurdly large. This server sends such bodies byte for byte, so the tests can drive
the real SDK clients through them.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class RawJSONServer:
    """Answers every POST/GET with `status`, `body` (JSON-encoded) and `headers`; records request paths."""

    def __init__(self) -> None:
        self.status = 200
        self.body: Any = {}
        self.headers: dict[str, str] = {}
        self.paths: list[str] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, body: Any, *, headers: dict[str, str] | None = None, status: int = 200) -> None:
        self.body, self.headers, self.status = body, dict(headers or {}), status

    def __enter__(self) -> RawJSONServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                server.paths.append(self.path)
                payload = json.dumps(server.body).encode()
                self.send_response(server.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in server.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_POST = _reply
            do_GET = _reply

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
