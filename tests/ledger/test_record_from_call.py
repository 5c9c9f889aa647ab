"""The in-process ledger builds each call's record from the call's typed values (`ledger/from_call.py`), not from
its span. The record must be the one the collector's path (`from_span`, what `ledger serve` does with the same span
over OTLP) makes: every field, for priced, unpriced, failed, provider-priced, cache-writing and attributed calls.
And because it no longer depends on the span, a call the sampler dropped is still recorded."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import anthropic
import openai
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

import otel_ai_cost
from otel_ai_cost.contract import INSTRUMENTATION_SCOPE
from otel_ai_cost.ledger.from_span import record_from_span
from otel_ai_cost.ledger.open_store import LEDGER_ENV
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery
from otel_ai_cost.stand_in import Scenario

RESOURCE = {
    "service.name": "receipts",
    "deployment.environment.name": "staging",
    "cicd.pipeline.name": "nightly",
    "vcs.ref.head.revision": "abc123",
    "ai_cost.team": "platform",  # a process-wide attribution, which a call's own wins over
}


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "usage.db"
    monkeypatch.setenv(LEDGER_ENV, f"sqlite://{path}")
    return path


def stored(path: Path) -> list:
    with SQLiteStore(path) as store:
        return sorted(store.query(UsageQuery()), key=lambda r: r.timestamp)


@pytest.fixture
def provider(ledger: Path) -> Iterator[TracerProvider]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.memory = memory  # type: ignore[attr-defined]
    otel_ai_cost.instrument(tracer_provider=provider)
    yield provider
    otel_ai_cost.uninstrument()
    provider.shutdown()


def calls_made(provider: TracerProvider, stand_in, monkeypatch: pytest.MonkeyPatch) -> None:
    oa = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0)
    hi = [{"role": "user", "content": "hi"}]
    stand_in.push(Scenario(prompt_tokens=1000, cached_tokens=200, completion_tokens=300, reasoning_tokens=100))
    with otel_ai_cost.ai_usage_context("batch", job_id=42, team="search", user_id="u-1", tenant="acme"):
        oa.chat.completions.create(model="gpt-4o-mini", messages=hi)
    stand_in.push(Scenario(prompt_tokens=10, completion_tokens=2))
    oa.chat.completions.create(model="no-such-model-anywhere", messages=hi)  # unpriced: amount unknown
    stand_in.push(Scenario(status=400))
    with pytest.raises(openai.BadRequestError):
        oa.chat.completions.create(model="gpt-4o-mini", messages=hi)
    stand_in.push(Scenario(prompt_tokens=10, completion_tokens=5))
    stream = oa.chat.completions.create(model="gpt-4o-mini", messages=hi, stream=True)
    next(iter(stream))
    stream.close()  # abandoned: partial (closed here, not whenever the garbage collector gets to it)
    ant = anthropic.Anthropic(base_url=stand_in.anthropic_base_url, api_key="sk-ant-test", max_retries=0)
    stand_in.push(
        Scenario(
            input_tokens=100,
            cache_read_input_tokens=50,
            cache_write_5m_input_tokens=20,
            cache_write_1h_input_tokens=30,
            output_tokens=40,
            web_search_requests=2,
        )
    )
    ant.messages.create(model="claude-sonnet-4-20250514", max_tokens=50, messages=hi)
    monkeypatch.setenv("OTEL_AI_COST_PROVIDER_HOSTS", f"127.0.0.1:{stand_in.port}/xai=x_ai")
    otel_ai_cost.uninstrument()
    otel_ai_cost.instrument(tracer_provider=provider)  # the host mapping is read at instrument()
    xai = openai.OpenAI(base_url=f"{stand_in.url}/xai/v1", api_key="xai-test", max_retries=0)
    stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=200, usage_extra={"cost_in_usd_ticks": 12_345_000}))
    xai.chat.completions.create(model="grok-3-mini", messages=hi)


def test_each_record_is_the_one_its_span_gives(provider, ledger, stand_in, monkeypatch):
    calls_made(provider, stand_in, monkeypatch)
    assert provider.force_flush()
    spans = [s for s in provider.memory.get_finished_spans() if s.instrumentation_scope.name == INSTRUMENTATION_SCOPE]
    from_spans = sorted((record_from_span(s) for s in spans), key=lambda r: r.timestamp)
    records = stored(ledger)
    assert len(records) == len(from_spans) == 6
    assert records == from_spans
    # ... and the cases are the ones meant (so that equality means something):
    first, unpriced, failed, partial, claude, grok = records
    assert (first.operation_type, first.job_id, first.team, first.tags) == ("batch", "42", "search", {"tenant": "acme"})
    assert (first.environment, first.service, first.cicd_pipeline_name) == ("staging", "receipts", "nightly")
    assert first.amount is not None and first.cache_read_input_tokens == 200 and first.reasoning_output_tokens == 100
    assert unpriced.amount is None and unpriced.pricing_status == "unpriced" and unpriced.team == "platform"
    assert failed.outcome == "error" and failed.error_type and failed.amount is None
    assert partial.outcome == "partial"
    assert (claude.cache_write_5m_input_tokens, claude.cache_write_1h_input_tokens) == (20, 30)
    assert claude.web_search_requests == 2
    assert grok.cost_source == "provider" and grok.computed_amount is not None


def test_a_call_the_sampler_dropped_is_still_recorded(ledger, stand_in):
    provider = TracerProvider(resource=Resource.create(RESOURCE), sampler=ALWAYS_OFF)
    otel_ai_cost.instrument(tracer_provider=provider)
    try:
        stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=200))
        client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert provider.force_flush()
    finally:
        otel_ai_cost.uninstrument()
        provider.shutdown()
    (record,) = stored(ledger)
    assert (record.input_tokens, record.output_tokens, record.amount) == (1000, 200, Decimal("0.00027"))
