"""A failure inside the instrumentation never reaches the host call; it is logged once and counted."""

from __future__ import annotations

import logging
import threading

import openai
import pytest

import otel_ai_cost
from otel_ai_cost.instrumentation.openai import patch as openai_patch
from otel_ai_cost.pricing.catalog import PriceCatalog
from otel_ai_cost.stand_in import Scenario
from otel_ai_cost.telemetry.metrics import CostMetrics

MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture
def client(stand_in, telemetry):
    return openai.OpenAI(base_url=stand_in.openai_base_url, api_key="k", max_retries=0)


def _errors(telemetry) -> dict[str, int]:
    return {p.attributes["ai_cost.component"]: p.value for p in telemetry.points("ai_cost.instrumentation.errors")}


def _boom(*args, **kwargs):
    raise RuntimeError("injected failure")


def test_pricing_failure_leaves_the_call_untouched(client, stand_in, telemetry, monkeypatch, caplog):
    monkeypatch.setattr(PriceCatalog, "quote", _boom)
    for _ in range(3):
        stand_in.push(Scenario(prompt_tokens=10, completion_tokens=3, text="fine"))
        response = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        assert response.choices[0].message.content == "fine"
        assert response.usage.prompt_tokens == 10

    assert len(telemetry.spans()) == 3  # the spans still ended
    assert _errors(telemetry) == {"recorder.finish": 3}
    logged = [r for r in caplog.records if "internal error in recorder.finish" in r.getMessage()]
    assert len(logged) == 1


def test_failure_starting_the_span_sends_the_request_anyway(client, stand_in, telemetry, monkeypatch):
    monkeypatch.setattr(openai_patch, "start_call", _boom)
    stand_in.push(Scenario(text="still works"))
    response = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert response.choices[0].message.content == "still works"
    assert telemetry.spans() == []
    assert _errors(telemetry) == {"request.start": 1}


def test_failure_observing_a_stream_chunk_does_not_change_the_stream(client, stand_in, telemetry, monkeypatch):
    monkeypatch.setattr(openai_patch.ChatStreamObserver, "on_item", _boom)
    stand_in.push(Scenario(text=["a", "b", "c"]))
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "abc"
    assert _errors(telemetry)["stream.observe"] >= 3


def test_failing_metric_pipeline_is_counted_and_calls_continue(client, stand_in, telemetry, monkeypatch):
    monkeypatch.setattr(CostMetrics, "_record_points", _boom)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert _errors(telemetry) == {"metrics.drain": 1}
    client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert len(telemetry.spans()) == 2


def test_uninstrument_restores_the_sdks_exactly(telemetry):
    from anthropic import _base_client as anthropic_base
    from openai import _base_client as openai_base

    assert hasattr(openai_base.SyncAPIClient.request, "__wrapped__")
    otel_ai_cost.uninstrument()
    for cls in (
        openai_base.SyncAPIClient,
        openai_base.AsyncAPIClient,
        anthropic_base.SyncAPIClient,
        anthropic_base.AsyncAPIClient,
    ):
        assert not hasattr(cls.request, "__wrapped__"), cls
        assert cls.request.__module__ == cls.__module__
    otel_ai_cost.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)


def test_instrument_twice_is_harmless(client, stand_in, telemetry, caplog):
    with caplog.at_level(logging.WARNING):
        again = otel_ai_cost.instrument()
    assert {"openai", "anthropic"} <= set(again) and len(again) == len(set(again))
    client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert len(telemetry.spans()) == 1  # patched once, one span


def test_threads_each_get_their_own_span_and_cost(client, stand_in, telemetry):
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with otel_ai_cost.ai_usage_context(job_id=f"job-{n}"):
                for _ in range(5):
                    client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    spans = telemetry.spans()
    assert len(spans) == 40
    assert sorted({s.attributes["ai_cost.job.id"] for s in spans}) == sorted(f"job-{n}" for n in range(8))
    [requests] = telemetry.points("ai_cost.requests")
    assert requests.value == 40
