"""Which attributes may become metric labels (Prometheus labels, once exported), and how many values each may take."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping

from otel_ai_cost.contract import (
    METRIC_LABEL_LIMIT_DEFAULT,
    METRIC_LABEL_OTHER,
    METRIC_LABELS_DEFAULT,
    METRIC_LABELS_FORBIDDEN,
    Attribution,
    Env,
    GenAI,
)

__all__ = ["LabelBounds", "label_bounds", "label_values_variable", "metric_label_allowlist"]

_logger = logging.getLogger(__name__)


def metric_label_allowlist(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The attribute names the cost metrics carry as labels.

    `OTEL_AI_COST_METRIC_LABELS` (a comma list of attribute names) replaces the default
    (`gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.operation.name`, `deployment.environment.name`,
    `ai_cost.operation_type`, `ai_cost.team`); unset or blank means the default. Names whose values are
    unbounded (job, batch and user ids, CI run ids and URLs, commit SHAs, response ids, trace ids) and
    free-form `ai_cost.tag.*` tags are refused, with one warning, and dropped: every distinct value would
    create a new time series. Such values stay on the spans, where they belong.
    """
    environ = os.environ if environ is None else environ
    raw = (environ.get(Env.METRIC_LABELS) or "").strip()
    if not raw:
        return METRIC_LABELS_DEFAULT
    accepted: list[str] = []
    refused: list[str] = []
    for name in (part.strip() for part in raw.split(",")):
        if not name or name in accepted or name in refused:
            continue
        if name in METRIC_LABELS_FORBIDDEN or name.startswith(Attribution.TAG_PREFIX):
            refused.append(name)
        else:
            accepted.append(name)
    if refused:
        _logger.warning(
            "otel-ai-cost: %s lists unbounded attributes that cannot be metric labels, dropped: %s",
            Env.METRIC_LABELS,
            ", ".join(refused),
        )
    return tuple(accepted)


def label_values_variable(label: str) -> str:
    """The variable holding `label`'s allow-list: `gen_ai.request.model` -> `..._GEN_AI_REQUEST_MODEL`."""
    return Env.METRIC_LABEL_VALUES_PREFIX + re.sub(r"[^A-Z0-9]", "_", label.upper())


class LabelBounds:
    """Bounds the distinct values of every metric label, so that no caller (a typo, a generated model name, an
    attacker-chosen team) can grow the series without limit, and the SDK's cardinality cap never merges series.

    A label with an allow-list keeps exactly those values; any other label keeps the first `limit` distinct values
    it sees. Everything else becomes `other` (an empty value, "no team", is always kept): the totals summed over
    a label's series stay exact, only the split of the excess is lost. Memory is at most `limit` values per label.

    Not thread-safe on purpose: it runs when the metrics queue is drained, under the drain lock, so the calls
    themselves never touch it.
    """

    __slots__ = ("_allowed", "_kept", "limit")

    def __init__(self, limit: int = METRIC_LABEL_LIMIT_DEFAULT, allowed: Mapping[str, Iterable[str]] | None = None):
        self.limit = limit
        self._allowed = {name: frozenset(values) for name, values in (allowed or {}).items()}
        self._kept: dict[str, set[str]] = {}

    def value(self, label: str, value: str) -> str:
        """The value `label` is recorded with: `value` itself, or `other`."""
        allowed = self._allowed.get(label)
        if allowed is not None:
            return value if value in allowed or not value else METRIC_LABEL_OTHER
        kept = self._kept.get(label)
        if kept is None:
            kept = self._kept[label] = set()
        if value in kept or not value:
            return value
        if len(kept) < self.limit:
            kept.add(value)
            return value
        return METRIC_LABEL_OTHER


def label_bounds(environ: Mapping[str, str] | None = None) -> LabelBounds:
    """The bounds configured by `OTEL_AI_COST_METRIC_LABEL_LIMIT` (distinct values kept per label, default 100)
    and `OTEL_AI_COST_METRIC_LABEL_VALUES_<LABEL>` (a comma allow-list for one label; `<LABEL>` is the attribute
    name upper-cased, every other character `_`). A limit that is not a positive integer is warned about and the
    default used."""
    environ = os.environ if environ is None else environ
    limit = METRIC_LABEL_LIMIT_DEFAULT
    raw = (environ.get(Env.METRIC_LABEL_LIMIT) or "").strip()
    if raw:
        if raw.isdigit() and int(raw) > 0:
            limit = int(raw)
        else:
            _logger.warning(
                "otel-ai-cost: %s=%r is not a positive integer; using %d", Env.METRIC_LABEL_LIMIT, raw, limit
            )
    allowed: dict[str, list[str]] = {}
    prefix = Env.METRIC_LABEL_VALUES_PREFIX
    by_variable = {label_values_variable(label): label for label in _boundable_labels(environ)}
    for variable, text in environ.items():
        if variable.startswith(prefix) and variable in by_variable:
            allowed[by_variable[variable]] = [v.strip() for v in text.split(",") if v.strip()]
        elif variable.startswith(prefix):
            _logger.warning("otel-ai-cost: %s names no metric label; ignored", variable)
    return LabelBounds(limit, allowed)


def _boundable_labels(environ: Mapping[str, str]) -> set[str]:
    """Every label a metric point may carry: the allow-list's (default or configured) and the semconv ones."""
    configured = (part.strip() for part in (environ.get(Env.METRIC_LABELS) or "").split(","))
    return {
        *METRIC_LABELS_DEFAULT,
        *(name for name in configured if name),
        GenAI.PROVIDER_NAME,
        GenAI.REQUEST_MODEL,
        GenAI.OPERATION_NAME,
    }
