"""Never break the host: instrumentation failures, abandoned and broken streams, regional price overrides."""

from __future__ import annotations

import gc
import json
from decimal import Decimal
from pathlib import Path

import pytest
from opentelemetry.trace import StatusCode

from otel_ai_cost.contract import Env
from otel_ai_cost.instrumentation.bedrock import BedrockCostInstrumentor
from otel_ai_cost.instrumentation.bedrock import response_extractors as extract
from otel_ai_cost.pricing.catalog import load_catalog, reset_default_catalog
from otel_ai_cost.stand_in.bedrock_api import BedrockScenario
from otel_ai_cost.telemetry.errors import internal_error_counts

SONNET = "anthropic.claude-3-5-sonnet-20241022-v2:0"
NOVA_LITE = "amazon.nova-lite-v1:0"
MSGS = [{"role": "user", "content": [{"text": "Hi"}]}]
REGIONAL = """
models:
  - {provider: aws.bedrock, model: "amazon.nova-lite-v1:0", region: "ap-*", prices: {input: 0.1, output: 0.4}}
"""


def _boom(*args, **kwargs):
    raise RuntimeError("extractor bug")


def test_a_failing_extractor_leaves_the_result_untouched(client, bedrock, telemetry, monkeypatch):
    monkeypatch.setattr(extract, "converse_usage", _boom)
    monkeypatch.setattr(extract, "header_usage", _boom)
    bedrock.push(BedrockScenario(input_tokens=5, output_tokens=3), BedrockScenario(input_tokens=5, output_tokens=3))
    result = client.converse(modelId=SONNET, messages=MSGS)
    assert result["usage"] == {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8}
    assert result["output"]["message"]["content"] == [{"text": "Hello from the Bedrock stand-in."}]
    response = client.invoke_model(modelId=SONNET, body=b"{}")
    assert json.loads(response["body"].read())["usage"]["input_tokens"] == 5
    assert internal_error_counts().get("bedrock.result") == 2
    assert len(telemetry.spans()) == 2  # both spans still ended


def test_a_failing_stream_observer_yields_the_same_events(client, bedrock, telemetry, monkeypatch):
    monkeypatch.setattr(extract, "converse_usage", _boom)
    response = client.converse_stream(modelId=SONNET, messages=MSGS)
    events = list(response["stream"])
    assert len(events) == 9 and "metadata" in events[-1]
    assert internal_error_counts().get("bedrock.stream.observe", 0) >= 1
    assert len(telemetry.spans()) == 1


def test_a_failing_start_lets_the_call_through(client, bedrock, telemetry, monkeypatch):
    monkeypatch.setattr(extract, "model_name", _boom)
    assert client.converse(modelId=SONNET, messages=MSGS)["stopReason"] == "end_turn"
    assert internal_error_counts().get("bedrock.start") == 1
    assert telemetry.spans() == []


def test_abandoned_stream_ends_partial_on_close_and_on_collection(client, bedrock, telemetry):
    response = client.converse_stream(modelId=SONNET, messages=MSGS)
    stream = response["stream"]
    for _ in stream:
        break
    stream.close()
    span = telemetry.span()
    assert span.attributes["ai_cost.usage.partial"] is True
    assert span.attributes["ai_cost.pricing.status"] == "no_usage"

    response = client.invoke_model_with_response_stream(modelId=SONNET, body=b"{}")
    next(iter(response["body"]))
    del response
    gc.collect()
    assert len(telemetry.spans()) == 2
    assert telemetry.spans()[1].attributes["ai_cost.usage.partial"] is True


def test_stream_cut_mid_way_is_an_error(client, bedrock, telemetry):
    bedrock.push(BedrockScenario(cut_after=3))
    response = client.invoke_model_with_response_stream(modelId=SONNET, body=b"{}")
    seen = []
    with pytest.raises(Exception) as raised:
        for event in response["body"]:
            seen.append(event)
    assert len(seen) == 3
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == type(raised.value).__qualname__
    # the message_start chunk carried the input side: what was known is on the span
    assert span.attributes["gen_ai.usage.input_tokens"] == 12


def test_unread_invoke_body_without_headers_ends_partial(client, bedrock, telemetry):
    bedrock.push(BedrockScenario(token_headers=False))
    response = client.invoke_model(modelId=SONNET, body=b"{}")
    response["body"].close()
    assert telemetry.span().attributes["ai_cost.usage.partial"] is True


def test_other_services_and_operations_are_not_recorded(make_client, instrumented, telemetry):
    import boto3

    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    sts.meta.events.register("before-send", lambda **kw: (_ for _ in ()).throw(RuntimeError("offline")))
    with pytest.raises(RuntimeError, match="offline"):  # never sent: no network needed
        sts.get_caller_identity()
    assert telemetry.spans() == []


def test_uninstrument_restores_botocore(telemetry):
    import botocore.client

    instrumentor = BedrockCostInstrumentor()
    instrumentor.uninstrument()  # undo the telemetry fixture's `otel_ai_cost.instrument()`
    original = botocore.client.BaseClient._make_api_call
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    assert botocore.client.BaseClient._make_api_call is not original
    instrumentor.uninstrument()
    assert botocore.client.BaseClient._make_api_call is original


def test_regional_override_via_env_file_wins_only_in_its_region(make_client, instrumented, bedrock, telemetry,
                                                                tmp_path: Path, monkeypatch):  # fmt: skip
    path = tmp_path / "prices.yaml"
    path.write_text(REGIONAL, encoding="utf-8")
    monkeypatch.setenv(Env.PRICES_FILE, str(path))
    reset_default_catalog()
    try:
        for region in ("ap-southeast-1", "us-east-1"):
            bedrock.push(BedrockScenario(input_tokens=1000, output_tokens=1000))
            make_client(region=region).converse(modelId=f"apac.{NOVA_LITE}", messages=MSGS)
    finally:
        reset_default_catalog()
    ap, us = (s.attributes for s in telemetry.spans())
    assert ap["cloud.region"] == "ap-southeast-1"
    # 1000*0.1 + 1000*0.4 = 500 per 1M (the override, in ap-*)
    assert Decimal(ap["ai_cost.amount"]) == Decimal("0.0005")
    assert "+overrides-" in ap["ai_cost.pricing.version"]
    # 1000*0.06 + 1000*0.24 = 300 per 1M (genai-prices, elsewhere)
    assert Decimal(us["ai_cost.amount"]) == Decimal("0.0003")


def test_regional_override_via_price_catalog(make_client, bedrock, telemetry, tmp_path: Path):
    path = tmp_path / "prices.yaml"
    path.write_text(REGIONAL, encoding="utf-8")
    instrumentor = BedrockCostInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        price_catalog=load_catalog(path),
    )
    try:
        for region in ("ap-northeast-1", "eu-west-1"):
            bedrock.push(BedrockScenario(input_tokens=2000, output_tokens=500))
            make_client(region=region).invoke_model(modelId=NOVA_LITE, body=b"{}")
    finally:
        instrumentor.uninstrument()
    ap, eu = (s.attributes for s in telemetry.spans())
    # 2000*0.1 + 500*0.4 = 400 per 1M; elsewhere 2000*0.06 + 500*0.24 = 240 per 1M
    assert Decimal(ap["ai_cost.amount"]) == Decimal("0.0004")
    assert Decimal(eu["ai_cost.amount"]) == Decimal("0.00024")
