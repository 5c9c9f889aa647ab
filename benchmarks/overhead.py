#!/usr/bin/env python3
"""Per-call overhead of otel-ai-cost against the uninstrumented SDKs, beside the official OpenAI instrumentation.

    python benchmarks/overhead.py                      # default: about a minute on 2 idle cores
    python benchmarks/overhead.py --calls 200 --rounds 30 --json
    python benchmarks/overhead.py --breakdown openai   # where our time goes: wall-clock per function, per call
    python benchmarks/overhead.py --profile openai     # cProfile of one instrumented block (ours)

No network: both SDKs get an `httpx2.Client` whose `httpx2.MockTransport` returns a canned, real-shaped body.
Telemetry is set up as in production, "all on": an SDK `TracerProvider` with a `BatchSpanProcessor` (its exporter
counts spans and discards them) and an SDK `MeterProvider` with an `InMemoryMetricReader`; both are also the
global providers, which the official instrumentation and the anthropic SDK's own span use.

Method (see benchmarks/README.md): for each scenario family, blocks of `--calls` calls alternate between the
baseline (nothing instrumented) and each instrumented variant, `--rounds` times, after `--warmup` untimed rounds;
instrumentation is switched with instrument()/uninstrument() between blocks, outside the timed region. A block's
time includes the metric collection after its calls (which is where otel-ai-cost drains its metric queue) and a
flush of the span processor, so deferred work is charged to the block that caused it. An instrumented block is
compared with the mean of the baseline blocks just before and just after it; the table shows the median (and
min, and interquartile range) over rounds of that difference. GC stays enabled; `gc.collect()` runs before each
block.

Afterwards the run checks itself: every call made while otel-ai-cost was on produced exactly one span of scope
`otel_ai_cost`, each priced (`ai_cost.amount`), the metric queue reached the SDK (`ai_cost.requests`), the official
instrumentation and the anthropic SDK made their spans, and streams look the same to the caller. A failed check
marks the whole run INVALID (exit status 2): a fast benchmark of broken instrumentation is worthless.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
import openai
import openai._base_client
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind
from wrapt import wrap_function_wrapper

import otel_ai_cost

OUR_SCOPE = "otel_ai_cost"
OFFICIAL_SCOPE = "opentelemetry.instrumentation.genai.openai"
ANTHROPIC_SDK_SCOPE_PREFIX = "com.anthropic"

# --------------------------------------------------------------------------------------------------------------
# Canned traffic: a small, realistic request and the real response shapes (small prompts cache nothing, so the
# cache counters are present and zero, as the APIs send them).
# --------------------------------------------------------------------------------------------------------------

SYSTEM_PROMPT = "You are a bookkeeping assistant. Answer in one short sentence."
USER_PROMPT = (
    "Receipt: 2 x flat white 3.80 EUR, 1 x almond croissant 3.20 EUR, paid by card on 2024-11-02 at "
    "Cafe Lumen, Berlin. Which expense category does this belong to?"
)
ANSWER = "This is a meals and entertainment expense of 10.80 EUR (coffee and pastry at Cafe Lumen)."

OPENAI_MODEL = "gpt-4o-mini"
OPENAI_RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
ANTHROPIC_MODEL = "claude-haiku-4-5"
ANTHROPIC_RESPONSE_MODEL = "claude-haiku-4-5-20251001"

OPENAI_CHAT_BODY = json.dumps(
    {
        "id": "chatcmpl-BN8cGZg5bJq1eTXjRVJ4JpQ6pO0Zt",
        "object": "chat.completion",
        "created": 1744650000,
        "model": OPENAI_RESPONSE_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 61,
            "completion_tokens": 22,
            "total_tokens": 83,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_b376dfbbd5",
    }
).encode()

OPENAI_HEADERS = {
    "content-type": "application/json",
    "x-request-id": "req_6f1c2a9e0d4b4e5f8a7b3c2d1e0f9a8b",
    "openai-processing-ms": "412",
    "openai-version": "2020-10-01",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-remaining-tokens": "199937",
}


def _openai_sse(include_usage: bool) -> bytes:
    """A chat completion stream; with `stream_options.include_usage` every chunk has `usage: null` and a final
    chunk with no choices carries the usage, as the API does."""
    base = {
        "id": "chatcmpl-BN8cGZg5bJq1eTXjRVJ4JpQ6pO0Zt",
        "object": "chat.completion.chunk",
        "created": 1744650000,
        "model": OPENAI_RESPONSE_MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_b376dfbbd5",
    }
    pieces = [
        "This is",
        " a meals",
        " and entertainment",
        " expense of",
        " 10.80 EUR",
        " (coffee and",
        " pastry at",
        " Cafe Lumen).",
    ]
    deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": "", "refusal": None}, None)]
    deltas += [({"content": p}, None) for p in pieces]
    deltas.append(({}, "stop"))
    chunks = []
    for delta, finish in deltas:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            chunk["usage"] = None
        chunks.append(chunk)
    if include_usage:
        usage = json.loads(OPENAI_CHAT_BODY)["usage"]
        chunks.append({**base, "choices": [], "usage": usage})
    lines = [f"data: {json.dumps(c)}\n\n" for c in chunks]
    lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


OPENAI_SSE = _openai_sse(include_usage=False)
OPENAI_SSE_WITH_USAGE = _openai_sse(include_usage=True)
SSE_HEADERS = {**OPENAI_HEADERS, "content-type": "text/event-stream; charset=utf-8"}

ANTHROPIC_MESSAGE_BODY = json.dumps(
    {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": ANTHROPIC_RESPONSE_MODEL,
        "content": [{"type": "text", "text": ANSWER}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 58,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 24,
            "service_tier": "standard",
        },
    }
).encode()

ANTHROPIC_HEADERS = {
    "content-type": "application/json",
    "request-id": "req_011CT6a5ZpQ7DkQxq3y8yD4m",
    "anthropic-organization-id": "00000000-0000-0000-0000-000000000000",
    "anthropic-ratelimit-requests-remaining": "3999",
    "anthropic-ratelimit-tokens-remaining": "399000",
}


def _openai_handler(request: httpx2.Request) -> httpx2.Response:
    if b'"stream":true' in request.content.replace(b" ", b""):
        body = OPENAI_SSE_WITH_USAGE if b'"include_usage"' in request.content else OPENAI_SSE
        return httpx2.Response(200, content=body, headers=SSE_HEADERS)
    return httpx2.Response(200, content=OPENAI_CHAT_BODY, headers=OPENAI_HEADERS)


def _anthropic_handler(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, content=ANTHROPIC_MESSAGE_BODY, headers=ANTHROPIC_HEADERS)


# --------------------------------------------------------------------------------------------------------------
# Telemetry pipeline
# --------------------------------------------------------------------------------------------------------------


class CountingExporter(SpanExporter):
    """Discards spans, counting them per instrumentation scope (and our priced ones)."""

    def __init__(self) -> None:
        self.by_scope: Counter[str] = Counter()
        self.ours_priced = 0
        self.sample: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            for span in spans:
                scope = span.instrumentation_scope.name if span.instrumentation_scope else ""
                self.by_scope[scope] += 1
                if scope == OUR_SCOPE and span.attributes and span.attributes.get("ai_cost.amount") is not None:
                    self.ours_priced += 1
                    if self.sample is None:
                        self.sample = {"name": span.name, "attributes": dict(span.attributes)}
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


@dataclass
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    reader: InMemoryMetricReader
    processor: BatchSpanProcessor
    exporter: CountingExporter


def make_telemetry() -> Telemetry:
    resource = Resource.create({"service.name": "otel-ai-cost-bench", "deployment.environment.name": "bench"})
    exporter = CountingExporter()
    processor = BatchSpanProcessor(exporter)
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(processor)
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return Telemetry(tracer_provider, meter_provider, reader, processor, exporter)


# What one of our chat spans carries (as of this benchmark): set at start, then at the end.
BARE_START_ATTRIBUTES = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "server.address": "api.openai.com",
    "gen_ai.request.max_tokens": 200,
}
BARE_END_ATTRIBUTES = {
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.id": "chatcmpl-bench",
    "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.usage.input_tokens": 100,
    "gen_ai.usage.output_tokens": 20,
    "ai_cost.pricing.version": "genai-prices-0.2.3+catalog-2026-11-22",
    "ai_cost.pricing.tier": "standard",
    "ai_cost.amount": "0.00002235",
    "ai_cost.currency": "USD",
    "ai_cost.source": "local",
    "ai_cost.pricing.status": "priced",
    "openai.response.service_tier": "default",
    "gen_ai.usage.cache_read.input_tokens": 0,
}


# --------------------------------------------------------------------------------------------------------------
# Variants: what is instrumented, and the call made
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Variant:
    key: str
    call: Callable[[], Any]
    enable: Callable[[], None] = lambda: None
    disable: Callable[[], None] = lambda: None
    ours: bool = False  # otel-ai-cost on: each call must produce one of our spans
    official: bool = False
    anthropic_sdk_spans: bool = False


@dataclass
class Row:
    scenario: str
    variant: str
    reference: str  # the baseline variant it is compared with
    kind: str  # "ours", "official", "extra" (for scale)


@dataclass
class Family:
    name: str
    groups: list[list[str]]  # each group: [baseline, instrumented...]; groups and their members rotate per round
    rows: list[Row]


@dataclass
class Block:
    family: str
    variant: str
    round: int
    calls: int
    calls_ns: int
    collect_ns: int
    flush_ns: int
    cpu_ns: int  # process CPU time (all threads) over the same span: blind to time spent descheduled

    @property
    def per_call_us(self) -> float:
        return (self.calls_ns + self.collect_ns + self.flush_ns) / self.calls / 1000

    @property
    def cpu_us(self) -> float:
        return self.cpu_ns / self.calls / 1000

    @property
    def collect_us(self) -> float:
        return self.collect_ns / self.calls / 1000


@dataclass
class Bench:
    telemetry: Telemetry
    variants: dict[str, Variant]
    families: list[Family]
    counts: Counter[str] = field(default_factory=Counter)  # calls made per variant (timed or not)
    stream_chunks: dict[str, int] = field(default_factory=dict)


def build(telemetry: Telemetry) -> Bench:
    try:
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor
    except ImportError:  # pip install -e '.[bench]'
        print("opentelemetry-instrumentation-genai-openai is not installed: its rows are left out", file=sys.stderr)
        OpenAIInstrumentor = None

    official = OpenAIInstrumentor() if OpenAIInstrumentor is not None else None
    tp, mp = telemetry.tracer_provider, telemetry.meter_provider

    def ours_on() -> None:
        otel_ai_cost.instrument(tracer_provider=tp, meter_provider=mp)

    def ours_off() -> None:
        otel_ai_cost.uninstrument()

    def official_on() -> None:
        assert official is not None
        official.instrument(tracer_provider=tp, meter_provider=mp)

    def official_off() -> None:
        assert official is not None
        official.uninstrument()

    bare_tracer = tp.get_tracer("bench.bare_span")

    def bare_span_wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        # The floor: one SDK span with the attributes our span carries, made current, and nothing else.
        span = bare_tracer.start_span(f"chat {OPENAI_MODEL}", kind=SpanKind.CLIENT, attributes=BARE_START_ATTRIBUTES)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            result = wrapped(*args, **kwargs)
        finally:
            otel_context.detach(token)
        span.set_attributes(BARE_END_ATTRIBUTES)
        span.end()
        return result

    def bare_on() -> None:
        wrap_function_wrapper(openai._base_client, "SyncAPIClient.request", bare_span_wrapper)

    def bare_off() -> None:
        unwrap(openai._base_client.SyncAPIClient, "request")

    oa = openai.OpenAI(api_key="sk-bench", http_client=httpx2.Client(transport=httpx2.MockTransport(_openai_handler)))
    an_off = anthropic.Anthropic(
        api_key="sk-ant-bench",
        http_client=httpx2.Client(transport=httpx2.MockTransport(_anthropic_handler)),
        open_telemetry=False,  # the SDK's own span off: the figure is ours alone
    )
    an_on = anthropic.Anthropic(
        api_key="sk-ant-bench",
        http_client=httpx2.Client(transport=httpx2.MockTransport(_anthropic_handler)),
        open_telemetry={"traces": True},  # the SDK's default (span on, trace context propagated), env-independent
    )
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": USER_PROMPT}]

    def openai_chat() -> Any:
        return oa.chat.completions.create(model=OPENAI_MODEL, messages=messages, max_tokens=200, temperature=0.2)

    def openai_stream() -> int:
        n = 0
        for _ in oa.chat.completions.create(
            model=OPENAI_MODEL, messages=messages, max_tokens=200, temperature=0.2, stream=True
        ):
            n += 1
        return n

    def anthropic_call(client: anthropic.Anthropic) -> Callable[[], Any]:
        def call() -> Any:
            return client.messages.create(
                model=ANTHROPIC_MODEL,
                max_tokens=200,
                system=SYSTEM_PROMPT,
                messages=[{"role": "user", "content": USER_PROMPT}],
            )

        return call

    v = [
        Variant("openai.baseline", openai_chat),
        Variant("openai.ours", openai_chat, ours_on, ours_off, ours=True),
        Variant("openai.official", openai_chat, official_on, official_off, official=True),
        Variant("openai.bare_span", openai_chat, bare_on, bare_off),
        Variant("stream.baseline", openai_stream),
        Variant("stream.ours", openai_stream, ours_on, ours_off, ours=True),
        Variant("stream.official", openai_stream, official_on, official_off, official=True),
        Variant("anthropic.baseline", anthropic_call(an_off)),
        Variant("anthropic.ours", anthropic_call(an_off), ours_on, ours_off, ours=True),
        Variant("anthropic-sdk.baseline", anthropic_call(an_on), anthropic_sdk_spans=True),
        # The SDK's span on, and ours: the SDK makes none for the calls we record (one span per call, ours).
        Variant("anthropic-sdk.ours", anthropic_call(an_on), ours_on, ours_off, ours=True),
    ]
    families = [
        Family(
            "openai",
            [["openai.baseline", "openai.ours", "openai.official", "openai.bare_span"]],
            [
                Row("openai chat.completions.create: otel-ai-cost", "openai.ours", "openai.baseline", "ours"),
                Row(
                    "openai chat: one bare SDK span, our 18 attributes (floor)",
                    "openai.bare_span",
                    "openai.baseline",
                    "extra",
                ),
                Row(
                    "openai chat.completions.create: official genai-openai",
                    "openai.official",
                    "openai.baseline",
                    "official",
                ),
            ],
        ),
        Family(
            "anthropic",
            [["anthropic.baseline", "anthropic.ours"], ["anthropic-sdk.baseline", "anthropic-sdk.ours"]],
            [
                Row(
                    "anthropic messages.create (SDK span off): otel-ai-cost",
                    "anthropic.ours",
                    "anthropic.baseline",
                    "ours",
                ),
                Row(
                    "anthropic messages.create (SDK span on): otel-ai-cost",
                    "anthropic-sdk.ours",
                    "anthropic-sdk.baseline",
                    "extra",
                ),
                Row(
                    "anthropic messages.create: the SDK's own span (for scale)",
                    "anthropic-sdk.baseline",
                    "anthropic.baseline",
                    "extra",
                ),
            ],
        ),
        Family(
            "stream",
            [["stream.baseline", "stream.ours", "stream.official"]],
            [
                Row("openai chat stream=True (read to end): otel-ai-cost", "stream.ours", "stream.baseline", "extra"),
                Row(
                    "openai chat stream=True (read to end): official genai-openai",
                    "stream.official",
                    "stream.baseline",
                    "official",
                ),
            ],
        ),
    ]
    if official is None:
        for f in families:
            f.groups = [[k for k in g if not k.endswith(".official")] for g in f.groups]
            f.rows = [r for r in f.rows if not r.variant.endswith(".official")]
    return Bench(telemetry, {x.key: x for x in v}, families)


# --------------------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------------------


def run_block(bench: Bench, family: str, key: str, rnd: int, calls: int) -> Block:
    variant = bench.variants[key]
    tel = bench.telemetry
    variant.enable()  # toggling is outside the timed region
    try:
        call = variant.call
        gc.collect()
        c0 = time.process_time_ns()
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            call()
        t1 = time.perf_counter_ns()
        tel.reader.get_metrics_data()  # collection: otel-ai-cost drains its metric queue here
        t2 = time.perf_counter_ns()
        tel.processor.force_flush()  # the span processor's export work of this block, charged to it
        t3 = time.perf_counter_ns()
        c3 = time.process_time_ns()
    finally:
        variant.disable()
    bench.counts[key] += calls
    return Block(family, key, rnd, calls, t1 - t0, t2 - t1, t3 - t2, c3 - c0)


def round_order(family: Family, rnd: int) -> list[str]:
    """Baseline first in each group, the instrumented variants rotated; the groups rotated too."""
    groups = [[g[0], *_rotate(g[1:], rnd)] for g in family.groups]
    return [k for g in _rotate(groups, rnd) for k in g]


def _rotate(items: list[Any], n: int) -> list[Any]:
    if not items:
        return items
    n %= len(items)
    return items[n:] + items[:n]


def run(bench: Bench, calls: int, rounds: int, warmup: int, progress: bool) -> list[Block]:
    blocks: list[Block] = []
    for family in bench.families:
        for w in range(warmup):
            for key in round_order(family, w):
                run_block(bench, family.name, key, -1, calls)
        for r in range(rounds):
            for key in round_order(family, r):
                blocks.append(run_block(bench, family.name, key, r, calls))
            if progress:
                print(f"  {family.name}: round {r + 1}/{rounds}", file=sys.stderr, end="\r", flush=True)
        # closing baselines, so every instrumented block has a baseline on both sides
        for group in family.groups:
            blocks.append(run_block(bench, family.name, group[0], rounds, calls))
        if progress:
            print(f"  {family.name}: done{' ' * 20}", file=sys.stderr, flush=True)
    return blocks


def _quantiles(xs: list[float]) -> tuple[float, float]:
    if len(xs) < 2:
        return (xs[0], xs[0]) if xs else (float("nan"), float("nan"))
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def analyse(bench: Bench, blocks: list[Block]) -> list[dict[str, Any]]:
    out = []
    for family in bench.families:
        seq = [b for b in blocks if b.family == family.name]  # in time order
        for row in family.rows:
            diffs, collect_diffs, cpu_diffs, instr, base = [], [], [], [], []
            for i, b in enumerate(seq):
                if b.variant != row.variant:
                    continue
                before = next((x for x in reversed(seq[:i]) if x.variant == row.reference), None)
                after = next((x for x in seq[i + 1 :] if x.variant == row.reference), None)
                refs = [x for x in (before, after) if x is not None]
                if not refs:
                    continue
                ref = sum(x.per_call_us for x in refs) / len(refs)
                ref_collect = sum(x.collect_us for x in refs) / len(refs)
                ref_cpu = sum(x.cpu_us for x in refs) / len(refs)
                diffs.append(b.per_call_us - ref)
                collect_diffs.append(b.collect_us - ref_collect)
                cpu_diffs.append(b.cpu_us - ref_cpu)
                instr.append(b.per_call_us)
                base.append(ref)
            q1, q3 = _quantiles(diffs)
            out.append(
                {
                    "scenario": row.scenario,
                    "kind": row.kind,
                    "variant": row.variant,
                    "reference": row.reference,
                    "samples": len(diffs),
                    "baseline_us": statistics.median(base),
                    "instrumented_us": statistics.median(instr),
                    "overhead_median_us": statistics.median(diffs),
                    "overhead_min_us": min(diffs),
                    "overhead_q1_us": q1,
                    "overhead_q3_us": q3,
                    "collect_overhead_median_us": statistics.median(collect_diffs),
                    "cpu_overhead_median_us": statistics.median(cpu_diffs),
                }
            )
    return out


# --------------------------------------------------------------------------------------------------------------
# Checks: a fast benchmark of broken instrumentation is worthless
# --------------------------------------------------------------------------------------------------------------


def check(bench: Bench) -> tuple[list[str], dict[str, Any]]:
    tel = bench.telemetry
    failures: list[str] = []

    # The stream looks the same to the caller with and without us (the injected usage chunk is withheld).
    for key in ("stream.baseline", "stream.ours"):
        variant = bench.variants[key]
        variant.enable()
        try:
            bench.stream_chunks[key] = variant.call()
        finally:
            variant.disable()
        bench.counts[key] += 1
    if bench.stream_chunks["stream.baseline"] != bench.stream_chunks["stream.ours"]:
        failures.append(f"stream chunks seen by the caller differ: {bench.stream_chunks}")

    tel.processor.force_flush()
    metrics_data = tel.reader.get_metrics_data()

    expected_ours = sum(n for k, n in bench.counts.items() if bench.variants[k].ours)
    expected_official = sum(n for k, n in bench.counts.items() if bench.variants[k].official)
    expected_sdk = sum(n for k, n in bench.counts.items() if bench.variants[k].anthropic_sdk_spans)
    scopes = dict(tel.exporter.by_scope)
    got_ours = scopes.get(OUR_SCOPE, 0)
    got_official = scopes.get(OFFICIAL_SCOPE, 0)
    got_sdk = sum(n for s, n in scopes.items() if s.startswith(ANTHROPIC_SDK_SCOPE_PREFIX))
    if got_ours != expected_ours:
        failures.append(f"spans of scope {OUR_SCOPE}: {got_ours}, calls made with otel-ai-cost on: {expected_ours}")
    if tel.exporter.ours_priced != expected_ours:
        failures.append(f"spans with ai_cost.amount: {tel.exporter.ours_priced} of {expected_ours} expected")
    if got_official != expected_official:
        failures.append(f"spans of scope {OFFICIAL_SCOPE}: {got_official}, official calls: {expected_official}")
    if got_sdk != expected_sdk:
        failures.append(f"anthropic SDK spans: {got_sdk}, calls with the SDK's tracing on: {expected_sdk}")

    requests_total = 0
    for rm in metrics_data.resource_metrics if metrics_data else ():
        for sm in rm.scope_metrics:
            if sm.scope.name != OUR_SCOPE:
                continue
            for m in sm.metrics:
                if m.name == "ai_cost.requests":
                    requests_total += sum(int(p.value) for p in m.data.data_points)
    if requests_total != expected_ours:
        failures.append(f"ai_cost.requests counted {requests_total}, calls made with otel-ai-cost on: {expected_ours}")

    sample = tel.exporter.sample
    details = {
        "spans_by_scope": scopes,
        "expected": {"ours": expected_ours, "official": expected_official, "anthropic_sdk": expected_sdk},
        "ours_priced": tel.exporter.ours_priced,
        "ai_cost_requests_total": requests_total,
        "stream_chunks_seen": bench.stream_chunks,
        "sample_ai_cost_amount": sample["attributes"].get("ai_cost.amount") if sample else None,
        "sample_span": sample,
    }
    return failures, details


# --------------------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    relevant_env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("OTEL_AI_COST_", "OTEL_INSTRUMENTATION_GENAI_", "ANTHROPIC_OPEN_TELEMETRY", "OTEL_"))
    }
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": load,
        "packages": {
            d: version(d)
            for d in (
                "otel-ai-cost",
                "openai",
                "anthropic",
                "httpx2",
                "opentelemetry-sdk",
                "opentelemetry-instrumentation-genai-openai",
                "opentelemetry-util-genai",
            )
        },
        "env": relevant_env,
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    head = ("scenario", "baseline", "instrumented", "overhead", "min", "IQR", "of which", "CPU time")
    sub = ("", "us/call", "us/call", "median us", "us", "us", "collect us", "overhead us")
    lines = []
    for r in rows:
        lines.append(
            (
                r["scenario"],
                f"{r['baseline_us']:.1f}",
                f"{r['instrumented_us']:.1f}",
                f"{r['overhead_median_us']:+.1f}",
                f"{r['overhead_min_us']:+.1f}",
                f"{r['overhead_q1_us']:+.0f}..{r['overhead_q3_us']:+.0f}",
                f"{r['collect_overhead_median_us']:+.1f}",
                f"{r['cpu_overhead_median_us']:+.1f}",
            )
        )
    widths = [max(len(str(x[i])) for x in (head, sub, *lines)) for i in range(len(head))]

    def fmt(cells: Sequence[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        rest = [str(c).rjust(w) for c, w in zip(cells[1:-1], widths[1:-1], strict=True)]
        return "  ".join([first, *rest, str(cells[-1]).ljust(widths[-1])]).rstrip()

    rule = "-" * len(fmt(["x" * w for w in widths]))
    return "\n".join([fmt(head), fmt(sub), rule, *(fmt(x) for x in lines)])


def loud(failures: list[str]) -> str:
    bar = "!" * 100
    body = "\n".join(f"!!  {f}" for f in failures)
    title = "!!  BENCHMARK INVALID: the instrumentation did not do its job; the figures mean nothing."
    return f"{bar}\n{title}\n{body}\n{bar}"


# --------------------------------------------------------------------------------------------------------------
# Profiling one instrumented block
# --------------------------------------------------------------------------------------------------------------

PROFILE_VARIANTS = {"openai": "openai.ours", "anthropic": "anthropic.ours", "stream": "stream.ours"}


def profile(bench: Bench, which: str, calls: int, top: int) -> None:
    import cProfile
    import pstats

    key = PROFILE_VARIANTS[which]
    variant = bench.variants[key]
    tel = bench.telemetry
    variant.enable()
    try:
        for _ in range(calls):  # warm: price resolution, first-use imports
            variant.call()
        tel.reader.get_metrics_data()
        tel.processor.force_flush()
        gc.collect()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            variant.call()
        tel.reader.get_metrics_data()
        tel.processor.force_flush()
        profiler.disable()
    finally:
        variant.disable()
    stats = pstats.Stats(profiler)
    entries = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "otel_ai_cost" in filename or "/opentelemetry/" in filename:
            short = filename.split("site-packages/")[-1].split("src/")[-1]
            entries.append((cumtime, tottime, ncalls, f"{short}:{line}({func})"))
    entries.sort(reverse=True)
    print(f"cProfile of {calls} calls of {key} (+ collection + flush); cProfile inflates small functions,")
    print("so read the figures as shares rather than absolute costs.")
    print(f"{'cum us/call':>12} {'own us/call':>12} {'calls/call':>10}  function")
    for cum, tot, n, name in entries[:top]:
        print(f"{cum / calls * 1e6:12.1f} {tot / calls * 1e6:12.1f} {n / calls:10.2f}  {name}")


# Breakdown: wall-clock timers on named functions (cProfile's per-call cost distorts functions this small)
# --------------------------------------------------------------------------------------------------------------

# (label, module, attribute path). Inclusive times; a name that no longer exists is skipped, not an error.
BREAKDOWN_PROBES: tuple[tuple[str, str, str], ...] = (
    ("request_patch._begin (route.start: span start)", "otel_ai_cost.instrumentation.common.request_patch", "_begin"),
    ("  openai route.start", "otel_ai_cost.instrumentation.openai.patch", "ChatCompletionsRoute.start"),
    ("  anthropic route.start", "otel_ai_cost.instrumentation.anthropic.patch", "MessagesRoute.start"),
    ("    routes.start_call (openai)", "otel_ai_cost.instrumentation.openai.patch", "start_call"),
    ("    routes.start_call (anthropic)", "otel_ai_cost.instrumentation.anthropic.patch", "start_call"),
    ("      routes.server_of", "otel_ai_cost.instrumentation.common.routes", "server_of"),
    ("      Call.__init__", "otel_ai_cost.telemetry.recorder", "Call.__init__"),
    ("        attribution current_attributes", "otel_ai_cost.telemetry.recorder", "current_attributes"),
    ("        Call._metric_labels", "otel_ai_cost.telemetry.recorder", "Call._metric_labels"),
    ("        SDK Tracer.start_span", "opentelemetry.sdk.trace", "Tracer.start_span"),
    (
        "request_patch._handle_result (route.finish)",
        "otel_ai_cost.instrumentation.common.request_patch",
        "_handle_result",
    ),
    ("  openai route.finish", "otel_ai_cost.instrumentation.openai.patch", "ChatCompletionsRoute.finish"),
    ("  anthropic route.finish", "otel_ai_cost.instrumentation.anthropic.patch", "MessagesRoute.finish"),
    ("  streams.observe_stream", "otel_ai_cost.instrumentation.common.request_patch", "observe_stream"),
    ("  openai ChatStreamObserver.on_item", "otel_ai_cost.instrumentation.openai.patch", "ChatStreamObserver.on_item"),
    ("  openai ChatStreamObserver.on_end", "otel_ai_cost.instrumentation.openai.patch", "ChatStreamObserver.on_end"),
    ("    Call._finish", "otel_ai_cost.telemetry.recorder", "Call._finish"),
    ("      PriceCatalog.quote", "otel_ai_cost.pricing.catalog", "PriceCatalog.quote"),
    ("      recorder._token_classes", "otel_ai_cost.telemetry.recorder", "_token_classes"),
    ("      SDK Span.set_attributes", "opentelemetry.sdk.trace", "Span.set_attributes"),
    ("      SDK Span.end", "opentelemetry.sdk.trace", "Span.end"),
    ("        SDK BatchSpanProcessor.on_end", "opentelemetry.sdk.trace.export", "BatchSpanProcessor.on_end"),
    ("      CostMetrics.record (queue append)", "otel_ai_cost.telemetry.metrics", "CostMetrics.record"),
    ("context.attach + detach (our span current)", "opentelemetry.context", "attach"),
    ("", "opentelemetry.context", "detach"),
    ("collection: CostMetrics._record_points (drain)", "otel_ai_cost.telemetry.metrics", "CostMetrics._record_points"),
    ("  SDK Histogram.record", "opentelemetry.sdk.metrics._internal.instrument", "Histogram.record"),
    ("  SDK Counter.add", "opentelemetry.sdk.metrics._internal.instrument", "Counter.add"),
)


def breakdown(bench: Bench, which: str, calls: int, rounds: int) -> None:
    import functools
    import importlib

    key = PROFILE_VARIANTS[which]
    variant, base = bench.variants[key], bench.variants[key.replace(".ours", ".baseline")]
    tel = bench.telemetry
    totals: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    active = [False]
    restore: list[tuple[Any, str, Any]] = []
    clock = time.perf_counter_ns

    def timer(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*a: Any, **kw: Any) -> Any:
            if not active[0]:
                return fn(*a, **kw)
            t = clock()
            try:
                return fn(*a, **kw)
            finally:
                totals[label] += clock() - t
                counts[label] += 1

        return timed

    labels: list[str] = []
    for label, module_name, path in BREAKDOWN_PROBES:
        try:
            owner: Any = importlib.import_module(module_name)
            *parents, attr = path.split(".")
            for part in parents:
                owner = getattr(owner, part)
            original = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
        except (ImportError, AttributeError, KeyError):
            continue
        if not callable(original):
            continue
        name = label or labels[-1]  # an empty label adds to the previous probe (attach + detach)
        setattr(owner, attr, timer(name, original))
        restore.append((owner, attr, original))
        if label:
            labels.append(label)

    gc_ns = [0, 0]  # accumulated, start of the current collection

    def gc_callback(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            gc_ns[1] = clock()
        else:
            gc_ns[0] += clock() - gc_ns[1]

    def block(v: Variant, timed: bool) -> tuple[float, float, float, float]:
        v.enable()
        try:
            gc.collect()
            gc_ns[0] = 0
            active[0] = timed
            t0 = clock()
            for _ in range(calls):
                v.call()
            t1 = clock()
            spent_in_gc = gc_ns[0]
            tel.reader.get_metrics_data()
            t2 = clock()
            tel.processor.force_flush()
            t3 = clock()
            active[0] = False
        finally:
            v.disable()
        return (
            (t1 - t0) / calls / 1000,
            (t2 - t1) / calls / 1000,
            (t3 - t2) / calls / 1000,
            spent_in_gc / calls / 1000,
        )

    gc.callbacks.append(gc_callback)
    try:
        for _ in range(2):
            block(base, False)
            block(variant, False)
        b_res, v_res = [], []
        for _ in range(rounds):
            b_res.append(block(base, False))
            v_res.append(block(variant, True))
    finally:
        gc.callbacks.remove(gc_callback)
        for owner, attr, original in reversed(restore):
            setattr(owner, attr, original)
    n = calls * rounds

    def med(res: list[tuple[float, ...]], i: int) -> float:
        return statistics.median(r[i] for r in res)

    print(f"Breakdown of {key}: {rounds} rounds of {calls} calls, baseline and instrumented blocks alternating.")
    print("Wall-clock timers on the functions below (inclusive; each timer adds ~0.3 us to its callers).")
    print(f"  calls:      baseline {med(b_res, 0):8.1f} us/call   ours (with timers) {med(v_res, 0):8.1f} us/call")
    print(f"  of which GC baseline {med(b_res, 3):8.1f}            ours               {med(v_res, 3):8.1f}")
    print(f"  collection  baseline {med(b_res, 1):8.1f}            ours               {med(v_res, 1):8.1f}")
    print(f"  span flush  baseline {med(b_res, 2):8.1f}            ours               {med(v_res, 2):8.1f}")
    print(f"{'us/call':>9} {'calls/call':>10}  function")
    for label in labels:
        if counts[label]:
            print(f"{totals[label] / n / 1000:9.1f} {counts[label] / n:10.2f}  {label}")


# --------------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per block (default 100)")
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds per scenario family (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--profile", choices=sorted(PROFILE_VARIANTS), help="cProfile one block of ours instead")
    parser.add_argument("--top", type=int, default=40, help="rows of --profile output (default 40)")
    parser.add_argument(
        "--breakdown", choices=sorted(PROFILE_VARIANTS), help="time otel-ai-cost's main functions, per call, instead"
    )
    parser.add_argument(
        "--ledger",
        default="none",
        help="OTEL_AI_COST_LEDGER for the run (default none: the instrumentation alone; the embedded SQLite "
        "ledger writes each span in the span processor's thread, ~65 us of CPU per record)",
    )
    args = parser.parse_args(argv)
    os.environ["OTEL_AI_COST_LEDGER"] = args.ledger
    if args.calls < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--calls and --rounds must be >= 1, --warmup >= 0")

    command = shlex.join([os.path.basename(sys.executable), sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    telemetry = make_telemetry()
    bench = build(telemetry)

    if args.profile:
        profile(bench, args.profile, args.calls, args.top)
        return 0
    if args.breakdown:
        breakdown(bench, args.breakdown, args.calls, args.rounds)
        return 0

    env = environment()
    started = time.perf_counter()
    blocks = run(bench, args.calls, args.rounds, args.warmup, progress=not args.json)
    elapsed = time.perf_counter() - started
    rows = analyse(bench, blocks)
    failures, details = check(bench)

    if args.json:
        print(
            json.dumps(
                {
                    "valid": not failures,
                    "failures": failures,
                    "command": command,
                    "settings": {"calls": args.calls, "rounds": args.rounds, "warmup": args.warmup},
                    "elapsed_s": round(elapsed, 1),
                    "environment": env,
                    "rows": rows,
                    "checks": details,
                    "blocks": [
                        {
                            "family": b.family,
                            "variant": b.variant,
                            "round": b.round,
                            "per_call_us": round(b.per_call_us, 2),
                            "collect_us": round(b.collect_us, 2),
                            "flush_us": round(b.flush_ns / b.calls / 1000, 2),
                            "cpu_us": round(b.cpu_us, 2),
                        }
                        for b in blocks
                    ],
                },
                indent=2,
                default=str,
            )
        )
    else:
        if failures:
            print(loud(failures))
        print(f"$ {command}")
        load = env["loadavg_at_start"]
        print(
            f"{args.calls} calls/block, {args.rounds} rounds (+{args.warmup} warm-up), {elapsed:.0f} s; "
            f"Python {env['python']}, {env['cpus']} CPUs, load average at start "
            f"{' '.join(f'{x:.2f}' for x in load) if load else 'n/a'}"
        )
        pk = env["packages"]
        print(
            f"openai {pk['openai']}, anthropic {pk['anthropic']}, opentelemetry-sdk {pk['opentelemetry-sdk']}, "
            f"opentelemetry-instrumentation-genai-openai {pk['opentelemetry-instrumentation-genai-openai']}"
        )
        if env["env"]:
            print("environment: " + " ".join(f"{k}={v}" for k, v in sorted(env["env"].items())))
        print()
        print(format_table(rows))
        print()
        print(
            "overhead = block mean per call (calls + metric collection + span flush, perf_counter wall time)\n"
            "minus the mean of the adjacent baseline blocks; median, min and interquartile range over rounds.\n"
            "'of which collect': the part spent in the metric collection after the block (where otel-ai-cost\n"
            "drains its metric queue). 'CPU time overhead': the same median measured with process CPU time,\n"
            "which ignores time the process spent descheduled (a cross-check on a loaded machine).\n"
            "Blocks alternate, not single calls: the machine's drift between blocks stays in these figures.\n"
            "The caller's wait, paired call by call: benchmarks/call_path.py; instructions: instructions_per_call.py."
        )
        ok = "all checks passed" if not failures else "CHECKS FAILED (see above)"
        print(
            f"checks: {ok}: spans by scope {details['spans_by_scope']}; expected {details['expected']}; "
            f"priced {details['ours_priced']}; ai_cost.requests {details['ai_cost_requests_total']}; "
            f"sample ai_cost.amount {details['sample_ai_cost_amount']}"
        )
        if failures:
            print(loud(failures))
    if failures:
        print(loud(failures), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
