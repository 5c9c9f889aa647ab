"""A failure inside the google-genai instrumentation never changes what the caller gets; capture is opt-in."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from otel_ai_cost.instrumentation.google_genai import GoogleGenAICostInstrumentor
from otel_ai_cost.instrumentation.google_genai import patch as genai_patch
from otel_ai_cost.instrumentation.google_genai import response_extractors as extract
from otel_ai_cost.instrumentation.google_genai.streams import GenerateContentStreamObserver
from otel_ai_cost.stand_in.gemini_api import GeminiScenario
from otel_ai_cost.telemetry.errors import internal_error_counts

FLASH = "gemini-2.5-flash"


def _boom(*args, **kwargs):
    raise RuntimeError("injected failure")


def test_no_internal_errors_on_the_normal_path(client, gemini, telemetry):
    gemini.push(GeminiScenario(prompt_tokens=10, candidates_tokens=2), GeminiScenario(prompt_tokens=10))
    client.models.generate_content(model=FLASH, contents="hi")
    list(client.models.generate_content_stream(model=FLASH, contents="hi"))
    assert internal_error_counts() == {}


def test_extractor_failure_leaves_the_response_untouched(client, gemini, telemetry, monkeypatch):
    monkeypatch.setattr(extract, "usage", _boom)
    gemini.push(GeminiScenario(prompt_tokens=10, candidates_tokens=3, text="fine", response_id="r1"))
    response = client.models.generate_content(model=FLASH, contents="hi")
    assert response.text == "fine"
    assert response.response_id == "r1"
    assert response.usage_metadata.prompt_token_count == 10
    span = telemetry.span()  # the span still ended
    assert span.attributes["ai_cost.pricing.status"] == "no_usage"
    assert internal_error_counts() == {"google_genai.result": 1}


def test_extractor_failure_in_a_stream_leaves_the_chunks_untouched(client, gemini, telemetry, monkeypatch):
    monkeypatch.setattr(GenerateContentStreamObserver, "on_item", _boom)
    monkeypatch.setattr(extract, "usage", _boom)
    gemini.push(GeminiScenario(prompt_tokens=10, candidates_tokens=3, text="abcdef", chunks=3))
    chunks = list(client.models.generate_content_stream(model=FLASH, contents="hi"))
    assert [c.text for c in chunks] == ["ab", "cd", "ef"]
    assert chunks[-1].usage_metadata.candidates_token_count == 3
    assert len(telemetry.spans()) == 1
    assert internal_error_counts() == {"stream.observe": 3, "google_genai.stream_end": 1}


def test_async_extractor_failure_leaves_the_response_untouched(client, arun, gemini, telemetry, monkeypatch):
    monkeypatch.setattr(extract, "finish_reasons", _boom)

    async def run() -> tuple[str, str]:
        gemini.push(GeminiScenario(text="one"), GeminiScenario(text="twoxx", chunks=2))
        response = await client.aio.models.generate_content(model=FLASH, contents="hi")
        texts = [c.text async for c in await client.aio.models.generate_content_stream(model=FLASH, contents="hi")]
        return response.text, "".join(texts)

    assert arun(run) == ("one", "twoxx")
    assert len(telemetry.spans()) == 2
    assert set(internal_error_counts()) == {"google_genai.result", "stream.observe"}


def test_failure_starting_the_span_sends_the_request_anyway(client, gemini, telemetry, monkeypatch):
    monkeypatch.setattr(genai_patch, "start_call", _boom)
    gemini.push(GeminiScenario(text="still works"), GeminiScenario(text="streamed", chunks=1))
    assert client.models.generate_content(model=FLASH, contents="hi").text == "still works"
    assert [c.text for c in client.models.generate_content_stream(model=FLASH, contents="hi")] == ["streamed"]
    assert telemetry.spans() == []
    assert internal_error_counts() == {"google_genai.start": 2}


def test_pricing_failure_leaves_the_call_untouched(client, gemini, telemetry, monkeypatch):
    from otel_ai_cost.pricing.catalog import PriceCatalog

    monkeypatch.setattr(PriceCatalog, "quote", _boom)
    gemini.push(GeminiScenario(prompt_tokens=10, candidates_tokens=3, text="fine"))
    assert client.models.generate_content(model=FLASH, contents="hi").text == "fine"
    assert len(telemetry.spans()) == 1
    assert internal_error_counts() == {"recorder.finish": 1}


def test_uninstrument_restores_the_sdk(gemini, telemetry, instrumented):
    from google.genai import models

    assert hasattr(models.Models._generate_content, "__wrapped__")
    instrumented.uninstrument()
    for cls in (models.Models, models.AsyncModels):
        assert not hasattr(cls._generate_content, "__wrapped__")
        assert not hasattr(cls._generate_content_stream, "__wrapped__")
    instrumented.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)


def test_content_captured_only_when_enabled(gemini, telemetry, monkeypatch, instrumented):
    from google import genai
    from google.genai import types

    instrumented.uninstrument()
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    instrumentor = GoogleGenAICostInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=gemini.base_url))
        gemini.push(GeminiScenario(text="the answer"), GeminiScenario(text="stream answer", chunks=2))
        client.models.generate_content(model=FLASH, contents="the question")
        list(client.models.generate_content_stream(model=FLASH, contents="streamed question"))
    finally:
        instrumentor.uninstrument()
    plain, streamed = (s.attributes for s in telemetry.spans())
    assert json.loads(plain["gen_ai.input.messages"]) == "the question"
    assert json.loads(plain["gen_ai.output.messages"]) == [{"role": "assistant", "content": "the answer"}]
    assert json.loads(streamed["gen_ai.output.messages"]) == [{"role": "assistant", "content": "stream answer"}]


@pytest.mark.parametrize(
    ("traffic", "requested", "tier"),
    [("ON_DEMAND_FLEX", None, "flex"), ("ON_DEMAND_PRIORITY", None, "priority"), ("ON_DEMAND", "flex", "standard")],
)
def test_service_tier_from_traffic_type_or_request(traffic, requested, tier):
    class Meta:
        traffic_type = traffic

    assert extract.service_tier(Meta(), requested) == tier
    assert extract.service_tier(None, requested) == requested
    assert extract.requested_service_tier({"service_tier": "flex"}) == "flex"


def test_provider_detection():
    class Client:
        vertexai = True

    assert extract.provider_of(Client()) == "gcp.vertex_ai"
    Client.vertexai = False
    assert extract.provider_of(Client()) == "gcp.gemini"
    assert extract.provider_of(None) == "gcp.gemini"


def test_usage_mapping_is_semconv_totals():
    class Meta:
        prompt_token_count = 1000
        cached_content_token_count = 600
        tool_use_prompt_token_count = 50
        candidates_token_count = 200
        thoughts_token_count = 300

    usage = extract.usage(Meta())
    assert usage is not None
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.uncached_input_tokens) == (1050, 600, 450)
    assert (usage.output_tokens, usage.reasoning_output_tokens, usage.plain_output_tokens) == (500, 300, 200)
    assert extract.usage(None) is None
    assert Decimal(0) == Decimal(extract.usage(object()).input_tokens)


def test_async_stream_never_iterated_still_ends_its_span(client, arun, gemini, telemetry):
    import gc

    async def run() -> None:
        gemini.push(GeminiScenario(prompt_tokens=10, text="abcdef", chunks=3))
        # The SDK's per-request method: it sends the request, then hands back the chunks' async generator.
        stream = await client.aio.models._generate_content_stream(model=FLASH, contents="hi")
        del stream
        gc.collect()

    arun(run)
    span = telemetry.span()
    assert span.attributes["ai_cost.usage.partial"] is True
    assert span.attributes["ai_cost.pricing.status"] == "no_usage"


def test_legacy_async_generator_stream_method_is_observed(telemetry):
    """Older google-genai releases made `AsyncModels._generate_content_stream` an async generator function."""
    from types import SimpleNamespace

    from otel_ai_cost.telemetry.recorder import Recorder

    chunk = SimpleNamespace(
        usage_metadata=SimpleNamespace(prompt_token_count=1000, candidates_token_count=100),
        model_version=FLASH,
        response_id="legacy",
        candidates=[SimpleNamespace(finish_reason="STOP", content=None)],
    )

    class FakeModels:
        _api_client = SimpleNamespace(vertexai=False, _http_options=SimpleNamespace(base_url="https://x.test/"))

        async def _generate_content_stream(self, *, model, contents, config=None):
            yield chunk

    recorder = Recorder(telemetry.tracer_provider, telemetry.meter_provider)
    wrapper = genai_patch.async_generate_content_stream_wrapper(recorder)
    models = FakeModels()

    async def run() -> list:
        stream = wrapper(models._generate_content_stream, models, (), {"model": FLASH, "contents": "hi"})
        return [c async for c in stream]

    assert asyncio.run(run()) == [chunk]
    a = telemetry.span().attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.response.id"], a["server.address"]) == (1000, "legacy", "x.test")
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.00055")  # 1000 * 0.30 + 100 * 2.50 per 1M
