"""Cost, token, request and duration metrics, recorded off the hot path.

One SDK `add`/`record` costs about 10 us, and a call produces up to a dozen points. So the instrumented call only
appends one tuple to a queue; the queue is drained when a metric reader collects (inside the callback of the
`ai_cost.instrumentation.errors` observable counter, which every collection runs before it reads the
synchronous instruments' storage). Counter points are summed per series before they reach the SDK, in Decimal for
money. Exemplars keep working: each point is recorded with the context of a span of that series.

Every label value passes through the meter provider's `LabelBounds` on the way (`attribution/labels.py`): at most
`OTEL_AI_COST_METRIC_LABEL_LIMIT` values per label (default 100), or a label's allow-list, the rest as `other`. So
the series stay far below the SDK's cardinality cap (2,000 per instrument), past which it would merge unrelated
series into one overflow point; totals summed over a label stay exact.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation, get_meter
from opentelemetry.trace import NonRecordingSpan, SpanContext

from otel_ai_cost import __version__
from otel_ai_cost.attribution.labels import LabelBounds, label_bounds
from otel_ai_cost.contract import (
    ERROR_TYPE,
    INSTRUMENTATION_ERRORS,
    INSTRUMENTATION_SCOPE,
    OPERATION_DURATION,
    OUTCOME_LABEL,
    REQUESTS,
    SCHEMA_URL,
    SPEND,
    TOKEN_USAGE,
    TOKENS,
    UNATTRIBUTED_CALLS,
    Cost,
    GenAI,
    Resource,
    TokenType,
)
from otel_ai_cost.pricing.usage import Usage
from otel_ai_cost.telemetry.errors import internal_error_counts, report_internal_error
from otel_ai_cost.telemetry.sdk_histograms import record_batch

Labels = tuple[tuple[str, str], ...]


class CallPoint:
    """Everything the metrics need from one finished call. A plain slotted class: it is built on the hot path,
    and everything derived from it (labels, token classes) is computed when the queue is drained."""

    __slots__ = (
        "amount",
        "attribution",
        "duration_s",
        "error_type",
        "labels_of",
        "model",
        "operation",
        "outcome",
        "pricing_status",
        "provider",
        "span_context",
        "usage",
    )

    def __init__(
        self,
        labels_of: Callable[[CallPoint], Labels],
        provider: str,
        model: str,
        operation: str,
        attribution: Mapping[str, object],
        span_context: SpanContext,
        duration_s: float,
        error_type: str | None,
        outcome: str,
        pricing_status: str,
        amount: Decimal | None,
        usage: Usage | None,
    ) -> None:
        self.labels_of = labels_of  # the recorder's allow-listed label set
        self.provider = provider
        self.model = model
        self.operation = operation
        self.attribution = attribution
        self.span_context = span_context
        self.duration_s = duration_s
        self.error_type = error_type
        self.outcome = outcome
        self.pricing_status = pricing_status
        self.amount = amount
        self.usage = usage


def token_classes(usage: Usage | None) -> tuple[tuple[str, int], ...]:
    """The mutually exclusive pricing classes of a call's usage, non-zero only."""
    if usage is None:
        return ()
    classes = (
        (TokenType.INPUT.value, usage.uncached_input_tokens),
        (TokenType.CACHE_READ.value, usage.cache_read_input_tokens),
        (TokenType.CACHE_WRITE_5M.value, usage.cache_write_5m_input_tokens),
        (TokenType.CACHE_WRITE_1H.value, usage.cache_write_1h_input_tokens),
        (TokenType.OUTPUT.value, usage.plain_output_tokens),
        (TokenType.REASONING.value, usage.reasoning_output_tokens),
        (TokenType.INPUT_IMAGE.value, usage.image_input_tokens),
        (TokenType.INPUT_AUDIO.value, usage.audio_input_tokens),
        (TokenType.OUTPUT_IMAGE.value, usage.image_output_tokens),
        (TokenType.OUTPUT_AUDIO.value, usage.audio_output_tokens),
    )
    return tuple(c for c in classes if c[1])


class CostMetrics:
    """The metric instruments of one meter provider, fed from a queue of finished calls."""

    def __init__(self, meter: Meter, bounds: LabelBounds | None = None) -> None:
        self._queue: deque[CallPoint] = deque()
        self._unattributed: deque[tuple[str, str]] = deque()  # (environment, provider) of each unattributed call
        self._drain_lock = threading.Lock()
        self._bounds = bounds if bounds is not None else label_bounds()  # used under the drain lock only
        self.token_usage = meter.create_histogram(
            TOKEN_USAGE.name,
            unit=TOKEN_USAGE.unit,
            description=TOKEN_USAGE.description,
            explicit_bucket_boundaries_advisory=list(TOKEN_USAGE.buckets or ()),
        )
        self.duration = meter.create_histogram(
            OPERATION_DURATION.name,
            unit=OPERATION_DURATION.unit,
            description=OPERATION_DURATION.description,
            explicit_bucket_boundaries_advisory=list(OPERATION_DURATION.buckets or ()),
        )
        self.spend = meter.create_counter(SPEND.name, unit=SPEND.unit, description=SPEND.description)
        self.tokens = meter.create_counter(TOKENS.name, unit=TOKENS.unit, description=TOKENS.description)
        self.requests = meter.create_counter(REQUESTS.name, unit=REQUESTS.unit, description=REQUESTS.description)
        self.unattributed = meter.create_counter(
            UNATTRIBUTED_CALLS.name, unit=UNATTRIBUTED_CALLS.unit, description=UNATTRIBUTED_CALLS.description
        )
        meter.create_observable_counter(
            INSTRUMENTATION_ERRORS.name,
            callbacks=[self._collect],
            unit=INSTRUMENTATION_ERRORS.unit,
            description=INSTRUMENTATION_ERRORS.description,
        )

    def record(self, point: CallPoint) -> None:
        """Hot path: one deque append (atomic, no lock)."""
        self._queue.append(point)

    def count_unattributed(self, environment: str, provider: str) -> None:
        """A call recorded `(unattributed)` (strict attribution): one deque append, summed when drained."""
        self._unattributed.append((environment, provider))

    def _collect(self, _options: CallbackOptions) -> Iterable[Observation]:
        try:
            self.drain()
        except Exception as exc:
            report_internal_error("metrics.drain", exc)
        return [Observation(n, {"ai_cost.component": c}) for c, n in internal_error_counts().items()]

    def drain(self) -> None:
        """Move queued calls into the SDK instruments; runs at collection time."""
        with self._drain_lock:
            points: list[CallPoint] = []
            while self._queue:
                points.append(self._queue.popleft())
            if points:
                self._record_points(points)
            if self._unattributed:
                self._record_unattributed()

    def _record_unattributed(self) -> None:
        counts: dict[tuple[str, str], int] = {}
        while self._unattributed:
            key = self._unattributed.popleft()
            counts[key] = counts.get(key, 0) + 1
        bound = self._bounds.value
        for (environment, provider), count in counts.items():
            labels = {
                Resource.DEPLOYMENT_ENVIRONMENT_NAME: bound(Resource.DEPLOYMENT_ENVIRONMENT_NAME, environment),
                GenAI.PROVIDER_NAME: bound(GenAI.PROVIDER_NAME, provider),
            }
            self.unattributed.add(count, labels)

    def _record_points(self, points: Sequence[CallPoint]) -> None:
        # Calls of one series share their label tuples and attribute dicts: each is built once per drain (a drain
        # holds every call since the last collection), and a span context becomes an exemplar's context only for
        # the last call of each counter series.
        spend: dict[Labels, list[Any]] = {}
        tokens: dict[Labels, list[Any]] = {}
        requests: dict[Labels, list[Any]] = {}
        labels_of_call: dict[tuple[Any, ...], Labels] = {}
        histograms: dict[tuple[Any, ...], tuple[_Batch, _Batch, _Batch]] = {}  # duration, input, output tokens
        bound = self._bounds.value
        for p in points:
            key = (p.labels_of, p.provider, p.model, p.operation, id(p.attribution))
            labels = labels_of_call.get(key)
            if labels is None:
                labels = labels_of_call[key] = tuple((name, bound(name, value)) for name, value in p.labels_of(p))
            key = (p.operation, p.provider, p.model, p.error_type)
            batches = histograms.get(key)
            if batches is None:
                semconv = {
                    GenAI.OPERATION_NAME: bound(GenAI.OPERATION_NAME, p.operation),
                    GenAI.PROVIDER_NAME: bound(GenAI.PROVIDER_NAME, p.provider),
                    GenAI.REQUEST_MODEL: bound(GenAI.REQUEST_MODEL, p.model),
                }
                batches = histograms[key] = (
                    (semconv if p.error_type is None else {**semconv, ERROR_TYPE: p.error_type}, []),
                    ({**semconv, GenAI.TOKEN_TYPE: "input"}, []),
                    ({**semconv, GenAI.TOKEN_TYPE: "output"}, []),
                )
            # Histograms take one observation per call, batched per series (`sdk_histograms`). Exemplars ride on
            # the counters (cheaper, and the spend counter is where a trace link is wanted).
            batches[0][1].append(p.duration_s)
            usage = p.usage
            if usage is not None:
                batches[1][1].append(usage.input_tokens)
                batches[2][1].append(usage.output_tokens)
            # Counters are summed per series first; the last call's span becomes the exemplar.
            if p.amount is not None:
                _add(spend, labels, p.amount, p.span_context)
            for token_type, count in token_classes(usage):
                _add(tokens, (*labels, (GenAI.TOKEN_TYPE, token_type)), count, p.span_context)
            series = (*labels, (OUTCOME_LABEL, p.outcome), (Cost.PRICING_STATUS, p.pricing_status))
            _add(requests, series, 1, p.span_context)
        for duration, input_tokens, output_tokens in histograms.values():
            record_batch(self.duration, *duration)
            for batch in (input_tokens, output_tokens):
                if batch[1]:
                    record_batch(self.token_usage, *batch)
        for labels, (amount, span_context) in spend.items():
            # Prometheus stores float64; the exact figure is on the span and in the ledger.
            self.spend.add(float(amount), dict(labels), context=_exemplar_context(span_context))
        for counter, sums in ((self.tokens, tokens), (self.requests, requests)):
            for labels, (count, span_context) in sums.items():
                counter.add(count, dict(labels), context=_exemplar_context(span_context))


Attributes = dict[str, str]
_Batch = tuple[Attributes, list[Any]]  # one histogram series: its attributes, and its values in call order


def _add(sums: dict[Labels, list[Any]], labels: Labels, value: Any, span_context: SpanContext) -> None:
    """Adds `value` to the series' sum (Decimal for money, int for counts); its span becomes the exemplar's."""
    entry = sums.get(labels)
    if entry is None:
        sums[labels] = [value, span_context]
    else:
        entry[0] += value
        entry[1] = span_context


def _exemplar_context(span_context: SpanContext) -> Context:
    return trace.set_span_in_context(NonRecordingSpan(span_context))


_by_provider: weakref.WeakKeyDictionary[object, CostMetrics] = weakref.WeakKeyDictionary()
_global_metrics: CostMetrics | None = None
_lock = threading.Lock()


def metrics_for(meter_provider: MeterProvider | None) -> CostMetrics:
    """The one `CostMetrics` of a meter provider (both instrumentors share it, so the queue is drained once)."""
    global _global_metrics
    with _lock:
        if meter_provider is None:
            if _global_metrics is None:
                _global_metrics = CostMetrics(_meter(None))
            return _global_metrics
        existing = _by_provider.get(meter_provider)
        if existing is None:
            existing = _by_provider[meter_provider] = CostMetrics(_meter(meter_provider))
        return existing


def _meter(meter_provider: MeterProvider | None) -> Meter:
    return get_meter(INSTRUMENTATION_SCOPE, __version__, meter_provider, schema_url=SCHEMA_URL)
