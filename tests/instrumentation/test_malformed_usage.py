"""Usage that is not a token count is never priced as $0, and the call still reaches the ledger, marked.

Each provider's real SDK client talks to a loopback server that sends exactly the malformed body under test:
token counts that are null, strings, floats, booleans, negative, lists, or beyond any real call. The call must
come out `unpriced` with the reason `malformed_usage` (the provider did bill it; we cannot tell how much), never
a priced zero; the host gets exactly what the SDK returned; and the span still converts into a ledger record that
a real SQLite store keeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import boto3
import openai
import pytest
from botocore.config import Config
from google import genai
from google.genai import types as genai_types
from raw_server import RawJSONServer

from otel_ai_cost.contract import Cost, GenAI, PricingReason, PricingStatus
from otel_ai_cost.instrumentation.bedrock import BedrockCostInstrumentor
from otel_ai_cost.instrumentation.google_genai import GoogleGenAICostInstrumentor
from otel_ai_cost.ledger.from_span import record_from_span
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery
from otel_ai_cost.pricing.usage import MAX_TOKEN_COUNT

MSGS = [{"role": "user", "content": "hi"}]

# What a token count must never be read as: each gives `unpriced` / `malformed_usage`.
MALFORMED = {
    "null": None,
    "text": "abc",
    "numeric_text": "12",
    "float": 12.0,
    "fraction": 12.5,
    "bool": True,
    "negative": -5,
    "list": [12],
    "beyond_bound": MAX_TOKEN_COUNT + 1,
}
# The openai SDK (and the anthropic SDK for Optional fields) coerces what pydantic can: "12", 12.0 and true arrive
# as the counts 12, 12 and 1, which are then valid usage (see test_sdk_coerced_counts_are_counts). The rest
# reaches us as sent.
COERCED = {"numeric_text": 12, "float": 12, "bool": 1}
PASSED_RAW = [kind for kind in MALFORMED if kind not in COERCED]


@pytest.fixture(scope="module")
def raw() -> Iterator[RawJSONServer]:
    with RawJSONServer() as server:
        yield server


def assert_unpriced_and_recorded(span: Any, tmp_path: Any) -> None:
    attributes = span.attributes
    assert attributes[Cost.PRICING_STATUS] == PricingStatus.UNPRICED.value, dict(attributes)
    assert attributes[Cost.PRICING_REASON] == PricingReason.MALFORMED_USAGE.value
    assert Cost.AMOUNT not in attributes  # never a priced zero
    for name, value in attributes.items():
        if "tokens" in name:  # no junk count reaches the span
            assert isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_COUNT, name
    record = record_from_span(span)
    assert record is not None
    with SQLiteStore(tmp_path / "usage.db") as store:
        assert store.write([record]).written == 1
        [stored] = list(store.query(UsageQuery()))
    assert stored.pricing_status == PricingStatus.UNPRICED.value
    assert stored.amount is None


# --- OpenAI ----------------------------------------------------------------------------------------------------


def _chat_body(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-raw",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": usage,
    }


@pytest.fixture
def openai_client(raw, telemetry) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{raw.url}/v1", api_key="k", max_retries=0)


@pytest.mark.parametrize("kind", PASSED_RAW)
@pytest.mark.parametrize("field", ["prompt_tokens", "completion_tokens"])
def test_openai_chat_totals(kind, field, raw, openai_client, telemetry, tmp_path):
    usage = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13, field: MALFORMED[kind]}
    raw.answer(_chat_body(usage))
    response = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert getattr(response.usage, field) == MALFORMED[kind]  # the SDK's object, untouched
    assert response.choices[0].message.content == "hi"
    assert_unpriced_and_recorded(telemetry.span(), tmp_path)


@pytest.mark.parametrize("kind", [k for k in PASSED_RAW if k != "null"])  # a null detail is an absent detail
@pytest.mark.parametrize(
    ("group", "field"),
    [
        ("prompt_tokens_details", "cached_tokens"),
        ("prompt_tokens_details", "cache_write_tokens"),
        ("prompt_tokens_details", "audio_tokens"),
        ("completion_tokens_details", "reasoning_tokens"),
    ],
)
def test_openai_chat_details(kind, group, field, raw, openai_client, telemetry, tmp_path):
    usage = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13, group: {field: MALFORMED[kind]}}
    raw.answer(_chat_body(usage))
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert_unpriced_and_recorded(telemetry.span(), tmp_path)


@pytest.mark.parametrize("kind", list(COERCED))
def test_sdk_coerced_counts_are_counts(kind, raw, openai_client, telemetry):
    """What the SDK itself turned into an int is the count the host sees too: priced as that count."""
    raw.answer(_chat_body({"prompt_tokens": MALFORMED[kind], "completion_tokens": 3, "total_tokens": 3}))
    response = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert response.usage.prompt_tokens == COERCED[kind]
    attributes = telemetry.span().attributes
    assert attributes[Cost.PRICING_STATUS] == PricingStatus.PRICED.value
    assert attributes[GenAI.USAGE_INPUT_TOKENS] == COERCED[kind]


@pytest.mark.parametrize(
    ("group", "field", "value"),
    [
        ("prompt_tokens_details", "cached_tokens", 11),
        ("prompt_tokens_details", "cache_write_tokens", 11),
        ("completion_tokens_details", "reasoning_tokens", 4),
    ],
)
def test_openai_parts_beyond_their_total(group, field, value, raw, openai_client, telemetry, tmp_path):
    """Cache reads and writes are parts of `prompt_tokens`, reasoning of `completion_tokens`: more is not usage."""
    usage = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13, group: {field: value}}
    raw.answer(_chat_body(usage))
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert_unpriced_and_recorded(telemetry.span(), tmp_path)


def test_openai_null_details_are_absent_details(raw, openai_client, telemetry):
    """OpenAI-compatible providers send `"prompt_tokens_details": null`: that is no breakdown, not bad usage."""
    usage = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13, "prompt_tokens_details": None}
    raw.answer(_chat_body(usage))
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    attributes = telemetry.span().attributes
    assert attributes[Cost.PRICING_STATUS] == PricingStatus.PRICED.value
    assert attributes[GenAI.USAGE_INPUT_TOKENS] == 10


@pytest.mark.parametrize("kind", PASSED_RAW)
def test_openai_responses(kind, raw, openai_client, telemetry, tmp_path):
    raw.answer(
        {
            "id": "resp_raw",
            "object": "response",
            "created_at": 1,
            "model": "gpt-4o-mini",
            "status": "completed",
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": MALFORMED[kind],
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 3,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 13,
            },
        }
    )
    response = openai_client.responses.create(model="gpt-4o-mini", input="hi")
    assert response.usage.input_tokens == MALFORMED[kind]
    assert_unpriced_and_recorded(telemetry.span(), tmp_path)


@pytest.mark.parametrize("kind", PASSED_RAW)
def test_openai_embeddings(kind, raw, openai_client, telemetry, tmp_path):
    raw.answer(
        {
            "object": "list",
            "model": "text-embedding-3-small",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}],
            "usage": {"prompt_tokens": MALFORMED[kind], "total_tokens": 4},
        }
    )
    response = openai_client.embeddings.create(model="text-embedding-3-small", input="hi")
    assert response.data[0].embedding == [0.5, 0.25]
    assert_unpriced_and_recorded(telemetry.span(), tmp_path)


# --- Anthropic -------------------------------------------------------------------------------------------------


def _anthropic_message(raw: RawJSONServer, usage: dict[str, Any]) -> Any:
    raw.answer(
        {
            "id": "msg_raw",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "hi"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
    )
    client = anthropic.Anthropic(base_url=raw.url, api_key="k", max_retries=0)
    return client.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=MSGS)


# The totals are required and the SDK passes them on as sent. It types the cache counts Optional: those it coerces
# like the openai SDK, and a null one means "none".
ANTHROPIC_CASES = [(field, kind) for field in ("input_tokens", "output_tokens") for kind in MALFORMED] + [
    (field, kind)
    for field in ("cache_read_input_tokens", "cache_creation_input_tokens")
    for kind in PASSED_RAW
    if kind != "null"
]


@pytest.mark.parametrize(("field", "kind"), ANTHROPIC_CASES)
def test_anthropic_messages(field, kind, raw, telemetry, tmp_path):
    message = _anthropic_message(raw, {"input_tokens": 10, "output_tokens": 3, field: MALFORMED[kind]})
    assert getattr(message.usage, field) == MALFORMED[kind]
    assert message.content[0].text == "hi"
    assert_unpriced_and_recorded(telemetry.span(), tmp_path)


def test_anthropic_null_cache_counts_are_none(raw, telemetry):
    _anthropic_message(
        raw, {"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": None, "cache_creation": None}
    )
    attributes = telemetry.span().attributes
    assert attributes[Cost.PRICING_STATUS] == PricingStatus.PRICED.value
    assert attributes[GenAI.USAGE_INPUT_TOKENS] == 10


# --- Bedrock ---------------------------------------------------------------------------------------------------


@pytest.fixture
def bedrock_client(raw, telemetry) -> Any:
    assert BedrockCostInstrumentor().is_instrumented_by_opentelemetry
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=raw.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


# botocore parses Converse's integers with int(): "12", 12.0 and true arrive as 12, 12 and 1 (valid counts), a list
# makes the SDK itself raise. What reaches us malformed is a null, a negative or an absurd count.
BEDROCK_CONVERSE_MALFORMED = {"null": None, "negative": -5, "beyond_bound": MAX_TOKEN_COUNT + 1}


@pytest.mark.parametrize("kind", list(BEDROCK_CONVERSE_MALFORMED))
@pytest.mark.parametrize("field", ["inputTokens", "outputTokens"])
def test_bedrock_converse(kind, field, raw, bedrock_client, telemetry, tmp_path):
    usage = {"inputTokens": 10, "outputTokens": 3, "totalTokens": 13, field: BEDROCK_CONVERSE_MALFORMED[kind]}
    raw.answer(
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
            "stopReason": "end_turn",
            "usage": usage,
            "metrics": {"latencyMs": 5},
        }
    )
    response = bedrock_client.converse(
        modelId="anthropic.claude-3-haiku-20240307-v1:0", messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )
    assert response["usage"].get(field) == BEDROCK_CONVERSE_MALFORMED[kind]
    assert_unpriced_and_recorded(telemetry.span(), tmp_path)


@pytest.mark.parametrize("value", ["-5", "12.0", "abc", "1_000", str(MAX_TOKEN_COUNT + 1)])
def test_bedrock_invoke_model_token_headers(value, raw, bedrock_client, telemetry, tmp_path):
    """The `X-Amzn-Bedrock-*-Token-Count` headers are Bedrock's own count: one that is not a count is malformed
    usage, not a reason to fall back to the body's (a different, model-written) figure."""
    body = {
        "id": "msg_raw",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
    }
    raw.answer(body, headers={"x-amzn-bedrock-input-token-count": value, "x-amzn-bedrock-output-token-count": "3"})
    response = bedrock_client.invoke_model(
        modelId="anthropic.claude-3-haiku-20240307-v1:0",
        body=b'{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": []}',
    )
    assert b'"msg_raw"' in response["body"].read()
    assert_unpriced_and_recorded(telemetry.span(), tmp_path)


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_bedrock_invoke_model_body(kind, raw, bedrock_client, telemetry, tmp_path):
    body = {
        "id": "msg_raw",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": MALFORMED[kind], "output_tokens": 3},
    }
    raw.answer(body)  # no token headers: the body's usage is all there is
    response = bedrock_client.invoke_model(
        modelId="anthropic.claude-3-haiku-20240307-v1:0",
        body=b'{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": []}',
    )
    assert b'"msg_raw"' in response["body"].read()
    assert_unpriced_and_recorded(telemetry.span(), tmp_path)


# --- Gemini ----------------------------------------------------------------------------------------------------

# google-genai validates usage with pydantic: "12" and true become 12 and 1 (valid counts), 12.5 and lists are
# refused by the SDK itself. What reaches us malformed is a missing prompt count, a negative or an absurd one.
GEMINI_MALFORMED = {"null": None, "negative": -5, "beyond_bound": MAX_TOKEN_COUNT + 1}


@pytest.mark.parametrize("kind", list(GEMINI_MALFORMED))
def test_gemini_generate_content(kind, raw, telemetry, tmp_path):
    assert GoogleGenAICostInstrumentor().is_instrumented_by_opentelemetry
    raw.answer(
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": GEMINI_MALFORMED[kind], "candidatesTokenCount": 3},
            "modelVersion": "gemini-2.5-flash",
            "responseId": "raw-1",
        }
    )
    client = genai.Client(api_key="k", http_options=genai_types.HttpOptions(base_url=raw.url))
    response = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert response.text == "hi"
    assert response.usage_metadata.prompt_token_count == GEMINI_MALFORMED[kind]
    assert_unpriced_and_recorded(telemetry.span(), tmp_path)
