"""Listening beyond loopback without a token warns, whoever starts the service (issue 10, item 16).

A `LedgerService` started from code logs the warning once, at `start()`; `otel-ai-cost ledger serve` prints it
(before opening the ledger) and only once. Real sockets, a real SQLite ledger, and `serve` as a real process.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from otel_ai_cost.ledger.service import LedgerService, ServiceConfig
from otel_ai_cost.ledger.sqlite_store import SQLiteStore

WARNING = "without a token"


def _warnings_at_start(caplog: pytest.LogCaptureFixture, ledger_path: Path, **config: object) -> list[str]:
    caplog.clear()
    service = LedgerService(SQLiteStore(ledger_path), ServiceConfig(port=0, **config))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="otel_ai_cost.ledger.service"):
        service.start()
        service.shutdown(timeout=2)
    return [r.getMessage() for r in caplog.records if WARNING in r.getMessage()]


def test_a_service_started_from_code_beyond_loopback_without_a_token_warns_once(caplog, ledger_path: Path):
    warnings = _warnings_at_start(caplog, ledger_path, host="0.0.0.0")
    assert len(warnings) == 1
    assert "listening on 0.0.0.0 without a token" in warnings[0] and "--tokens-file" in warnings[0]


@pytest.mark.parametrize(
    "config",
    [{"host": "127.0.0.1"}, {"host": "0.0.0.0", "token": "a-token-1234567890"}],
    ids=["loopback", "with-a-token"],
)
def test_no_warning_on_loopback_or_with_a_token(caplog, ledger_path: Path, config: dict[str, object]):
    assert _warnings_at_start(caplog, ledger_path, **config) == []


def test_serve_prints_the_warning_once(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "OTEL_AI_COST_LEDGER_TOKEN"}
    cli = [sys.executable, "-c", "from otel_ai_cost.cli import main; main()"]
    command = [*cli, "ledger", "serve", "--host", "0.0.0.0", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--ledger", f"sqlite://{tmp_path / 'usage.db'}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()  # "listening on ..." once the socket is bound (start() has run)
        assert "listening on" in ready, ready
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert stderr.count(WARNING) == 1, stderr
