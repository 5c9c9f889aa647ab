"""OpenAI-compatible providers through the real `openai` client: the right provider name, its own prices, and the
cost the provider itself reports kept beside ours.

The stand-in answers on 127.0.0.1, so each test maps its address to the provider with
`OTEL_AI_COST_PROVIDER_HOSTS`, as a team does for a self-hosted gateway; the public hosts are checked apart.

Prices used (USD per million tokens unless said; genai-prices' data, which the catalog layers over):
  xAI grok-3-mini:             input 0.30, output 0.50
  Perplexity sonar:            input 1, output 1, request fee $12 / 1K requests
  OpenRouter openai/gpt-4o-mini: input 0.15, output 0.60
  Azure OpenAI gpt-4o-mini:    input 0.15, output 0.60
"""

from __future__ import annotations

import logging
from decimal import Decimal

import openai
import pytest

from otel_ai_cost.instrumentation.openai.provider import ProviderMap
from otel_ai_cost.instrumentation.openai.response_extractors import provider_cost
from otel_ai_cost.stand_in import Scenario

MSGS = [{"role": "user", "content": "Which merchant is this?"}]


@pytest.fixture
def gateway(monkeypatch, stand_in, request):
    """Routes /xai, /perplexity and /openrouter on the stand-in to those providers, as a gateway would."""
    port = stand_in.port
    monkeypatch.setenv(
        "OTEL_AI_COST_PROVIDER_HOSTS",
        f"127.0.0.1:{port}/xai=x_ai, 127.0.0.1:{port}/perplexity=perplexity, 127.0.0.1:{port}/openrouter=openrouter",
    )
    return request.getfixturevalue("telemetry")  # instrumented after the variable is set


def _client(stand_in, prefix: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stand_in.url}/{prefix}/v1", api_key="xai-test-key", max_retries=0)


@pytest.mark.parametrize(
    ("host", "provider"),
    [
        ("api.openai.com", "openai"),
        ("api.x.ai", "x_ai"),
        ("api.perplexity.ai", "perplexity"),
        ("generativelanguage.googleapis.com", "gcp.gemini"),
        ("my-resource.openai.azure.com", "azure.ai.openai"),
        ("my-project.services.ai.azure.com", "azure.ai.openai"),
        ("api.deepseek.com", "deepseek"),
        ("api.groq.com", "groq"),
        ("api.mistral.ai", "mistral_ai"),
        ("openrouter.ai", "openrouter"),
        ("API.X.AI", "x_ai"),
        ("localhost", "openai"),
        ("api.x.ai.evil.example", "openai"),
    ],
)
def test_public_hosts_name_their_provider(host, provider):
    assert ProviderMap().provider_for(host) == provider


def test_configured_hosts_come_first_and_the_longest_path_prefix_wins():
    providers = ProviderMap(
        {
            "gw.internal": "openai",
            "gw.internal/xai": "x_ai",
            "gw.internal:8443/gemini": "gcp.gemini",
            "api.x.ai": "openrouter",  # a configured entry overrides a public host
            "bad:port": "x_ai",
        }
    )
    assert providers.provider_for("gw.internal", 443, "/xai/v1") == "x_ai"
    assert providers.provider_for("gw.internal", 443, "/xaiother/v1") == "openai"
    assert providers.provider_for("gw.internal", 8443, "/gemini") == "gcp.gemini"
    assert providers.provider_for("gw.internal", 443, "/gemini") == "openai"
    assert providers.provider_for("api.x.ai", None, "/v1") == "openrouter"


def test_a_malformed_entry_is_named_and_skipped(caplog):
    with caplog.at_level(logging.WARNING, logger="otel_ai_cost"):
        providers = ProviderMap.from_environ({"OTEL_AI_COST_PROVIDER_HOSTS": "gw:https=x_ai,novalue,gw2=perplexity"})
    assert providers.provider_for("gw2") == "perplexity"
    assert providers.provider_for("gw") == "openai"
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "OTEL_AI_COST_PROVIDER_HOSTS" in messages and "'gw:https'" in messages and "'novalue'" in messages


def test_xai_cost_in_ticks_is_the_amount_and_our_figure_stays_beside_it(stand_in, gateway):
    # 37,756,000 ticks at 10^10 ticks per dollar: $0.0037756, xAI's own example.
    stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=200, usage_extra={"cost_in_usd_ticks": 37756000}))
    _client(stand_in, "xai").chat.completions.create(model="grok-3-mini", messages=MSGS)

    a = gateway.span().attributes
    assert a["gen_ai.provider.name"] == "x_ai"
    assert a["ai_cost.source"] == "provider"
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.0037756")
    # ours: 1000 * 0.30 + 200 * 0.50 = 400 per 1M
    assert Decimal(a["ai_cost.computed_amount"]) == Decimal("0.0004")
    spend = gateway.points("ai_cost.spend")
    assert [p.attributes["gen_ai.provider.name"] for p in spend] == ["x_ai"]
    assert Decimal(str(spend[0].value)) == Decimal("0.0037756")


def test_xai_stream_reads_the_cost_from_the_usage_chunk(stand_in, gateway):
    stand_in.push(
        Scenario(text=["Cafe", " Luna"], prompt_tokens=50, completion_tokens=2, usage_extra={"cost_in_usd_ticks": 1})
    )
    chunks = list(_client(stand_in, "xai").chat.completions.create(model="grok-3-mini", messages=MSGS, stream=True))

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Cafe Luna"
    a = gateway.span().attributes
    assert a["ai_cost.source"] == "provider"
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.0000000001")  # one tick: exact, no float in between
    assert Decimal(a["ai_cost.computed_amount"]) == Decimal("0.000016")  # 50 * 0.30 + 2 * 0.50 per 1M


def test_xai_image_generation_is_priced_per_image_by_xai_itself(stand_in, gateway):
    # xAI bills images per image and says so in ticks (docs.x.ai cost tracking: 200,000,000 ticks = $0.02 an
    # image); no token usage, and no catalog price for the model: the provider's figure is the amount.
    stand_in.push(Scenario(usage_extra={"cost_in_usd_ticks": 400000000}))
    result = _client(stand_in, "xai").images.generate(model="grok-imagine-image", prompt="a receipt", n=2)

    assert len(result.data) == 2
    a = gateway.span().attributes
    assert (a["gen_ai.provider.name"], a["gen_ai.request.model"]) == ("x_ai", "grok-imagine-image")
    assert (a["ai_cost.source"], a["ai_cost.pricing.status"]) == ("provider", "priced")
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.04")
    assert "ai_cost.computed_amount" not in a


def test_perplexity_total_cost_includes_its_request_fee(stand_in, gateway):
    cost = {
        "input_tokens_cost": 0.0002,
        "output_tokens_cost": 0.0001,
        "request_cost": 0.005,
        "total_cost": 0.0053,
    }
    stand_in.push(
        Scenario(prompt_tokens=200, completion_tokens=100, usage_extra={"cost": cost, "search_context_size": "low"})
    )
    _client(stand_in, "perplexity").chat.completions.create(model="sonar", messages=MSGS)

    a = gateway.span().attributes
    assert a["gen_ai.provider.name"] == "perplexity"
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.0053")
    # ours: 200 * 1 + 100 * 1 per 1M, plus the catalog's $12 / 1K request fee (the high search context's)
    assert Decimal(a["ai_cost.computed_amount"]) == Decimal("0.0123")
    assert Decimal(a["ai_cost.fee.request.amount"]) == Decimal("0.012")


def test_openrouter_cost_through_the_responses_api(stand_in, gateway):
    stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=100, usage_extra={"cost": 0.000216}))
    _client(stand_in, "openrouter").responses.create(model="openai/gpt-4o-mini", input="Which merchant?")

    a = gateway.span().attributes
    assert a["gen_ai.provider.name"] == "openrouter"
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.000216")
    # ours: 1000 * 0.15 + 100 * 0.60 = 210 per 1M; the difference is what keeping both figures shows
    assert Decimal(a["ai_cost.computed_amount"]) == Decimal("0.00021")


def test_an_unreported_cost_leaves_the_local_figure(stand_in, gateway):
    stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=200))
    _client(stand_in, "xai").chat.completions.create(model="grok-3-mini", messages=MSGS)

    a = gateway.span().attributes
    assert a["ai_cost.source"] == "local"
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.0004")
    assert "ai_cost.computed_amount" not in a


class _Usage:
    def __init__(self, **fields):
        self.__dict__.update(fields)


@pytest.mark.parametrize(
    ("provider", "fields", "expected"),
    [
        ("x_ai", {"cost_in_usd_ticks": 10**10}, Decimal(1)),
        ("x_ai", {"cost_in_usd_ticks": -5}, None),
        ("x_ai", {"cost_in_usd_ticks": True}, None),
        ("x_ai", {"cost_in_usd_ticks": 1.5}, None),
        ("perplexity", {"cost": {"total_cost": 0.0057}}, Decimal("0.0057")),
        ("perplexity", {"cost": {"total_cost": "NaN"}}, None),
        ("perplexity", {"cost": "0.1"}, None),
        ("openrouter", {"cost": 2.55e-05}, Decimal("0.0000255")),
        ("openrouter", {"cost": float("inf")}, None),
        ("openrouter", {"cost": "abc"}, None),
        ("openai", {"cost": 0.5}, None),  # only providers that document a cost are believed
    ],
)
def test_provider_cost_reads_only_well_formed_documented_fields(provider, fields, expected):
    assert provider_cost(provider, _Usage(**fields)) == expected


def test_azure_deployment_is_priced_as_its_model_through_an_alias(monkeypatch, stand_in, request):
    monkeypatch.setenv("OTEL_AI_COST_PROVIDER_HOSTS", f"127.0.0.1:{stand_in.port}=azure.ai.openai")
    monkeypatch.setenv("OTEL_AI_COST_MODEL_ALIASES", "receipts-prod=gpt-4o-mini")
    telemetry = request.getfixturevalue("telemetry")
    client = openai.AzureOpenAI(
        azure_endpoint=stand_in.url, api_key="azure-test-key", api_version="2024-10-21", max_retries=0
    )
    # A stream's chunks may name no model (Azure's first chunk carries only content-filter results).
    stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=200, model=""))
    client.chat.completions.create(model="receipts-prod", messages=MSGS)

    assert stand_in.requests[-1].path == "/v1/chat/completions"  # sent to /openai/deployments/receipts-prod/...
    a = telemetry.span().attributes
    assert a["gen_ai.provider.name"] == "azure.ai.openai"
    assert a["gen_ai.request.model"] == "receipts-prod"  # the span keeps the caller's name
    assert a["ai_cost.pricing.status"] == "priced"
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.00027")  # 1000 * 0.15 + 200 * 0.60 per 1M


@pytest.mark.parametrize(
    ("provider", "model", "input_rate", "output_rate"),
    [
        ("x_ai", "grok-4-fast-non-reasoning", "0.2", "0.5"),
        ("x_ai", "grok-3-mini", "0.3", "0.5"),
        ("perplexity", "sonar-pro", "3", "15"),
        ("openrouter", "openai/gpt-4o-mini", "0.15", "0.6"),
        ("azure.ai.openai", "gpt-4o", "2.5", "10"),
        ("groq", "llama-3.3-70b-versatile", "0.59", "0.79"),
        ("deepseek", "deepseek-chat", "0.27", "1.1"),  # at 12:00 UTC: DeepSeek's off-peak hours are cheaper
        ("mistral_ai", "mistral-small-latest", "0.15", "0.6"),
        ("gcp.gemini", "gemini-2.5-flash", "0.3", "2.5"),
    ],
)
def test_the_catalog_prices_each_compatible_providers_main_models(provider, model, input_rate, output_rate):
    from datetime import datetime, timezone

    from otel_ai_cost.pricing.catalog import load_catalog

    price = load_catalog().resolve(provider, model, at=datetime(2026, 11, 22, 12, tzinfo=timezone.utc))
    assert price is not None
    assert (price.input, price.output) == (Decimal(input_rate), Decimal(output_rate))
