"""`otel-ai-cost budgets alert-log`: an Alertmanager webhook receiver that prints one JSON line per alert.

The compose stack's `default-webhook` receiver posts every notification here, so `docker compose logs
ai-cost-alert-webhook` shows what Alertmanager sent without Slack or SMTP being set up::

    otel-ai-cost budgets alert-log --host 0.0.0.0 --port 9099

It reads Alertmanager's webhook payload (version "4", POSTed as JSON to any path but `/healthz`) and writes, for
each alert, one line to standard output::

    {"status": "firing", "alertname": "AICostBudgetThreshold", "severity": "warning", "environment": "production",
     "budget": "production/day", "period": "day", "scope": "environment", "threshold": "80",
     "startsAt": "2025-01-01T10:00:00Z", "summary": "AI spend reached 80% of the daily production budget",
     "receiver": "default-webhook", "fingerprint": "..."}

(one line each; `endsAt` is added for resolved alerts). It answers 200 once the lines are written, 400 with
`{"error": "..."}` saying what is wrong with a payload it cannot read (also printed to standard error), and
`GET /healthz` answers 200 for health checks. It keeps nothing: it is a log, not a store.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, TextIO

import click

__all__ = [
    "BUDGET_LABELS",
    "DEFAULT_PORT",
    "AlertLogServer",
    "PayloadError",
    "alert_log",
    "alert_records",
    "parse_payload",
]

DEFAULT_PORT = 9099
PAYLOAD_VERSION = "4"  # Alertmanager's webhook payload version (0.25 and later)
MAX_BODY_BYTES = 8 * 1024 * 1024
HEALTH_PATH = "/healthz"
# The labels the budget rules put on their alerts (budgets/rules.py), printed when present.
BUDGET_LABELS = ("budget", "period", "scope", "threshold", "provider", "team", "operation_type")
_STATUSES = ("firing", "resolved")


class PayloadError(ValueError):
    """A body that is not Alertmanager's version 4 webhook payload; the message says what is wrong."""


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _string_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise PayloadError(f"{where}: expected an object of strings, got {_kind(value)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise PayloadError(f"{where}.{key}: expected a string, got {_kind(item)}")
    return value


def parse_payload(body: bytes) -> dict[str, Any]:
    """The payload of one webhook POST, checked to be Alertmanager's version 4; raises PayloadError otherwise."""
    if not body.strip():
        raise PayloadError("empty body: expected Alertmanager's webhook JSON")
    try:
        payload = json.loads(body)
    except UnicodeDecodeError as exc:
        raise PayloadError(f"body is not UTF-8 text: {exc}") from None
    except ValueError as exc:
        raise PayloadError(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise PayloadError(f"expected a JSON object (Alertmanager's webhook payload), got {_kind(payload)}")
    version = payload.get("version")
    if version != PAYLOAD_VERSION:
        found = 'no "version"' if version is None else f"version {json.dumps(version)}"
        raise PayloadError(f'{found}: this receiver reads Alertmanager\'s webhook payload version "{PAYLOAD_VERSION}"')
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError(f"alerts: expected an array, got {_kind(alerts) if 'alerts' in payload else 'nothing'}")
    for index, alert in enumerate(alerts):
        where = f"alerts[{index}]"
        if not isinstance(alert, dict):
            raise PayloadError(f"{where}: expected an object, got {_kind(alert)}")
        if alert.get("status") not in _STATUSES:
            raise PayloadError(
                f'{where}.status: expected "firing" or "resolved", got {json.dumps(alert.get("status"))}'
            )
        _string_map(alert.get("labels"), f"{where}.labels")
        _string_map(alert.get("annotations", {}), f"{where}.annotations")
        for key in ("startsAt", "endsAt", "fingerprint"):
            if key in alert and not isinstance(alert[key], str):
                raise PayloadError(f"{where}.{key}: expected a string, got {_kind(alert[key])}")
    return payload


def alert_records(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat record per alert of a parsed payload: what the log line says."""
    records = []
    for alert in payload["alerts"]:
        labels: dict[str, str] = alert["labels"]
        annotations: dict[str, str] = alert.get("annotations", {})
        record: dict[str, Any] = {
            "status": alert["status"],
            "alertname": labels.get("alertname"),
            "severity": labels.get("severity"),
            # Budget and ledger alerts carry `environment`; those on the collector's metrics the resource attribute.
            "environment": labels.get("environment", labels.get("deployment_environment_name")),
        }
        record.update((name, labels[name]) for name in BUDGET_LABELS if name in labels)
        record["startsAt"] = alert.get("startsAt")
        if alert["status"] == "resolved":
            record["endsAt"] = alert.get("endsAt")
        record["summary"] = annotations.get("summary")
        record["receiver"] = payload.get("receiver")
        if "fingerprint" in alert:
            record["fingerprint"] = alert["fingerprint"]
        records.append(record)
    return records


class AlertLogServer:
    """The receiver: binds `host`:`port` (0: a free port) when started, writes the alert lines to `out` and the
    rejected requests to `err`. `start()` serves in a daemon thread; `serve_forever()` in the calling thread."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, out: TextIO | None = None, err: TextIO | None = None
    ) -> None:
        self._out = out
        self._err = err
        self._write_lock = threading.Lock()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.alert_log = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._httpd.server_address[0])
        return f"http://{host}:{self.port}"

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve in the calling thread until `stop()` from another thread (or an exception, e.g. SIGINT's)."""
        self._httpd.serve_forever(poll_interval=poll_interval)

    def start(self) -> AlertLogServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="alert-log", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (when started) and close the socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> AlertLogServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def write(self, records: list[dict[str, Any]]) -> None:
        self._lines(self._out or sys.stdout, [json.dumps(record) for record in records])

    def reject(self, error: str, path: str) -> None:
        self._lines(self._err or sys.stderr, [json.dumps({"error": error, "path": path})])

    def _lines(self, stream: TextIO, lines: list[str]) -> None:
        with self._write_lock:  # one notification's lines together, whatever other requests do
            for line in lines:
                stream.write(line + "\n")
            stream.flush()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    alert_log: AlertLogServer


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive: Alertmanager reuses its connections
    timeout = 30  # a client that stops sending does not hold a thread for ever
    server_version = "otel-ai-cost-alert-log"

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == HEALTH_PATH:
            self._answer(200, {"status": "ok"})
        else:
            self._answer(404, {"error": f"GET {HEALTH_PATH} for health; Alertmanager POSTs its webhooks"})

    def do_POST(self) -> None:
        log = self.server.alert_log
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self.close_connection = True
            self._fail(411, "no Content-Length: send the webhook JSON with its length")
            return
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._fail(400, f"bad Content-Length {length_header!r}")
            return
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the body is left unread
            self._fail(413, f"body of {length} bytes is over the {MAX_BODY_BYTES} bytes this receiver reads")
            return
        body = self.rfile.read(length)
        if self.path.split("?", 1)[0] == HEALTH_PATH:
            self._fail(405, f"{HEALTH_PATH} is for GET; post webhooks to another path")
            return
        try:
            records = alert_records(parse_payload(body))
        except PayloadError as exc:
            self._fail(400, str(exc))
            return
        log.write(records)
        self._answer(200, {"status": "ok", "alerts": len(records)})

    def _fail(self, code: int, error: str) -> None:
        self.server.alert_log.reject(error, self.path)
        self._answer(code, {"error": error})

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = (json.dumps(body) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log: standard output holds the alert lines, and rejections are reported by _fail


@click.command("alert-log")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 in a container).")
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free)."
)
def alert_log(host: str, port: int) -> None:
    """Receive Alertmanager webhooks and print one JSON line per alert to standard output (GET /healthz: health)."""
    try:
        server = AlertLogServer(host, port)
    except OSError as exc:  # e.g. the port is taken
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None

    def stop(signum: int, frame: FrameType | None) -> None:
        # `docker stop` sends SIGTERM, which a process with PID 1 would otherwise ignore.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    click.echo(
        f"alert-log: listening on {server.url} (Alertmanager webhooks: POST; health: GET {HEALTH_PATH})", err=True
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
