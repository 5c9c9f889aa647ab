"""Errors, retries, abandoned streams: the span always ends, and spend is only what the provider reported."""

from __future__ import annotations

import gc

import anthropic
import httpx2
import openai
import pytest

from otel_ai_cost.stand_in import Scenario

MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture
def oai(stand_in, telemetry):
    return openai.OpenAI(base_url=stand_in.openai_base_url, api_key="k", max_retries=0)


@pytest.fixture
def anth(stand_in, telemetry):
    return anthropic.Anthropic(base_url=stand_in.anthropic_base_url, api_key="k", max_retries=0)


def _requests(telemetry) -> dict[tuple[str, str], int]:
    return {
        (p.attributes["ai_cost.outcome"], p.attributes["ai_cost.pricing.status"]): p.value
        for p in telemetry.points("ai_cost.requests")
    }


@pytest.mark.parametrize(
    ("scenario", "exception", "error_type"),
    [
        (Scenario(status=400), openai.BadRequestError, "BadRequestError"),
        (Scenario(status=429), openai.RateLimitError, "RateLimitError"),
        (Scenario(status=500), openai.InternalServerError, "InternalServerError"),
        (Scenario(disconnect=True), openai.APIConnectionError, "APIConnectionError"),
    ],
)
def test_http_and_connection_errors(oai, stand_in, telemetry, scenario, exception, error_type):
    stand_in.push(scenario)
    with pytest.raises(exception):
        oai.chat.completions.create(model="gpt-4o-mini", messages=MSGS)

    span = telemetry.span()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == error_type
    assert span.attributes["ai_cost.pricing.status"] == "no_usage"
    assert "ai_cost.amount" not in span.attributes
    assert _requests(telemetry) == {("error", "no_usage"): 1}
    assert telemetry.points("ai_cost.spend") == []
    [duration] = telemetry.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == error_type


def test_timeout(stand_in, telemetry):
    client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="k", max_retries=0, timeout=0.2)
    stand_in.push(Scenario(delay_s=2))
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert telemetry.span().attributes["error.type"] == "APITimeoutError"


def test_sdk_retries_count_once(stand_in, telemetry):
    client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="k", max_retries=2)
    stand_in.push(Scenario(status=429), Scenario(status=503), Scenario(prompt_tokens=10, completion_tokens=2))
    client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)

    assert len(stand_in.requests) == 3
    span = telemetry.span()
    assert span.status.status_code.name == "UNSET"
    assert span.attributes["gen_ai.usage.input_tokens"] == 10
    assert _requests(telemetry) == {("success", "priced"): 1}


def test_anthropic_overloaded_error(anth, stand_in, telemetry):
    stand_in.push(Scenario(status=529))
    with pytest.raises(anthropic.InternalServerError):
        anth.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MSGS)
    assert telemetry.span().attributes["error.type"] == "OverloadedError"


def test_stream_abandoned_with_break_records_partial(oai, stand_in, telemetry):
    stand_in.push(Scenario(text=["a", "b", "c", "d"], prompt_tokens=40, completion_tokens=4))
    stream = oai.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
    for _ in stream:
        break
    stream.close()

    span = telemetry.span()
    assert span.attributes["ai_cost.usage.partial"] is True
    assert span.attributes["ai_cost.pricing.status"] == "no_usage"  # the usage chunk never arrived
    assert _requests(telemetry) == {("partial", "no_usage"): 1}


def test_stream_never_consumed_and_garbage_collected_still_ends_span(oai, stand_in, telemetry):
    stream = oai.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
    assert telemetry.spans() == []  # still in flight
    del stream
    gc.collect()
    assert telemetry.span().attributes["ai_cost.usage.partial"] is True


def test_anthropic_stream_abandoned_after_message_start_keeps_known_usage(anth, stand_in, telemetry):
    stand_in.push(Scenario(text=["a", "b", "c"], input_tokens=500, output_tokens=30))
    stream = anth.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MSGS, stream=True)
    for event in stream:
        if event.type == "content_block_delta":
            break
    stream.close()

    a = telemetry.span().attributes
    assert a["ai_cost.usage.partial"] is True
    assert a["gen_ai.usage.input_tokens"] == 500  # known from message_start: the input was billed
    assert a["ai_cost.pricing.status"] == "priced"


def test_stream_failing_midway_is_an_error(anth, stand_in, telemetry):
    stand_in.push(Scenario(text=["a", "b", "c", "d"], stream_error_after=2, stream_error_mode="disconnect"))
    with pytest.raises((httpx2.HTTPError, anthropic.APIError)):
        for _ in anth.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MSGS, stream=True):
            pass
    span = telemetry.span()
    assert span.status.status_code.name == "ERROR"
    assert "error.type" in span.attributes


def test_responses_stream_error_event_marks_the_call_failed(oai, stand_in, telemetry):
    stand_in.push(Scenario(text=["a", "b", "c"], stream_error_after=1))
    events = list(oai.responses.create(model="gpt-4o-mini", input="hi", stream=True))
    assert events[-1].type == "error"  # the SDK does not raise; the caller sees the event
    span = telemetry.span()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"]
    assert _requests(telemetry) == {("error", "no_usage"): 1}


def test_dropped_anthropic_stream_ends_at_once_without_the_cycle_collector(anth, stand_in, telemetry):
    # The SDK's stream has no reference cycle; instrumenting it must not add one (or every stream and its
    # response would wait for the cycle collector).
    stand_in.push(Scenario(text=["a", "b", "c"], input_tokens=5, output_tokens=3))
    gc.disable()
    try:
        stream = anth.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MSGS, stream=True)
        next(iter(stream))
        del stream
        assert telemetry.span().attributes["ai_cost.usage.partial"] is True
    finally:
        gc.enable()
