"""Usage quotas on real SDK calls: a limit in `block` mode refuses a call before any HTTP request is made (checked
against the stand-in servers' request logs), for every instrumented SDK and `track_request`, sync, async and
streamed; `warn` logs once and counts; the span and a metric say why.

Each test writes its budgets file and a SQLite ledger in `tmp_path` and instruments with them, as a service would
(`OTEL_AI_COST_BUDGETS`, `OTEL_AI_COST_LEDGER`, `ENVIRONMENT`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import boto3
import googlemaps
import openai
import pytest
from botocore.config import Config
from google import genai
from google.genai import types
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_ai_cost
from otel_ai_cost import BudgetExceeded, ai_usage_context, track_request
from otel_ai_cost.contract import INSTRUMENTATION_SCOPE
from otel_ai_cost.instrumentation.per_request import configure, reset
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery
from otel_ai_cost.stand_in import StandInServer
from otel_ai_cost.stand_in.bedrock_api import BedrockStandIn
from otel_ai_cost.stand_in.gemini_api import GeminiStandIn
from otel_ai_cost.stand_in.scenario import Scenario
from otel_ai_cost.telemetry.errors import internal_error_counts, reset_internal_errors

MSGS = [{"role": "user", "content": "Label this receipt"}]
# 10,000 input tokens of gpt-4o-mini ($0.15 per million): $0.0015 a call, exactly
COSTLY = Scenario(prompt_tokens=10_000, cached_tokens=0, completion_tokens=0)
CALL_COST = Decimal("0.0015")
TINY_CAP = "0.000001"  # any priced call reaches it: the first call goes, every later one is refused


@dataclass
class Enforced:
    spans_exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    ledger_path: Path

    def spans(self) -> list[ReadableSpan]:
        return [
            span
            for span in self.spans_exporter.get_finished_spans()
            if span.instrumentation_scope is not None and span.instrumentation_scope.name == INSTRUMENTATION_SCOPE
        ]

    def blocked_spans(self) -> list[ReadableSpan]:
        return [span for span in self.spans() if "ai_cost.quota.blocked" in (span.attributes or {})]

    def counter(self, name: str) -> dict[tuple[tuple[str, Any], ...], int]:
        data = self.reader.get_metrics_data()
        found: dict[tuple[tuple[str, Any], ...], int] = {}
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            found[tuple(sorted(point.attributes.items()))] = point.value
        return found

    def ledger_records(self, **query: Any) -> list[Any]:
        otel_ai_cost.flush()
        store = SQLiteStore(self.ledger_path)
        try:
            return list(store.query(UsageQuery(**query)))
        finally:
            store.close()


@pytest.fixture
def enforce(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Enforced]]:
    """`enforce(limits_yaml, environment="cicd", ledger=True)`: the budgets file and ledger set, then instrument()."""
    started: list[Enforced] = []

    def start(limits: str, *, environment: str = "cicd", ledger: bool = True, resource: dict | None = None) -> Enforced:
        budgets = tmp_path / "budgets.yaml"
        budgets.write_text("budgets:\n  enforce:\n" + limits)
        ledger_path = tmp_path / "usage.db"
        monkeypatch.setenv("OTEL_AI_COST_BUDGETS", str(budgets))
        monkeypatch.setenv("OTEL_AI_COST_LEDGER", f"sqlite://{ledger_path}" if ledger else "none")
        monkeypatch.setenv("ENVIRONMENT", environment)
        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider(resource=Resource.create({"service.name": "tests", **(resource or {})}))
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[reader])
        reset_internal_errors()
        otel_ai_cost.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        configure(tracer_provider=tracer_provider, meter_provider=meter_provider)
        started.append(Enforced(exporter, reader, tracer_provider, meter_provider, ledger_path))
        return started[-1]

    yield start
    for enforced in started:
        otel_ai_cost.uninstrument()
        reset()
        enforced.meter_provider.shutdown()
        enforced.tracer_provider.shutdown()
    assert internal_error_counts() == {}  # the guard never failed inside


def job_limit(amount: str, mode: str = "block") -> str:
    return f"    - {{environment: cicd, period: job, amount: {amount}, mode: {mode}}}\n"


# -- the cap, exactly ------------------------------------------------------------------------------------------------


def test_a_job_capped_at_a_cent_makes_calls_until_the_next_would_pass_then_none_is_sent(enforce, stand_in):
    enforced = enforce(job_limit("0.01"))
    stand_in.push(*[COSTLY] * 30)
    client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0)
    made, refused = 0, []
    with ai_usage_context(job_id="job-42"):
        for _ in range(12):
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
                made += 1
            except BudgetExceeded as exc:
                refused.append((exc, len(stand_in.requests)))

    assert made == 6  # 6 x $0.0015 = $0.009; a 7th would make $0.0105, past the cent
    assert len(stand_in.requests) == 6  # and not one request after that
    assert [requests for _, requests in refused] == [6] * 6
    first = refused[0][0]
    assert (first.limit, first.spent, first.amount) == ("cicd/job", Decimal("0.009"), Decimal("0.01"))
    assert first.scope == "cicd, job_id=job-42"
    message = str(first)
    assert "usage quota 'cicd/job' (cicd, job_id=job-42): $0.009 spent" in message
    assert "of its $0.01 limit" in message and "the last gpt-4o-mini call cost $0.0015" in message
    assert "The call was not sent" in message and "budgets.yaml, line 3" in message

    records = enforced.ledger_records(job_id="job-42")
    assert len(records) == 6 and sum(r.amount for r in records) == 6 * CALL_COST <= Decimal("0.01")
    blocked = enforced.blocked_spans()
    assert len(blocked) == 6
    for span in blocked:
        assert span.attributes["ai_cost.quota.blocked"] == "cicd/job"
        assert span.attributes["error.type"] == "BudgetExceeded"
        assert span.status.status_code.name == "ERROR"
        assert "ai_cost.amount" not in span.attributes  # nothing was sent: no cost, no ledger record
    assert enforced.counter("ai_cost.quota.blocked") == {
        (("ai_cost.quota.limit", "cicd/job"), ("deployment.environment.name", "cicd")): 6
    }

    with ai_usage_context(job_id="job-43"):  # each job has its own cap
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert len(stand_in.requests) == 7


def test_a_job_already_over_its_cap_in_the_ledger_is_refused_at_its_first_call(enforce, stand_in, tmp_path):
    earlier = SQLiteStore(tmp_path / "usage.db")  # another process's calls of the same job, in the shared ledger
    earlier.write([_record(n, job_id="job-7", amount=Decimal("0.003")) for n in range(3)])
    earlier.close()
    enforced = enforce(job_limit("0.009"))
    client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0)
    with ai_usage_context(job_id="job-7"), pytest.raises(BudgetExceeded, match=r"\$0\.009 spent .* at or over"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert stand_in.requests == []
    assert len(enforced.blocked_spans()) == 1


def _record(n: int, **fields: Any) -> LedgerRecord:
    values: dict[str, Any] = {
        "trace_id": f"{n + 1:032x}", "span_id": f"{n + 1:016x}", "timestamp": datetime.now(timezone.utc),
        "environment": "cicd", "service": "other-worker", "provider": "openai", "request_model": "gpt-4o-mini",
        "operation": "chat", "input_tokens": 10, "output_tokens": 5,
    }  # fmt: skip
    values.update(fields)
    return LedgerRecord(**values)


# -- every SDK, sync, async and streams ------------------------------------------------------------------------------


def _openai_sync(server: StandInServer) -> Callable[[], Any]:
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)
    return lambda: client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)


def _openai_stream(server: StandInServer) -> Callable[[], Any]:
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)
    return lambda: list(client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True))


def _openai_async(server: StandInServer) -> Callable[[], Any]:
    async def call() -> Any:
        async with openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0) as client:
            return await client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)

    return lambda: asyncio.run(call())


def _openai_async_stream(server: StandInServer) -> Callable[[], Any]:
    async def call() -> Any:
        async with openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0) as client:
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
            return [chunk async for chunk in stream]

    return lambda: asyncio.run(call())


def _anthropic_sync(server: StandInServer) -> Callable[[], Any]:
    client = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="sk-ant-test", max_retries=0)
    return lambda: client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=MSGS)


def _anthropic_stream_helper(server: StandInServer) -> Callable[[], Any]:
    client = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="sk-ant-test", max_retries=0)

    def call() -> Any:
        with client.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=MSGS) as stream:
            return stream.get_final_message()

    return call


def _anthropic_async_stream(server: StandInServer) -> Callable[[], Any]:
    async def call() -> Any:
        async with anthropic.AsyncAnthropic(
            base_url=server.anthropic_base_url, api_key="sk-ant-test", max_retries=0
        ) as client:
            async with client.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=MSGS) as stream:
                return await stream.get_final_message()

    return lambda: asyncio.run(call())


@pytest.mark.parametrize(
    "make_call",
    [_openai_sync, _openai_stream, _openai_async, _openai_async_stream, _anthropic_sync, _anthropic_stream_helper,
     _anthropic_async_stream],
    ids=lambda f: f.__name__.strip("_"),
)  # fmt: skip
def test_openai_and_anthropic_calls_are_refused_before_a_request(enforce, stand_in, make_call):
    enforced = enforce(job_limit(TINY_CAP))
    call = make_call(stand_in)
    with ai_usage_context(job_id="job-sdk"):
        call()  # the first call: nothing spent yet
        assert len(stand_in.requests) == 1
        for _ in range(3):
            with pytest.raises(BudgetExceeded, match="usage quota 'cicd/job'"):
                call()
    assert len(stand_in.requests) == 1
    assert len(enforced.blocked_spans()) == 3


def test_one_sdks_spend_counts_against_the_others_at_once(enforce, stand_in):
    enforce(job_limit(TINY_CAP))
    openai_call, anthropic_call = _openai_sync(stand_in), _anthropic_sync(stand_in)
    with ai_usage_context(job_id="job-mixed"):
        openai_call()  # through the openai instrumentor's recorder
        with pytest.raises(BudgetExceeded):
            anthropic_call()  # checked by the anthropic instrumentor's: the same figures
    assert [request.path for request in stand_in.requests] == ["/v1/chat/completions"]


@pytest.fixture(scope="module")
def bedrock() -> Iterator[BedrockStandIn]:
    with BedrockStandIn() as server:
        yield server


@pytest.fixture(scope="module")
def gemini() -> Iterator[GeminiStandIn]:
    with GeminiStandIn() as server:
        yield server


def _bedrock_client(server: BedrockStandIn) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


BEDROCK_MSGS = [{"role": "user", "content": [{"text": "Label this receipt"}]}]
SONNET_US = "us.anthropic.claude-3-5-sonnet-20241022-v2:0"


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "converse_stream"])
def test_bedrock_calls_are_refused_before_a_request(enforce, bedrock, stream):
    bedrock.reset()
    enforced = enforce(job_limit(TINY_CAP))
    client = _bedrock_client(bedrock)

    def call() -> Any:
        if stream:
            return list(client.converse_stream(modelId=SONNET_US, messages=BEDROCK_MSGS)["stream"])
        return client.converse(modelId=SONNET_US, messages=BEDROCK_MSGS)

    with ai_usage_context(job_id="job-bedrock"):
        call()
        for _ in range(2):
            with pytest.raises(BudgetExceeded):
                call()
    assert len(bedrock.requests) == 1
    assert len(enforced.blocked_spans()) == 2


@pytest.mark.parametrize("mode", ["sync", "stream", "async", "async_stream"])
def test_google_genai_calls_are_refused_before_a_request(enforce, gemini, mode):
    gemini.reset()
    enforced = enforce(job_limit(TINY_CAP))

    def call() -> Any:
        client = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=gemini.base_url))
        if mode == "sync":
            return client.models.generate_content(model="gemini-2.5-flash", contents="hi")
        if mode == "stream":
            return list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))

        async def main() -> Any:
            try:
                if mode == "async":
                    return await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
                stream = await client.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
                return [chunk async for chunk in stream]
            finally:
                await client.aio.aclose()

        return asyncio.run(main())

    with ai_usage_context(job_id="job-gemini"):
        call()
        for _ in range(2):
            with pytest.raises(BudgetExceeded):
                call()
    assert len(gemini.requests) == 1
    assert len(enforced.blocked_spans()) == 2


class _Places(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:
        _Places.requests.append(self.path)
        body = json.dumps({"status": "OK", "result": {"place_id": "ChIJ1", "name": "Cafe"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def places_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Places)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_googlemaps_calls_are_refused_before_a_request(enforce, places_url):
    _Places.requests.clear()
    enforced = enforce(job_limit(TINY_CAP))
    client = googlemaps.Client(key="AIzaSyTEST-secret-key-0123456789abcdef", base_url=places_url)
    with ai_usage_context(job_id="job-maps"):
        client.place("ChIJ1", fields=["name"])
        with pytest.raises(BudgetExceeded):
            client.place("ChIJ1", fields=["name"])
    assert len(_Places.requests) == 1
    assert len(enforced.blocked_spans()) == 1


def test_track_request_decorators_and_blocks_do_not_run_once_refused(enforce):
    enforced = enforce(job_limit(TINY_CAP))
    ran: list[str] = []

    @track_request("google_places", "place_details")
    def details() -> None:
        ran.append("sync")

    @track_request("google_places", "place_details")
    async def details_async() -> None:
        ran.append("async")

    async def in_async_block() -> None:
        async with track_request("google_places", "place_details"):
            ran.append("async with")

    with ai_usage_context(job_id="job-places"):
        details()  # $0.017: over the cap from now on
        with pytest.raises(BudgetExceeded):
            details()
        with pytest.raises(BudgetExceeded):
            asyncio.run(details_async())
        with pytest.raises(BudgetExceeded), track_request("google_places", "place_details"):
            ran.append("with")
        with pytest.raises(BudgetExceeded):
            asyncio.run(in_async_block())
    assert ran == ["sync"]
    assert len(enforced.blocked_spans()) == 4


# -- scopes, modes, unknown cost -----------------------------------------------------------------------------------


def test_warn_mode_sends_the_call_logs_once_and_counts_each(enforce, stand_in, caplog):
    enforced = enforce(job_limit(TINY_CAP, mode="warn"))
    call = _openai_sync(stand_in)
    caplog.set_level(logging.WARNING, logger="otel_ai_cost")
    with ai_usage_context(job_id="job-w"):
        for _ in range(4):
            call()
    assert len(stand_in.requests) == 4  # warn never stops a call
    warnings = [r.getMessage() for r in caplog.records if "usage quota 'cicd/job'" in r.getMessage()]
    assert len(warnings) == 1 and "the call is sent (mode warn" in warnings[0]
    assert enforced.counter("ai_cost.quota.warned") == {
        (("ai_cost.quota.limit", "cicd/job"), ("deployment.environment.name", "cicd")): 3
    }
    assert [s.attributes.get("ai_cost.quota.warned") for s in enforced.spans()] == [
        None,
        "cicd/job",
        "cicd/job",
        "cicd/job",
    ]
    assert enforced.blocked_spans() == []


def test_limits_cover_their_environment_and_scope_only(enforce, stand_in):
    enforce(
        "    - {environment: cicd, period: day, team: search, amount: 0.000001, mode: block}\n"
        "    - {environment: production, period: day, amount: 0.000001, mode: block}\n",
        resource={"ai_cost.team": "search"},  # the process's team, from its resource
    )
    call = _openai_sync(stand_in)
    call()  # team search (the resource's): spends
    with pytest.raises(BudgetExceeded, match=r"cicd/day/team=search' \(cicd, team=search\)"):
        call()
    with ai_usage_context(team="ads"):  # the call's attribution wins over the resource: another team
        call()
        call()
    assert len(stand_in.requests) == 3  # production's limit is not this process's environment


def test_each_user_has_a_limit_of_their_own(enforce, stand_in):
    enforce('    - {environment: cicd, period: month, user_id: "*", amount: 0.00002, mode: block}\n')  # one call each
    call = _openai_sync(stand_in)
    for user in ("ana", "bo"):
        with ai_usage_context(user_id=user):
            call()
            with pytest.raises(BudgetExceeded, match=f"user_id={user}"):
                call()
    call()  # no user: not covered by a limit of each user
    assert len(stand_in.requests) == 3


def test_a_call_of_unknown_cost_is_counted_not_taken_as_zero(enforce, stand_in, caplog):
    enforce(job_limit("0.0025"))
    caplog.set_level(logging.WARNING, logger="otel_ai_cost")
    client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0)
    stand_in.push(COSTLY, COSTLY, COSTLY)
    with ai_usage_context(job_id="job-u"):
        client.chat.completions.create(model="gpt-nobody-prices", messages=MSGS)  # unpriced: its cost is unknown
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)  # $0.0015
        with pytest.raises(BudgetExceeded) as caught:  # another $0.0015 would pass $0.0025
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert (caught.value.spent, caught.value.unknown_cost_calls) == (CALL_COST, 1)
    assert "$0.0015 spent by the job in all (a lower bound: 1 call of unknown cost is not in it)" in str(caught.value)
    [logged] = [r.getMessage() for r in caplog.records if "had a cost that is unknown" in r.getMessage()]
    assert "usage quota 'cicd/job'" in logged and "gpt-nobody-prices" in logged
    assert len(stand_in.requests) == 2


def test_a_failed_call_costs_nothing_and_does_not_count_as_unknown(enforce, stand_in):
    enforce(job_limit("0.0015"))
    client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0)
    stand_in.push(Scenario(status=500), COSTLY)
    with ai_usage_context(job_id="job-f"):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)  # $0.0015: reaches the cap exactly
        with pytest.raises(BudgetExceeded) as caught:
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert caught.value.unknown_cost_calls == 0 and caught.value.spent == CALL_COST
    assert len(stand_in.requests) == 2


def test_with_the_ledger_off_a_limit_holds_in_the_process(enforce, stand_in):
    enforce(job_limit(TINY_CAP), ledger=False)
    call = _openai_sync(stand_in)
    with ai_usage_context(job_id="job-local"):
        call()
        with pytest.raises(BudgetExceeded):
            call()
    assert len(stand_in.requests) == 1


def test_a_bad_budgets_file_turns_quotas_off_and_says_why(enforce, stand_in, caplog):
    caplog.set_level(logging.ERROR, logger="otel_ai_cost")
    enforce("    - {environment: cicd, period: job, amount: 0.000001, mode: stop}\n")
    call = _openai_sync(stand_in)
    with ai_usage_context(job_id="job-bad"):
        call()
        call()
    assert len(stand_in.requests) == 2
    [error] = [r.getMessage() for r in caplog.records if "usage quotas are OFF" in r.getMessage()]
    assert "budgets.yaml:3: budgets.enforce[0].mode: expected one of block, warn" in error


def test_without_a_limit_for_the_environment_there_is_no_guard(enforce):
    enforce(job_limit(TINY_CAP), environment="production")
    from otel_ai_cost.instrumentation.per_request.tracker import current_recorder

    assert current_recorder().quota is None  # the hot path pays nothing
