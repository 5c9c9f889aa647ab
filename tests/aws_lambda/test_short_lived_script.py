"""A script that ends right after its last call loses nothing when the interpreter exits normally (the SDK shuts
its providers down at exit); one that leaves with `os._exit()` loses everything unless it called `flush()`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from exported import cost_spans, ledger_records, metric_points
from lambda_runtime import function_environment

from otel_ai_cost.contract import REQUESTS

SCRIPT = Path(__file__).with_name("batch_script.py")
CALLS = 3


def _run_script(stand_in, receiver, ledger_url: str, how: str) -> subprocess.CompletedProcess:
    env = function_environment(  # the long batch delays: only the exit's shutdown or a flush exports
        STAND_IN_OPENAI=stand_in.openai_base_url,
        OTLP_ENDPOINT=receiver.endpoint,
        OTEL_AI_COST_LEDGER=ledger_url,
        SCRIPT_CALLS=str(CALLS),
        SCRIPT_EXIT=how,
    )
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_LOG_STREAM_NAME"):
        env.pop(name)  # a plain script, not a Lambda
    return subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("how", "exit_code"),
    [("end", 0), ("sys.exit", 3), ("raise", 1), ("flush-then-os._exit", 0)],
)
def test_a_script_ending_after_its_last_call_loses_nothing(stand_in, receiver, tmp_path: Path, how, exit_code):
    ledger_url = f"sqlite://{tmp_path / 'usage.db'}"

    result = _run_script(stand_in, receiver, ledger_url, how)

    assert result.returncode == exit_code, result.stderr
    records = ledger_records(ledger_url)
    spans = cost_spans(receiver)
    assert len(records) == CALLS
    assert sorted((s.trace_id, s.span_id) for s in spans) == sorted((r.trace_id, r.span_id) for r in records)
    exports = metric_points(receiver, REQUESTS.name)
    assert sum(p.as_int for _, p in exports[-1]) == CALLS


def test_a_script_leaving_with_os_exit_without_flush_loses_everything(stand_in, receiver, tmp_path: Path):
    """The control: `os._exit` skips the interpreter's exit, so the queues are never exported."""
    ledger_url = f"sqlite://{tmp_path / 'usage.db'}"

    result = _run_script(stand_in, receiver, ledger_url, "os._exit")

    assert result.returncode == 0, result.stderr
    assert len(stand_in.requests) == CALLS
    assert ledger_records(ledger_url) == []
    assert cost_spans(receiver) == []
    assert receiver.metrics == []
