"""OpenAI's cache writes (`prompt_tokens_details.cache_write_tokens`, Responses `input_tokens_details.
cache_write_tokens`) are read, carried as `gen_ai.usage.cache_creation.input_tokens`, priced at the model's
cache-write rate, and not counted twice: like `cached_tokens`, they are part of `prompt_tokens`."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from otel_ai_cost.contract import Cost, GenAI, PricingStatus, TokenType
from otel_ai_cost.stand_in import Scenario

MSGS = [{"role": "user", "content": "hi"}]
# genai-prices: gpt-6-cyber input $20, cache write $25, cache read $2, output $100 per million tokens.
MODEL = "gpt-6-cyber"
PER_MILLION = Decimal(1_000_000)


def expected(uncached: int, write: int, read: int, output: int) -> Decimal:
    return (Decimal(20) * uncached + Decimal(25) * write + Decimal(2) * read + Decimal(100) * output) / PER_MILLION


@pytest.fixture
def client(stand_in, telemetry) -> openai.OpenAI:
    return openai.OpenAI(base_url=stand_in.openai_base_url, api_key="k", max_retries=0)


def test_chat_cache_writes_priced_at_the_cache_write_rate(client, stand_in, telemetry):
    details = {"cached_tokens": 1000, "cache_write_tokens": 2000, "audio_tokens": 0}
    stand_in.push(Scenario(prompt_tokens=5000, completion_tokens=10, usage_extra={"prompt_tokens_details": details}))
    response = client.chat.completions.create(model=MODEL, messages=MSGS)
    assert response.usage.prompt_tokens_details.cache_write_tokens == 2000

    attributes = telemetry.span().attributes
    assert attributes[GenAI.USAGE_INPUT_TOKENS] == 5000  # the semconv total: reads and writes included, once
    assert attributes[GenAI.USAGE_CACHE_READ_INPUT_TOKENS] == 1000
    assert attributes[GenAI.USAGE_CACHE_CREATION_INPUT_TOKENS] == 2000
    assert attributes[Cost.PRICING_STATUS] == PricingStatus.PRICED.value
    assert Decimal(attributes[Cost.AMOUNT]) == expected(uncached=2000, write=2000, read=1000, output=10)

    tokens = {p.attributes[GenAI.TOKEN_TYPE]: p.value for p in telemetry.points("ai_cost.tokens")}
    assert tokens[TokenType.INPUT.value] == 2000
    assert tokens[TokenType.CACHE_WRITE_5M.value] == 2000  # OpenAI's default retention: the default-TTL class
    assert tokens[TokenType.CACHE_READ.value] == 1000


def test_responses_cache_writes(client, stand_in, telemetry):
    stand_in.push(
        Scenario(
            prompt_tokens=3000,
            completion_tokens=10,
            usage_extra={"input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 1500}},
        )
    )
    response = client.responses.create(model=MODEL, input="hi")
    assert response.usage.input_tokens_details.cache_write_tokens == 1500

    attributes = telemetry.span().attributes
    assert attributes[GenAI.USAGE_INPUT_TOKENS] == 3000
    assert attributes[GenAI.USAGE_CACHE_CREATION_INPUT_TOKENS] == 1500
    assert Decimal(attributes[Cost.AMOUNT]) == expected(uncached=1500, write=1500, read=0, output=10)


def test_chat_stream_cache_writes(client, stand_in, telemetry):
    details = {"cached_tokens": 0, "cache_write_tokens": 1024}
    stand_in.push(
        Scenario(prompt_tokens=2048, completion_tokens=4, text="a b", usage_extra={"prompt_tokens_details": details})
    )
    list(client.chat.completions.create(model=MODEL, messages=MSGS, stream=True))
    attributes = telemetry.span().attributes
    assert attributes[GenAI.USAGE_CACHE_CREATION_INPUT_TOKENS] == 1024
    assert Decimal(attributes[Cost.AMOUNT]) == expected(uncached=1024, write=1024, read=0, output=4)


def test_cache_writes_beyond_the_prompt_are_malformed(client, stand_in, telemetry):
    """Cache writes are part of `prompt_tokens`: more writes than prompt tokens is not usage we can bill."""
    details = {"cached_tokens": 0, "cache_write_tokens": 9000}
    stand_in.push(Scenario(prompt_tokens=5000, completion_tokens=10, usage_extra={"prompt_tokens_details": details}))
    client.chat.completions.create(model=MODEL, messages=MSGS)
    attributes = telemetry.span().attributes
    assert attributes[Cost.PRICING_STATUS] == PricingStatus.UNPRICED.value
    assert Cost.AMOUNT not in attributes
