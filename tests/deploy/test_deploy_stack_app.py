"""examples/stack_app.py runs (two rounds against an in-process stand-in) and exports over OTLP/HTTP what the
collector config expects; `otel-ai-cost stand-in serve` (the compose stand-in service) answers the SDKs."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_ai_cost.contract import SPEND, Attribution, Resource

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "stack_app.py"


class _Receiver(ThreadingHTTPServer):
    """A stand-in for the collector's OTLP/HTTP receiver: keeps every request body by path."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: dict[str, list[bytes]] = {}
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        with self.server.lock:
            self.server.bodies.setdefault(self.path, []).append(body)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _app_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=staging",
        OTEL_AI_COST_LEDGER="none",
        OTEL_METRIC_EXPORT_INTERVAL="60000",  # the final flush exports the metrics
    )
    return env


def test_stack_app_runs_two_rounds_and_exports_otlp(receiver: _Receiver, tmp_path: Path) -> None:
    heartbeat = tmp_path / "heartbeat"
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
    result = subprocess.run(
        [sys.executable, str(APP), "--iterations", "2", "--interval", "0", "--heartbeat-file", str(heartbeat)],
        env=_app_env(endpoint),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "round 2: 6 calls so far" in result.stdout
    assert heartbeat.exists()

    spans = []
    for body in receiver.bodies.get("/v1/traces", []):
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert resource["service.name"] == "otel-ai-cost-stack-app"
            assert resource[Resource.DEPLOYMENT_ENVIRONMENT_NAME] == "staging"
            assert resource["service.instance.id"]
            for scope_spans in resource_spans.scope_spans:
                spans.extend(scope_spans.spans)
    assert len(spans) == 6
    # The spans carry the unbounded attribution the collector must keep for the ledger (and strip from metrics).
    job_ids = {a.value.string_value for span in spans for a in span.attributes if a.key == Attribution.JOB_ID}
    assert job_ids == {"stack-job-0", "stack-job-1"}
    keys = {a.key for span in spans for a in span.attributes}
    assert f"{Attribution.TAG_PREFIX}customer" in keys

    metric_names = set()
    for body in receiver.bodies.get("/v1/metrics", []):
        request = ExportMetricsServiceRequest.FromString(body)
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                metric_names.update(metric.name for metric in scope_metrics.metrics)
    assert SPEND.name in metric_names


def test_stand_in_cli_serves_the_sdks() -> None:
    import openai

    process = subprocess.Popen(
        [sys.executable, "-m", "otel_ai_cost", "stand-in", "serve", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line)
        assert match, line + (process.stderr.read() if process.poll() is not None and process.stderr else "")
        client = openai.OpenAI(base_url=match.group(1), api_key="test", max_retries=0)
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert answer.usage is not None and answer.usage.prompt_tokens > 0
    finally:
        process.terminate()  # SIGTERM, as `docker stop` sends: must end cleanly
        assert process.wait(timeout=10) == 0
