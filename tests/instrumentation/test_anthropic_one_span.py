"""anthropic 2.x makes its own span per API call whenever a tracer provider exists. For the calls we record, ours is
the one span (the SDK is told it has no tracer while they run); `OTEL_AI_COST_ANTHROPIC_SDK_SPANS=keep` keeps the
SDK's as our child; calls we do not record keep the SDK's span. Real client, the stand-in on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest
from anthropic._base_client import BaseClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_ai_cost
from otel_ai_cost.contract import INSTRUMENTATION_SCOPE, Env, GenAI
from otel_ai_cost.stand_in import Scenario

SDK_SCOPE = "com.anthropic.sdk.python"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def traced() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    otel_ai_cost.uninstrument()
    provider.shutdown()


def client(stand_in, provider: TracerProvider) -> anthropic.Anthropic:
    # The SDK's spans go to `provider`, as they would to a global one.
    return anthropic.Anthropic(
        base_url=stand_in.anthropic_base_url,
        api_key="sk-ant-test",
        max_retries=0,
        open_telemetry={"tracer_provider": provider},
    )


def scopes(exporter: InMemorySpanExporter) -> list[str]:
    return [s.instrumentation_scope.name for s in exporter.get_finished_spans()]


def test_a_recorded_call_has_one_span_ours_with_the_request_id(traced, stand_in):
    provider, exporter = traced
    otel_ai_cost.instrument(tracer_provider=provider)
    stand_in.push(Scenario(input_tokens=100, output_tokens=20))
    message = client(stand_in, provider).messages.create(model="claude-sonnet-4-20250514", max_tokens=50, messages=HI)
    (span,) = exporter.get_finished_spans()
    assert span.instrumentation_scope.name == INSTRUMENTATION_SCOPE
    assert span.attributes[GenAI.ANTHROPIC_REQUEST_ID] == message._request_id
    assert message._request_id.startswith("req_")


def test_a_stream_has_one_span_too(traced, stand_in):
    provider, exporter = traced
    otel_ai_cost.instrument(tracer_provider=provider)
    stand_in.push(Scenario(input_tokens=100, output_tokens=20))
    with client(stand_in, provider).messages.stream(
        model="claude-sonnet-4-20250514", max_tokens=50, messages=HI
    ) as stream:
        stream.until_done()
    assert scopes(exporter) == [INSTRUMENTATION_SCOPE]


def test_keep_makes_the_sdk_span_a_child_of_ours(traced, stand_in, monkeypatch):
    monkeypatch.setenv(Env.ANTHROPIC_SDK_SPANS, "keep")
    provider, exporter = traced
    otel_ai_cost.instrument(tracer_provider=provider)
    stand_in.push(Scenario(input_tokens=100, output_tokens=20))
    client(stand_in, provider).messages.create(model="claude-sonnet-4-20250514", max_tokens=50, messages=HI)
    sdk, ours = sorted(exporter.get_finished_spans(), key=lambda s: s.instrumentation_scope.name != SDK_SCOPE)
    assert (sdk.instrumentation_scope.name, ours.instrumentation_scope.name) == (SDK_SCOPE, INSTRUMENTATION_SCOPE)
    assert sdk.parent is not None and sdk.parent.span_id == ours.context.span_id


def test_calls_we_do_not_record_keep_the_sdk_span_and_uninstrument_restores_the_sdk(traced, stand_in):
    provider, exporter = traced
    original = BaseClient.__dict__["_tracer"]
    otel_ai_cost.instrument(tracer_provider=provider)
    assert BaseClient.__dict__["_tracer"] is not original
    client(stand_in, provider).messages.count_tokens(model="claude-sonnet-4-20250514", messages=HI)
    assert scopes(exporter) == [SDK_SCOPE]  # count_tokens is free: not ours to record, the SDK's span stays
    otel_ai_cost.uninstrument()
    assert BaseClient.__dict__["_tracer"] is original
