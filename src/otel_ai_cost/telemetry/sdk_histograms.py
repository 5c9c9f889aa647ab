"""Histogram observations recorded in batches: straight into the OpenTelemetry SDK's storage where that is known to
work, else through the public `Histogram.record`.

A drain holds every call since the last collection, and a call makes three histogram observations (its duration,
its input and its output tokens). Through the public API each observation builds a `Measurement`, cleans its
attributes, hashes them and finds its aggregation again: about 95 k instructions, a third of what a call costs us.
Here the aggregation of a series is found once per drain, and its values are added to the explicit-bucket
histogram the SDK keeps (sum, min, max, bucket counts), under that aggregation's lock, as its own `aggregate`
does. The points the SDK exports are the same; a test holds the two paths equal.

This reads private SDK structure, so it is used only with the SDK versions it was written and tested against
(`TESTED_SDK_VERSIONS`) and when that structure is there. Anything else, or any error on the way (logged once),
turns it off for the process, and the public API takes over; nothing is lost, since a batch is recorded in full
by one path or the other. No exemplars are sampled for these histograms either way: their observations are
recorded at collection time, outside any call's context (the counters carry the exemplars).
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger("otel_ai_cost")

# `opentelemetry-sdk` releases whose storage this module writes into (checked in the tests against the installed SDK).
TESTED_SDK_VERSIONS = ("1.45.",)

_enabled: bool | None = None  # decided on first use


def record_batch(histogram: Any, attributes: dict[str, Any], values: Sequence[float | int]) -> None:
    """Records `values` (finite, non-negative) as observations of `histogram` with `attributes`."""
    global _enabled
    if _enabled is None:
        _enabled = _supported(histogram)
    if _enabled:
        try:
            if _aggregate_directly(histogram, attributes, values):
                return
        except Exception:
            logger.warning(
                "otel-ai-cost: recording histograms into this OpenTelemetry SDK's storage failed; using its public "
                "API from now on",
                exc_info=True,
            )
            _enabled = False
    record = histogram.record
    for value in values:
        record(value, attributes)


def use_sdk_storage(enabled: bool | None) -> None:
    """Forces the direct path on or off (`None`: decide again on next use). For tests and benchmarks."""
    global _enabled
    _enabled = enabled


def _supported(histogram: Any) -> bool:
    try:
        from opentelemetry.sdk.metrics._internal.aggregation import _ExplicitBucketHistogramAggregation  # noqa: F401
        from opentelemetry.sdk.metrics._internal.measurement_consumer import SynchronousMeasurementConsumer
        from opentelemetry.sdk.version import __version__
    except Exception:
        return False
    if not __version__.startswith(TESTED_SDK_VERSIONS):
        return False
    return isinstance(getattr(histogram, "_measurement_consumer", None), SynchronousMeasurementConsumer)


def _aggregate_directly(histogram: Any, attributes: dict[str, Any], values: Sequence[float | int]) -> bool:
    """True when every value went into the SDK's storage; False (nothing recorded) for a histogram this path does
    not handle, which the caller then records through the public API."""
    from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes
    from opentelemetry.sdk.metrics._internal.aggregation import _ExplicitBucketHistogramAggregation

    consumer = histogram._measurement_consumer
    if not histogram._is_enabled():
        return True  # a disabled meter records nothing, as the public API would
    for value in values:
        if not (math.isfinite(value) and value >= 0):
            return False  # the public API warns about it, and skips it
    # Every aggregation first, so that a structure this module does not know records nothing here at all.
    targets = []
    for storage in list(consumer._reader_storages.values()):
        for match in storage._get_or_init_view_instrument_match(histogram):
            kept = attributes
            if match._view._attribute_keys is not None:
                kept = {k: v for k, v in attributes.items() if k in match._view._attribute_keys}
            with match._lock:
                aggregation = match._get_or_create_aggregation(_hash_attributes(kept), kept)
            if type(aggregation) is not _ExplicitBucketHistogramAggregation:
                return False
            targets.append((match, aggregation))
    for match, aggregation in targets:
        if match._reset_on_collect:
            with match._lock:  # a delta reader's collect() swaps aggregations under this lock
                _add(aggregation, values)
        else:
            _add(aggregation, values)
    return True


def _add(aggregation: Any, values: Sequence[float | int]) -> None:
    """`aggregation.aggregate()` for each value, without the per-value lock, bisect setup and exemplar offer."""
    if not values:
        return
    boundaries = aggregation._boundaries
    with aggregation._lock:
        if aggregation._value is None:
            aggregation._value = aggregation._get_empty_bucket_counts()
        counts = aggregation._value
        total = aggregation._sum
        for value in values:
            counts[bisect_left(boundaries, value)] += 1
            total += value  # one at a time, in order: the same float sum as the SDK's own aggregate()
        aggregation._sum = total
        if aggregation._record_min_max:
            aggregation._min = min(aggregation._min, *values)
            aggregation._max = max(aggregation._max, *values)
