"""Model aliases: names a caller uses that are not model ids (Azure deployments, gateway model groups).

`OTEL_AI_COST_MODEL_ALIASES="prod-4o=gpt-4o,cheap=gpt-4o-mini"` prices a call that asked for `prod-4o` as
`gpt-4o` when the response names no model the catalog knows. Spans keep the names the caller and the provider
used; only the price lookup changes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from otel_ai_cost.contract import Env

logger = logging.getLogger("otel_ai_cost.pricing")


def parse_pairs(text: str | None, *, variable: str) -> dict[str, str]:
    """`"a=b, c=d"` -> {"a": "b", "c": "d"}; a malformed entry is logged (naming the variable) and skipped."""
    pairs: dict[str, str] = {}
    for raw in (text or "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, value = entry.partition("=")
        if not sep or not name.strip() or not value.strip():
            logger.warning("%s: ignoring %r: expected NAME=VALUE", variable, entry)
            continue
        pairs[name.strip()] = value.strip()
    return pairs


def model_aliases(environ: Mapping[str, str]) -> dict[str, str]:
    return parse_pairs(environ.get(Env.MODEL_ALIASES), variable=Env.MODEL_ALIASES)
