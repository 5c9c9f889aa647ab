"""In-process telemetry for the flush tests: SDK providers whose batches never export on their own (600 s), so
whatever the tests find exported was flushed."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_ai_cost.contract import INSTRUMENTATION_SCOPE

NEVER_MS = 600_000


class KeepingMetricExporter(MetricExporter):
    """Keeps every export it is given (the SDK has an in-memory reader, which collects on read, but no exporter)."""

    def __init__(self) -> None:
        super().__init__()
        self.exports: list[MetricsData] = []

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.exports.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass

    def total(self, name: str) -> int:
        """The sum of metric `name`'s points in the last export (cumulative: every call so far)."""
        if not self.exports:
            return 0
        return sum(
            point.value
            for resource_metrics in self.exports[-1].resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
            if metric.name == name
            for point in metric.data.data_points
        )


@dataclass
class Batched:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    spans: InMemorySpanExporter
    metrics: KeepingMetricExporter

    def cost_spans(self) -> Sequence[ReadableSpan]:
        return [
            s
            for s in self.spans.get_finished_spans()
            if s.instrumentation_scope is not None and s.instrumentation_scope.name == INSTRUMENTATION_SCOPE
        ]

    def shutdown(self) -> None:
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()


def batched_providers() -> Batched:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(spans, schedule_delay_millis=NEVER_MS))
    exporter = KeepingMetricExporter()
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=NEVER_MS)
    return Batched(tracer_provider, MeterProvider(metric_readers=[reader]), spans, exporter)


class BrokenFlushProcessor(SpanProcessor):
    """A span processor whose `force_flush` raises (a vendor's bug)."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        raise RuntimeError("this processor cannot flush")


class StuckFlushProcessor(SpanProcessor):
    """A span processor whose `force_flush` waits until `release()` (a hung collector)."""

    def __init__(self) -> None:
        self._released = threading.Event()
        self.entered = threading.Event()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self.entered.set()
        self._released.wait()
        return True

    def release(self) -> None:
        self._released.set()
