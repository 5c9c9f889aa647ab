#!/usr/bin/env python3
"""The time a caller waits for one AI SDK call, instrumented against bare, paired call by call in one process.

    python benchmarks/call_path.py                       # 3 workloads x 3 modes, 2000 pairs each: about 1 min
    python benchmarks/call_path.py --workloads chat --modes ours --pairs 5000 --json

The workloads and modes are `instructions_per_call.py`'s (the same clients, canned bodies, telemetry and
instrumentation; `bare` is not a mode here, since every mode measures its own bare calls). Each (workload, mode) is
one child process, run one at a time, that holds two clients of the workload's SDK:

- the instrumented one, as a user's client is once the mode's instrumentation is on;
- a bare one, whose calls skip every instrumentation wrapper: the instrumentors patch the SDK's classes with
  `wrapt`, and this client's own attributes hold the unwrapped methods (anthropic's also has the SDK's own span
  off). The run checks that its calls made no span and no ledger record.

After `--warmup` untimed pairs, `--pairs` pairs each time one bare and one instrumented call with
`time.perf_counter_ns()`, alternating which goes first. A pair's two calls run within a millisecond of each other,
so the drift of a shared machine (±30% over seconds) hits both alike; the figures are medians over pairs of the
instrumented call, the bare one, their difference and their ratio. Only the caller's wait counts: work deferred to
other threads (the span processor's export, the ledger writer) or to metric collection is left out, except where it
holds the GIL during a call. Every instruction, deferred or not, is what `instructions_per_call.py` counts.

Checked, or the run is INVALID (exit status 2): every call got its answer, the mode made one span of its scope per
instrumented call (priced, for ours) and none per bare call, and `ours_ledger` stored one record per instrumented
call.
"""

from __future__ import annotations

import argparse
import gc
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import instructions_per_call as ipc

MODES = ("official", "ours", "ours_ledger")


def bypass_instrumentation(obj: Any) -> None:
    """Binds, on `obj` itself, the original of every method its class hierarchy has patched with `wrapt`: calls
    through `obj` then skip the wrappers, while every other instance keeps them."""
    import wrapt

    seen: set[str] = set()
    for cls in type(obj).__mro__:
        for name, value in vars(cls).items():
            if name in seen:
                continue
            seen.add(name)
            if isinstance(value, wrapt.FunctionWrapper):
                original = value
                while isinstance(original, wrapt.FunctionWrapper):
                    original = original.__wrapped__
                setattr(obj, name, original.__get__(obj, type(obj)))


def bare_client(workload: str) -> Any:
    client = ipc.make_client(workload, anthropic_sdk_span=False)
    resource = client.messages if workload == "anthropic" else client.chat.completions
    for obj in (client, resource):
        bypass_instrumentation(obj)
    return client


def child(workload: str, mode: str, pairs: int, warmup: int, workdir: Path, official_dir: str) -> None:
    """One process: `warmup` + `pairs` pairs of calls; the timed pairs' nanoseconds to `workdir/result.json`."""
    telemetry, official = ipc.set_up(workload, mode, workdir, official_dir)
    instrumented, bare = ipc.make_client(workload), bare_client(workload)
    timed: list[tuple[int, int]] = []
    tokens = chunks = 0
    clock = time.perf_counter_ns
    gc.collect()
    for i in range(warmup + pairs):
        order = (bare, instrumented) if i % 2 else (instrumented, bare)
        took = {}
        for client in order:
            started = clock()
            got_tokens, got_chunks = ipc.call(workload, client)
            took[client is bare] = clock() - started
            tokens += got_tokens
            chunks += got_chunks
        if i >= warmup:
            timed.append((took[True], took[False]))
    result = {"tokens": tokens, "chunks": chunks, "timed": timed, **ipc.tear_down(telemetry, official)}
    (workdir / "result.json").write_text(json.dumps(result))


@dataclass
class Row:
    workload: str
    mode: str
    bare_us: float
    instrumented_us: float
    added_us: float  # median over pairs of (instrumented - bare)
    added_iqr_us: tuple[float, float]
    ratio: float  # median over pairs of instrumented / bare


def row_of(workload: str, mode: str, timed: list[tuple[int, int]]) -> Row:
    bare = [b for b, _ in timed]
    instrumented = [i for _, i in timed]
    added = [i - b for b, i in timed]
    q1, _, q3 = statistics.quantiles(added, n=4)
    return Row(
        workload,
        mode,
        bare_us=statistics.median(bare) / 1000,
        instrumented_us=statistics.median(instrumented) / 1000,
        added_us=statistics.median(added) / 1000,
        added_iqr_us=(q1 / 1000, q3 / 1000),
        ratio=statistics.median(i / b for b, i in timed),
    )


def check(workload: str, mode: str, result: dict[str, Any], calls: int, records: int | None) -> list[str]:
    """What is wrong with one child's run; `calls` is the number of instrumented calls (as many were bare)."""
    where = f"{workload}/{mode}"
    problems = []
    if result["tokens"] != 2 * calls * ipc.TOKENS_PER_CALL[workload]:
        problems.append(f"{where}: {result['tokens']} tokens for {2 * calls} calls")
    if workload == "stream" and result["chunks"] != 2 * calls * ipc.CHUNKS_PER_STREAM:
        problems.append(f"{where}: {result['chunks']} chunks for {2 * calls} streams")
    scope = ipc.OFFICIAL_SCOPE[workload] if mode == "official" else ipc.OUR_SCOPE
    scopes = dict(result["by_scope"])
    made = scopes.pop(scope, 0)
    if workload == "anthropic" and mode == "official":
        sdk_spans = scopes.pop(ipc.ANTHROPIC_SDK_SCOPE, 0)  # the SDK's own span, on the instrumented client only
        if sdk_spans != calls:
            problems.append(f"{where}: {sdk_spans} spans of the anthropic SDK for {calls} instrumented calls")
    if made != calls or scopes:
        problems.append(
            f"{where}: {made} spans of {scope!r} and {scopes or 'no others'} for {calls} instrumented calls"
        )
    priced = result["ours_priced"] if mode != "official" else result["official_with_usage"]
    if priced != calls:
        problems.append(f"{where}: {priced} spans with cost or usage for {calls} instrumented calls")
    if mode == "ours_ledger" and records != calls:
        problems.append(f"{where}: {records} ledger records for {calls} instrumented calls")
    return problems


def run_child(workload: str, mode: str, args: argparse.Namespace, env: dict[str, str]) -> tuple[Row, list[str]]:
    with tempfile.TemporaryDirectory(prefix="call-path-") as tmp:
        workdir = Path(tmp)
        command = [sys.executable, __file__, "--child", workload, mode, str(args.pairs), str(args.warmup),
                   str(workdir), str(args.official_dir)]  # fmt: skip
        proc = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env)
        if proc.returncode != 0:
            print(f"{workload}/{mode}: exit status {proc.returncode}\n{proc.stderr[-3000:]}", file=sys.stderr)
            raise SystemExit(2)
        result = json.loads((workdir / "result.json").read_text())
        records = None
        if mode == "ours_ledger":
            with sqlite3.connect(workdir / "usage.db") as db:
                (records,) = db.execute("SELECT count(*) FROM records").fetchone()
    calls = args.warmup + args.pairs
    return row_of(workload, mode, result["timed"]), check(workload, mode, result, calls, records)


def format_table(rows: list[Row]) -> str:
    lines = [
        "| workload | mode | bare call | instrumented call | added (median, IQR) | ratio to bare |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        low, high = r.added_iqr_us
        lines.append(
            f"| {r.workload} | {r.mode} | {r.bare_us:.0f} us | {r.instrumented_us:.0f} us "
            f"| {r.added_us:.0f} us ({low:.0f} to {high:.0f}) | {r.ratio:.2f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default=",".join(ipc.WORKLOADS), help="comma list of chat, stream, anthropic")
    parser.add_argument("--modes", default=",".join(MODES), help="comma list of official, ours, ours_ledger")
    parser.add_argument("--pairs", type=int, default=2000, help="timed pairs per workload and mode")
    parser.add_argument("--warmup", type=int, default=200, help="untimed pairs first")
    parser.add_argument("--official-dir", type=Path, default=ipc.default_official_dir(), help="cache of the officials")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        workload, mode, pairs, warmup, workdir, official_dir = args.child
        child(workload, mode, int(pairs), int(warmup), Path(workdir), official_dir)
        return 0
    workloads, modes = args.workloads.split(","), args.modes.split(",")
    if unknown := (set(workloads) - set(ipc.WORKLOADS)) | (set(modes) - set(MODES)):
        parser.error(f"unknown workload or mode: {', '.join(sorted(unknown))}")
    if args.pairs < 2:
        parser.error("--pairs must be at least 2")
    if "official" in modes:
        ipc.ensure_official(args.official_dir)
    env, stripped = ipc.child_env()
    if stripped:
        print(f"removed from the children's environment: {', '.join(stripped)}", file=sys.stderr)

    started = time.monotonic()
    rows, problems = [], []
    for workload in workloads:
        for mode in modes:  # one at a time: a second process would share the cores with the timed one
            row, found = run_child(workload, mode, args, env)
            rows.append(row)
            problems += found
            print(f"  {workload:>9} {mode:>11}: {row.added_us:6.0f} us added, {row.ratio:.2f}x", file=sys.stderr)
    elapsed = time.monotonic() - started
    if args.json:
        report = {"pairs": args.pairs, "warmup": args.warmup, "seconds": round(elapsed, 1), "problems": problems,
                  "rows": [asdict(r) for r in rows]}  # fmt: skip
        print(json.dumps(report, indent=2))
    else:
        print(format_table(rows))
        print(f"\n{args.pairs} timed pairs per row after {args.warmup} untimed: {elapsed:.0f} s wall")
    for p in problems:
        print(f"INVALID: {p}", file=sys.stderr)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
