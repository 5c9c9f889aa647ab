"""Fixtures of the doctor's tests: `otel-ai-cost doctor` run as a user runs it (a subprocess), in a set-up that
is good unless a test breaks one part of it: a SQLite ledger in `tmp_path`, an OTLP endpoint that listens on
loopback, a named environment and service. DynamoDB is a moto server on loopback (the ledger tests' server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ledger"))  # the ledger tests' moto server

from doctor_run import Doctor
from dynamodb_server import REGION, LoopbackDynamoDB, fake_aws_environment, start_server


@pytest.fixture
def collector() -> Iterator[str]:
    """An OTLP/HTTP endpoint on loopback: a socket that accepts connections (the doctor only connects)."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    server.close()


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'ledger' / 'usage.db'}"


@pytest.fixture
def good_env(monkeypatch: pytest.MonkeyPatch, collector: str, ledger_url: str) -> None:
    """What a good set-up has: a production environment, a service name, the OTLP/HTTP exporter at a collector
    that listens, a SQLite ledger that can be created."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "receipts")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector)
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", ledger_url)
    monkeypatch.setenv("COLUMNS", "1000")  # the table's cells on one line each: a fix is one line to look for


@pytest.fixture
def run_doctor(tmp_path: Path, good_env: None) -> Callable[..., Doctor]:
    """`run_doctor(*args)`: `python -m otel_ai_cost doctor ARGS` in `tmp_path` (no budgets file there) with this
    test's environment."""

    def run(*args: str) -> Doctor:
        done = subprocess.run(
            [sys.executable, "-m", "otel_ai_cost", "doctor", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=dict(os.environ),
        )
        return Doctor(done.returncode, done.stdout, done.stderr)

    return run


# -- DynamoDB -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackDynamoDB]:
    running = start_server()
    yield running
    running.stop()


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_aws_environment(monkeypatch)


@pytest.fixture
def dynamodb_url(aws_environment: None) -> Callable[[str, str], str]:
    """`dynamodb_url(table, endpoint_url)`: the ledger URL of a table at an endpoint (test credentials set)."""
    return lambda table, endpoint_url: f"dynamodb://{table}?region={REGION}&endpoint_url={endpoint_url}"
