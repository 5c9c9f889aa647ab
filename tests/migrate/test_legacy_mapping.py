"""One legacy AIUsageMetric item -> one ledger record: exact costs, unknown costs, every mapped attribute, the
environment rule, bounded tags, and items that cannot be records (named by their keys)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from legacy_items import legacy_item

from otel_ai_cost.ledger import limits
from otel_ai_cost.ledger.unknown_cost import is_cost_unknown
from otel_ai_cost.migrate.legacy_item import (
    TAG_REQUEST_ID,
    TAG_TRIMMED,
    MappingDefaults,
    UnmappableItem,
    environment_from_table,
    legacy_identity,
    map_item,
)

PROD = MappingDefaults(table_environment="production")


def test_the_cost_is_the_exact_number_text_the_tracker_stored():
    item = legacy_item(cost_usd=0.000123456789, input_tokens=1000, output_tokens=50)
    assert item["costUSD"] == {"N": "0.000123456789"}  # str(Decimal(str(float))), as the tracker writes it
    record = map_item(item, PROD).record
    assert record.amount == Decimal("0.000123456789")
    assert format(record.amount, "f") == "0.000123456789"
    assert (record.pricing_status, record.cost_source, record.record_source) == (
        "priced", "legacy_tracker", "legacy_import")  # fmt: skip


def test_a_float_artifact_is_kept_digit_for_digit_never_rounded():
    item = legacy_item(cost_usd=1.4999999999999999e-05)
    assert map_item(item, PROD).record.amount == Decimal("0.000014999999999999999")


def test_an_item_without_a_cost_is_of_unknown_cost_never_zero():
    record = map_item(legacy_item(input_tokens=10, output_tokens=2), PROD).record
    assert record.amount is None
    assert record.pricing_status == "unpriced"
    assert is_cost_unknown(record)


def test_every_attribute_lands_in_its_field():
    item = legacy_item(
        service="Anthropic",
        model="claude-3-5-sonnet-20241022",
        operation="completion",
        request_id="req-7",
        input_tokens=1200,
        output_tokens=300,
        cost_usd=0.0081,
        latency_ms=2345,
        user_id="u-1",
        job_id="job-42",
        batch_id="b-7",
        github_pr=123,
        metadata={"function": "label_receipt", "temperature": 0.2, "max_tokens": None, "is_batch": True,
                  "operation_type": "receipt_processing", "service": "receipt-processing",
                  "parent_context": {"operation_type": "batch", "n": 3}},
    )  # fmt: skip
    mapped = map_item(item, PROD)
    r = mapped.record
    assert (r.provider, r.request_model, r.operation) == ("anthropic", "claude-3-5-sonnet-20241022", "chat")
    assert (r.input_tokens, r.output_tokens, r.duration_ms) == (1200, 300, 2345.0)
    assert (r.user_id, r.job_id, r.batch_id, r.vcs_change_id) == ("u-1", "job-42", "b-7", "123")
    assert (r.operation_type, r.service, r.environment, r.outcome) == (
        "receipt_processing", "receipt-processing", "production", "success")  # fmt: skip
    assert r.timestamp == datetime(2025, 7, 14, 9, 30, 0, 123456, tzinfo=timezone.utc)
    assert (r.trace_id, r.span_id) == legacy_identity("req-7")
    assert dict(r.tags) == {
        TAG_REQUEST_ID: "req-7",
        "function": "label_receipt",
        "temperature": "0.2",  # the number's exact text
        "is_batch": "true",
        "parent_context": '{"n":"3","operation_type":"batch"}',
    }  # max_tokens (NULL) carries nothing; operation_type and service filled their fields
    assert mapped.keys.pk == "AI_USAGE#anthropic#claude-3-5-sonnet-20241022"


def test_an_embedding_with_only_a_total_counts_it_as_input():
    item = legacy_item(operation="embedding", model="text-embedding-3-small", total_tokens=812, cost_usd=0.00001624)
    r = map_item(item, PROD).record
    assert (r.operation, r.input_tokens, r.output_tokens, r.amount) == ("embeddings", 812, 0, Decimal("0.00001624"))


def test_a_failed_call_is_an_error_with_its_status():
    item = legacy_item(error="Error code: 429 - {'error': {'message': 'Rate limit reached'}}")
    r = map_item(item, PROD).record
    assert (r.outcome, r.error_type) == ("error", "429")
    assert r.tags["legacy.error"].startswith("Error code: 429")
    assert is_cost_unknown(r)  # no cost stored: unknown, not $0


def test_the_ci_auto_tags_fill_the_ci_and_vcs_fields():
    metadata = {"environment": "cicd", "ci_run_id": "9876", "ci_workflow": "Tests", "ci_sha": "abc123",
                "ci_ref": "refs/pull/5/merge", "ci_repository": "tnorlund/Portfolio"}  # fmt: skip
    r = map_item(legacy_item(metadata=metadata, github_pr=5), PROD).record
    assert (r.cicd_run_id, r.cicd_pipeline_name, r.vcs_revision, r.vcs_ref_name, r.vcs_repository_url) == (
        "9876", "Tests", "abc123", "refs/pull/5/merge", "https://github.com/tnorlund/Portfolio")  # fmt: skip
    assert r.tags["environment"] == "cicd"  # metadata's environment is a tag only


@pytest.mark.parametrize(
    ("table", "environment"),
    [
        ("ReceiptsTable-dev-abc123", "development"),
        ("ReceiptsTable-prod-xyz789", "production"),
        ("ReceiptsTable-stage-1a2b3c", "staging"),
        ("ReceiptsTable-staging-1a2b3c", "staging"),
        ("AIUsageMetrics-development", "development"),
        ("ReceiptsTable-feature_x-42", "feature_x"),
        ("ReceiptsTable", None),
    ],
)
def test_a_per_stack_table_name_says_its_environment(table: str, environment: str | None):
    assert environment_from_table(table) == environment


def test_the_items_own_environment_wins_over_the_table_name_and_environment_over_both():
    own = legacy_item(environment="staging")
    none = legacy_item()
    assert map_item(own, PROD).record.environment == "staging"
    assert map_item(none, PROD).record.environment == "production"
    forced = MappingDefaults(environment="prod", table_environment="development")
    assert (map_item(own, forced).record.environment, map_item(none, forced).record.environment) == (
        "production", "production")  # fmt: skip


def test_metadata_beyond_the_tag_bounds_is_cut_and_says_so():
    metadata = {f"key{n:03d}": n for n in range(80)} | {"a_long": "x" * 500, "k" * 150: "too long a key"}
    mapped = map_item(legacy_item(metadata=metadata), PROD)
    tags = mapped.record.tags
    assert len(tags) == limits.MAX_TAGS  # the request id, a_long, key000..key060 and the trim marker
    assert tags["a_long"] == "x" * 199 + "…"
    assert ("key060" in tags, "key061" in tags, "k" * 150 in tags) == (True, False, False)
    assert mapped.tags_trimmed == int(tags[TAG_TRIMMED]) == 1 + 19 + 1  # a_long cut, key061..079 and the long key out
    limits.check_record(mapped.record)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"requestId": None}, "no requestId"),
        ({"timestamp": None}, "no timestamp"),
        ({"service": None}, "no service"),
        ({"timestamp": {"S": "yesterday"}}, "timestamp is not an ISO 8601 time"),
        ({"costUSD": {"S": "0.01"}}, "costUSD must be a number (N), got S"),
        ({"costUSD": {"N": "-0.01"}}, "costUSD must not be negative"),
        ({"inputTokens": {"N": "12.5"}}, "inputTokens must be a non-negative whole number"),
        ({"latencyMs": {"N": "abc"}}, "latencyMs is not a number"),
        ({"model": {"S": "m" * 300}}, "request_model has 300 characters"),
        ({"timestamp": {"S": "1999-12-31T23:00:00+00:00"}}, "timestamp must be from 2000"),
    ],
)
def test_an_item_that_cannot_be_a_record_says_why_and_names_its_keys(change: dict, reason: str):
    item = legacy_item(cost_usd=0.01, request_id="req-bad")
    for key, value in change.items():
        if value is None:
            del item[key]
        else:
            item[key] = value
    with pytest.raises(UnmappableItem) as raised:
        map_item(item, PROD)
    assert reason in raised.value.reason
    assert raised.value.keys.sk == item["SK"]["S"]
    assert str(raised.value).startswith(f"PK={item['PK']['S']!r} SK={item['SK']['S']!r}: ")


def test_an_item_without_any_environment_cannot_be_imported():
    with pytest.raises(UnmappableItem, match=r"no environment.*pass --environment"):
        map_item(legacy_item(), MappingDefaults())
