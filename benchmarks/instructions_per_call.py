#!/usr/bin/env python3
"""Instructions that otel-ai-cost adds per OpenAI chat call, counted by valgrind (stable on a busy machine).

    python benchmarks/instructions_per_call.py                 # bare, ledger off, ledger on: about 6 min
    python benchmarks/instructions_per_call.py --modes off,on --calls 100,400

Each mode runs one child process under `valgrind --tool=cachegrind --cache-sim=no` twice, with N1 and N2 calls of
the real `openai` client on an `httpx2.MockTransport` (the canned body of `overhead.py`), telemetry set up as in
`overhead.py` (an SDK `BatchSpanProcessor`, an `InMemoryMetricReader` collected once at the end). Per call is
(Ir(N2) - Ir(N1)) / (N2 - N1), so start-up and imports cancel out, and every instruction the calls cause counts,
whichever thread runs it (the batch span processor, the metric drain, the ledger writer). Modes:

- `bare`: nothing instrumented (the floor the other two are compared with);
- `off`: `otel_ai_cost.instrument()` with `OTEL_AI_COST_LEDGER=none`;
- `on`: `otel_ai_cost.instrument()` with the embedded SQLite ledger (the default) in a temporary directory.

A run checks its work (every instrumented call made one priced span, and with the ledger on one ledger record
per call, counted outside the measured process); a failed check makes the run INVALID (exit status 2).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = ("bare", "off", "on")


def child(mode: str, calls: int, ledger: str) -> None:
    """One measured process: `calls` chat calls in `mode` (the ledger, if on, at the path `ledger`); checks its
    spans, and leaves the ledger to the parent to check (reading it here would be counted as the calls' cost)."""
    os.environ["OTEL_AI_COST_LEDGER"] = f"sqlite:///{ledger}" if mode == "on" else "none"
    sys.path.insert(0, str(HERE))
    import httpx2
    import openai
    import overhead

    import otel_ai_cost

    telemetry = overhead.make_telemetry()
    if mode != "bare":
        otel_ai_cost.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    client = openai.OpenAI(
        api_key="sk-bench",
        http_client=httpx2.Client(transport=httpx2.MockTransport(overhead._openai_handler)),
    )
    messages = [{"role": "user", "content": overhead.USER_PROMPT}]
    for _ in range(calls):
        client.chat.completions.create(model=overhead.OPENAI_MODEL, messages=messages, max_tokens=200)
    telemetry.reader.get_metrics_data()
    telemetry.tracer_provider.force_flush()
    if mode != "bare":
        otel_ai_cost.uninstrument()
    telemetry.tracer_provider.shutdown()
    if mode != "bare" and telemetry.exporter.ours_priced != calls:
        print(f"INVALID: {telemetry.exporter.ours_priced} priced spans for {calls} calls", file=sys.stderr)
        sys.exit(2)


def instructions(mode: str, calls: int) -> int:
    """Ir of one child process under cachegrind (and, ledger on, a check that it recorded every call)."""
    with tempfile.TemporaryDirectory() as tmp:
        out, ledger = Path(tmp) / "cachegrind.out", Path(tmp) / "usage.db"
        command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}",
                   sys.executable, __file__, "--child", mode, str(calls), str(ledger)]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            print(result.stderr[-2000:], file=sys.stderr)
            raise SystemExit(2)
        if mode == "on":
            with sqlite3.connect(ledger) as db:
                (stored,) = db.execute("SELECT count(*) FROM records").fetchone()
            if stored != calls:
                print(f"INVALID: {stored} ledger records for {calls} calls", file=sys.stderr)
                raise SystemExit(2)
        for line in out.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise SystemExit("no summary line in cachegrind's output")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default=",".join(MODES), help="comma list of bare, off, on")
    parser.add_argument("--calls", default="100,400", help="the two call counts N1,N2")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "CALLS", "LEDGER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2])
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    n1, n2 = (int(n) for n in args.calls.split(","))
    per_call = {}
    for mode in args.modes.split(","):
        per_call[mode] = (instructions(mode, n2) - instructions(mode, n1)) // (n2 - n1)
        print(f"{mode:>4}: {per_call[mode]:>10,} instructions per call", flush=True)
    if "bare" in per_call:
        for mode in ("off", "on"):
            if mode in per_call:
                print(f"ours, ledger {mode}: {per_call[mode] - per_call['bare']:>10,} instructions added per call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
