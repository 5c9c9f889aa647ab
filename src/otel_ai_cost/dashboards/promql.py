"""PromQL builders: selectors from the telemetry contract, so every metric name and label in a query comes from it.

A selector only filters on labels the metric can carry: its contract labels, plus the environment, which the
collector copies from the resource onto every data point that lacks it (`transform/metric_labels` in
collector/config.yaml) -- so the semconv histograms, whose contract labels have no environment, get one too. Where a
producer sets no environment at all the label is absent, which `=~".*"` (the "All" value) still matches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from otel_ai_cost import contract
from otel_ai_cost.contract import GenAI, MetricSpec, PrometheusMetric, Resource

RATE_INTERVAL = "$__rate_interval"
RANGE = "$__range"


def prom_label(attribute: str) -> str:
    """The Prometheus label of an OTel attribute, as the collector's exporter names it (`.` becomes `_`)."""
    return attribute.replace(".", "_")


# Labels of the OTel metrics (Prometheus spelling).
ENVIRONMENT = prom_label(Resource.DEPLOYMENT_ENVIRONMENT_NAME)
PROVIDER = prom_label(GenAI.PROVIDER_NAME)
MODEL = prom_label(GenAI.REQUEST_MODEL)
OPERATION = prom_label(GenAI.OPERATION_NAME)
OPERATION_TYPE = prom_label(contract.Attribution.OPERATION_TYPE)
TEAM = prom_label(contract.Attribution.TEAM)
TOKEN_TYPE = prom_label(GenAI.TOKEN_TYPE)
OUTCOME = prom_label(contract.OUTCOME_LABEL)
PRICING_STATUS = prom_label(contract.Cost.PRICING_STATUS)
ERROR_TYPE = prom_label(contract.ERROR_TYPE)
LE = "le"

# Labels the collector adds to every OTel data point (from the resource), whatever the metric.
COLLECTOR_LABELS: frozenset[str] = frozenset({ENVIRONMENT})

# Template variables and the labels they filter, for the OTel metrics and for the ledger's own gauges.
VARIABLE_LABELS: Mapping[str, str] = {"environment": ENVIRONMENT, "provider": PROVIDER, "model": MODEL}
LEDGER_VARIABLE_LABELS: Mapping[str, str] = {"environment": "environment", "provider": "provider", "model": "model"}


@dataclass(frozen=True)
class Metric:
    """A metric as a query sees it: its Prometheus name and the labels it may carry."""

    name: str
    labels: frozenset[str]
    variable_labels: Mapping[str, str]  # template variable -> label it filters, for this metric's label scheme

    def select(self, *matchers: str, variables: bool = True) -> str:
        """`name{...}`: the given matchers (`label="v"`, `label!="v"`, ...) plus a `=~"$var"` filter for each
        template variable whose label this metric carries."""
        parts = list(matchers)
        for matcher in matchers:
            label = _matcher_label(matcher)
            if label not in self.labels:
                raise ValueError(f"{self.name} has no label {label!r} (contract labels: {sorted(self.labels)})")
        if variables:
            parts += [
                f'{label}=~"${variable}"'
                for variable, label in self.variable_labels.items()
                if label in self.labels and not any(_matcher_label(m) == label for m in matchers)
            ]
        return f"{self.name}{{{', '.join(parts)}}}" if parts else self.name


def _matcher_label(matcher: str) -> str:
    for op in ("=~", "!~", "!=", "="):
        if op in matcher:
            return matcher.split(op, 1)[0].strip()
    raise ValueError(f"not a label matcher: {matcher!r}")


def otel(spec: MetricSpec, suffix: str = "") -> Metric:
    """An OTel metric of the contract (`suffix`: `_bucket`, `_sum` or `_count` of a histogram)."""
    if suffix and spec.instrument != "histogram":
        raise ValueError(f"{spec.name} is a {spec.instrument}, it has no {suffix} series")
    labels = {prom_label(a) for a in (*spec.labels, *spec.extra_labels)} | COLLECTOR_LABELS
    if suffix == "_bucket":
        labels.add(LE)
    return Metric(spec.prometheus_name + suffix, frozenset(labels), VARIABLE_LABELS)


def ledger(metric: PrometheusMetric) -> Metric:
    """A metric of the ledger service's /metrics (Prometheus-native names and labels)."""
    return Metric(metric.name, frozenset(metric.labels), LEDGER_VARIABLE_LABELS)


def by(labels: tuple[str, ...]) -> str:
    return f" by ({', '.join(labels)})" if labels else ""


def sum_rate(selector: str, labels: tuple[str, ...] = (), window: str = RATE_INTERVAL) -> str:
    """Rate per series first, then sum (counter resets are handled per series)."""
    return f"sum{by(labels)} (rate({selector}[{window}]))"


def sum_increase(selector: str, labels: tuple[str, ...] = (), window: str = RANGE) -> str:
    return f"sum{by(labels)} (increase({selector}[{window}]))"


def quantile(q: float, bucket_selector: str, labels: tuple[str, ...] = (), window: str = RATE_INTERVAL) -> str:
    """`histogram_quantile` over a classic histogram's `_bucket` series."""
    return f"histogram_quantile({q}, {sum_rate(bucket_selector, (*labels, LE), window)})"


def zero_filled(filtered: str, base: str) -> str:
    """`filtered`, or 0 for every group `base` has but `filtered` lacks: a count of something that has not happened
    yet (errors, unpriced calls) reads 0 instead of "No data". Both sides must be grouped by the same labels."""
    return f"({filtered} or 0 * {base})"


def ratio(numerator: str, denominator: str) -> str:
    return f"({numerator}) / ({denominator})"


def period(value: str) -> str:
    """The matcher of the ledger gauges' `period` label: "day" (the current UTC day) or "month"."""
    return f'period="{value}"'
