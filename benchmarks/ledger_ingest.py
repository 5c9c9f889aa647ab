#!/usr/bin/env python3
"""Ledger service ingest: records per second written by `otel-ai-cost ledger serve` from OTLP/HTTP protobuf batches.

    python benchmarks/ledger_ingest.py                          # SQLite (and DynamoDB on moto if its store exists)
    python benchmarks/ledger_ingest.py --store sqlite --records 102400 --clients 4 --gzip
    python benchmarks/ledger_ingest.py --json

The service runs as a real subprocess (`python -m otel_ai_cost.cli.ledger serve`), pinned to one CPU when the
platform allows (`--cpu`), on a fresh store in a temporary directory. The client sends pre-encoded
`ExportTraceServiceRequest`s, exactly the bytes the SDK's `OTLPSpanExporter` sends (`encode_spans`), of `--batch`
cost spans each, from `--clients` keep-alive connections at once; span encoding is done before the clock starts,
so the figure is the service's (decode, derive records, one store transaction per request, answer), not the
client's. The spans are real otel-ai-cost cost spans (the attributes the instrumentation sets, a CI resource), each
batch with fresh trace and span ids so that every record is new (duplicates are cheaper and would flatter the
figure).

Reported: records/s over the wall time of the timed batches; the service's CPU time (from /proc) and records per
CPU-second; request latency percentiles. The run checks itself: the service's `/metrics` must show exactly as many
records written as spans sent, none rejected, no failed write; otherwise the run is INVALID (exit status 2).

DynamoDB: a moto server on loopback (`tests/ledger/dynamodb_server.py`), in this process; moto is far slower than
DynamoDB and serializes requests, so that figure measures the test server more than the service.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otel_ai_cost.contract import ERROR_TYPE, INSTRUMENTATION_SCOPE, Attribution, Cost, GenAI, Server
from otel_ai_cost.contract import Resource as R

ROOT = Path(__file__).resolve().parent.parent
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",  # the loopback test server accepts anything; never real credentials
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent/otel-ai-cost-bench/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/otel-ai-cost-bench/credentials",
}


@dataclass
class Result:
    store: str
    records: int
    batch: int
    clients: int
    gzip: bool
    wall_s: float
    records_per_s: float
    service_cpu_s: float | None
    records_per_cpu_s: float | None
    latency_ms_p50: float
    latency_ms_p95: float
    checks: dict[str, bool]


def cost_span_request(batch: int) -> ExportTraceServiceRequest:
    """`batch` real-shaped otel-ai-cost cost spans, encoded as the SDK exporter encodes them."""
    memory = InMemorySpanExporter()
    resource = Resource.create(
        {
            R.SERVICE_NAME: "receipts-worker",
            R.DEPLOYMENT_ENVIRONMENT_NAME: "production",
            R.CICD_PIPELINE_NAME: "nightly-labels",
            R.CICD_PIPELINE_RUN_ID: "1234567890",
            R.VCS_REF_HEAD_REVISION: "0f3c9a1e5b7d2c4a6e8f0b1d3c5e7a9b1d3f5a7c",
        }
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(INSTRUMENTATION_SCOPE)
    for n in range(batch):
        attributes: dict[str, Any] = {
            GenAI.OPERATION_NAME: "chat",
            GenAI.PROVIDER_NAME: "openai",
            GenAI.REQUEST_MODEL: "gpt-4o-mini",
            GenAI.RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
            GenAI.RESPONSE_ID: f"chatcmpl-{n:024d}",
            GenAI.RESPONSE_FINISH_REASONS: ("stop",),
            GenAI.USAGE_INPUT_TOKENS: 1000 + n,
            GenAI.USAGE_OUTPUT_TOKENS: 200,
            GenAI.USAGE_CACHE_READ_INPUT_TOKENS: 512,
            Server.ADDRESS: "api.openai.com",
            Server.PORT: 443,
            Cost.AMOUNT: f"0.000{231 + n % 700:04d}",
            Cost.CURRENCY: "USD",
            Cost.SOURCE: "local",
            Cost.PRICING_STATUS: "priced",
            Cost.PRICING_VERSION: "genai-prices-0.0.40",
            Cost.PRICING_TIER: "standard",
            Attribution.OPERATION_TYPE: "receipt_labeling",
            Attribution.JOB_ID: "job-42",
            Attribution.TEAM: "ml",
        }
        if n % 50 == 0:
            attributes[ERROR_TYPE] = "RateLimitError"
        tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=attributes).end()
    provider.shutdown()
    return encode_spans(memory.get_finished_spans())


def bodies(template: ExportTraceServiceRequest, count: int, compress: bool) -> list[bytes]:
    """`count` request bodies: the template with fresh ids in each (every record new)."""
    out = []
    for _ in range(count):
        request = ExportTraceServiceRequest()
        request.CopyFrom(template)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    span.trace_id = secrets.token_bytes(16)
                    span.span_id = secrets.token_bytes(8)
        body = request.SerializeToString()
        out.append(gzip.compress(body, compresslevel=1) if compress else body)
    return out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def start_service(
    url: str, port: int, env: dict[str, str], *extra: str, cpu: int | None = None
) -> subprocess.Popen[bytes]:
    """`otel-ai-cost ledger serve` (with `extra` options) as a subprocess, pinned to `cpu` if given, once healthy."""

    def pin() -> None:
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {cpu})

    command = [sys.executable, "-m", "otel_ai_cost", "ledger", "serve", "--ledger", url, "--port", str(port)]
    errors = tempfile.TemporaryFile()  # not a pipe: nobody reads it while the service runs
    process = subprocess.Popen(
        [*command, "--log-level", "warning", *extra], preexec_fn=pin, env=env, stdout=subprocess.DEVNULL, stderr=errors
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors.seek(0)
            raise SystemExit(f"the ledger service exited with {process.returncode}: {errors.read()[-2000:]!r}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return process
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    process.kill()
    raise SystemExit("the ledger service did not become healthy")


def send_all(endpoint: str, payloads: list[bytes], clients: int, compress: bool) -> list[float]:
    """Sends every payload once, from `clients` keep-alive connections; returns each request's latency (s)."""
    headers = {"Content-Type": "application/x-protobuf"}
    if compress:
        headers["Content-Encoding"] = "gzip"
    lock = threading.Lock()
    queue = list(reversed(payloads))
    latencies: list[float] = []
    errors: list[str] = []

    def worker() -> None:
        with requests.Session() as session:
            while True:
                with lock:
                    if not queue or errors:
                        return
                    body = queue.pop()
                start = time.perf_counter()
                response = session.post(endpoint, data=body, headers=headers, timeout=60)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        errors.append(f"HTTP {response.status_code}: {response.content[:200]!r}")

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"ingest failed: {errors[0]}")
    return latencies


def metric(text: str, name: str) -> int:
    found = re.search(rf"^{name} (\d+)$", text, re.MULTILINE)
    return int(found.group(1)) if found else -1


def calls(text: str) -> int:
    found = re.search(r'^ai_cost_ledger_calls\{environment="production",period="month"\} (\d+)$', text, re.MULTILINE)
    return int(found.group(1)) if found else -1


def run(store: str, url: str, args: argparse.Namespace, env: dict[str, str], records: int, clients: int) -> Result:
    batches = max(1, records // args.batch)
    template = cost_span_request(args.batch)
    warmup = bodies(template, 2, args.gzip)
    timed = bodies(template, batches, args.gzip)
    port = free_port()
    process = start_service(url, port, env, cpu=args.cpu)
    endpoint = f"http://127.0.0.1:{port}/v1/traces"
    try:
        send_all(endpoint, warmup, 1, args.gzip)
        cpu_before = cpu_seconds(process.pid)
        start = time.perf_counter()
        latencies = send_all(endpoint, timed, clients, args.gzip)
        wall = time.perf_counter() - start
        cpu_after = cpu_seconds(process.pid)
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    finally:
        process.terminate()
        status = process.wait(60)
    sent = (len(warmup) + len(timed)) * args.batch
    checks = {
        # From the running totals: every span is stored exactly once, however the store got there (a store may
        # retry a write whose answer it lost and count the records it finds as duplicates: still once).
        "every span stored once": calls(text) == sent,
        "all written by this service": metric(text, "ai_cost_ledger_records_written_total")
        + metric(text, "ai_cost_ledger_duplicates_ignored_total")
        == sent,
        "none rejected": metric(text, "ai_cost_ledger_spans_rejected_total") == 0,
        "no failed write": metric(text, "ai_cost_ledger_write_failures_total") == 0,
        "graceful exit (0)": status == 0,
    }
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    ordered = sorted(latencies)
    timed_records = len(timed) * args.batch
    return Result(
        store=store,
        records=timed_records,
        batch=args.batch,
        clients=clients,
        gzip=args.gzip,
        wall_s=round(wall, 3),
        records_per_s=round(timed_records / wall),
        service_cpu_s=None if cpu is None else round(cpu, 2),
        records_per_cpu_s=None if not cpu else round(timed_records / cpu),
        latency_ms_p50=round(statistics.median(ordered) * 1000, 1),
        latency_ms_p95=round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        checks=checks,
    )


def dynamodb_available() -> bool:
    try:
        import moto  # noqa: F401

        import otel_ai_cost.ledger.dynamodb_store  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "dynamodb", "all"], default="all")
    parser.add_argument("--records", type=int, default=51200, help="records sent to SQLite (timed)")
    parser.add_argument("--dynamodb-records", type=int, default=2048, help="records sent to DynamoDB (timed)")
    parser.add_argument("--dynamodb-clients", type=int, default=1, help="connections for DynamoDB (moto is slow)")
    parser.add_argument("--batch", type=int, default=512, help="spans per OTLP request")
    parser.add_argument("--clients", type=int, default=2, help="concurrent keep-alive connections")
    parser.add_argument("--gzip", action="store_true", help="gzip the requests (the collector's default)")
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin the service to (-1: no pinning)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.cpu < 0:
        args.cpu = None
    elif hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, os.sched_getaffinity(0) - {args.cpu})  # the client stays off the service's CPU

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_"))}
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        if args.store in ("sqlite", "all"):
            url = f"sqlite://{Path(tmp) / 'usage.db'}"
            results.append(run("sqlite", url, args, env, args.records, args.clients))
        if args.store == "dynamodb" or (args.store == "all" and dynamodb_available()):
            results.append(run_dynamodb(args, env))

    invalid = [f"{r.store}: {name}" for r in results for name, ok in r.checks.items() if not ok]
    if args.json:
        print(json.dumps({"results": [asdict(r) for r in results], "invalid": invalid, **environment()}, indent=2))
    else:
        report(results, args)
        if invalid:
            print("INVALID: " + "; ".join(invalid))
    return 2 if invalid else 0


def run_dynamodb(args: argparse.Namespace, env: dict[str, str]) -> Result:
    sys.path.insert(0, str(ROOT / "tests" / "ledger"))
    os.environ.update(AWS_TEST_ENV)
    from dynamodb_server import start_server  # the loopback moto server of the DynamoDB store's tests

    from otel_ai_cost.ledger.dynamodb_store import init_table

    server = start_server()
    try:
        url = f"dynamodb://ledger-bench?region=us-east-1&endpoint_url={server.endpoint_url}"
        init_table(url)
        env = {**env, **AWS_TEST_ENV}
        return run("dynamodb (moto)", url, args, env, args.dynamodb_records, args.dynamodb_clients)
    finally:
        server.stop()


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlite": __import__("sqlite3").sqlite_version,
    }


def report(results: list[Result], args: argparse.Namespace) -> None:
    env = environment()
    print(
        f"ledger ingest: {args.batch} spans/request, {args.clients} clients, gzip={'on' if args.gzip else 'off'}, "
        f"service pinned to CPU {args.cpu}; Python {env['python']}, SQLite {env['sqlite']}, {env['cpus']} CPUs"
    )
    header = f"{'store':<18}{'records':>9}{'wall s':>9}{'records/s':>11}{'svc CPU s':>11}{'rec/CPU-s':>11}"
    print(header + f"{'p50 ms':>9}{'p95 ms':>9}")
    for r in results:
        cpu = "-" if r.service_cpu_s is None else f"{r.service_cpu_s:.2f}"
        per_cpu = "-" if r.records_per_cpu_s is None else str(r.records_per_cpu_s)
        print(
            f"{r.store:<18}{r.records:>9}{r.wall_s:>9.2f}{r.records_per_s:>11}{cpu:>11}{per_cpu:>11}"
            f"{r.latency_ms_p50:>9.1f}{r.latency_ms_p95:>9.1f}"
        )


if __name__ == "__main__":
    sys.exit(main())
