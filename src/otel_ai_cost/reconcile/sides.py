"""The two sides of a provider's day, per model: what was tracked (the ledger's aggregate rows) and what one billing
source billed (its lines and usage rows), matched by a normalized model name."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from otel_ai_cost.contract import RecordSource
from otel_ai_cost.ledger.manual import BILLED_SOURCES
from otel_ai_cost.ledger.store import EXACT_SUMS, AggregateRow
from otel_ai_cost.reconcile.billed import BilledLine, BilledUsage

__all__ = ["NO_MODEL", "STANDARD_TIERS", "TRACKED_GROUPS", "BilledSide", "TrackedSide", "model_key", "split_legacy"]

# The fields the tracked side is read with (`LedgerStore.aggregate`).
TRACKED_GROUPS = ("day", "provider", "model", "pricing_tier", "record_source", "cost_source", "environment")
NO_MODEL = "(no model)"  # billed lines that bill no model: tools, storage, lines not understood
STANDARD_TIERS = ("", "standard", "default", "auto")  # the spellings of "no special tier"


def model_key(name: str) -> str:
    """The name a model is matched by on both sides (see the module documentation)."""
    text = name.strip().lower()
    text = re.sub(r"^(?:(?:us|eu|apac|global|jp|au)\.)?(?:[a-z0-9-]+\.)(?=[a-z])", "", text) if "." in text else text
    text = re.sub(r"^(?:ft:|ft-)", "", text)
    text = re.sub(r"(?:-v\d+(?::\d+)?)$", "", text)  # Bedrock's -v1:0
    text = re.sub(r"[-_@]?(?:\d{4}-\d{2}-\d{2}|\d{8})$", "", text)  # dated snapshots
    return re.sub(r"[^a-z0-9]", "", text)


@dataclass
class TrackedSide:
    """One provider's day and model on the tracked side."""

    name: str = ""
    amount: Decimal = Decimal(0)
    calls: int = 0
    unknown: int = 0
    input: int = 0  # semconv input (cache included)
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0
    tiers: dict[str, Decimal] = field(default_factory=dict)  # tier -> amount
    tier_calls: dict[str, int] = field(default_factory=dict)

    def add(self, row: AggregateRow, tier: str) -> None:
        self.amount = EXACT_SUMS.add(self.amount, row.amount)
        self.calls += row.calls
        self.unknown += row.unknown_cost_calls
        self.input += row.input_tokens
        self.cache_read += row.cache_read_input_tokens
        self.cache_write += row.cache_write_input_tokens
        self.output += row.output_tokens
        self.tiers[tier] = EXACT_SUMS.add(self.tiers.get(tier, Decimal(0)), row.amount)
        self.tier_calls[tier] = self.tier_calls.get(tier, 0) + row.calls


@dataclass
class BilledSide:
    """One provider's day and model on the billed side (from one source)."""

    name: str = ""
    amount: Decimal = Decimal(0)
    lines: list[BilledLine] = field(default_factory=list)
    usage: list[BilledUsage] = field(default_factory=list)


def split_legacy(rows: Sequence[AggregateRow]) -> tuple[list[tuple[AggregateRow, str]], list[BilledLine]]:
    """Tracked rows (with their tier), and the dashboard or invoice figures that older versions kept as ledger
    records (`record --source dashboard` before billed lines existed): those are billed figures, not spend."""
    tracked: list[tuple[AggregateRow, str]] = []
    legacy: list[BilledLine] = []
    for row in rows:
        group = dict(row.group)
        tier = group.get("pricing_tier", "")
        tier = "" if tier in STANDARD_TIERS else tier
        by_hand = group.get("record_source") in (RecordSource.MANUAL.value, RecordSource.IMPORT.value)
        if by_hand and group.get("cost_source") in BILLED_SOURCES:
            legacy.append(
                BilledLine(
                    provider=group["provider"],
                    day=date.fromisoformat(group["day"]),
                    source=group["cost_source"],
                    line=f"ledger record ({group.get('model') or 'all models'})",
                    amount=row.amount,
                    model=group.get("model", ""),
                )
            )
        else:
            tracked.append((row, tier))
    return tracked, legacy
