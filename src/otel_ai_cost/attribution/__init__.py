"""Attribution: who spent it (`ai_usage_context`, W3C Baggage) and where (deployment environment, CI run)."""

from __future__ import annotations

from otel_ai_cost.attribution.baggage import (
    DEFAULT_BAGGAGE_KEYS,
    MAX_BAGGAGE_VALUE_LENGTH,
    attribute_name,
    baggage_attributes,
    baggage_key_map,
    set_baggage_keys,
)
from otel_ai_cost.attribution.ci import detect_ci, is_ci, strip_credentials
from otel_ai_cost.attribution.context import (
    AttributeValue,
    UsageContext,
    ai_usage_context,
    current_attributes,
)
from otel_ai_cost.attribution.labels import metric_label_allowlist
from otel_ai_cost.attribution.resource_detector import (
    AICostResourceDetector,
    detect_environment,
    detect_resource_attributes,
    parse_resource_attributes,
)

__all__ = [
    "DEFAULT_BAGGAGE_KEYS",
    "MAX_BAGGAGE_VALUE_LENGTH",
    "AICostResourceDetector",
    "AttributeValue",
    "UsageContext",
    "ai_usage_context",
    "attribute_name",
    "baggage_attributes",
    "baggage_key_map",
    "current_attributes",
    "detect_ci",
    "detect_environment",
    "detect_resource_attributes",
    "is_ci",
    "metric_label_allowlist",
    "parse_resource_attributes",
    "set_baggage_keys",
    "strip_credentials",
]
