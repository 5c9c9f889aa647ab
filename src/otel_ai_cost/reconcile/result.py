"""What a reconciliation says: per provider and day (and per model), tracked beside billed, a verdict, and causes.

`difference` is tracked minus billed; `relative` is that difference over the billed amount. So `over` means we
tracked more than was billed, `under` that the bill is higher than what we tracked (the usual sign of calls we did
not see). Every amount is an exact `Decimal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from otel_ai_cost.ledger.report import format_amount
from otel_ai_cost.reconcile.runs import ReconciledDay, RunRecord

__all__ = [
    "DEFAULT_THRESHOLD",
    "Cause",
    "Comparison",
    "Finding",
    "Reconciliation",
    "SourceSummary",
    "TokenClassDetail",
    "Verdict",
    "percent",
]

DEFAULT_THRESHOLD = Decimal("0.05")  # 5%: the project's success metric


class Verdict(str, Enum):
    MATCH = "match"  # |relative| <= threshold
    OVER = "over"  # tracked above billed, beyond the threshold
    UNDER = "under"  # tracked below billed, beyond the threshold
    NO_BILL_YET = "no bill yet"  # tracked calls, no billed figure for the day (yet)
    NOT_TRACKED = "not tracked"  # billed, no tracked call at all


class Cause(str, Enum):
    """Why tracked and billed differ, where the data can show it (a comparison may have several)."""

    NOT_INSTRUMENTED = "calls not instrumented"  # billed usage of a model with fewer or no tracked calls
    STALE_PRICE = "stale or wrong price"  # the token counts agree, the money does not
    UNPRICED = "unpriced records"  # tracked calls of unknown cost: tracked is a lower bound
    TIER_MISMATCH = "tier mismatch"  # billed as batch, flex or priority, tracked as another tier
    DAY_BOUNDARY = "day-boundary edge"  # the next or previous day differs by the opposite amount
    PROVIDER_SIDE = "provider-side usage"  # Workbench, console, another API key: usage our calls cannot see
    UNPARSED_LINES = "unparsed line items"  # lines whose text was not understood: kept as `other`
    NOT_FINAL = "bill not final"  # the provider may still change the figure (a partial day, AWS Estimated)
    NOT_IN_BILL = "not in this bill"  # tracked spend the source never bills (Anthropic priority tier)


@dataclass(frozen=True)
class Finding:
    cause: Cause
    detail: str  # one sentence a person can act on
    amount: Decimal | None = None  # the money the cause explains, when the data says

    def to_dict(self) -> dict[str, Any]:
        return {"cause": self.cause.value, "detail": self.detail, "amount": _text(self.amount)}


@dataclass(frozen=True)
class TokenClassDetail:
    """One token class of a model's day: tokens tracked and billed, and the money billed for the class."""

    token_class: str  # input (plain input), output, cache_read, cache_write (5m + 1h), ...
    tracked_tokens: int | None  # None: not comparable (tracked records keep no such class)
    billed_tokens: int | None  # None: the bill counts no tokens (no usage API for this source)
    billed_amount: Decimal | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "token_class": self.token_class,
            "tracked_tokens": self.tracked_tokens,
            "billed_tokens": self.billed_tokens,
            "billed_amount": _text(self.billed_amount),
        }


@dataclass(frozen=True)
class Comparison:
    """Tracked beside billed for one provider and period (`day`, or the whole window when `day` is None), for all
    its models (`model` "") or one."""

    provider: str
    day: date | None
    tracked: Decimal  # priced tracked calls (a lower bound when unknown_cost_calls > 0)
    billed: Decimal | None  # None: no bill for this period yet
    verdict: Verdict
    model: str = ""
    tracked_calls: int = 0
    unknown_cost_calls: int = 0
    findings: tuple[Finding, ...] = ()
    token_classes: tuple[TokenClassDetail, ...] = ()
    tiers: tuple[str, ...] = ()  # tiers seen on either side
    final: bool = True  # False while a billed line may still change
    source: str = ""  # the billing source the billed figure comes from
    environment: str = ""  # a deployment environment's share (accounts mapped to it); "" = the whole provider
    account: str = ""  # the billing accounts (projects, workspaces) of that share, comma-separated

    @property
    def difference(self) -> Decimal | None:
        return None if self.billed is None else self.tracked - self.billed

    @property
    def relative(self) -> Decimal | None:
        """difference / billed; None without a bill or with a zero bill."""
        if self.billed is None or self.billed == 0:
            return None
        return (self.tracked - self.billed) / self.billed

    @property
    def causes(self) -> tuple[Cause, ...]:
        return tuple(dict.fromkeys(finding.cause for finding in self.findings))

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "day": None if self.day is None else self.day.isoformat(),
            "model": self.model,
            "environment": self.environment,
            "account": self.account,
            "tracked": _text(self.tracked),
            "billed": _text(self.billed),
            "difference": _text(self.difference),
            "relative": _ratio(self.relative),
            "verdict": self.verdict.value,
            "tracked_calls": self.tracked_calls,
            "unknown_cost_calls": self.unknown_cost_calls,
            "final": self.final,
            "source": self.source,
            "tiers": list(self.tiers),
            "findings": [finding.to_dict() for finding in self.findings],
            "token_classes": [detail.to_dict() for detail in self.token_classes],
        }


@dataclass(frozen=True)
class SourceSummary:
    """What one billing source gave this run."""

    source: str
    pulled: bool  # False: not pulled this run (its stored lines were used), or it failed (see `error`)
    lines: int = 0
    unparsed_lines: int = 0
    usage_rows: int = 0
    requests: int = 0
    retries: int = 0
    error: str = ""  # why it could not be pulled (no credentials, the API refused); never a secret

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "pulled": self.pulled,
            "lines": self.lines,
            "unparsed_lines": self.unparsed_lines,
            "usage_rows": self.usage_rows,
            "requests": self.requests,
            "retries": self.retries,
            "error": self.error,
        }


@dataclass(frozen=True)
class Reconciliation:
    """One run's result: `days` (provider and day), `models` (provider, day and model), `environments` (provider,
    day and the environment mapped billing accounts belong to), `totals` (provider, whole window), plus the
    sources' summaries and notes."""

    run_id: str
    finished_at: datetime
    start_day: date
    end_day: date
    threshold: Decimal
    days: Sequence[Comparison] = ()
    models: Sequence[Comparison] = ()
    totals: Sequence[Comparison] = ()
    environments: Sequence[Comparison] = ()
    sources: Sequence[SourceSummary] = ()
    notes: Sequence[str] = ()

    @property
    def discrepancies(self) -> list[Comparison]:
        """Days whose verdict is over, under or not tracked (what --fail-on-discrepancy fails on)."""
        return [day for day in self.days if day.verdict in (Verdict.OVER, Verdict.UNDER, Verdict.NOT_TRACKED)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "finished_at": self.finished_at.isoformat().replace("+00:00", "Z"),
            "from": self.start_day.isoformat(),
            "to": self.end_day.isoformat(),
            "threshold": _ratio(self.threshold),
            "currency": "USD",
            "days": [row.to_dict() for row in self.days],
            "models": [row.to_dict() for row in self.models],
            "environments": [row.to_dict() for row in self.environments],
            "totals": [row.to_dict() for row in self.totals],
            "sources": [source.to_dict() for source in self.sources],
            "notes": list(self.notes),
        }

    def run_record(self) -> RunRecord:
        """The run as the ledger stores it."""
        days = [
            ReconciledDay(
                provider=row.provider,
                day=row.day,
                tracked=row.tracked,
                billed=row.billed,
                verdict=row.verdict.value,
                run_id=self.run_id,
                finished_at=self.finished_at,
                unknown_cost_calls=row.unknown_cost_calls,
                environment=row.environment,
                final=row.final,
            )
            for row in (*self.days, *self.environments)
            if row.day is not None
        ]
        return RunRecord(self.run_id, self.finished_at, self.start_day, self.end_day, days, self.to_dict())


def _text(value: Decimal | None) -> str | None:
    """An exact amount as plain text, at least cents (`ledger.report.format_amount`); None stays None."""
    return None if value is None else format_amount(value)


def _ratio(value: Decimal | None) -> str | None:
    """An exact ratio as plain text without trailing zeros (0, -0.6, 0.0123); None stays None."""
    if value is None:
        return None
    text = format(value, "f")
    return (text.rstrip("0").rstrip(".") if "." in text else text) or "0"


def percent(value: Decimal | None, places: int = 2) -> str:
    """`0.0123` -> `1.23%`; None -> `n/a`. For display only (the JSON keeps the exact ratio)."""
    if value is None:
        return "n/a"
    return f"{(value * 100).quantize(Decimal(1).scaleb(-places)):f}%"
