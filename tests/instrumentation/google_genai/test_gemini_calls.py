"""The real `google-genai` client against the Gemini stand-in: exact usage, provider, models and cost.

Prices, USD per million tokens, as genai-prices 0.2.3 carries them (provider `google`, from Google's page
https://ai.google.dev/gemini-api/docs/pricing, standard/paid tier, text input):

- gemini-2.5-flash: input 0.30, output (thinking included) 2.50, context-cache read 0.03;
- gemini-2.5-flash-lite: input 0.10, output 0.40, cache read 0.01;
- gemini-2.5-pro: prompts <= 200k tokens: input 1.25, output 10.00, cache read 0.125;
  prompts > 200k tokens: input 2.50, output 15.00, cache read 0.25 (the whole request at the higher rates).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from google.genai import errors
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from otel_ai_cost.stand_in.gemini_api import GeminiScenario

FLASH = "gemini-2.5-flash"
LITE = "gemini-2.5-flash-lite"
PRO = "gemini-2.5-pro"


def _amount(span) -> Decimal:
    return Decimal(span.attributes["ai_cost.amount"])


def test_generate_content_exact_usage_and_cost(client, gemini, telemetry):
    gemini.push(
        GeminiScenario(
            prompt_tokens=1200,  # includes the 1000 cached tokens
            cached_tokens=1000,
            tool_use_prompt_tokens=30,  # not in the prompt count, billed as input
            candidates_tokens=300,
            thoughts_tokens=200,  # not in the candidates count, billed as output
            model_version="gemini-2.5-flash-001",
            response_id="resp-123",
            text="A receipt.",
        )
    )
    response = client.models.generate_content(model=FLASH, contents="Label this receipt")
    assert response.text == "A receipt."

    span = telemetry.span()
    a = span.attributes
    assert span.name == "generate_content gemini-2.5-flash"
    assert span.kind == trace.SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "generate_content"
    assert a["gen_ai.provider.name"] == "gcp.gemini"
    assert a["gen_ai.request.model"] == FLASH
    assert a["gen_ai.response.model"] == "gemini-2.5-flash-001"
    assert a["gen_ai.response.id"] == "resp-123"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["server.address"] == "127.0.0.1"
    assert a["server.port"] == gemini.port
    assert a["gen_ai.usage.input_tokens"] == 1230
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert a["gen_ai.usage.output_tokens"] == 500
    assert a["gen_ai.usage.reasoning.output_tokens"] == 200
    assert "gen_ai.request.stream" not in a
    assert a["ai_cost.pricing.status"] == "priced"
    assert a["ai_cost.pricing.tier"] == "standard"
    # 230 uncached * 0.30 + 1000 cached * 0.03 + 500 output * 2.50 = 69 + 30 + 1250 = 1349 per 1M
    assert _amount(span) == Decimal("0.001349")
    assert span.status.status_code is StatusCode.UNSET

    [spend] = telemetry.points("ai_cost.spend")
    assert spend.value == pytest.approx(0.001349)
    assert spend.attributes["gen_ai.provider.name"] == "gcp.gemini"
    assert spend.attributes["gen_ai.request.model"] == FLASH
    tokens = {p.attributes["gen_ai.token.type"]: p.value for p in telemetry.points("ai_cost.tokens")}
    assert tokens == {"input": 230, "cache_read": 1000, "output": 300, "reasoning": 200}
    [requests] = telemetry.points("ai_cost.requests")
    assert requests.value == 1 and requests.attributes["ai_cost.outcome"] == "success"
    assert trace.get_current_span() is trace.INVALID_SPAN  # our context was detached


def test_models_prefix_is_priced_and_kept_as_requested(client, gemini, telemetry):
    gemini.push(GeminiScenario(prompt_tokens=1000, candidates_tokens=1000))
    client.models.generate_content(model="models/gemini-2.5-flash-lite", contents="hi")
    a = telemetry.span().attributes
    assert a["gen_ai.request.model"] == "models/gemini-2.5-flash-lite"
    assert a["gen_ai.response.model"] == LITE  # the stand-in echoes the path's model id, as the API does
    # 1000 * 0.10 + 1000 * 0.40 = 500 per 1M
    assert _amount(telemetry.span()) == Decimal("0.0005")


@pytest.mark.parametrize(
    ("prompt", "cached", "output", "expected"),
    [
        # <= 200k: 150000 * 1.25 + 1000 * 10 = 187500 + 10000 = 197500 per 1M
        (150_000, 0, 1000, Decimal("0.1975")),
        # exactly 200k is still the base tier: 200000 * 1.25 + 1000 * 10 = 260000 per 1M
        (200_000, 0, 1000, Decimal("0.26")),
        # > 200k: 250000 * 2.50 + 1000 * 15 = 625000 + 15000 = 640000 per 1M
        (250_000, 0, 1000, Decimal("0.64")),
        # > 200k with a cache: 150000 * 2.50 + 100000 * 0.25 + 1000 * 15 = 375000 + 25000 + 15000 = 415000 per 1M
        (250_000, 100_000, 1000, Decimal("0.415")),
    ],
)
def test_long_context_tier_on_gemini_2_5_pro(client, gemini, telemetry, prompt, cached, output, expected):
    gemini.push(GeminiScenario(prompt_tokens=prompt, cached_tokens=cached or None, candidates_tokens=output))
    client.models.generate_content(model=PRO, contents="a very long document")
    span = telemetry.span()
    assert span.attributes["gen_ai.usage.input_tokens"] == prompt
    assert _amount(span) == expected


def test_generate_content_stream_exact_usage_and_same_chunks(client, gemini, telemetry):
    gemini.push(
        GeminiScenario(
            prompt_tokens=400, candidates_tokens=100, thoughts_tokens=50, text="one two three", chunks=3,
            response_id="stream-1",
        )
    )  # fmt: skip
    chunks = list(client.models.generate_content_stream(model=LITE, contents="count"))
    assert "".join(c.text for c in chunks) == "one two three"
    assert len(chunks) == 3
    assert chunks[-1].usage_metadata.candidates_token_count == 100

    span = telemetry.span()
    a = span.attributes
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.provider.name"] == "gcp.gemini"
    assert a["gen_ai.request.model"] == LITE
    assert a["gen_ai.response.model"] == LITE
    assert a["gen_ai.response.id"] == "stream-1"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] == 400
    assert a["gen_ai.usage.output_tokens"] == 150
    assert a["gen_ai.usage.reasoning.output_tokens"] == 50
    assert "gen_ai.usage.cache_read.input_tokens" not in a
    assert a["gen_ai.response.time_to_first_chunk"] >= 0
    assert "ai_cost.usage.partial" not in a
    # 400 * 0.10 + 150 * 0.40 = 40 + 60 = 100 per 1M
    assert _amount(span) == Decimal("0.0001")
    [spend] = telemetry.points("ai_cost.spend")
    assert spend.value == pytest.approx(0.0001)


def test_stream_chunks_are_identical_to_uninstrumented(client, gemini, telemetry, instrumented):
    scenario = dict(prompt_tokens=10, candidates_tokens=5, text="abcdefghi", chunks=3, response_id="same")

    def run() -> list[dict]:
        gemini.push(GeminiScenario(**scenario))
        chunks = client.models.generate_content_stream(model=FLASH, contents="x")
        return [c.model_dump(exclude={"sdk_http_response"}) for c in chunks]

    observed = run()
    instrumented.uninstrument()
    plain = run()
    assert observed == plain
    assert len(telemetry.spans()) == 1


def test_async_generate_content_and_stream(client, arun, gemini, telemetry):
    async def run() -> tuple[str, str]:
        gemini.push(
            GeminiScenario(prompt_tokens=2000, cached_tokens=1500, candidates_tokens=100, text="async"),
            GeminiScenario(prompt_tokens=300, candidates_tokens=40, thoughts_tokens=60, text="s t r", chunks=3),
        )
        response = await client.aio.models.generate_content(model=FLASH, contents="hi")
        texts = []
        async for chunk in await client.aio.models.generate_content_stream(model=FLASH, contents="hi"):
            texts.append(chunk.text)
        return response.text, "".join(texts)

    assert arun(run) == ("async", "s t r")
    plain, streamed = telemetry.spans()
    a = plain.attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.cache_read.input_tokens"]) == (2000, 1500)
    assert a["gen_ai.usage.output_tokens"] == 100
    assert "gen_ai.request.stream" not in a
    # 500 * 0.30 + 1500 * 0.03 + 100 * 2.50 = 150 + 45 + 250 = 445 per 1M
    assert _amount(plain) == Decimal("0.000445")
    b = streamed.attributes
    assert b["gen_ai.request.stream"] is True
    assert (b["gen_ai.usage.input_tokens"], b["gen_ai.usage.output_tokens"]) == (300, 100)
    assert b["gen_ai.usage.reasoning.output_tokens"] == 60
    assert b["gen_ai.response.finish_reasons"] == ("stop",)
    # 300 * 0.30 + 100 * 2.50 = 90 + 250 = 340 per 1M
    assert _amount(streamed) == Decimal("0.00034")
    assert sum(p.value for p in telemetry.points("ai_cost.requests")) == 2


def test_vertex_ai_client_is_gcp_vertex_ai(vertex_client, gemini, telemetry):
    vertex = vertex_client
    gemini.push(GeminiScenario(prompt_tokens=1000, candidates_tokens=100, traffic_type="ON_DEMAND"))
    vertex.models.generate_content(model=FLASH, contents="hi")
    assert gemini.requests[-1].path == "/v1beta1/publishers/google/models/gemini-2.5-flash:generateContent"
    span = telemetry.span()
    assert span.attributes["gen_ai.provider.name"] == "gcp.vertex_ai"
    assert span.attributes["ai_cost.pricing.tier"] == "standard"
    # 1000 * 0.30 + 100 * 2.50 = 300 + 250 = 550 per 1M
    assert _amount(span) == Decimal("0.00055")
    [spend] = telemetry.points("ai_cost.spend")
    assert spend.attributes["gen_ai.provider.name"] == "gcp.vertex_ai"


def test_api_error_ends_the_span_with_error(client, gemini, telemetry):
    gemini.push(GeminiScenario(error_status=429))
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model=FLASH, contents="hi")
    assert raised.value.code == 429
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "429"
    assert span.attributes["ai_cost.pricing.status"] == "no_usage"
    assert "ai_cost.amount" not in span.attributes
    [requests] = telemetry.points("ai_cost.requests")
    assert requests.attributes["ai_cost.outcome"] == "error"
    [duration] = telemetry.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "429"


def test_stream_errors(client, gemini, telemetry):
    gemini.push(GeminiScenario(error_status=503))
    with pytest.raises(errors.ServerError):
        list(client.models.generate_content_stream(model=FLASH, contents="hi"))
    gemini.push(GeminiScenario(stream_error_after=1, text="abcdef", chunks=3))
    seen = []
    with pytest.raises(errors.ServerError):
        for chunk in client.models.generate_content_stream(model=FLASH, contents="hi"):
            seen.append(chunk.text)
    assert seen == ["ab"]
    gemini.push(GeminiScenario(stream_cut_after=1, text="abcdef", chunks=3))
    with pytest.raises(Exception) as cut:
        list(client.models.generate_content_stream(model=FLASH, contents="hi"))

    refused, failed, dropped = telemetry.spans()
    for span in (refused, failed, dropped):
        assert span.status.status_code is StatusCode.ERROR
    assert refused.attributes["error.type"] == "503"
    assert failed.attributes["error.type"] == "503"
    assert dropped.attributes["error.type"] == type(cut.value).__qualname__
    # The prompt side the chunks read so far reported is kept (it is billed).
    assert failed.attributes["gen_ai.usage.input_tokens"] > 0


def test_abandoned_stream_ends_its_span_as_partial(client, gemini, telemetry):
    gemini.push(GeminiScenario(prompt_tokens=1000, candidates_tokens=50, text="abcdef", chunks=3))
    stream = client.models.generate_content_stream(model=FLASH, contents="hi")
    first = next(stream)
    assert first.text == "ab"
    assert telemetry.spans() == []  # still open
    stream.close()

    span = telemetry.span()
    a = span.attributes
    assert a["ai_cost.usage.partial"] is True
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.usage.input_tokens"] == 1000  # every chunk reports the prompt side
    assert a["gen_ai.usage.output_tokens"] == 0
    assert _amount(span) == Decimal("0.0003")  # 1000 * 0.30 per 1M
    [requests] = telemetry.points("ai_cost.requests")
    assert requests.attributes["ai_cost.outcome"] == "partial"


def test_stream_dropped_mid_way_ends_its_span(client, gemini, telemetry):
    gemini.push(GeminiScenario(prompt_tokens=10, candidates_tokens=5, text="abcdef", chunks=3))
    for _chunk in client.models.generate_content_stream(model=FLASH, contents="hi"):
        break  # the generator is dropped here and closed by the garbage collector
    assert telemetry.span().attributes["ai_cost.usage.partial"] is True


def test_async_abandoned_stream_ends_its_span_as_partial(client, arun, gemini, telemetry):
    async def run() -> None:
        gemini.push(GeminiScenario(prompt_tokens=700, candidates_tokens=5, text="abcdef", chunks=3))
        stream = await client.aio.models.generate_content_stream(model=FLASH, contents="hi")
        async for _chunk in stream:
            break
        await stream.aclose()

    arun(run)
    a = telemetry.span().attributes
    assert a["ai_cost.usage.partial"] is True
    assert a["gen_ai.usage.input_tokens"] == 700


def test_async_error(client, arun, gemini, telemetry):
    async def run() -> None:
        gemini.push(GeminiScenario(error_status=429), GeminiScenario(error_status=500))
        with pytest.raises(errors.ClientError):
            await client.aio.models.generate_content(model=FLASH, contents="hi")
        with pytest.raises(errors.ServerError):
            async for _chunk in await client.aio.models.generate_content_stream(model=FLASH, contents="hi"):
                pass

    arun(run)
    assert [s.attributes["error.type"] for s in telemetry.spans()] == ["429", "500"]
    assert all(s.status.status_code is StatusCode.ERROR for s in telemetry.spans())


def test_chats_are_recorded(client, gemini, telemetry):
    gemini.push(
        GeminiScenario(prompt_tokens=10, candidates_tokens=2), GeminiScenario(prompt_tokens=20, candidates_tokens=3)
    )
    chat = client.chats.create(model=FLASH)
    chat.send_message("hi")
    chat.send_message("again")
    assert [s.attributes["gen_ai.usage.input_tokens"] for s in telemetry.spans()] == [10, 20]


def test_max_output_tokens_and_no_content_by_default(client, gemini, telemetry):
    gemini.push(GeminiScenario(prompt_tokens=10, candidates_tokens=2))
    client.models.generate_content(model=FLASH, contents="secret prompt", config={"max_output_tokens": 64})
    a = telemetry.span().attributes
    assert a["gen_ai.request.max_tokens"] == 64
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
