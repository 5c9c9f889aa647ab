"""The real boto3 `bedrock-runtime` client against the Bedrock stand-in: the four priced operations.

Prices (USD per million tokens, AWS Bedrock pricing page, as genai-prices 0.2.3 has them):
Claude 3.5 Sonnet v2 input 3, output 15, cache read 0.30, cache write 3.75; Nova Lite 0.06 / 0.24, cache read
0.015; Nova Pro 0.80 / 3.20; Titan Text Express 0.20 / 0.60; Titan Text Embeddings V2 0.02 (input);
Llama 3 8B Instruct 0.30 / 0.60; Mistral 7B Instruct 0.15 / 0.20.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from opentelemetry.trace import StatusCode

from otel_ai_cost.stand_in.bedrock_api import BedrockScenario, invoke_stream_chunks

SONNET = "anthropic.claude-3-5-sonnet-20241022-v2:0"
SONNET_US = "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
NOVA_LITE_EU = "eu.amazon.nova-lite-v1:0"
MSGS = [{"role": "user", "content": [{"text": "Label this receipt"}]}]
ANTHROPIC_BODY = json.dumps(
    {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 300, "messages": [{"role": "user", "content": "Hi"}]}
)


def _common(a, model: str, region: str) -> None:
    assert a["gen_ai.provider.name"] == "aws.bedrock"
    assert a["gen_ai.request.model"] == model
    assert a["cloud.region"] == region
    assert a["ai_cost.pricing.status"] == "priced"
    assert a["ai_cost.currency"] == "USD"


def test_converse_cache_reads_and_writes_each_priced_at_its_rate(client, bedrock, telemetry):
    bedrock.push(
        BedrockScenario(
            input_tokens=1000, cache_read_input_tokens=2000, cache_write_input_tokens=400, output_tokens=300
        )
    )
    result = client.converse(modelId=SONNET_US, messages=MSGS, inferenceConfig={"maxTokens": 512})

    assert result["usage"]["inputTokens"] == 1000  # the caller's result is botocore's, untouched
    span = telemetry.span()
    a = span.attributes
    _common(a, SONNET_US, "us-east-1")
    assert span.name == f"chat {SONNET_US}"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.max_tokens"] == 512
    assert a["gen_ai.usage.input_tokens"] == 1000 + 2000 + 400
    assert a["gen_ai.usage.cache_read.input_tokens"] == 2000
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 400
    assert a["ai_cost.usage.cache_creation.5m.input_tokens"] == 400
    assert a["gen_ai.usage.output_tokens"] == 300
    assert a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert a["server.address"] == "127.0.0.1"
    # 1000*3 + 2000*0.30 + 400*3.75 + 300*15 = 3000 + 600 + 1500 + 4500 = 9600 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.0096")
    tokens = {p.attributes["gen_ai.token.type"]: p.value for p in telemetry.points("ai_cost.tokens")}
    assert tokens == {"input": 1000, "cache_read": 2000, "cache_write_5m": 400, "output": 300}
    (spend,) = telemetry.points("ai_cost.spend")
    assert Decimal(str(spend.value)) == Decimal("0.0096")


def test_converse_stream_yields_every_event_and_prices_the_metadata_usage(
    make_client, instrumented, bedrock, telemetry
):
    client = make_client(region="eu-west-1")
    bedrock.push(BedrockScenario(input_tokens=1500, cache_read_input_tokens=500, output_tokens=200, text="Hi there"))
    response = client.converse_stream(modelId=NOVA_LITE_EU, messages=MSGS)
    events = list(response["stream"])

    assert events == [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "Hi "}, "contentBlockIndex": 0}},
        {"contentBlockDelta": {"delta": {"text": "there"}, "contentBlockIndex": 0}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "end_turn"}},
        {
            "metadata": {
                "usage": {
                    "inputTokens": 1500,
                    "outputTokens": 200,
                    "totalTokens": 2200,
                    "cacheReadInputTokens": 500,
                    "cacheWriteInputTokens": 0,
                },
                "metrics": {"latencyMs": 5},
            }
        },
    ]
    a = telemetry.span().attributes
    _common(a, NOVA_LITE_EU, "eu-west-1")
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.usage.input_tokens"] == 2000
    assert a["gen_ai.usage.cache_read.input_tokens"] == 500
    assert a["gen_ai.usage.output_tokens"] == 200
    assert a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert "ai_cost.usage.partial" not in a
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    # 1500*0.06 + 500*0.015 + 200*0.24 = 90 + 7.5 + 48 = 145.5 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.0001455")


def test_invoke_model_prefers_the_token_count_headers_and_leaves_the_body_unread(client, bedrock, telemetry):
    bedrock.push(
        BedrockScenario(
            input_tokens=2000, cache_read_input_tokens=1000, cache_write_input_tokens=100, output_tokens=500
        )
    )
    response = client.invoke_model(modelId=SONNET, body=ANTHROPIC_BODY)

    a = telemetry.span().attributes  # ended before the caller read the body
    _common(a, SONNET, "us-east-1")
    assert a["gen_ai.usage.input_tokens"] == 3100
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 100
    assert a["gen_ai.usage.output_tokens"] == 500
    # 2000*3 + 1000*0.30 + 100*3.75 + 500*15 = 6000 + 300 + 375 + 7500 = 14175 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.014175")
    body = json.loads(response["body"].read())
    assert body["usage"] == {
        "input_tokens": 2000,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 1000,
        "output_tokens": 500,
    }


@pytest.mark.parametrize(
    ("model", "operation", "tokens_in", "tokens_out", "amount"),
    [
        # 700*3 + 90*15 = 2100 + 1350 = 3450 per 1M (Anthropic messages body `usage`)
        (SONNET, "chat", 700, 90, "0.00345"),
        # 1000*0.80 + 250*3.20 = 800 + 800 = 1600 per 1M (Nova `usage`)
        ("amazon.nova-pro-v1:0", "chat", 1000, 250, "0.0016"),
        # 300*0.20 + 100*0.60 = 60 + 60 = 120 per 1M (Titan `inputTextTokenCount` / `results[].tokenCount`)
        ("amazon.titan-text-express-v1", "chat", 300, 100, "0.00012"),
        # 40*0.30 + 60*0.60 = 12 + 36 = 48 per 1M (Llama `prompt_token_count` / `generation_token_count`)
        ("meta.llama3-8b-instruct-v1:0", "chat", 40, 60, "0.000048"),
        # 500*0.02 = 10 per 1M (Titan embeddings: input only)
        ("amazon.titan-embed-text-v2:0", "embeddings", 500, 0, "0.00001"),
    ],
)
def test_invoke_model_without_headers_reads_each_model_body(
    client, bedrock, telemetry, model, operation, tokens_in, tokens_out, amount
):
    bedrock.push(BedrockScenario(input_tokens=tokens_in, output_tokens=tokens_out, token_headers=False))
    response = client.invoke_model(modelId=model, body=b'{"inputText": "Hi"}')
    assert telemetry.spans() == []  # the usage is in the body: the call ends when the caller has read it
    raw = response["body"].read()

    assert json.loads(raw)  # the caller got the whole body
    a = telemetry.span().attributes
    _common(a, model, "us-east-1")
    assert a["gen_ai.operation.name"] == operation
    assert a["gen_ai.usage.input_tokens"] == tokens_in
    assert a["gen_ai.usage.output_tokens"] == tokens_out
    assert Decimal(a["ai_cost.amount"]) == Decimal(amount)


def test_mistral_text_bodies_have_no_usage_the_headers_do(client, bedrock, telemetry):
    bedrock.push(BedrockScenario(input_tokens=1000, output_tokens=500))
    client.invoke_model(modelId="mistral.mistral-7b-instruct-v0:2", body=b'{"prompt": "<s>[INST] Hi [/INST]"}')
    a = telemetry.span().attributes
    # 1000*0.15 + 500*0.20 = 150 + 100 = 250 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.00025")


def test_invoke_stream_yields_every_chunk_and_prices_the_invocation_metrics(client, bedrock, telemetry):
    scenario = BedrockScenario(input_tokens=800, cache_read_input_tokens=1200, output_tokens=150, text="One two three")
    bedrock.push(scenario)
    response = client.invoke_model_with_response_stream(modelId=SONNET_US, body=ANTHROPIC_BODY)
    chunks = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]

    assert chunks == invoke_stream_chunks("anthropic", scenario, SONNET_US)
    a = telemetry.span().attributes
    _common(a, SONNET_US, "us-east-1")
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.usage.input_tokens"] == 2000
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1200
    assert a["gen_ai.usage.output_tokens"] == 150
    assert a["gen_ai.response.id"] == "msg_bdrk_01StandIn"
    assert a["gen_ai.response.finish_reasons"] == ("end_turn",)
    # 800*3 + 1200*0.30 + 150*15 = 2400 + 360 + 2250 = 5010 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.00501")


def test_invoke_stream_without_metrics_uses_the_models_own_counts(client, bedrock, telemetry):
    scenario = BedrockScenario(input_tokens=40, output_tokens=60)
    bedrock.push(scenario)
    response = client.invoke_model_with_response_stream(modelId="us.meta.llama3-1-70b-instruct-v1:0", body=b"{}")
    chunks = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]
    assert chunks[-1]["generation_token_count"] == 60
    a = telemetry.span().attributes
    assert a["gen_ai.usage.input_tokens"] == 40
    assert a["gen_ai.usage.output_tokens"] == 60
    # Llama 3.1 70B: 0.72 / 0.72 -> 100*0.72 = 72 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.000072")


def test_cross_region_profile_and_arn_are_priced(make_client, instrumented, bedrock, telemetry):
    client = make_client(region="eu-central-1")
    arn = f"arn:aws:bedrock:eu-central-1:123456789012:inference-profile/{SONNET_US}"
    client.converse(modelId=arn, messages=MSGS)
    assert bedrock.requests[-1].model_id == arn
    a = telemetry.span().attributes
    assert a["gen_ai.request.model"] == SONNET_US  # the ARN's last segment: no account id on metric labels
    # default scenario: 12 in, 7 out -> 12*3 + 7*15 = 36 + 105 = 141 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.000141")


def test_application_inference_profile_is_unpriced_never_zero(client, bedrock, telemetry):
    client.converse(
        modelId="arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3", messages=MSGS
    )
    a = telemetry.span().attributes
    assert a["gen_ai.request.model"] == "a1b2c3"
    assert a["ai_cost.pricing.status"] == "unpriced"
    assert "ai_cost.amount" not in a
    assert a["gen_ai.usage.input_tokens"] == 12


def test_throttling_error_ends_the_span_with_its_code(client, bedrock, telemetry):
    bedrock.push(BedrockScenario(error="ThrottlingException"))
    with pytest.raises(client.exceptions.ThrottlingException) as raised:
        client.converse(modelId=SONNET, messages=MSGS)

    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ThrottlingException"
    assert span.attributes["ai_cost.pricing.status"] == "no_usage"
    (request,) = telemetry.points("ai_cost.requests")
    assert request.attributes["ai_cost.outcome"] == "error"


def test_retries_count_once(make_client, instrumented, bedrock, telemetry):
    bedrock.push(
        BedrockScenario(error="ServiceUnavailableException"), BedrockScenario(input_tokens=10, output_tokens=1)
    )
    make_client(retries=2).converse(modelId=SONNET, messages=MSGS)
    assert len(bedrock.requests) == 2
    a = telemetry.span().attributes
    assert "error.type" not in a
    # 10*3 + 1*15 = 45 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.000045")


def test_in_stream_exception_event(client, bedrock, telemetry):
    bedrock.push(BedrockScenario(cut_after=2, stream_error="throttlingException"))
    response = client.converse_stream(modelId=SONNET, messages=MSGS)
    seen = []
    with pytest.raises(Exception) as raised:
        for event in response["stream"]:
            seen.append(event)
    assert type(raised.value).__name__ == "EventStreamError"
    assert len(seen) == 2
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ThrottlingException"


def test_content_is_captured_only_when_enabled(make_client, bedrock, telemetry, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    from otel_ai_cost.instrumentation.bedrock import BedrockCostInstrumentor

    instrumentor = BedrockCostInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        client = make_client()
        client.converse(modelId=SONNET, messages=MSGS)
        response = client.invoke_model(modelId=SONNET, body=ANTHROPIC_BODY)
        assert len(telemetry.spans()) == 1  # capture on: the invoke span waits for the body
        assert json.loads(response["body"].read())["content"][0]["text"] == "Hello from the Bedrock stand-in."
    finally:
        instrumentor.uninstrument()
    converse, invoke = telemetry.spans()
    assert json.loads(converse.attributes["gen_ai.input.messages"]) == MSGS
    assert json.loads(converse.attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "content": "Hello from the Bedrock stand-in."}
    ]
    assert json.loads(invoke.attributes["gen_ai.input.messages"]) == [{"role": "user", "content": "Hi"}]
    assert invoke.attributes["gen_ai.usage.input_tokens"] == 12  # still from the headers
    assert invoke.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)


def test_no_content_without_capture(client, bedrock, telemetry):
    client.converse(modelId=SONNET, messages=MSGS)
    a = telemetry.span().attributes
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
