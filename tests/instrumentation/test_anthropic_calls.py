"""The real `anthropic` client against the stand-in.

Prices (USD per million tokens, published by Anthropic) for claude-haiku-4-5: input 1.00, output 5.00,
cache read 0.10, 5-minute cache write 1.25, 1-hour cache write 2.00. Batch tier: half of each.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import anthropic
import pytest
from opentelemetry import trace

import otel_ai_cost
from otel_ai_cost.stand_in import Scenario

MSGS = [{"role": "user", "content": "Label this receipt"}]
MODEL = "claude-haiku-4-5"


@pytest.fixture
def client(stand_in, telemetry):
    return anthropic.Anthropic(base_url=stand_in.anthropic_base_url, api_key="sk-ant-secret-999", max_retries=0)


def test_input_total_includes_cache_reads_and_writes_each_priced_at_its_rate(client, stand_in, telemetry):
    stand_in.push(
        Scenario(
            input_tokens=100,
            cache_read_input_tokens=2000,
            cache_write_5m_input_tokens=400,
            cache_write_1h_input_tokens=600,
            output_tokens=300,
        )
    )
    message = client.messages.create(model=MODEL, max_tokens=500, messages=MSGS)

    a = telemetry.span().attributes
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.response.id"] == message.id
    assert a["gen_ai.usage.input_tokens"] == 100 + 2000 + 400 + 600
    assert a["gen_ai.usage.cache_read.input_tokens"] == 2000
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 1000
    assert a["ai_cost.usage.cache_creation.5m.input_tokens"] == 400
    assert a["ai_cost.usage.cache_creation.1h.input_tokens"] == 600
    assert a["gen_ai.usage.output_tokens"] == 300
    assert a["gen_ai.response.finish_reasons"] == ("end_turn",)
    # 100*1.00 + 2000*0.10 + 400*1.25 + 600*2.00 + 300*5.00 = 100 + 200 + 500 + 1200 + 1500 = 3500 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.0035")
    tokens = {p.attributes["gen_ai.token.type"]: p.value for p in telemetry.points("ai_cost.tokens")}
    assert tokens == {"input": 100, "cache_read": 2000, "cache_write_5m": 400, "cache_write_1h": 600, "output": 300}


def test_batch_tier_is_half_price(client, stand_in, telemetry):
    stand_in.push(Scenario(input_tokens=1200, output_tokens=400, service_tier="batch"))
    client.messages.create(model=MODEL, max_tokens=500, messages=MSGS)
    a = telemetry.span().attributes
    assert a["ai_cost.pricing.tier"] == "batch"
    # (1200*1.00 + 400*5.00) / 2 = 1600 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.0016")


def test_thinking_tokens_and_web_search_requests(client, stand_in, telemetry):
    stand_in.push(Scenario(input_tokens=1000, output_tokens=2000, thinking_tokens=1500, web_search_requests=3))
    client.messages.create(model=MODEL, max_tokens=3000, messages=MSGS)
    a = telemetry.span().attributes
    assert a["gen_ai.usage.reasoning.output_tokens"] == 1500
    assert a["ai_cost.usage.web_search.requests"] == 3
    # 1000*1.00 + 2000*5.00 = 11000 per 1M = 0.011; 3 searches at $10 per 1000 = 0.03
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.041")
    assert Decimal(a["ai_cost.fee.web_search.amount"]) == Decimal("0.03")
    assert "ai_cost.fee.request.amount" not in a


def test_stream_true_and_stream_helper(client, stand_in, telemetry):
    stand_in.push(
        Scenario(input_tokens=50, cache_read_input_tokens=1000, output_tokens=80),
        Scenario(input_tokens=60, cache_write_1h_input_tokens=500, output_tokens=90),
    )
    events = list(client.messages.create(model=MODEL, max_tokens=500, messages=MSGS, stream=True))
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    with client.messages.stream(model=MODEL, max_tokens=500, messages=MSGS) as stream:
        final = stream.get_final_message()
    assert final.usage.output_tokens == 90

    first, second = (s.attributes for s in telemetry.spans())
    assert (first["gen_ai.usage.input_tokens"], first["gen_ai.usage.output_tokens"]) == (1050, 80)
    # 50*1.00 + 1000*0.10 + 80*5.00 = 50 + 100 + 400 = 550 per 1M
    assert Decimal(first["ai_cost.amount"]) == Decimal("0.00055")
    assert (second["gen_ai.usage.input_tokens"], second["gen_ai.usage.output_tokens"]) == (560, 90)
    # 60*1.00 + 500*2.00 + 90*5.00 = 60 + 1000 + 450 = 1510 per 1M
    assert Decimal(second["ai_cost.amount"]) == Decimal("0.00151")


def test_beta_messages_and_async(stand_in, telemetry):
    sync = anthropic.Anthropic(base_url=stand_in.anthropic_base_url, api_key="k", max_retries=0)
    stand_in.push(Scenario(input_tokens=10, output_tokens=1))
    sync.beta.messages.create(model=MODEL, max_tokens=10, messages=MSGS)

    async def run() -> None:
        async with anthropic.AsyncAnthropic(base_url=stand_in.anthropic_base_url, api_key="k", max_retries=0) as c:
            stand_in.push(Scenario(input_tokens=20, output_tokens=2), Scenario(input_tokens=30, output_tokens=3))
            await c.messages.create(model=MODEL, max_tokens=10, messages=MSGS)
            async with c.messages.stream(model=MODEL, max_tokens=10, messages=MSGS) as stream:
                await stream.get_final_message()

    asyncio.run(run())
    assert [s.attributes["gen_ai.usage.input_tokens"] for s in telemetry.spans()] == [10, 20, 30]


def test_count_tokens_is_free_and_not_recorded(client, stand_in, telemetry):
    stand_in.push(Scenario(input_tokens=1234))
    count = client.messages.count_tokens(model=MODEL, messages=MSGS)
    assert count.input_tokens == 1234
    assert telemetry.spans() == []
    assert telemetry.points("ai_cost.requests") == []


def test_sdk_own_span_kept_nests_under_ours_and_cost_is_recorded_once(stand_in, telemetry, monkeypatch):
    # With OTEL_AI_COST_ANTHROPIC_SDK_SPANS=keep (by default ours is the call's one span: test_anthropic_one_span.py).
    otel_ai_cost.uninstrument()
    monkeypatch.setenv("OTEL_AI_COST_ANTHROPIC_SDK_SPANS", "keep")
    otel_ai_cost.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    # The anthropic SDK traces through the provider it is given; give it ours.
    client = anthropic.Anthropic(
        base_url=stand_in.anthropic_base_url,
        api_key="k",
        max_retries=0,
        open_telemetry={"tracer_provider": telemetry.tracer_provider},
    )
    stand_in.push(Scenario(input_tokens=100, output_tokens=10))
    client.messages.create(model=MODEL, max_tokens=10, messages=MSGS)

    every = telemetry.spans_exporter.get_finished_spans()
    ours = telemetry.span()
    sdk = [s for s in every if s is not ours]
    assert len(sdk) == 1, [s.instrumentation_scope.name for s in every]
    assert sdk[0].parent is not None and sdk[0].parent.span_id == ours.context.span_id
    assert sdk[0].context.trace_id == ours.context.trace_id
    assert [s for s in every if "ai_cost.amount" in (s.attributes or {})] == [ours]
    [requests] = telemetry.points("ai_cost.requests")
    assert requests.value == 1
    assert trace.get_current_span() is trace.INVALID_SPAN  # our context was detached
