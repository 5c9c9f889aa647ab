#!/usr/bin/env python3
"""Instructions that telemetry adds per AI SDK call, ours beside the official OpenTelemetry GenAI instrumentation,
counted by valgrind (stable on a busy machine).

    python benchmarks/instructions_per_call.py                    # 3 workloads x 4 modes: about 6 min on 2 cores
    python benchmarks/instructions_per_call.py --workloads chat --modes bare,ours --calls 40,160 --jobs 1
    python benchmarks/instructions_per_call.py --json             # the same, and every count, as JSON

Workloads, each the real SDK client on an `httpx2.MockTransport` answering the canned, real-shaped bodies of
`overhead.py` (nothing leaves the process):

- `chat`: `openai` `chat.completions.create`;
- `stream`: the same with `stream=True, stream_options={"include_usage": True}`, every chunk read (the transport
  answers the SSE chunks the SDK parses, the last one carrying the usage);
- `anthropic`: `anthropic` `messages.create`, the client built with the SDK's defaults. anthropic 2.x then emits
  its own span whenever a tracer provider is set: that is left as it is, and counted (the "spans" column).

Modes:

- `bare`: no telemetry at all: no tracer or meter provider is set (the OpenTelemetry API's no-op defaults, so the
  anthropic SDK's own span does not record). The floor every other mode is compared with.
- `official`: the official instrumentation, `opentelemetry-instrumentation-genai-openai` (chat, stream) or
  `opentelemetry-instrumentation-genai-anthropic` (anthropic), `instrument(tracer_provider=..., meter_provider=...)`.
- `ours`: `otel_ai_cost.instrument()` with `OTEL_AI_COST_LEDGER=none`.
- `ours_ledger`: `otel_ai_cost.instrument()` with the default embedded SQLite ledger, in a temporary directory.

Every mode but `bare` has the telemetry of `overhead.py`: an SDK `TracerProvider` with a `BatchSpanProcessor`
(its exporter counts spans per scope and discards them) and an SDK `MeterProvider` with an `InMemoryMetricReader`
collected once at the end, both also set as the global providers.

Each (workload, mode) runs one child process under `valgrind --tool=cachegrind --cache-sim=no` twice, with N1 and
N2 calls (`--calls`, default 100,400). Per call is (Ir(N2) - Ir(N1)) / (N2 - N1), so start-up and imports cancel
out, and every instruction the calls cause counts, whichever thread runs it (the batch span processor, the metric
drain, the ledger writer). Children run `--jobs` at a time (default 2), with `PYTHONHASHSEED=0` and without any
`OTEL_*` or `ANTHROPIC_OPEN_TELEMETRY*` variable of the caller's environment (they change the figures; the run
names those it removed).

The official instrumentations are NOT installed into the Python environment: they register
`opentelemetry_instrumentor` entry points, which `opentelemetry-instrument` (and so the project's launcher tests)
would pick up. On first use the script installs them, with `python3 -m pip install --no-deps --target DIR`, into a
cache directory (`--official-dir`, default `$XDG_CACHE_HOME/otel-ai-cost-bench/official`, else
`~/.cache/otel-ai-cost-bench/official`), together with `opentelemetry-util-genai`, the one requirement of theirs
that the project does not install; it checks that every other requirement is met by the environment, and puts DIR
on `sys.path` only inside the `official` mode's children. The versions are pinned (`OFFICIAL_PACKAGES`); changing
them reinstalls the directory.

A run checks its work: every call got its answer (tokens summed in the child; a stream all its chunks, the usage
chunk included), the official instrumentation made one span per call with the usage on it, ours one priced span
per call, no mode made spans of another's scope, and `ours_ledger` one priced ledger record per call, counted
outside the measured process. A failed check makes the run INVALID (exit status 2).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.metadata
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

HERE = Path(__file__).resolve().parent
WORKLOADS = ("chat", "stream", "anthropic")
MODES = ("bare", "official", "ours", "ours_ledger")
OFFICIAL_PACKAGES = (
    "opentelemetry-instrumentation-genai-openai==1.3b0",
    "opentelemetry-instrumentation-genai-anthropic==1.3b0",
    "opentelemetry-util-genai==1.3b0",  # their shared runtime, which the project does not install
)
OUR_SCOPE = "otel_ai_cost"
OFFICIAL_SCOPE = {
    "chat": "opentelemetry.instrumentation.genai.openai",
    "stream": "opentelemetry.instrumentation.genai.openai",
    "anthropic": "opentelemetry.instrumentation.genai.anthropic",
}
ANTHROPIC_SDK_SCOPE = "com.anthropic.sdk.python"
SCOPE_LABELS = {
    OUR_SCOPE: "ours",
    ANTHROPIC_SDK_SCOPE: "anthropic SDK",
    **{s: "official" for s in OFFICIAL_SCOPE.values()},
}
PROVIDER = {"chat": "openai", "stream": "openai", "anthropic": "anthropic"}
STRIPPED_PREFIXES = ("OTEL_", "ANTHROPIC_OPEN_TELEMETRY")
# What each call must return (the canned bodies of overhead.py): input + output tokens, and chunks per stream.
TOKENS_PER_CALL = {"chat": 61 + 22, "stream": 61 + 22, "anthropic": 58 + 24}
CHUNKS_PER_STREAM = 11  # the role chunk, 8 content pieces, the finish chunk, the usage chunk


def default_official_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "otel-ai-cost-bench" / "official"


# --------------------------------------------------------------------------------------------------------------
# The measured child process
# --------------------------------------------------------------------------------------------------------------


class SpanCounter(SpanExporter):
    """Discards spans, counting them per instrumentation scope, ours priced, and the official ones with usage."""

    def __init__(self, official_scope: str) -> None:
        self.official_scope = official_scope
        self.by_scope: Counter[str] = Counter()
        self.ours_priced = 0
        self.official_with_usage = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:  # the batch processor never calls export() from two threads at once
            scope = span.instrumentation_scope.name if span.instrumentation_scope else ""
            self.by_scope[scope] += 1
            attributes = span.attributes or {}
            if scope == OUR_SCOPE and attributes.get("ai_cost.amount") is not None:
                self.ours_priced += 1
            elif scope == self.official_scope and attributes.get("gen_ai.usage.input_tokens") is not None:
                self.official_with_usage += 1
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


@dataclass
class Telemetry:
    tracer_provider: Any
    meter_provider: Any
    reader: Any
    exporter: SpanCounter


def make_telemetry(workload: str) -> Telemetry:
    """As `overhead.make_telemetry()`, with a `SpanCounter`: batch span processor, in-memory metric reader, both
    providers also set as the global ones (which the official instrumentations and the anthropic SDK's span use)."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": "otel-ai-cost-bench", "deployment.environment.name": "bench"})
    exporter = SpanCounter(OFFICIAL_SCOPE[workload])
    tracer_provider = TracerProvider(resource=resource)
    # A queue no run fills: call_path.py's thousands of fast calls would otherwise outrun the export, and drop spans.
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=1 << 16))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return Telemetry(tracer_provider, meter_provider, reader, exporter)


def set_up(workload: str, mode: str, workdir: Path, official_dir: str) -> tuple[Telemetry | None, Any]:
    """A child's telemetry and instrumentation for `mode` (the ledger, for `ours_ledger`, in `workdir`): the
    telemetry (None for `bare`) and the official instrumentor, if that is the mode."""
    if mode == "official":
        sys.path.insert(0, official_dir)  # only here: the official dists' entry points stay out of everything else
    os.environ["OTEL_AI_COST_LEDGER"] = f"sqlite:///{workdir / 'usage.db'}" if mode == "ours_ledger" else "none"
    sys.path.insert(0, str(HERE))
    import otel_ai_cost

    telemetry = None if mode == "bare" else make_telemetry(workload)
    official: Any = None
    if telemetry is not None:
        providers = {"tracer_provider": telemetry.tracer_provider, "meter_provider": telemetry.meter_provider}
        if mode == "official":
            if workload == "anthropic":
                from opentelemetry.instrumentation.genai.anthropic import AnthropicInstrumentor

                official = AnthropicInstrumentor()
            else:
                from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

                official = OpenAIInstrumentor()
            official.instrument(**providers)
        else:
            otel_ai_cost.instrument(**providers)
    return telemetry, official


def make_client(workload: str, *, anthropic_sdk_span: bool = True) -> Any:
    """The workload's real SDK client on the canned transport. An anthropic client keeps the SDK's defaults (its
    own span on whenever a tracer provider is set) unless `anthropic_sdk_span` is False."""
    import anthropic
    import httpx2
    import openai
    import overhead

    if workload == "anthropic":
        return anthropic.Anthropic(
            api_key="sk-ant-bench",
            http_client=httpx2.Client(transport=httpx2.MockTransport(overhead._anthropic_handler)),
            **({} if anthropic_sdk_span else {"open_telemetry": False}),
        )
    return openai.OpenAI(
        api_key="sk-bench", http_client=httpx2.Client(transport=httpx2.MockTransport(overhead._openai_handler))
    )


def call(workload: str, client: Any) -> tuple[int, int]:
    """One call of `workload`, read to the end: (tokens it reported, stream chunks read)."""
    import overhead

    messages = [{"role": "user", "content": overhead.USER_PROMPT}]
    if workload == "anthropic":
        message = client.messages.create(model=overhead.ANTHROPIC_MODEL, max_tokens=200, messages=messages)
        return message.usage.input_tokens + message.usage.output_tokens, 0
    if workload == "chat":
        completion = client.chat.completions.create(model=overhead.OPENAI_MODEL, messages=messages, max_tokens=200)
        return (completion.usage.total_tokens if completion.usage else 0), 0
    stream = client.chat.completions.create(
        model=overhead.OPENAI_MODEL,
        messages=messages,
        max_tokens=200,
        stream=True,
        stream_options={"include_usage": True},
    )
    tokens = chunks = 0
    for chunk in stream:
        chunks += 1
        if chunk.usage is not None:
            tokens += chunk.usage.total_tokens
    return tokens, chunks


def tear_down(telemetry: Telemetry | None, official: Any) -> dict[str, Any]:
    """Collects the metrics, flushes the spans, uninstruments; what the span counter saw."""
    import otel_ai_cost

    if telemetry is None:
        return {"by_scope": {}, "ours_priced": 0, "official_with_usage": 0}
    telemetry.reader.get_metrics_data()
    telemetry.tracer_provider.force_flush()
    if official is not None:
        official.uninstrument()
    else:
        otel_ai_cost.uninstrument()
    telemetry.tracer_provider.shutdown()
    counter = telemetry.exporter
    return {
        "by_scope": dict(counter.by_scope),
        "ours_priced": counter.ours_priced,
        "official_with_usage": counter.official_with_usage,
    }


def child(workload: str, mode: str, calls: int, workdir: Path, official_dir: str) -> None:
    """One measured process: `calls` calls of `workload` in `mode`. Writes what it saw to `workdir/result.json`;
    the ledger, if any, is left to the parent to check (reading it here would be counted as the calls' cost)."""
    telemetry, official = set_up(workload, mode, workdir, official_dir)
    client = make_client(workload)
    tokens = chunks = 0
    for _ in range(calls):
        got_tokens, got_chunks = call(workload, client)
        tokens += got_tokens
        chunks += got_chunks
    result = {"tokens": tokens, "chunks": chunks, **tear_down(telemetry, official)}
    (workdir / "result.json").write_text(json.dumps(result))


# --------------------------------------------------------------------------------------------------------------
# The parent: official packages, children under valgrind, checks, table
# --------------------------------------------------------------------------------------------------------------


def ensure_official(directory: Path) -> None:
    """Install OFFICIAL_PACKAGES into `directory` (not into the environment) unless they are there already; then
    check that every requirement of theirs is met by the directory or the environment."""
    marker = directory / "installed.txt"
    wanted = "\n".join(OFFICIAL_PACKAGES) + "\n"
    if not (marker.is_file() and marker.read_text() == wanted):
        staging = directory.with_name(directory.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        print(f"installing the official instrumentations into {directory} (not the environment)", file=sys.stderr)
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
        subprocess.run([*command, "--target", str(staging), *OFFICIAL_PACKAGES], check=True)
        (staging / "installed.txt").write_text(wanted)
        shutil.rmtree(directory, ignore_errors=True)
        staging.rename(directory)
    missing = unmet_requirements(directory)
    if missing:
        raise SystemExit(
            f"the official instrumentations in {directory} need {', '.join(missing)}: add them to OFFICIAL_PACKAGES "
            "(or install them into the environment if the project needs them anyway)"
        )


def unmet_requirements(directory: Path) -> list[str]:
    from packaging.requirements import Requirement

    local = {
        d.metadata["Name"].lower().replace("_", "-"): d.version
        for d in importlib.metadata.distributions(path=[str(directory)])
    }
    unmet = []
    for dist in importlib.metadata.distributions(path=[str(directory)]):
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue  # an extra (`instruments`, `test`, `upload`): not needed to run
            name = req.name.lower().replace("_", "-")
            try:
                version = local.get(name) or importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                unmet.append(text)
                continue
            if not req.specifier.contains(version, prereleases=True):
                unmet.append(f"{text} (found {version})")
    return unmet


def child_env() -> tuple[dict[str, str], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(STRIPPED_PREFIXES)}
    env["PYTHONHASHSEED"] = "0"  # the same dict layouts in every child
    return env, sorted(k for k in os.environ if k.startswith(STRIPPED_PREFIXES))


@dataclass
class Run:
    workload: str
    mode: str
    calls: int
    ir: int
    seconds: float
    result: dict[str, Any]
    ledger: dict[str, int] | None = None  # ours_ledger: records, priced ones, those of the workload's provider


def run_child(workload: str, mode: str, calls: int, official_dir: Path, env: dict[str, str]) -> Run:
    """Ir of one child process under cachegrind, with what it reported (and its ledger's records, if any)."""
    with tempfile.TemporaryDirectory(prefix="ipc-") as tmp:
        workdir = Path(tmp)
        out = workdir / "cachegrind.out"
        command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}",
                   sys.executable, __file__, "--child", workload, mode, str(calls), str(workdir),
                   str(official_dir)]  # fmt: skip
        started = time.monotonic()
        proc = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env)
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            print(f"{workload}/{mode}/{calls}: exit status {proc.returncode}\n{proc.stderr[-3000:]}", file=sys.stderr)
            raise SystemExit(2)
        run = Run(workload, mode, calls, summary_ir(out), seconds, json.loads((workdir / "result.json").read_text()))
        if mode == "ours_ledger":
            with sqlite3.connect(workdir / "usage.db") as db:
                query = "SELECT count(*), count(amount), coalesce(sum(provider = ?), 0) FROM records"
                records, priced, of_provider = db.execute(query, (PROVIDER[workload],)).fetchone()
            run.ledger = {"records": records, "priced": priced, "of_provider": of_provider}
        return run


def summary_ir(out: Path) -> int:
    for line in out.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit("no summary line in cachegrind's output")


def check(run: Run) -> list[str]:
    """What is wrong with one run (nothing, if it measured what it claims to)."""
    n, r, w, m = run.calls, run.result, run.workload, run.mode
    where = f"{w}/{m}/{n} calls"
    problems = []
    if r["tokens"] != n * TOKENS_PER_CALL[w]:
        problems.append(f"{where}: {r['tokens']} tokens returned, expected {n * TOKENS_PER_CALL[w]}")
    if w == "stream" and r["chunks"] != n * CHUNKS_PER_STREAM:
        problems.append(f"{where}: {r['chunks']} chunks read, expected {n * CHUNKS_PER_STREAM}")
    scopes = r["by_scope"]
    allowed = {"bare": set(), "official": {OFFICIAL_SCOPE[w]}, "ours": {OUR_SCOPE}, "ours_ledger": {OUR_SCOPE}}[m]
    if w == "anthropic" and m != "bare":
        allowed.add(ANTHROPIC_SDK_SCOPE)  # the SDK's own span, left at its default: counted, not required
    for scope, count in scopes.items():
        if scope not in allowed:
            problems.append(f"{where}: {count} spans of scope {scope!r}, which this mode must not make")
    if m == "official":
        if scopes.get(OFFICIAL_SCOPE[w], 0) != n or r["official_with_usage"] != n:
            problems.append(
                f"{where}: {scopes.get(OFFICIAL_SCOPE[w], 0)} official spans, {r['official_with_usage']} with "
                f"usage, for {n} calls"
            )
    if m in ("ours", "ours_ledger") and (scopes.get(OUR_SCOPE, 0) != n or r["ours_priced"] != n):
        problems.append(f"{where}: {scopes.get(OUR_SCOPE, 0)} spans of ours, {r['ours_priced']} priced, for {n} calls")
    if m == "ours_ledger" and (run.ledger is None or set(run.ledger.values()) != {n}):
        problems.append(f"{where}: ledger records {run.ledger}, expected {n} of each")
    return problems


@dataclass
class Row:
    workload: str
    mode: str
    per_call: int
    added: int | None
    ratio: float | None
    spans_per_call: float
    spans: str


def rows_of(
    runs: dict[tuple[str, str, int], Run], workloads: list[str], modes: list[str], n1: int, n2: int
) -> list[Row]:
    rows = []
    for w in workloads:
        per_call = {m: (runs[w, m, n2].ir - runs[w, m, n1].ir) // (n2 - n1) for m in modes}
        added = {m: per_call[m] - per_call["bare"] for m in modes if "bare" in per_call}
        for m in modes:
            scopes = runs[w, m, n2].result["by_scope"]
            total = sum(scopes.values()) / n2
            parts = " + ".join(f"{SCOPE_LABELS.get(s, s)} {c / n2:g}" for s, c in sorted(scopes.items()))
            a = added.get(m) if m != "bare" else None
            ratio = a / added["official"] if a is not None and added.get("official") else None
            rows.append(Row(w, m, per_call[m], a, ratio, total, parts or "none"))
    return rows


def format_table(rows: list[Row]) -> str:
    lines = [
        "| workload | mode | instructions per call | added per call (minus bare) | ratio to official "
        "| spans per call |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        added = f"{r.added / 1000:,.0f} k" if r.added is not None else "-"
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        spans = f"{r.spans_per_call:g}" + (f" ({r.spans})" if r.spans_per_call else "")
        lines.append(f"| {r.workload} | {r.mode} | {r.per_call / 1000:,.0f} k | {added} | {ratio} | {spans} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma list of chat, stream, anthropic")
    parser.add_argument("--modes", default=",".join(MODES), help="comma list of bare, official, ours, ours_ledger")
    parser.add_argument("--calls", default="100,400", help="the two call counts N1,N2")
    parser.add_argument("--jobs", type=int, default=2, help="children run at once (valgrind runs one core each)")
    parser.add_argument("--official-dir", type=Path, default=default_official_dir(), help="cache of the officials")
    parser.add_argument("--json", action="store_true", help="print the rows and every run as JSON instead")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        workload, mode, calls, workdir, official_dir = args.child
        child(workload, mode, int(calls), Path(workdir), official_dir)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    workloads, modes = args.workloads.split(","), args.modes.split(",")
    if unknown := (set(workloads) - set(WORKLOADS)) | (set(modes) - set(MODES)):
        parser.error(f"unknown workload or mode: {', '.join(sorted(unknown))}")
    n1, n2 = (int(n) for n in args.calls.split(","))
    if "official" in modes:
        ensure_official(args.official_dir)
    env, stripped = child_env()
    if stripped:
        print(f"removed from the children's environment: {', '.join(stripped)}", file=sys.stderr)

    started = time.monotonic()
    tasks = [(w, m, n) for n in (n2, n1) for w in workloads for m in modes]  # the long ones first
    runs: dict[tuple[str, str, int], Run] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_child, w, m, n, args.official_dir, env): (w, m, n) for w, m, n in tasks}
        for future in concurrent.futures.as_completed(futures):
            run = future.result()
            runs[futures[future]] = run
            print(f"  {run.workload:>9} {run.mode:>11} {run.calls:>5} calls: Ir {run.ir:>14,}  "
                  f"{run.seconds:5.0f} s", file=sys.stderr, flush=True)  # fmt: skip
    elapsed = time.monotonic() - started

    problems = [p for run in runs.values() for p in check(run)]
    rows = rows_of(runs, workloads, modes, n1, n2)
    if args.json:
        report = {"calls": [n1, n2], "seconds": round(elapsed, 1), "problems": problems,
                  "rows": [asdict(r) for r in rows], "runs": [asdict(r) for r in runs.values()]}  # fmt: skip
        print(json.dumps(report, indent=2))
    else:
        print(format_table(rows))
        print(f"\nN1={n1}, N2={n2}; {len(tasks)} valgrind runs, {args.jobs} at a time: {elapsed:.0f} s wall")
    for p in problems:
        print(f"INVALID: {p}", file=sys.stderr)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
