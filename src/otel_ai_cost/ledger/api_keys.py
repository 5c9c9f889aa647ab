"""API keys seen in more than one environment: a production key used from `development` or `cicd`.

Each record carries its key's fingerprint (`ai_cost.api_key.fingerprint`, never the key); the stores keep, per
(fingerprint, provider, environment), the first and last UTC day it was seen and its calls, at write time, so this
question reads that small table (SQLite) or registry partition (DynamoDB), never the records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from otel_ai_cost.contract import DOCTOR_ENVIRONMENT, SHARED_API_KEY_LOOKBACK_DAYS

__all__ = ["SharedApiKey", "lookback_start", "shared_keys"]


@dataclass(frozen=True)
class SharedApiKey:
    """One key (by fingerprint) whose calls were recorded in more than one environment."""

    fingerprint: str
    provider: str
    environments: tuple[str, ...]  # sorted
    calls: int | None  # over every environment since the key was first seen; None: not counted (DynamoDB)
    last_day: str  # YYYY-MM-DD (UTC): the last day it was seen in any of them


def lookback_start(today: date, days: int = SHARED_API_KEY_LOOKBACK_DAYS) -> date:
    """The first UTC day of the window `ai_cost_ledger_shared_api_keys` counts over (today included)."""
    return today - timedelta(days=days - 1)


def shared_keys(rows: Iterable[tuple[str, str, str, int | None, str]]) -> list[SharedApiKey]:
    """From (fingerprint, provider, environment, calls, last_day) rows: the keys seen in more than one environment,
    by provider then fingerprint. The environment of `otel-ai-cost doctor --write-test` is no environment of a key."""
    grouped: dict[tuple[str, str], list[tuple[str, int | None, str]]] = {}
    for fingerprint, provider, environment, calls, last_day in rows:
        if environment != DOCTOR_ENVIRONMENT:
            grouped.setdefault((fingerprint, provider), []).append((environment, calls, last_day))
    return [
        SharedApiKey(
            fingerprint=fingerprint,
            provider=provider,
            environments=tuple(sorted({e for e, _, _ in seen})),
            calls=None if any(c is None for _, c, _ in seen) else sum(c for _, c, _ in seen if c is not None),
            last_day=max(d for _, _, d in seen),
        )
        for (fingerprint, provider), seen in sorted(grouped.items(), key=lambda item: (item[0][1], item[0][0]))
        if len({e for e, _, _ in seen}) > 1
    ]
