"""A reconciliation run as the ledger keeps it: the verdict of each provider's day, and the whole result.

The ledger stores every run (`LedgerStore.write_reconciliation`) and, per provider and day, the verdict of the
latest run that compared it: what the ledger service's `/metrics` (billed cost, discrepancy ratio) and `/v1/usage`
(billed beside tracked) answer from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["ReconciledDay", "RunRecord"]


@dataclass(frozen=True, slots=True)
class ReconciledDay:
    """One provider's UTC day in one run: tracked and billed totals and the verdict (`reconcile.result.Verdict`)."""

    provider: str
    day: date
    tracked: Decimal  # priced tracked calls; a lower bound when unknown_cost_calls > 0
    billed: Decimal | None  # None: no bill for that day yet
    verdict: str  # match, over, under, no bill yet, not tracked
    run_id: str
    finished_at: datetime  # timezone-aware UTC
    unknown_cost_calls: int = 0
    environment: str = ""  # "" = organization-wide (the bill's accounts not mapped to one environment)
    final: bool = True  # False while any billed line of the day may still change

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.provider, self.day.isoformat(), self.environment)

    @property
    def discrepancy_ratio(self) -> Decimal | None:
        """(tracked - billed) / billed; None without a bill or with a zero bill."""
        if self.billed is None or self.billed == 0:
            return None
        return (self.tracked - self.billed) / self.billed


@dataclass(frozen=True)
class RunRecord:
    """One run: its window, its per-day verdicts, and `document`, the full result as JSON-ready data
    (`Reconciliation.to_dict()`), which the ledger stores as it is."""

    run_id: str
    finished_at: datetime
    start_day: date
    end_day: date
    days: Sequence[ReconciledDay] = ()
    document: Mapping[str, Any] = field(default_factory=dict)
