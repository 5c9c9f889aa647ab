"""Kill and restart the real `ledger serve` process while the SDK's OTLP/HTTP exporter is sending: no record is lost
and none is counted twice.

The exporter (opentelemetry-exporter-otlp-proto-http 1.45) retries connection errors and 429/502/503/504 with
exponential backoff (about 1, 2, 4, 8 s, honouring Retry-After) until its `timeout` (total, per export) runs out.
A `timeout` of 30 s therefore rides over a restart that takes about a second. A batch being written when the
process dies is either not committed (the retry writes it) or committed without its answer (the retry finds the
records already there: duplicates, ignored). Both end with every record stored exactly once, which is what the test
checks, record by record and in the exact totals. The collector's `otlp_http` exporter behaves the same way
(`retry_on_failure`), and its persistent queue may replay whole batches after its own crash: replayed at the end.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_ai_cost.contract import INSTRUMENTATION_SCOPE, Cost, GenAI
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery

BATCHES = 120
PER_BATCH = 25


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServeProcess:
    """`otel-ai-cost ledger serve` as a real subprocess (through the module, so the test does not depend on the
    group's registration in the top-level CLI)."""

    def __init__(self, db: Path, port: int, logs: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._logs = logs
        self._out = open(logs, "a")  # closed in wait()
        command = [sys.executable, "-m", "otel_ai_cost", "ledger", "serve", "--ledger", f"sqlite://{db}"]
        self.process = subprocess.Popen(
            [*command, "--port", str(port), "--log-level", "warning"], stdout=self._out, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.process.poll() is None, logs.read_text()
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.02)
        pytest.fail(f"the ledger service did not become healthy:\n{logs.read_text()}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self) -> int:
        try:
            return self.process.wait(20)
        finally:
            self._out.close()


def make_batches() -> tuple[list[list[ReadableSpan]], Decimal]:
    """BATCHES x PER_BATCH cost spans with distinct exact amounts, and their exact sum."""
    memory = InMemorySpanExporter()
    resource = Resource.create({"service.name": "billing", "deployment.environment.name": "production"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(INSTRUMENTATION_SCOPE)
    total = Decimal(0)
    for n in range(BATCHES * PER_BATCH):
        amount = Decimal(f"0.{n + 1:07d}")
        total += amount
        attributes = {
            GenAI.OPERATION_NAME: "chat",
            GenAI.PROVIDER_NAME: "openai",
            GenAI.REQUEST_MODEL: "gpt-4o-mini",
            GenAI.USAGE_INPUT_TOKENS: 100 + n,
            GenAI.USAGE_OUTPUT_TOKENS: 10,
            Cost.AMOUNT: str(amount),
            Cost.PRICING_STATUS: "priced",
        }
        tracer.start_span("chat gpt-4o-mini", attributes=attributes).end()
    provider.shutdown()
    spans = list(memory.get_finished_spans())
    return [spans[i : i + PER_BATCH] for i in range(0, len(spans), PER_BATCH)], total


@pytest.fixture
def processes() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for serve in started:  # whatever the test left running
        if serve.process.poll() is None:
            serve.process.kill()
            serve.wait()


def test_kill_and_restart_mid_stream_loses_nothing_and_counts_nothing_twice(tmp_path, processes):
    db = tmp_path / "ledger.db"
    logs = tmp_path / "serve.log"
    port = free_port()
    batches, expected_total = make_batches()
    processes.append(ServeProcess(db, port, logs))

    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=30)
    results: list[SpanExportResult] = []
    sender = threading.Thread(target=lambda: results.extend(exporter.export(batch) for batch in batches))
    sender.start()

    # SIGKILL a third of the way in (a crash: whatever was being written is committed or not, unanswered), then
    # SIGTERM two thirds in (graceful: the in-flight batch is finished, later ones are refused and retried).
    stops = ((signal.SIGKILL, BATCHES // 3, -signal.SIGKILL), (signal.SIGTERM, 2 * BATCHES // 3, 0))
    for signum, progress, status in stops:
        deadline = time.monotonic() + 30
        while len(results) < progress and sender.is_alive() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert sender.is_alive(), "the sender finished before the restart: nothing was tested"
        processes[-1].signal(signum)
        assert processes[-1].wait() == status, logs.read_text()
        processes.append(ServeProcess(db, port, logs))  # same file, same port

    sender.join(60)
    assert not sender.is_alive()
    assert results == [SpanExportResult.SUCCESS] * BATCHES, logs.read_text()

    # The collector's persistent queue may replay batches after its own crash: they change nothing either.
    assert exporter.export(batches[0] + batches[BATCHES // 3]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    metrics = requests.get(f"{processes[-1].url}/metrics", timeout=5).text
    duplicates = re.search(r"^ai_cost_ledger_duplicates_ignored_total (\d+)$", metrics, re.MULTILINE)
    assert duplicates and int(duplicates.group(1)) >= 2 * PER_BATCH

    processes[-1].signal(signal.SIGTERM)
    assert processes[-1].wait() == 0
    assert "otel-ai-cost ledger: stopped" in logs.read_text()

    with SQLiteStore(db) as store:
        stored = list(store.query(UsageQuery()))
        expected_keys = {
            (format(s.get_span_context().trace_id, "032x"), format(s.get_span_context().span_id, "016x"))
            for batch in batches
            for s in batch
        }
        assert len(stored) == BATCHES * PER_BATCH  # nothing lost, nothing twice (the key is unique)
        assert {r.key for r in stored} == expected_keys
        assert sum(r.amount for r in stored) == expected_total
        (everything,) = store.aggregate(UsageQuery(), [])
        assert (everything.amount, everything.calls) == (expected_total, BATCHES * PER_BATCH)
        days = {r.day for r in stored}
        assert sum(store.totals("production", day).amount for day in days) == expected_total
        assert sum(store.totals("production", day).calls for day in days) == BATCHES * PER_BATCH
