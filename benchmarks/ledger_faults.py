#!/usr/bin/env python3
"""Ledger service under faults, on loopback: what is stored, lost or doubled.

    python benchmarks/ledger_faults.py            # every case, 15-40 s on 2 cores
    python benchmarks/ledger_faults.py --case kill9 --case gzip-bomb --json

Each case runs a real service subprocess (`python -m otel_ai_cost ledger serve`) on a fresh SQLite file, and
senders that behave like the collector's `otlp_http` exporter: a batch is re-sent until it is answered 200 (after
Retry-After on 503, after a pause on a connection error). Cases:

- **kill9**: 60 batches of 100 spans from 2 senders; after a third of them the service is killed with SIGKILL, then
  restarted on the same port; the senders carry on.
- **frozen-store**: another process holds the SQLite file's write lock (`BEGIN EXCLUSIVE`) for 6 s while 20
  batches are sent; then it lets go.
- **gzip-bomb**: a 1 GiB run of zeros, gzipped (about 1 MiB on the wire), sent as one request.
- **idle-flood**: 200 sockets opened and left silent, then 10 normal batches and `/healthz`.

Reported per case: batches sent, records sent, records stored (the SQLite file, read after the service stopped),
lost (sent, not stored), doubled (stored more than once: the ledger's key is the span, so a row count above the
distinct spans), the answers seen, the longest answer, and the case's wall time. Exit status 2 when a case lost or
doubled a record, or an answer was wrong (INVALID).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ledger_ingest import cost_span_request, environment, free_port, start_service
from ledger_load import fresh_request, stop_service

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@dataclass
class CaseResult:
    case: str
    batches: int
    sent: int
    stored: int
    lost: int
    doubled: int
    answers: dict[str, int]
    slowest_answer_s: float
    wall_s: float
    notes: list[str] = field(default_factory=list)
    ok: bool = True


class Senders:
    """Sends batches like the collector: each until it is answered 200; counts the answers seen."""

    def __init__(self, endpoint: str, deadline: float) -> None:
        self.endpoint = endpoint
        self.deadline = deadline
        self.answers: Counter[str] = Counter()
        self.slowest = 0.0
        self.lock = threading.Lock()
        self.sent_batches = 0

    def send(self, body: bytes, headers: dict[str, str] = PROTOBUF) -> None:
        while time.monotonic() < self.deadline:
            start = time.monotonic()
            try:
                response = requests.post(self.endpoint, data=body, headers=headers, timeout=15)
                answer, retry = str(response.status_code), response.status_code != 200
                pause = float(response.headers.get("Retry-After", "1")) if response.status_code == 503 else 0.2
            except requests.RequestException as error:
                answer, retry, pause = type(error).__name__, True, 0.2
            with self.lock:
                self.answers[answer] += 1
                self.slowest = max(self.slowest, time.monotonic() - start)
            if not retry:
                with self.lock:
                    self.sent_batches += 1
                return
            time.sleep(pause)

    def run(self, bodies: list[bytes], threads: int, after_each: threading.Event | None = None) -> None:
        queue = list(reversed(bodies))

        def worker() -> None:
            while True:
                with self.lock:
                    if not queue:
                        return
                    body = queue.pop()
                self.send(body)

        workers = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()


def stored_rows(path: Path) -> tuple[int, int]:
    """(rows, distinct spans) in a SQLite ledger file."""
    with sqlite3.connect(path) as db:
        rows, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT trace_id || span_id) FROM records").fetchone()
    return int(rows), int(distinct)


def batches(count: int, spans: int) -> list[bytes]:
    template = cost_span_request(spans)
    return [fresh_request(template, 1).SerializeToString() for _ in range(count)]


def result(case: str, senders: Senders, bodies: list[bytes], spans: int, db: Path, start: float) -> CaseResult:
    rows, distinct = stored_rows(db)
    sent = len(bodies) * spans
    return CaseResult(
        case=case,
        batches=len(bodies),
        sent=sent,
        stored=distinct,
        lost=sent - distinct,
        doubled=rows - distinct,
        answers=dict(senders.answers),
        slowest_answer_s=round(senders.slowest, 2),
        wall_s=round(time.monotonic() - start, 1),
        ok=distinct == sent and rows == distinct,
    )


def case_kill9(tmp: Path, env: dict[str, str], limit: float) -> CaseResult:
    db, port, start = tmp / "kill9.db", free_port(), time.monotonic()
    bodies = batches(60, 100)
    url = f"sqlite://{db}"
    process = start_service(url, port, env)
    senders = Senders(f"http://127.0.0.1:{port}/v1/traces", time.monotonic() + limit)
    runner = threading.Thread(target=senders.run, args=(bodies, 2))
    runner.start()
    while senders.sent_batches < len(bodies) // 3:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process = start_service(url, port, env)
    runner.join()
    stop_service(process)
    out = result("kill9", senders, bodies, 100, db, start)
    out.notes.append("SIGKILL after a third of the batches, restarted on the same port")
    return out


def case_frozen_store(tmp: Path, env: dict[str, str], limit: float) -> CaseResult:
    db, port, start = tmp / "frozen.db", free_port(), time.monotonic()
    bodies = batches(20, 100)
    process = start_service(f"sqlite://{db}", port, env)
    locker = sqlite3.connect(db, isolation_level=None, timeout=0, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")  # the store is frozen: every write waits for the lock
    release = threading.Timer(6.0, lambda: locker.execute("COMMIT"))
    release.start()
    senders = Senders(f"http://127.0.0.1:{port}/v1/traces", time.monotonic() + limit)
    senders.run(bodies, 2)
    release.join()
    locker.close()
    stop_service(process)
    out = result("frozen-store", senders, bodies, 100, db, start)
    out.notes.append("SQLite write lock held by another process for 6 s")
    return out


def case_gzip_bomb(tmp: Path, env: dict[str, str], limit: float) -> CaseResult:
    db, port, start = tmp / "bomb.db", free_port(), time.monotonic()
    process = start_service(f"sqlite://{db}", port, env)
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1024 * 1024)
    bomb = b"".join(compressor.compress(block) for _ in range(1024)) + compressor.flush()
    headers = dict(PROTOBUF, **{"Content-Encoding": "gzip"})
    senders = Senders(f"http://127.0.0.1:{port}/v1/traces", time.monotonic() + limit)
    began = time.monotonic()
    response = requests.post(senders.endpoint, data=bomb, headers=headers, timeout=30)
    senders.answers[str(response.status_code)] += 1
    senders.slowest = time.monotonic() - began
    peak = _peak_mib(process.pid)
    healthy = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    stop_service(process)
    out = result("gzip-bomb", senders, [], 0, db, start)
    out.notes.append(f"{len(bomb) / 2**20:.1f} MiB on the wire, 1 GiB inflated; service peak RSS {peak:.0f} MiB")
    out.ok = out.ok and response.status_code == 413 and healthy
    return out


def case_idle_flood(tmp: Path, env: dict[str, str], limit: float) -> CaseResult:
    db, port, start = tmp / "flood.db", free_port(), time.monotonic()
    process = start_service(f"sqlite://{db}", port, env)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(200)]
    time.sleep(0.3)
    senders = Senders(f"http://127.0.0.1:{port}/v1/traces", time.monotonic() + limit)
    began = time.monotonic()
    health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code
    health_s = time.monotonic() - began
    bodies = batches(10, 100)
    senders.run(bodies, 1)
    for sock in idle:
        sock.close()
    stop_service(process)
    out = result("idle-flood", senders, bodies, 100, db, start)
    out.notes.append(f"200 silent sockets first; /healthz answered {health} in {health_s:.2f} s")
    out.ok = out.ok and health == 200 and set(out.answers) == {"200"}
    return out


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


CASES = {
    "kill9": case_kill9,
    "frozen-store": case_frozen_store,
    "gzip-bomb": case_gzip_bomb,
    "idle-flood": case_idle_flood,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="run only these (repeatable)")
    parser.add_argument("--limit", type=float, default=45.0, help="seconds each case's senders may keep retrying")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_"))}
    results = []
    with tempfile.TemporaryDirectory(prefix="ledger-faults-") as directory:
        for name in args.case or list(CASES):
            results.append(CASES[name](Path(directory), env, args.limit))
    invalid = [r.case for r in results if not r.ok]
    if args.json:
        print(json.dumps({"results": [asdict(r) for r in results], "invalid": invalid, **environment()}, indent=2))
    else:
        env_info = environment()
        print(f"ledger faults: Python {env_info['python']}, SQLite {env_info['sqlite']}, {env_info['cpus']} CPUs")
        print(
            f"{'case':<14}{'batches':>8}{'sent':>7}{'stored':>8}{'lost':>6}{'doubled':>8}{'slowest s':>10}{'wall s':>8}"
        )
        for r in results:
            print(
                f"{r.case:<14}{r.batches:>8}{r.sent:>7}{r.stored:>8}{r.lost:>6}{r.doubled:>8}"
                f"{r.slowest_answer_s:>10}{r.wall_s:>8}  answers {r.answers}; {'; '.join(r.notes)}"
            )
        if invalid:
            print("INVALID: " + ", ".join(invalid))
    return 2 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
