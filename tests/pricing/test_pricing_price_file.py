"""Price-file validation: every error names the file, the line and the key; typos are errors."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from pricing_helpers import utc

from otel_ai_cost.pricing.catalog import load_catalog, shipped_price_file
from otel_ai_cost.pricing.price_file import PriceFileError, load_price_file, parse_price_file

WriteFile = Callable[..., Path]

BAD_FILES = [
    pytest.param(
        """models:
  - {provider: openai, model: a, prices: {input: 1}}
  - {provider: openai, model: b, prices: {input: 1}}
  - provider: openai
    model: c
    prices:
      input: cheap
""",
        "7: models[2].prices.input: expected a non-negative number, got 'cheap'",
        id="not-a-number",
    ),
    pytest.param(
        "models:\n  - provider: openai\n    model: gpt-4o\n    prise: {input: 1}\n",
        "4: models[0].prise: unknown key (did you mean 'prices'?)",
        id="typo-in-entry-key",
    ),
    pytest.param(
        "model:\n  - {provider: openai, model: gpt-4o, prices: {input: 1}}\n",
        "1: model: unknown key (did you mean 'models'?)",
        id="typo-in-section",
    ),
    pytest.param(
        "models:\n  - provider: openai\n    model: gpt-4o\n    prices: {inptu: 1}\n",
        "4: models[0].prices.inptu: unknown key (did you mean 'input'?)",
        id="typo-in-price-class",
    ),
    pytest.param(
        "models:\n  - provider: openai\n    model: gpt-4o\n    prices:\n      output: -2\n",
        "5: models[0].prices.output: expected a non-negative number, got '-2'",
        id="negative",
    ),
    pytest.param(
        "models:\n  - provider: openai\n    model: gpt-4o\n    prices: {output: .nan}\n",
        "4: models[0].prices.output: expected a non-negative number, got '.nan'",
        id="nan",
    ),
    pytest.param(
        "models:\n  - provider: openai\n    model: gpt-4o\n    prices: {output: yes}\n",
        "4: models[0].prices.output: expected a non-negative number, got 'yes'",
        id="boolean",
    ),
    pytest.param(
        "models:\n  - {provider: openai, model: gpt-4o, tier: premium, prices: {input: 1}}\n",
        "2: models[0].tier: expected one of standard, batch, flex, priority, got 'premium'",
        id="bad-tier",
    ),
    pytest.param(
        "models:\n  - {model: gpt-4o, prices: {input: 1}}\n",
        "2: models[0]: missing required key 'provider'",
        id="missing-provider",
    ),
    pytest.param(
        "models:\n  - {provider: openai, model: gpt-4o}\n",
        "2: models[0]: an entry needs at least one of prices, requests, per_minute, long_context",
        id="prices-nothing",
    ),
    pytest.param(
        "models:\n  - provider: openai\n    model: gpt-4o\n    effective_from: 2025-13-01\n    prices: {input: 1}\n",
        "4: models[0].effective_from: expected a date (YYYY-MM-DD) or an ISO 8601 datetime, got '2025-13-01'",
        id="bad-date",
    ),
    pytest.param(
        "discounts:\n  - provider: openai\n    percent: 10\n"
        "    effective_from: 2026-06-01\n    effective_until: 2026-01-01\n",
        "5: discounts[0].effective_until: must be after effective_from",
        id="window-backwards",
    ),
    pytest.param(
        "discounts:\n  - {provider: openai, percent: 120}\n",
        "2: discounts[0].percent: expected a percentage between 0 and 100, got '120'",
        id="percent-over-100",
    ),
    pytest.param(
        "models:\n  - provider: anthropic\n    model: x\n    long_context: {threshold: 200k, prices: {input: 6}}\n",
        "4: models[0].long_context.threshold: expected a positive whole number of tokens, got '200k'",
        id="bad-threshold",
    ),
    pytest.param(
        "tiers:\n  - {provider: openai, tier: standard, multiplier: 2}\n",
        "2: tiers[0].tier: expected one of batch, flex, priority, got 'standard'",
        id="tier-rule-for-standard",
    ),
    pytest.param(
        "models:\n  - provider: openai\n    model: gpt-4o\n    prices: {input: 1}\n    prices: {input: 2}\n",
        "5: models[0].prices: duplicate key",
        id="duplicate-key",
    ),
    pytest.param(
        "models:\n  - provider: openai\n    model: [gpt-4o\n",
        "4: (yaml): expected ',' or ']', but got '<stream end>'",
        id="yaml-syntax",
    ),
    pytest.param(
        "models:\n  - {provider: openai, model: whisper-1, per_minute: {output_audio: 0.01}}\n",
        "2: models[0].per_minute.output_audio: unknown key (did you mean 'input_audio'?)",
        id="unknown-duration-class",
    ),
    pytest.param("- just\n- a list\n", "1: (root): expected a mapping, got a list", id="not-a-mapping"),
    pytest.param(
        "models:\n  provider: openai\n",
        "2: models: expected a list, got a mapping",
        id="section-not-a-list",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_bad_file_errors_name_file_line_and_key(price_file: WriteFile, text: str, expected: str) -> None:
    path = price_file(text)
    with pytest.raises(PriceFileError) as raised:
        load_price_file(path)
    assert str(raised.value) == f"{path}:{expected}"
    assert isinstance(raised.value, ValueError)
    with pytest.raises(PriceFileError):  # and a catalog is never built from it
        load_catalog(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PriceFileError, match=r"nope\.yaml:0: \(file\): cannot read"):
        load_price_file(tmp_path / "nope.yaml")


def test_numbers_keep_their_exact_decimal_digits() -> None:
    loaded = parse_price_file(
        """
version: v1
models:
  - provider: openai
    model: GPT-X
    effective_from: 2026-01-01
    effective_until: 2026-02-01T06:00:00+02:00
    prices: {input: 0.1, output: "0.30", cache_read: 1e-2, cache_write_1h: 1_000}
    requests: {web_search: 10}
    long_context: {threshold: 200_000, prices: {input: 0.2}}
discounts:
  - {provider: "*", percent: 12.5, tiers: [standard, batch]}
tiers:
  - {provider: openai, tier: flex, multiplier: 0.5}
defaults:
  - {provider: openai, requests: {web_search: 25}}
""",
        filename="inline.yaml",
    )
    (entry,) = loaded.models
    assert entry.model == "gpt-x"  # model ids match case-insensitively
    assert dict(entry.prices) == {
        "input": Decimal("0.1"),
        "output": Decimal("0.30"),
        "cache_read": Decimal("0.01"),
        "cache_write_1h": Decimal("1000"),
    }
    assert all(type(v) is Decimal for v in entry.prices.values())
    assert str(entry.prices["input"]) == "0.1"  # parsed from the text, never through a float
    assert (entry.effective_from, entry.effective_until) == (utc(2026, 1, 1), utc(2026, 2, 1, 4))
    assert entry.long_context is not None and entry.long_context.threshold == 200_000
    assert loaded.discounts[0].tiers == frozenset({"standard", "batch"})
    assert loaded.discounts[0].percent == Decimal("12.5")
    assert loaded.tiers[0].multiplier == Decimal("0.5")
    assert loaded.version == "v1"


def test_empty_file_is_valid(price_file: WriteFile) -> None:
    loaded = load_price_file(price_file("# nothing yet\n"))
    assert (loaded.models, loaded.discounts) == ((), ())


def test_shipped_catalog_is_valid() -> None:
    shipped = shipped_price_file()
    assert shipped.version == "2026-11-22.2"
    assert shipped.source == "catalog"
    assert {(rule.provider, rule.tier) for rule in shipped.tiers} == {
        ("openai", "batch"),
        ("openai", "flex"),
        ("openai", "priority"),
        ("anthropic", "batch"),
    }
