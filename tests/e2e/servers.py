"""The real processes of the end-to-end test, started and stopped by the test: the ledger service, Prometheus,
Alertmanager, plus the in-test HTTP server Alertmanager's webhooks post to.

Every process listens on a free port of 127.0.0.1 only, writes its output to a log file in the test's tmp directory
(shown when it fails to start), is waited for with a deadline, and is stopped (SIGTERM, then SIGKILL) by `stop()`,
which the fixtures call in their teardown whatever the test did.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

T = TypeVar("T")

PROMETHEUS_BINARY = "prometheus"
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name, upstream's name

ENVIRONMENT = "e2e"  # the instrumented program's deployment.environment.name, and the budget's environment
DAILY_BUDGET = Decimal("1.00")  # USD: small, so a few large calls cross 80, 95 and 100 %
MONTHLY_BUDGET = Decimal("1000")  # USD: never reached (the monthly panels need a monthly budget to show)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require_binary(*names: str) -> str:
    """The path of the first of `names` found on PATH (or in /usr/bin); fails the test, never skips it: CI installs
    them (`apt-get install prometheus prometheus-alertmanager`), and a missing binary must not pass unnoticed."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin:/usr/local/bin")
        if found:
            return found
    pytest.fail(
        f"none of {', '.join(names)} is installed: the end-to-end test needs the real servers "
        "(Debian: apt-get install -y prometheus prometheus-alertmanager)"
    )


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.2) -> T:
    """Call `probe` until it returns something truthy (returned) or `timeout` seconds pass (the test fails, saying
    what it waited for and the last error the probe raised)."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = probe()
            if result:
                return result
        except (requests.RequestException, OSError, ValueError, KeyError) as error:
            last_error = error
        if time.monotonic() >= deadline:
            suffix = f" (last error: {last_error})" if last_error else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{suffix}")
        time.sleep(interval)


class ManagedProcess:
    """A server started as a subprocess, its output in `log`, stopped by `stop()`."""

    def __init__(self, name: str, command: Sequence[str], log: Path, ready_url: str, timeout: float = 20) -> None:
        self.name = name
        self.log = log
        self._out = open(log, "ab")  # closed in stop()
        self.process = subprocess.Popen(list(command), stdout=self._out, stderr=subprocess.STDOUT)
        try:
            self._wait_ready(ready_url, timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.process.returncode} on start:\n{self.output()}")
            try:
                if requests.get(url, timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        pytest.fail(f"{self.name} was not ready at {url} within {timeout:.0f} s:\n{self.output()}")

    def output(self, tail: int = 4000) -> str:
        """The end of what the process printed (for failure messages)."""
        self._out.flush()
        return self.log.read_bytes()[-tail:].decode(errors="replace")

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds. Harmless when already stopped."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout)
        finally:
            self._out.close()


class LedgerService(ManagedProcess):
    """`otel-ai-cost ledger serve` on a SQLite file (through `python -m otel_ai_cost`)."""

    def __init__(self, db: Path, port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.db = db  # the test writes the billed side (a reconciliation run) here, as `otel-ai-cost reconcile` does
        command = [sys.executable, "-m", "otel_ai_cost", "ledger", "serve", "--ledger", f"sqlite:///{db}"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        super().__init__("the ledger service", command, log, f"{self.url}/healthz")


class PrometheusServer(ManagedProcess):
    """A real Prometheus with its own TSDB directory, exemplar storage on, alerts resent every second."""

    def __init__(self, config: Path, data: Path, port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        command = [
            require_binary(PROMETHEUS_BINARY),
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
            "--rules.alert.resend-delay=1s",  # default 1m: the test would wait that long for each change
            "--log.level=warn",
        ]
        super().__init__("Prometheus", command, log, f"{self.url}/-/ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result of an instant query (vector, or a scalar/string wrapped in a list); raises on errors."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = answer.json()
        if body.get("status") != "success":
            raise ValueError(f"query {expr!r} failed: {body.get('errorType')}: {body.get('error')}")
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"value": data["result"]}]
        return list(data["result"])

    def rule_groups(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.url}/api/v1/rules", timeout=10).json()["data"]["groups"]

    def alerts(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]

    def targets_up(self) -> dict[str, str]:
        """{scrape URL: health} of the active targets."""
        active = requests.get(f"{self.url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        return {target["scrapeUrl"]: target["health"] for target in active}


class AlertmanagerServer(ManagedProcess):
    """A real Alertmanager, clustering off, its own storage directory."""

    def __init__(self, config: Path, data: Path, port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        command = [
            require_binary(*ALERTMANAGER_BINARIES),
            f"--config.file={config}",
            f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip: a single instance
            "--log.level=warn",
        ]
        super().__init__("Alertmanager", command, log, f"{self.url}/-/ready")

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert Alertmanager holds, with its status (`active`, `suppressed` + `inhibitedBy`)."""
        return requests.get(f"{self.url}/api/v2/alerts", timeout=10).json()


@dataclass(frozen=True)
class Notification:
    """One webhook POST from Alertmanager: which receiver, when it arrived, and its payload."""

    path: str
    received: float  # time.monotonic()
    payload: dict[str, Any]

    @property
    def receiver(self) -> str:
        return str(self.payload.get("receiver", ""))

    def alerts(self, status: str | None = "firing") -> list[dict[str, Any]]:
        """The alerts of this notification, only those with `status` (None: all)."""
        return [a for a in self.payload.get("alerts", []) if status is None or a.get("status") == status]


@dataclass
class WebhookReceiver:
    """An HTTP server in the test that records every POST (Alertmanager's webhook_configs point here)."""

    notifications: list[Notification] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {"unparsed": body.decode(errors="replace")}
                with receiver._lock:
                    receiver.notifications.append(Notification(self.path, time.monotonic(), payload))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)
        self._thread.start()

    def received(self) -> list[Notification]:
        with self._lock:
            return list(self.notifications)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class InstrumentedApp:
    """The instrumented program, in this process: the real `openai` and `anthropic` clients against the provider
    stand-in, instrumented by `otel_ai_cost.instrument()`. Spans go over OTLP/HTTP to the ledger service, synchronously
    (a call's record is stored when the call returns); metrics are exposed for Prometheus by the OpenTelemetry
    Prometheus exporter, which names them as the collector's `prometheus` exporter does (`ai_cost_spend_USD_total`,
    labels with `_` for `.`, resource attributes in `target_info`)."""

    def __init__(self, environment: str, ledger_url: str, service: str = "e2e-app") -> None:
        import anthropic
        import openai
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from prometheus_client import start_http_server

        import otel_ai_cost
        from otel_ai_cost.stand_in import StandInServer

        resource = Resource.create({"service.name": service, "deployment.environment.name": environment})
        self.reader = PrometheusMetricReader()  # registers in prometheus_client's REGISTRY until shutdown
        self.meter_provider = MeterProvider(metric_readers=[self.reader], resource=resource)
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{ledger_url}/v1/traces", timeout=10))
        )
        self.stand_in = StandInServer().start()
        otel_ai_cost.instrument(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)
        self.metrics_port = free_port()
        self._http, self._http_thread = start_http_server(self.metrics_port, addr="127.0.0.1")
        self.openai = openai.OpenAI(base_url=self.stand_in.openai_base_url, api_key="sk-e2e-test", max_retries=0)
        self.anthropic = anthropic.Anthropic(
            base_url=self.stand_in.anthropic_base_url, api_key="sk-ant-e2e-test", max_retries=0
        )

    def stop(self) -> None:
        """Uninstrument the SDKs, stop the metrics endpoint, the providers and the stand-in."""
        import otel_ai_cost

        try:
            otel_ai_cost.uninstrument()
            self._http.shutdown()
            self._http.server_close()
            self.meter_provider.shutdown()
            self.tracer_provider.shutdown()
        finally:
            self.stand_in.stop()


@dataclass
class Stack:
    """Handles on the running stack."""

    tmp: Path
    ledger: LedgerService
    prometheus: PrometheusServer
    alertmanager: AlertmanagerServer
    webhook: WebhookReceiver
    app: InstrumentedApp
    budgets_file: Path
    rules_file: Path
