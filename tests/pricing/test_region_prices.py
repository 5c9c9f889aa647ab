"""Region-aware prices (Bedrock bills per model and region), and genai-prices' coverage of Bedrock's models."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from pricing_helpers import NOW

from otel_ai_cost.pricing.catalog import PriceCatalog, PriceFileError, load_catalog
from otel_ai_cost.pricing.price_file import parse_price_file
from otel_ai_cost.pricing.usage import Usage

LITE = "amazon.nova-lite-v1:0"
OVERRIDES = """
models:
  - {provider: aws.bedrock, model: "amazon.nova-lite-v1:0", prices: {input: 0.05}}
  - {provider: aws.bedrock, model: "amazon.nova-lite-v1:0", region: "ap-*", prices: {input: 0.1, output: 0.4}}
  - {provider: aws.bedrock, model: "amazon.nova-lite-v1:0", region: eu-west-3, prices: {output: 0.3}}
"""


def test_region_key_is_parsed_lower_cased() -> None:
    parsed = parse_price_file(OVERRIDES.replace("eu-west-3", "EU-West-3"), filename="p.yaml")
    assert [e.region for e in parsed.models] == [None, "ap-*", "eu-west-3"]


@pytest.mark.parametrize("bad", ['""', '"us east 1"', "[us-east-1]", "1"])
def test_bad_region_names_file_line_and_key(bad: str) -> None:
    text = f"models:\n  - provider: aws.bedrock\n    model: x\n    region: {bad}\n    prices: {{input: 1}}\n"
    with pytest.raises(PriceFileError) as raised:
        parse_price_file(text, filename="p.yaml")
    assert str(raised.value).startswith("p.yaml:4: models[0].region: ")


def test_regional_entry_applies_only_in_matching_regions_and_wins(price_file: Callable[..., Path]) -> None:
    catalog = load_catalog(price_file(OVERRIDES))
    ap = catalog.resolve("aws.bedrock", LITE, at=NOW, region="ap-southeast-2")
    assert ap is not None and (ap.input, ap.output) == (Decimal("0.1"), Decimal("0.4"))
    paris = catalog.resolve("aws.bedrock", LITE, at=NOW, region="eu-west-3")
    assert paris is not None and (paris.input, paris.output) == (Decimal("0.05"), Decimal("0.3"))
    for region in ("us-east-1", None):  # no region given: regional entries never apply
        plain = catalog.resolve("aws.bedrock", LITE, at=NOW, region=region)
        assert plain is not None and (plain.input, plain.output) == (Decimal("0.05"), Decimal("0.24"))


def test_quote_caches_per_region(price_file: Callable[..., Path]) -> None:
    catalog = load_catalog(price_file(OVERRIDES))
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    amounts = [catalog.quote("aws.bedrock", LITE, usage, at=NOW, region=r).amount for r in ("ap-east-1", "us-east-1")]
    assert amounts == [Decimal("0.5"), Decimal("0.29")]
    assert {key[3] for key in catalog._cache} == {"ap-east-1", "us-east-1"}


def test_without_regional_entries_the_region_is_not_in_the_cache_key(catalog: PriceCatalog) -> None:
    usage = Usage(input_tokens=1000, output_tokens=1000)
    for region in ("us-east-1", "eu-west-1", "ap-south-1"):
        assert catalog.quote("aws.bedrock", LITE, usage, at=NOW, region=region).amount == Decimal("0.0003")
    assert [key for key in catalog._cache if key[1] == LITE] == [("aws.bedrock", LITE, "standard", None)]


# Bedrock's main models, as genai-prices 0.2.3 prices them (USD per million tokens: input, output), checked
# against the AWS Bedrock pricing page. Claude 4.5 models in-region and in geographic profiles (us., eu., ...)
# cost 10% more than through global profiles.
MAIN_MODELS = [
    ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "3", "15"),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "3.3", "16.5"),
    ("us.anthropic.claude-sonnet-4-20250514-v1:0", "3", "15"),
    ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "1.1", "5.5"),
    ("anthropic.claude-3-5-sonnet-20241022-v2:0", "3", "15"),
    ("amazon.nova-pro-v1:0", "0.8", "3.2"),
    ("eu.amazon.nova-lite-v1:0", "0.06", "0.24"),
    ("apac.amazon.nova-micro-v1:0", "0.035", "0.14"),
    ("meta.llama3-1-70b-instruct-v1:0", "0.72", "0.72"),
    ("us.meta.llama3-3-70b-instruct-v1:0", "0.72", "0.72"),
    ("meta.llama3-8b-instruct-v1:0", "0.3", "0.6"),
    ("mistral.mistral-large-2402-v1:0", "4", "12"),
    ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0", "0.8", "3.2"),
]


@pytest.mark.parametrize(("model", "input_price", "output_price"), MAIN_MODELS)
def test_genai_prices_has_current_prices_for_bedrock_main_models(
    catalog: PriceCatalog, model: str, input_price: str, output_price: str
) -> None:
    price = catalog.resolve("aws.bedrock", model, at=NOW)
    assert price is not None
    assert (price.input, price.output) == (Decimal(input_price), Decimal(output_price))


def test_what_genai_prices_cannot_price(catalog: PriceCatalog) -> None:
    # Mistral Large 2 (24.07) is missing from genai-prices 0.2.3; opaque ids of application inference profiles
    # and provisioned models name no model.
    for model in (
        "mistral.mistral-large-2407-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3",
        "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/x9y8z7",
    ):
        assert catalog.resolve("aws.bedrock", model, at=NOW) is None
