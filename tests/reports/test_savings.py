"""Savings from a planted SQLite ledger and the shipped price catalog, checked against amounts computed by hand from
the providers' list prices (USD per million tokens, on 2026-11-20):

    gpt-4o            input 2.50  cached input 1.25  output 10.00   batch: input 1.25  cached 1.25  output 5.00
    gpt-4o-mini       input 0.15                     output  0.60
    claude-sonnet-4-5 input 3.00                     output 15.00
    claude-haiku-4-5  input 1.00  cache read   0.10  output  5.00
    claude-opus-4-5   input 5.00                     output 25.00

The first test holds the catalog to these figures, so a change of price data reads as that, not as a wrong saving.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from report_records import Ledger

from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery
from otel_ai_cost.pricing.catalog import default_catalog
from otel_ai_cost.reports.model import Saving
from otel_ai_cost.reports.savings import GROUP_BY, batch_eligible, family_members, find_savings

D = Decimal
DAY = date(2026, 11, 20)
AT = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)


@pytest.fixture
def savings(tmp_path):
    def find(records, kind: str) -> list[Saving]:
        store = SQLiteStore(tmp_path / f"ledger-{len(list(tmp_path.iterdir()))}.db")
        try:
            store.write(records)
            rows = store.aggregate(UsageQuery(start_day=DAY, end_day=DAY), list(GROUP_BY))
        finally:
            store.close()
        return [saving for saving in find_savings(rows, default_catalog()) if saving.kind == kind]

    return find


def test_the_catalog_has_the_prices_these_tests_compute_with():
    catalog = default_catalog()

    def rates(provider: str, model: str, tier: str = "standard") -> tuple[Decimal | None, ...]:
        price = catalog.resolve(provider, model, at=AT, tier=tier)
        assert price is not None and price.tier == tier
        return (price.input, price.cache_read, price.output)

    assert rates("openai", "gpt-4o") == (D("2.5"), D("1.25"), D(10))
    assert rates("openai", "gpt-4o", "batch") == (D("1.25"), D("1.25"), D(5))
    assert rates("openai", "gpt-4o-mini")[::2] == (D("0.15"), D("0.6"))
    assert rates("anthropic", "claude-sonnet-4-5-20250929")[::2] == (D(3), D(15))
    assert rates("anthropic", "claude-haiku-4-5") == (D(1), D("0.1"), D(5))
    assert rates("anthropic", "claude-opus-4-5")[::2] == (D(5), D(25))
    assert catalog.resolve("openai", "gpt-4o-nano", at=AT) is None  # no such model: never a candidate


def test_batch_tier_for_batch_and_test_operation_types(savings):
    ledger = Ledger()
    records = [
        # 2 x (1,000 in, 200 out): standard 2 x (0.0025 + 0.002) = 0.009; batch 2 x (0.00125 + 0.001) = 0.0045
        ledger.call(DAY, "0.0045", operation_type="integration_test", input_tokens=1000, output_tokens=200),
        ledger.call(DAY, "0.0045", operation_type="integration_test", input_tokens=1000, output_tokens=200),
        # 8,000 uncached + 2,000 cached in, 1,000 out: standard 0.02 + 0.0025 + 0.01 = 0.0325;
        # batch 0.01 + 0.0025 + 0.005 = 0.0175
        ledger.call(
            DAY,
            "0.0325",
            operation_type="batch_processing",
            input_tokens=10_000,
            cache_read_input_tokens=2000,
            output_tokens=1000,
        ),
        ledger.call(DAY, "0.009", operation_type="chat", input_tokens=1000, output_tokens=200),  # interactive
        ledger.call(DAY, "0.009", operation_type="latest_news", input_tokens=1000, output_tokens=200),  # not "test"
        ledger.call(
            DAY,
            "0.00225",
            operation_type="integration_test",
            pricing_tier="batch",
            input_tokens=1000,
            output_tokens=200,
        ),  # already on the batch tier
        ledger.call(DAY, None, operation_type="integration_test", request_model="my-finetune"),  # unpriced
    ]

    found = savings(records, "batch_tier")

    assert [(s.subject["operation_type"], s.amount, s.estimate) for s in found] == [
        ("batch_processing", D("0.015"), False),
        ("integration_test", D("0.0045"), False),
    ]
    assert found[1].subject == {"provider": "openai", "model": "gpt-4o", "operation_type": "integration_test",
                                "calls": "2"}  # fmt: skip
    assert found[0].message == (
        "1 call(s) of gpt-4o (openai) with operation type batch_processing need no interactive answer: at the batch "
        "tier's prices they would have cost $0.0175 instead of $0.0325, $0.015 less"
    )


def test_prompt_cache_hit_rate_and_the_cost_of_the_misses(savings):
    ledger = Ledger()
    records = [
        # 40% read from the cache; 6,000 uncached tokens: 0.015 at 2.50, 0.0075 as cache reads at 1.25
        ledger.call(DAY, "0.02", input_tokens=10_000, cache_read_input_tokens=4000, output_tokens=0),
        # 1,000,000 in, of which 200,000 written to the cache: 800,000 uncached, 0.80 at 1.00, 0.08 at 0.10
        ledger.call(
            DAY,
            "1.05",
            provider="anthropic",
            request_model="claude-haiku-4-5",
            input_tokens=1_000_000,
            cache_write_5m_input_tokens=200_000,
            output_tokens=0,
        ),
        ledger.call(DAY, None, request_model="my-finetune", input_tokens=5000),  # unpriced: nothing to say
    ]

    found = savings(records, "prompt_cache")

    assert [(s.subject["model"], s.amount, s.estimate) for s in found] == [
        ("claude-haiku-4-5", D("0.72"), True),
        ("gpt-4o", D("0.0075"), True),
    ]
    gpt = found[1]
    assert gpt.subject["hit_rate"] == "0.4"
    assert gpt.subject["uncached_input_tokens"] == "6000" and gpt.subject["miss_cost"] == "0.015"
    assert gpt.message == (
        "gpt-4o (openai): 40.0% of input tokens read from the prompt cache; the 6,000 uncached input tokens cost "
        "$0.015, and as cache reads would have cost $0.0075: at most $0.0075 less (only a repeated prompt prefix can "
        "be cached)"
    )
    assert found[0].subject["hit_rate"] == "0"


def test_cheaper_models_of_the_same_family_are_an_estimate_never_advice(savings):
    ledger = Ledger()
    records = [
        # gpt-4o 2.50 + 1.00 = 3.50; gpt-4o-mini 0.15 + 0.06 = 0.21 (gpt-4o-nano does not exist: no line)
        ledger.call(DAY, "3.50", input_tokens=1_000_000, output_tokens=100_000),
        # sonnet 3.00; haiku 1.00; opus 5.00 is dearer: no line
        ledger.call(
            DAY,
            "3.00",
            provider="anthropic",
            request_model="claude-sonnet-4-5-20250929",
            input_tokens=1_000_000,
            output_tokens=0,
        ),
    ]

    found = savings(records, "cheaper_model")

    assert [(s.subject["model"], s.subject["candidate"], s.amount, s.estimate) for s in found] == [
        ("gpt-4o", "gpt-4o-mini", D("3.29"), True),
        ("claude-sonnet-4-5-20250929", "claude-haiku-4-5", D(2), True),
    ]
    assert found[0].message.startswith(
        "Estimate: the token mix of 1 call(s) of gpt-4o (openai) would have cost $0.21 at gpt-4o-mini's prices "
        "instead of $3.50, $3.29 less. A price comparison only, not advice"
    )


def test_a_call_past_a_long_context_threshold_is_priced_at_base_rates(savings):
    """The aggregate sums many calls: their total input must never trip a per-request long-context rate."""
    ledger = Ledger()
    records = [ledger.call(DAY, "0.30", provider="anthropic", request_model="claude-sonnet-4-5",
                           input_tokens=100_000, output_tokens=0) for _ in range(3)]  # fmt: skip
    [cheaper] = savings(records, "cheaper_model")
    assert cheaper.amount == D("0.6")  # 300,000 tokens at 3.00 - at 1.00, not at the 200K+ rate of 6.00


@pytest.mark.parametrize(
    ("operation_type", "eligible"),
    [
        ("batch", True),
        ("batch_processing", True),
        ("integration_test", True),
        ("unit-tests", True),
        ("e2e.test", True),
        ("Test", True),
        ("latest", False),
        ("contest", False),
        ("chat", False),
        ("", False),
    ],
)
def test_batch_eligibility(operation_type, eligible):
    assert batch_eligible(operation_type) is eligible


@pytest.mark.parametrize(
    ("provider", "model", "members"),
    [
        ("openai", "gpt-4o-2024-08-06", ("gpt-4o-mini", "gpt-4o-nano")),
        ("openai", "gpt-4.1-mini", ("gpt-4.1", "gpt-4.1-nano")),
        ("openai", "o3-mini", ("o3",)),
        ("openai", "gpt-4o-audio-preview", ()),  # another kind of model, not a size of gpt-4o
        ("anthropic", "claude-sonnet-4-5-20250929", ("claude-opus-4-5", "claude-haiku-4-5")),
        ("anthropic", "claude-3-5-haiku-latest", ("claude-3-5-opus", "claude-3-5-sonnet")),
        ("anthropic", "claude-sonnet-4-0", ("claude-opus-4", "claude-haiku-4")),
        ("gcp.gemini", "models/gemini-2.5-flash", ("gemini-2.5-pro", "gemini-2.5-flash-lite")),
        ("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", ()),  # no family outside the list
        ("mistral_ai", "mistral-large-latest", ()),
    ],
)
def test_families_are_named_conservatively(provider, model, members):
    assert family_members(provider, model) == members
