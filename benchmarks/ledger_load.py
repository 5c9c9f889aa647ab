#!/usr/bin/env python3
"""Ledger service under load: N senders x M spans on loopback, every record stored exactly once; and its memory.

    python benchmarks/ledger_load.py                      # load (8 senders x 6,400 spans) and memory sections
    python benchmarks/ledger_load.py --senders 8 --spans 6250 --batch 250 --section load
    python benchmarks/ledger_load.py --section memory --json

The service is a real subprocess (`python -m otel_ai_cost ledger serve`) on a fresh SQLite file in a temporary
directory, on 127.0.0.1. Nothing else is contacted.

- **load**: `--senders` threads, each with its own keep-alive connection, send `--spans` cost spans each, in
  protobuf requests of `--batch` spans (gzip with `--gzip`), every span with fresh ids. A sender retries a 503 after
  its Retry-After, as the collector does. Reported: records/s over the wall time, request latency percentiles, and
  the checks: the store's month totals count every span exactly once (`/metrics`), none was rejected or lost.
- **memory**: the service's resident memory (VmRSS, and VmHWM, the peak, from /proc) before, at the peak, and 3 s
  after (a) one identity-encoded request of `--big-mib` MiB and (b) `--concurrent` such requests gzipped, sent at
  once. Each case runs in a fresh service process, so its peak is its own.

Bounded: the load senders stop after `--timeout` seconds (default 60); the default run takes about 70 s on 2 cores.
Exit status 2 when a check fails (INVALID).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ledger_ingest import calls, cost_span_request, environment, free_port, metric, start_service

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@dataclass
class LoadResult:
    senders: int
    spans_per_sender: int
    batch: int
    gzip: bool
    records: int
    wall_s: float
    records_per_s: int
    retried_503: int
    latency_ms_p50: float
    latency_ms_p95: float
    checks: dict[str, bool] = field(default_factory=dict)


@dataclass
class MemoryResult:
    case: str
    body_mib: float
    requests: int
    status: list[int]
    rss_before_mib: float
    peak_mib: float
    rss_after_mib: float

    @property
    def added_peak_mib(self) -> float:
        return round(self.peak_mib - self.rss_before_mib, 1)


def stop_service(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(10)


def fresh_request(template: ExportTraceServiceRequest, copies: int) -> ExportTraceServiceRequest:
    """`copies` resource_spans copies of the template's, every span with fresh ids."""
    request = ExportTraceServiceRequest()
    for _ in range(copies):
        resource_spans = request.resource_spans.add()
        resource_spans.CopyFrom(template.resource_spans[0])
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                span.trace_id = secrets.token_bytes(16)
                span.span_id = secrets.token_bytes(8)
    return request


def post_until_accepted(session: requests.Session, endpoint: str, body: bytes, headers: dict[str, str]) -> int:
    """Posts, retrying 503 after Retry-After (as the collector does); returns how many retries it took."""
    retries = 0
    while True:
        response = session.post(endpoint, data=body, headers=headers, timeout=60)
        if response.status_code != 503:
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.content[:200]!r}")
            return retries
        retries += 1
        time.sleep(float(response.headers.get("Retry-After", "1")))


def run_load(args: argparse.Namespace, env: dict[str, str], tmp: Path) -> LoadResult:
    template = cost_span_request(args.batch)
    per_sender = max(1, args.spans // args.batch)
    headers = dict(PROTOBUF, **({"Content-Encoding": "gzip"} if args.gzip else {}))
    queues = []
    for _ in range(args.senders):  # encoded before the clock starts: the figure is the service's
        bodies = [fresh_request(template, 1).SerializeToString() for _ in range(per_sender)]
        queues.append([gzip.compress(b, compresslevel=1) if args.gzip else b for b in bodies])
    port = free_port()
    process = start_service(f"sqlite://{tmp / 'load.db'}", port, env)
    endpoint = f"http://127.0.0.1:{port}/v1/traces"
    latencies: list[float] = []
    retried = [0]
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + args.timeout

    def sender(bodies: list[bytes]) -> None:
        with requests.Session() as session:
            for body in bodies:
                if time.monotonic() > deadline:
                    errors.append("time limit reached")
                    return
                start = time.perf_counter()
                try:
                    retries = post_until_accepted(session, endpoint, body, headers)
                except Exception as error:  # reported as a failed check, not a traceback
                    with lock:
                        errors.append(str(error))
                    return
                with lock:
                    latencies.append(time.perf_counter() - start)
                    retried[0] += retries

    try:
        threads = [threading.Thread(target=sender, args=(queue,)) for queue in queues]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    finally:
        status = stop_service(process)
    sent = args.senders * per_sender * args.batch
    ordered = sorted(latencies) or [0.0]
    return LoadResult(
        senders=args.senders,
        spans_per_sender=per_sender * args.batch,
        batch=args.batch,
        gzip=args.gzip,
        records=sent,
        wall_s=round(wall, 2),
        records_per_s=round(sent / wall),
        retried_503=retried[0],
        latency_ms_p50=round(statistics.median(ordered) * 1000, 1),
        latency_ms_p95=round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        checks={
            "every request answered 200": not errors,
            "every span stored exactly once (month calls)": calls(text) == sent,
            "written + duplicates = sent": metric(text, "ai_cost_ledger_records_written_total")
            + metric(text, "ai_cost_ledger_duplicates_ignored_total")
            == sent,
            "none rejected": metric(text, "ai_cost_ledger_spans_rejected_total") == 0,
            "graceful exit (0)": status == 0,
        },
    )


def memory_of(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def run_memory_case(
    case: str, bodies: list[bytes], headers: dict[str, str], env: dict[str, str], tmp: Path, body_mib: float
) -> MemoryResult:
    port = free_port()
    process = start_service(f"sqlite://{tmp / f'memory-{case[:3]}.db'}", port, env)
    endpoint = f"http://127.0.0.1:{port}/v1/traces"
    statuses: list[int] = []
    try:
        requests.post(endpoint, data=b"", headers=PROTOBUF, timeout=30)  # warm: code paths loaded
        time.sleep(0.5)
        before, _ = memory_of(process.pid)

        def send(body: bytes) -> None:
            statuses.append(requests.post(endpoint, data=body, headers=headers, timeout=120).status_code)

        threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(3)
        after, peak = memory_of(process.pid)
    finally:
        stop_service(process)
    megabytes = (round(before, 1), round(peak, 1), round(after, 1))
    return MemoryResult(case, round(body_mib, 1), len(bodies), sorted(statuses), *megabytes)


def run_memory(args: argparse.Namespace, env: dict[str, str], tmp: Path) -> list[MemoryResult]:
    template = cost_span_request(512)
    copies = max(1, round(args.big_mib * 1024 * 1024 / template.ByteSize()))
    big = [fresh_request(template, copies).SerializeToString() for _ in range(max(1, args.concurrent))]
    mib = len(big[0]) / 1024 / 1024
    results = [run_memory_case("one request, identity", big[:1], PROTOBUF, env, tmp, mib)]
    if args.concurrent > 0:
        zipped = [gzip.compress(body, compresslevel=1) for body in big]
        headers = dict(PROTOBUF, **{"Content-Encoding": "gzip"})
        results.append(run_memory_case(f"{len(zipped)} at once, gzip", zipped, headers, env, tmp, mib))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--section", choices=["load", "memory", "all"], default="all")
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--spans", type=int, default=6400, help="spans per sender")
    parser.add_argument("--batch", type=int, default=200, help="spans per request")
    parser.add_argument("--gzip", action="store_true", help="gzip the load requests")
    parser.add_argument("--big-mib", type=float, default=14.0, help="size of each memory-case request")
    parser.add_argument("--concurrent", type=int, default=8, help="gzipped big requests sent at once (0: skip)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per load section")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_"))}
    load: LoadResult | None = None
    memory: list[MemoryResult] = []
    with tempfile.TemporaryDirectory(prefix="ledger-load-") as directory:
        tmp = Path(directory)
        if args.section in ("load", "all"):
            load = run_load(args, env, tmp)
        if args.section in ("memory", "all"):
            memory = run_memory(args, env, tmp)
    invalid = [] if load is None else [name for name, ok in load.checks.items() if not ok]
    invalid += [f"{m.case}: status {m.status}" for m in memory if set(m.status) != {200}]
    if args.json:
        document: dict[str, Any] = {"load": load and asdict(load), "invalid": invalid, **environment()}
        document["memory"] = [dict(asdict(m), added_peak_mib=m.added_peak_mib) for m in memory]
        print(json.dumps(document, indent=2))
    else:
        report(load, memory)
        if invalid:
            print("INVALID: " + "; ".join(invalid))
    return 2 if invalid else 0


def report(load: LoadResult | None, memory: list[MemoryResult]) -> None:
    env = environment()
    print(f"Python {env['python']}, SQLite {env['sqlite']}, {env['cpus']} CPUs")
    if load is not None:
        print(
            f"load: {load.senders} senders x {load.spans_per_sender} spans, {load.batch} spans/request, "
            f"gzip={'on' if load.gzip else 'off'}: {load.records} records in {load.wall_s:.2f} s = "
            f"{load.records_per_s} records/s; p50 {load.latency_ms_p50} ms, p95 {load.latency_ms_p95} ms; "
            f"503 retries {load.retried_503}"
        )
        for name, ok in load.checks.items():
            print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if memory:
        print(f"{'memory case':<24}{'body MiB':>9}{'status':>14}{'RSS before':>11}{'peak':>8}{'added':>8}{'after':>8}")
        for m in memory:
            codes = ",".join(sorted({str(s) for s in m.status}))
            print(
                f"{m.case:<24}{m.body_mib:>9}{codes:>14}{m.rss_before_mib:>11}{m.peak_mib:>8}"
                f"{m.added_peak_mib:>8}{m.rss_after_mib:>8}"
            )


if __name__ == "__main__":
    sys.exit(main())
