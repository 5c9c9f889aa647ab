"""Attribution reaches the spans and (bounded) the metrics; content capture is opt-in."""

from __future__ import annotations

import openai
import pytest
from opentelemetry import baggage, context

import otel_ai_cost
from otel_ai_cost.stand_in import Scenario

MSGS = [{"role": "user", "content": "secret receipt text"}]


@pytest.fixture
def client(stand_in, telemetry):
    return openai.OpenAI(base_url=stand_in.openai_base_url, api_key="k", max_retries=0)


def test_baggage_from_an_upstream_service_attributes_the_call(client, telemetry):
    ctx = baggage.set_baggage("team", "checkout", context=baggage.set_baggage("job_id", "nightly-17"))
    ctx = baggage.set_baggage("user_email", "a@example.com", context=ctx)  # not allow-listed
    token = context.attach(ctx)
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    finally:
        context.detach(token)

    a = telemetry.span().attributes
    assert a["ai_cost.team"] == "checkout"
    assert a["ai_cost.job.id"] == "nightly-17"
    assert not any("a@example.com" == v for v in a.values())
    [requests] = telemetry.points("ai_cost.requests")
    assert requests.attributes["ai_cost.team"] == "checkout"
    assert "ai_cost.job.id" not in requests.attributes


def test_nested_contexts_and_decorator(client, telemetry):
    @otel_ai_cost.ai_usage_context(operation_type="labelling")
    def label() -> None:
        with otel_ai_cost.ai_usage_context(job_id="job-1", merchant="acme"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)

    with otel_ai_cost.ai_usage_context(team="receipts", operation_type="outer"):
        label()
    a = telemetry.span().attributes
    assert (a["ai_cost.team"], a["ai_cost.operation_type"], a["ai_cost.job.id"]) == ("receipts", "labelling", "job-1")
    assert a["ai_cost.tag.merchant"] == "acme"


def test_prompt_and_completion_captured_only_when_opted_in(stand_in, monkeypatch):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel_ai_cost.instrument(tracer_provider=provider)
    try:
        stand_in.push(Scenario(text="Merchant: Acme"))
        client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="k", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    finally:
        otel_ai_cost.uninstrument()
    [span] = exporter.get_finished_spans()
    assert "secret receipt text" in span.attributes["gen_ai.input.messages"]
    assert "Merchant: Acme" in span.attributes["gen_ai.output.messages"]
