"""`otel_ai_cost.flush()`: ledger records, spans and metrics out on demand; bounded; never raises."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from exported import ledger_records
from in_process import NEVER_MS, Batched, BrokenFlushProcessor, StuckFlushProcessor, batched_providers

import otel_ai_cost
from otel_ai_cost.contract import REQUESTS
from otel_ai_cost.telemetry.errors import internal_error_counts, reset_internal_errors


@pytest.fixture
def ledger_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite://{tmp_path / 'usage.db'}"
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", str(NEVER_MS))  # the ledger's batch processor too
    return url


@pytest.fixture
def batched(ledger_url: str) -> Iterator[Batched]:
    """Providers given to `instrument()` (not the global ones), batching for longer than any test."""
    providers = batched_providers()
    reset_internal_errors()
    otel_ai_cost.instrument(tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider)
    try:
        yield providers
    finally:
        otel_ai_cost.uninstrument()
        providers.shutdown()


@pytest.fixture
def client(stand_in) -> Iterator[openai.OpenAI]:
    oai = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-flush-test", max_retries=0)
    yield oai
    oai.close()


def _chat(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def test_flush_exports_the_ledger_record_span_and_metrics_of_a_call(batched: Batched, client, ledger_url: str):
    _chat(client)
    _chat(client)
    assert (ledger_records(ledger_url), batched.cost_spans(), batched.metrics.exports) == ([], [], [])  # queued

    assert otel_ai_cost.flush(timeout_s=30) is True

    records = ledger_records(ledger_url)
    spans = batched.cost_spans()
    assert len(records) == 2
    assert sorted((f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}") for s in spans) == sorted(
        (r.trace_id, r.span_id) for r in records
    )
    assert batched.metrics.total(REQUESTS.name) == 2


def test_flush_is_the_function_even_after_its_module_is_imported():
    import otel_ai_cost.flushing

    assert otel_ai_cost.flush is otel_ai_cost.flushing.flush
    assert callable(otel_ai_cost.flush)


def test_a_provider_that_raises_in_force_flush_never_reaches_the_caller(batched: Batched, client, ledger_url):
    batched.tracer_provider.add_span_processor(BrokenFlushProcessor())
    _chat(client)

    assert otel_ai_cost.flush(timeout_s=30) is False  # not everything flushed ...

    assert internal_error_counts().get("flush.tracer_provider") == 1  # ... counted (and logged once)
    assert len(ledger_records(ledger_url)) == 1  # the ledger, flushed first, is unaffected
    assert batched.metrics.total(REQUESTS.name) == 1  # and so are the steps after the failing one


def test_a_hung_flush_returns_false_at_the_timeout_and_the_ledger_is_already_written(
    batched: Batched, client, ledger_url
):
    stuck = StuckFlushProcessor()
    batched.tracer_provider.add_span_processor(stuck)
    _chat(client)
    try:
        assert otel_ai_cost.flush(timeout_s=0.5) is False
        assert stuck.entered.is_set()
        assert len(ledger_records(ledger_url)) == 1
    finally:
        stuck.release()
    assert otel_ai_cost.flush(timeout_s=30) is True  # once the collector answers again, everything is out


@pytest.mark.parametrize("timeout_s", [0, -1, math.nan, math.inf, "5", None, True])
def test_a_timeout_that_is_not_a_positive_number_of_seconds_is_refused(timeout_s):
    with pytest.raises(ValueError, match="timeout_s must be a"):
        otel_ai_cost.flush(timeout_s=timeout_s)
