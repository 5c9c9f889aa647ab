"""The wall-clock benchmarks check their own work (one span per call, priced, no span for a bare call): a tiny run
of each must pass those checks. No figure is asserted; a benchmark whose checks fail is broken, however fast."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ANTHROPIC_OPEN_TELEMETRY"))}
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, timeout=300, env=env
    )


def test_overhead_passes_its_checks():
    proc = run("overhead.py", "--calls", "5", "--rounds", "1", "--warmup", "0")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "all checks passed" in proc.stdout


def test_call_path_passes_its_checks_and_its_bare_client_skips_the_instrumentation():
    # The run is INVALID if a bare call made a span or a ledger record: this is what keeps its pairing honest.
    proc = run("call_path.py", "--modes", "ours,ours_ledger", "--pairs", "4", "--warmup", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("| chat", "| stream", "| anthropic"))]
    assert len(rows) == 6
