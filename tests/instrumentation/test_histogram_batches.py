"""The metric drain records histogram observations in batches, straight into the SDK's storage where the SDK version
is one `sdk_histograms` was tested with. The points a reader exports must be exactly those of the public
`Histogram.record` path: counts, sums, buckets, min and max, with cumulative and delta readers, with a view that
drops attributes, and with a view that swaps the aggregation (which the direct path leaves to the public API)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.trace import SpanContext, TraceFlags

from otel_ai_cost.contract import OPERATION_DURATION, TOKEN_USAGE
from otel_ai_cost.pricing.usage import Usage
from otel_ai_cost.telemetry import sdk_histograms
from otel_ai_cost.telemetry.metrics import CallPoint, CostMetrics

HISTOGRAMS = (OPERATION_DURATION.name, TOKEN_USAGE.name)


@pytest.fixture(autouse=True)
def decide_again() -> Iterator[None]:
    sdk_histograms.use_sdk_storage(None)
    yield
    sdk_histograms.use_sdk_storage(None)


def calls() -> list[CallPoint]:
    """Three series (two models, one failed call), values that land in different buckets and add up as floats."""
    points = []
    for n in range(30):
        model = "gpt-4o-mini" if n % 3 else "gpt-4.1"
        error = "RateLimitError" if n == 7 else None
        context = SpanContext(n + 1, n + 1, is_remote=False, trace_flags=TraceFlags(1))
        usage = None if error else Usage(input_tokens=17 * n + 1, output_tokens=3 * n)
        points.append(
            CallPoint(
                lambda p: (("gen_ai.request.model", p.model),),
                "openai",
                model,
                "chat",
                {},
                context,
                0.1 * n + 0.013,
                error,
                "error" if error else "success",
                "no_usage" if error else "priced",
                None if error else Decimal("0.0001") * n,
                usage,
            )
        )
    return points


def exported(direct: bool, temporality: AggregationTemporality, views: tuple[View, ...] = ()) -> list[tuple]:
    sdk_histograms.use_sdk_storage(direct)
    reader = InMemoryMetricReader(preferred_temporality={Histogram: temporality})
    provider = MeterProvider(metric_readers=[reader], views=list(views))
    metrics = CostMetrics(provider.get_meter("test"))
    collected = []
    for half in (calls()[:15], calls()[15:]):  # two collections: delta resets between them, cumulative adds up
        for point in half:
            metrics.record(point)
        data = reader.get_metrics_data()
        for metric in (m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics):
            if metric.name in HISTOGRAMS:
                for p in metric.data.data_points:
                    positive = getattr(p, "positive", None)  # an exponential histogram's buckets
                    buckets = getattr(p, "bucket_counts", None) or (positive.bucket_counts if positive else ())
                    collected.append(
                        (metric.name, tuple(sorted(p.attributes.items())), p.count, p.sum, p.min, p.max, tuple(buckets))
                    )
    provider.shutdown()
    return sorted(collected, key=repr)


@pytest.mark.parametrize("temporality", [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA])
def test_direct_and_public_paths_export_the_same_points(temporality):
    direct = exported(True, temporality)
    # Per collection: 3 duration series (the failed call's only in the first, unless cumulative) and 2 models x 2
    # token types.
    assert len(direct) == (3 + 4) + (3 if temporality is AggregationTemporality.CUMULATIVE else 2) + 4
    assert direct == exported(False, temporality)


def test_a_view_that_keeps_fewer_attributes_is_honoured():
    views = (View(instrument_name=TOKEN_USAGE.name, attribute_keys={"gen_ai.token.type"}),)
    direct = exported(True, AggregationTemporality.CUMULATIVE, views)
    tokens = [p for p in direct if p[0] == TOKEN_USAGE.name]
    assert {p[1] for p in tokens} == {(("gen_ai.token.type", "input"),), (("gen_ai.token.type", "output"),)}
    assert direct == exported(False, AggregationTemporality.CUMULATIVE, views)


def test_another_aggregation_is_left_to_the_public_api():
    views = (View(instrument_name=OPERATION_DURATION.name, aggregation=ExponentialBucketHistogramAggregation()),)
    direct = exported(True, AggregationTemporality.CUMULATIVE, views)
    # Every duration once: 15 after the first collection, 30 after the second (cumulative).
    assert sum(p[2] for p in direct if p[0] == OPERATION_DURATION.name) == 15 + 30
    assert direct == exported(False, AggregationTemporality.CUMULATIVE, views)


def test_the_direct_path_is_used_only_with_the_sdk_versions_it_was_tested_with(monkeypatch):
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    histogram = provider.get_meter("test").create_histogram("h")
    assert sdk_histograms._supported(histogram) is sdk_version.startswith(sdk_histograms.TESTED_SDK_VERSIONS)
    monkeypatch.setattr(sdk_histograms, "TESTED_SDK_VERSIONS", ("0.0.",))
    assert sdk_histograms._supported(histogram) is False
    provider.shutdown()
