"""Which attributes may become metric labels (Prometheus labels, once exported)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from otel_ai_cost.contract import METRIC_LABELS_DEFAULT, METRIC_LABELS_FORBIDDEN, Attribution, Env

__all__ = ["metric_label_allowlist"]

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
