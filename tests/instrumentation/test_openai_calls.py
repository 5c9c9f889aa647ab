"""The real `openai` client against the stand-in: exact tokens, exact cost (hand-computed), attribution, metrics.

Prices used (USD per million tokens, as published by OpenAI):
  gpt-4o-mini: input 0.15, cached input 0.075, output 0.60
  o4-mini:     input 1.10, cached input 0.275, output 4.40
  text-embedding-3-small: input 0.02
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import openai
import pytest
from pydantic import BaseModel

from otel_ai_cost import ai_usage_context
from otel_ai_cost.stand_in import Scenario

MSGS = [{"role": "user", "content": "Label this receipt"}]


@pytest.fixture
def client(stand_in, telemetry):
    return openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test-secret-key-123", max_retries=0)


def test_plain_chat_is_one_client_span_with_exact_usage_and_cost(client, stand_in, telemetry):
    stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=200, model="gpt-4o-mini-2024-07-18"))
    response = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)

    assert response.usage.prompt_tokens == 1000
    span = telemetry.span()
    a = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert span.kind.name == "CLIENT"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert a["gen_ai.response.id"] == response.id
    assert a["gen_ai.usage.input_tokens"] == 1000
    assert a["gen_ai.usage.output_tokens"] == 200
    assert a["server.address"] == "127.0.0.1"
    # 1000 * 0.15/1M + 200 * 0.60/1M = 0.00015 + 0.00012
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.00027")
    assert a["ai_cost.currency"] == "USD"
    assert a["ai_cost.source"] == "local"
    assert a["ai_cost.pricing.status"] == "priced"
    assert a["ai_cost.pricing.version"].startswith("genai-prices-")
    assert "error.type" not in a


def test_cached_input_is_charged_at_the_cached_rate_and_not_twice(client, stand_in, telemetry):
    stand_in.push(Scenario(prompt_tokens=2048, cached_tokens=1920, completion_tokens=100))
    client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)

    a = telemetry.span().attributes
    assert a["gen_ai.usage.input_tokens"] == 2048  # prompt_tokens already includes the cached ones
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1920
    # 128 * 0.15 + 1920 * 0.075 + 100 * 0.60 = 19.2 + 144 + 60 = 223.2 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.0002232")
    tokens = {p.attributes["gen_ai.token.type"]: p.value for p in telemetry.points("ai_cost.tokens")}
    assert tokens == {"input": 128, "cache_read": 1920, "output": 100}


def test_reasoning_tokens_are_a_subset_of_output(client, stand_in, telemetry):
    stand_in.push(Scenario(prompt_tokens=500, completion_tokens=1500, reasoning_tokens=1200))
    client.chat.completions.create(model="o4-mini", messages=MSGS)

    a = telemetry.span().attributes
    assert a["gen_ai.usage.output_tokens"] == 1500
    assert a["gen_ai.usage.reasoning.output_tokens"] == 1200
    # 500 * 1.10 + 1500 * 4.40 = 550 + 6600 = 7150 per 1M (reasoning billed as output, once)
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.00715")


def test_responses_api_usage_and_web_search_free_of_double_count(client, stand_in, telemetry):
    stand_in.push(Scenario(prompt_tokens=800, cached_tokens=400, completion_tokens=300, reasoning_tokens=200))
    response = client.responses.create(model="o4-mini", input="Which merchant?")

    a = telemetry.span().attributes
    assert a["gen_ai.response.id"] == response.id
    assert a["gen_ai.usage.input_tokens"] == 800
    assert a["gen_ai.usage.cache_read.input_tokens"] == 400
    assert a["gen_ai.usage.reasoning.output_tokens"] == 200
    # 400 * 1.10 + 400 * 0.275 + 300 * 4.40 = 440 + 110 + 1320 = 1870 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.00187")


def test_embeddings(client, stand_in, telemetry):
    stand_in.push(Scenario(prompt_tokens=5000))
    client.embeddings.create(model="text-embedding-3-small", input=["coffee", "bagel"])

    span = telemetry.span()
    assert span.name == "embeddings text-embedding-3-small"
    assert span.attributes["gen_ai.usage.input_tokens"] == 5000
    # 5000 * 0.02 per 1M
    assert Decimal(span.attributes["ai_cost.amount"]) == Decimal("0.0001")


def test_flex_and_priority_tiers_come_from_the_reported_service_tier(client, stand_in, telemetry):
    stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=1000, service_tier="flex"))
    client.chat.completions.create(model="o4-mini", messages=MSGS, service_tier="flex")
    a = telemetry.span().attributes
    assert a["openai.response.service_tier"] == "flex"
    assert a["ai_cost.pricing.tier"] == "flex"
    # flex = batch prices = half: (1000 * 1.10 + 1000 * 4.40) / 2 = 2750 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.00275")


def test_stream_without_include_usage_gets_exact_usage_and_caller_sees_the_same_chunks(client, stand_in, telemetry):
    stand_in.push(Scenario(text=["Coffee", " shop"], prompt_tokens=300, completion_tokens=7))
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True))

    # The request asked for usage; the caller never sees the usage-only chunk it did not ask for.
    assert stand_in.requests[-1].body["stream_options"] == {"include_usage": True}
    assert all(chunk.choices for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Coffee shop"
    assert all(chunk.usage is None for chunk in chunks)

    a = telemetry.span().attributes
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.usage.input_tokens"] == 300
    assert a["gen_ai.usage.output_tokens"] == 7
    assert "gen_ai.response.time_to_first_chunk" in a
    # 300 * 0.15 + 7 * 0.60 = 45 + 4.2 = 49.2 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.0000492")


def test_stream_with_include_usage_keeps_the_usage_chunk_the_caller_asked_for(client, stand_in, telemetry):
    stand_in.push(Scenario(prompt_tokens=300, completion_tokens=7))
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MSGS, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 300
    assert telemetry.span().attributes["gen_ai.usage.input_tokens"] == 300


def test_stream_helper_and_parse_helper(client, stand_in, telemetry):
    class Label(BaseModel):
        merchant: str

    stand_in.push(Scenario(prompt_tokens=100, completion_tokens=10), Scenario(prompt_tokens=200, completion_tokens=20))
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MSGS) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.usage is None  # as uninstrumented: the helper was not asked for usage
    parsed = client.chat.completions.parse(model="gpt-4o-mini", messages=MSGS, response_format=Label)
    assert isinstance(parsed.choices[0].message.parsed, Label)

    spans = telemetry.spans()
    assert [s.attributes["gen_ai.usage.input_tokens"] for s in spans] == [100, 200]
    assert all(s.attributes["ai_cost.pricing.status"] == "priced" for s in spans)


def test_responses_stream_usage_from_completed_event(client, stand_in, telemetry):
    stand_in.push(Scenario(prompt_tokens=120, completion_tokens=30))
    events = list(client.responses.create(model="gpt-4o-mini", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    a = telemetry.span().attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (120, 30)
    assert "ai_cost.usage.partial" not in a


def test_raw_response_is_recorded_when_parsed(client, stand_in, telemetry):
    stand_in.push(Scenario(prompt_tokens=100, completion_tokens=10))
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS)
    assert raw.http_response.status_code == 200
    completion = raw.parse()
    assert completion.usage.prompt_tokens == 100
    assert telemetry.span().attributes["gen_ai.usage.input_tokens"] == 100


def test_async_chat_and_async_stream(stand_in, telemetry):
    async def run() -> list:
        async with openai.AsyncOpenAI(base_url=stand_in.openai_base_url, api_key="sk-x", max_retries=0) as c:
            stand_in.push(
                Scenario(prompt_tokens=10, completion_tokens=5), Scenario(prompt_tokens=20, completion_tokens=6)
            )
            await c.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
            stream = await c.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
            return [chunk async for chunk in stream]

    chunks = asyncio.run(run())
    assert all(chunk.choices for chunk in chunks)
    spans = telemetry.spans()
    assert [(s.attributes["gen_ai.usage.input_tokens"], s.attributes["gen_ai.usage.output_tokens"]) for s in spans] == [
        (10, 5),
        (20, 6),
    ]


def test_unknown_model_is_unpriced_never_zero_and_warned_once(client, stand_in, telemetry, caplog):
    for _ in range(3):
        client.chat.completions.create(model="acme-llm-7b", messages=MSGS)
    spans = telemetry.spans()
    assert len(spans) == 3
    for span in spans:
        assert span.attributes["ai_cost.pricing.status"] == "unpriced"
        assert "ai_cost.amount" not in span.attributes
        assert span.attributes["gen_ai.usage.input_tokens"] > 0
    warnings = [r for r in caplog.records if "acme-llm-7b" in r.getMessage()]
    assert len(warnings) == 1
    requests = {
        (p.attributes["ai_cost.pricing.status"], p.attributes["gen_ai.request.model"]): p.value
        for p in telemetry.points("ai_cost.requests")
    }
    assert requests == {("unpriced", "acme-llm-7b"): 3}
    assert telemetry.points("ai_cost.spend") == []


def test_metrics_have_bounded_labels_and_exemplars(client, stand_in, telemetry):
    stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=200))
    with ai_usage_context(operation_type="batch_processing", job_id="job-123", batch_id="b-9", team="search"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)

    span = telemetry.span()
    assert span.attributes["ai_cost.job.id"] == "job-123"
    assert span.attributes["ai_cost.batch.id"] == "b-9"
    [spend] = telemetry.points("ai_cost.spend")
    assert spend.value == pytest.approx(0.00027)
    assert dict(spend.attributes) == {
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.operation.name": "chat",
        "deployment.environment.name": "development",
        "ai_cost.operation_type": "batch_processing",
        "ai_cost.team": "search",
    }
    assert spend.exemplars and spend.exemplars[0].trace_id == span.context.trace_id
    for name in ("ai_cost.tokens", "ai_cost.requests", "gen_ai.client.token.usage", "gen_ai.client.operation.duration"):
        for point in telemetry.points(name):
            assert not {"ai_cost.job.id", "ai_cost.batch.id"} & set(point.attributes), name
    usage = {p.attributes["gen_ai.token.type"]: p.sum for p in telemetry.points("gen_ai.client.token.usage")}
    assert usage == {"input": 1000, "output": 200}
    [duration] = telemetry.points("gen_ai.client.operation.duration")
    assert duration.count == 1 and list(duration.explicit_bounds)[:3] == [0.01, 0.02, 0.04]


def test_api_key_and_prompt_never_reach_telemetry_by_default(client, stand_in, telemetry):
    client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    dumped = json.dumps({k: str(v) for k, v in telemetry.span().attributes.items()})
    assert "sk-test-secret-key-123" not in dumped
    assert "Label this receipt" not in dumped


def test_tiny_amounts_are_plain_decimals_not_scientific_notation(client, stand_in, telemetry):
    stand_in.push(Scenario(prompt_tokens=1, completion_tokens=0))
    client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    # 1 * 0.15 per 1M
    assert telemetry.span().attributes["ai_cost.amount"] == "0.00000015"
