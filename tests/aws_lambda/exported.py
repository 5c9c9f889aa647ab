"""What reached the OTLP receiver and the ledger, in the terms the tests assert on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from launcher.otlp_receiver import OtlpReceiver, attributes
from otel_ai_cost.contract import INSTRUMENTATION_SCOPE
from otel_ai_cost.ledger.open_store import open_store
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.store import UsageQuery


@dataclass(frozen=True)
class ExportedSpan:
    trace_id: str
    span_id: str
    name: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


def cost_spans(receiver: OtlpReceiver) -> list[ExportedSpan]:
    """Our GenAI spans, in the order they were received."""
    found = []
    for request in receiver.traces:
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                if scope_spans.scope.name != INSTRUMENTATION_SCOPE:
                    continue
                for span in scope_spans.spans:
                    found.append(
                        ExportedSpan(
                            span.trace_id.hex(), span.span_id.hex(), span.name, attributes(span.attributes), resource
                        )
                    )
    return found


def metric_points(receiver: OtlpReceiver, name: str) -> list[list[tuple[dict[str, Any], Any]]]:
    """Per metrics export received: the data points of metric `name` (labels, point)."""
    exports = []
    for request in receiver.metrics:
        points = []
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        data = getattr(metric, metric.WhichOneof("data"))
                        points += [(attributes(p.attributes), p) for p in data.data_points]
        exports.append(points)
    return exports


def ledger_records(url: str) -> list[LedgerRecord]:
    store = open_store(url, create=False)
    try:
        return list(store.query(UsageQuery()))
    finally:
        store.close()
