"""Anomalies: a day's spend set against the 7 days before it. Pure: it reads per-day aggregate rows, never a store.

The input is `LedgerStore.aggregate(UsageQuery(start_day=first - 7 days, end_day=last), GROUP_BY)`: one row per
(day, environment, provider, operation type, model). Each report day is checked against its own trailing 7 UTC
days (the 7 days before it; a day without any call counts as $0):

- **spike**: spend of an environment, of a service (provider) in an environment, or of an operation type in an
  environment, at least `factor` times (default 3x) its trailing 7-day daily average at the same granularity
  (a service's or operation type's spike that is its environment's own, the same amounts, is listed once). The
  average must be at least `NEAR_ZERO` ($0.01 a day): below it, "3x" of almost nothing says nothing (an
  environment's jump from there is `from_zero`). The message gives the increase as a percentage of the average:
  4x the average is a *300% increase*, so the default factor flags increases of 200% and more.
- **from_zero**: an environment whose trailing daily average is below `NEAR_ZERO` ($0.01, i.e. under $0.07 over
  the 7 days: "about $0"; no call at all is $0) and which spends at least `FROM_ZERO_MIN` ($1.00) on the day.
- **new_model**: a model (of a provider) with calls on the day and none in the trailing 7 days in any environment
  in scope; listed once per environment it was used in that day.
- **new_operation_type**: likewise an operation type; calls without one are not counted.
- **unpriced**: calls of unknown cost (no price, a stream cut before its usage: `ledger.unknown_cost`) of a model
  in an environment on the day, when the trailing 7 days had none of that model there. The day's figures that
  include them are lower bounds.

Nothing is "new" or "from zero" before there is history: the `new_*`, `unpriced` and `from_zero` anomalies need
some call (of any environment in scope) before the day, in the rows or, for the days before the rows begin,
`earlier_calls`. So the first day of a ledger flags nothing, rather than every model it has.

Averages are exact when the division ends, else rounded half-even to 12 decimal places (as `/ai_usage`'s); the
messages quote the exact 7-day total instead, and the comparisons never divide (`7 x day >= factor x total`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact

from otel_ai_cost.ledger.report import format_amount
from otel_ai_cost.ledger.store import EXACT_SUMS, AggregateRow
from otel_ai_cost.reports.model import Anomaly

__all__ = [
    "BASELINE_DAYS",
    "DEFAULT_FACTOR",
    "FROM_ZERO_MIN",
    "GROUP_BY",
    "KINDS",
    "NEAR_ZERO",
    "average",
    "divide",
    "find_anomalies",
    "window_start",
]

BASELINE_DAYS = 7
DEFAULT_FACTOR = Decimal(3)
NEAR_ZERO = Decimal("0.01")  # USD a day: a trailing daily average below this is "about $0"
FROM_ZERO_MIN = Decimal("1.00")  # USD: the least a day must spend to count as a jump from about $0
GROUP_BY = ("day", "environment", "provider", "operation_type", "model")
KINDS = ("spike", "from_zero", "new_model", "new_operation_type", "unpriced")  # the order they are listed in
_SPIKE_LEVELS = (("environment",), ("environment", "provider"), ("environment", "operation_type"))
_AVERAGE_PLACES = Decimal("1e-12")
_EXACT_DIVISION = Context(prec=60, traps=[Inexact])
_ROUNDED_DIVISION = Context(prec=60)


@dataclass
class _Sums:
    amount: Decimal = Decimal(0)
    calls: int = 0
    unknown: int = 0
    unpriced: int = 0

    @property
    def known(self) -> Decimal | None:
        """The amount, or None when no call has a known cost (an unknown cost is never $0)."""
        return None if self.calls and self.unknown >= self.calls else self.amount

    def add(self, row: AggregateRow) -> None:
        self.amount = EXACT_SUMS.add(self.amount, row.amount)
        self.calls += row.calls
        self.unknown += row.unknown_cost_calls
        self.unpriced += row.unpriced_calls


def window_start(first_day: date, baseline_days: int = BASELINE_DAYS) -> date:
    """The first day the rows must cover for a report whose first day is `first_day`."""
    return first_day - timedelta(days=baseline_days)


def average(total: Decimal, days: int) -> Decimal:
    """`total / days`: exact when the division ends, else rounded half-even to 12 decimal places."""
    return divide(total, Decimal(days))


def divide(dividend: Decimal, divisor: Decimal) -> Decimal:
    """`dividend / divisor` for a ratio or an average: exact when the division ends, else rounded half-even to 12
    decimal places."""
    try:
        return _EXACT_DIVISION.divide(dividend, divisor)
    except Inexact:
        return _ROUNDED_DIVISION.divide(dividend, divisor).quantize(_AVERAGE_PLACES, rounding=ROUND_HALF_EVEN)


def find_anomalies(
    rows: Iterable[AggregateRow],
    days: Sequence[date],
    *,
    factor: Decimal = DEFAULT_FACTOR,
    baseline_days: int = BASELINE_DAYS,
    near_zero: Decimal = NEAR_ZERO,
    from_zero_min: Decimal = FROM_ZERO_MIN,
    earlier_calls: bool = False,
) -> list[Anomaly]:
    """The anomalies of each of `days` (see the module documentation). `rows` are aggregate rows grouped by
    `day` and any of environment, provider, operation_type, model (a field a row lacks counts as ""), covering
    `baseline_days` before the first of `days`; `earlier_calls` says whether the ledger has calls before them."""
    if factor <= 0:
        raise ValueError(f"factor must be positive, got {factor}")
    by_day: dict[date, list[tuple[Mapping[str, str], AggregateRow]]] = {}
    for row in rows:
        group = dict(row.group)
        by_day.setdefault(date.fromisoformat(group["day"]), []).append((group, row))
    out: list[Anomaly] = []
    for day in sorted(days):
        trailing = [day - timedelta(days=n) for n in range(baseline_days, 0, -1)]
        history = earlier_calls or any(
            row.calls for seen, entries in by_day.items() if seen < day for _, row in entries
        )
        today = by_day.get(day, [])
        before = [entry for seen in trailing for entry in by_day.get(seen, [])]
        check = _Check(day, today, before, factor, baseline_days, near_zero, from_zero_min)
        out += check.spikes()
        if history:
            out += check.from_zero() + check.new("model") + check.new("operation_type") + check.unpriced()
    return sorted(out, key=_order)


def _order(anomaly: Anomaly) -> tuple[object, ...]:
    subject = anomaly.subject
    return (anomaly.day, KINDS.index(anomaly.kind), subject.get("environment", ""), -(anomaly.amount or 0),
            tuple(sorted(subject.items())))  # fmt: skip


class _Check:
    """One day's rows against its trailing days'."""

    def __init__(
        self,
        day: date,
        today: Sequence[tuple[Mapping[str, str], AggregateRow]],
        before: Sequence[tuple[Mapping[str, str], AggregateRow]],
        factor: Decimal,
        baseline_days: int,
        near_zero: Decimal,
        from_zero_min: Decimal,
    ) -> None:
        self.day = day
        self.today = today
        self.before = before
        self.factor = factor
        self.baseline_days = baseline_days
        self.near_zero = near_zero
        self.from_zero_min = from_zero_min

    def _sums(self, entries: Sequence[tuple[Mapping[str, str], AggregateRow]], keys: Sequence[str]) -> dict:
        out: dict[tuple[str, ...], _Sums] = {}
        for group, row in entries:
            out.setdefault(tuple(group.get(key, "") for key in keys), _Sums()).add(row)
        return out

    def spikes(self) -> list[Anomaly]:
        found = []
        n = self.baseline_days
        whole: dict[tuple[str, Decimal, Decimal], bool] = {}  # (environment, amount, trailing total) of its spikes
        for keys in _SPIKE_LEVELS:
            before = self._sums(self.before, keys)
            for values, sums in self._sums(self.today, keys).items():
                if "operation_type" in keys and not values[-1]:
                    continue  # calls without an operation type are no operation type's spike
                total = before.get(values, _Sums()).amount
                # average >= near_zero and amount >= factor x average, without dividing
                if total <= 0 or total < self.near_zero * n or sums.amount * n < self.factor * total:
                    continue
                if len(keys) == 1:
                    whole[(values[0], sums.amount, total)] = True
                elif (values[0], sums.amount, total) in whole:
                    continue  # the environment's own spike, already listed: its only service or operation type
                subject = dict(zip(keys, values, strict=True))
                ratio = divide(sums.amount * n, total)  # amount / (total / n)
                increase = ((ratio - 1) * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
                message = (
                    f"{_scope(subject)}: ${format_amount(sums.amount)}{_lower(sums)} on {self.day}, a {increase}% "
                    f"increase in usage compared to the {n}-day average (${format_amount(total)} over the {n} days "
                    f"before; {ratio.quantize(Decimal('0.1'), rounding=ROUND_HALF_EVEN)}x, flagged from "
                    f"{_factor_text(self.factor)}x)"
                )
                found.append(Anomaly("spike", self.day, subject, message, sums.amount, average(total, n), ratio))
        return found

    def from_zero(self) -> list[Anomaly]:
        found = []
        n = self.baseline_days
        before = self._sums(self.before, ("environment",))
        for (environment,), sums in self._sums(self.today, ("environment",)).items():
            total = before.get((environment,), _Sums()).amount
            if total >= self.near_zero * n or sums.amount < self.from_zero_min:
                continue
            was = "no spend" if total == 0 else f"${format_amount(total)} in all"
            message = (
                f"environment {environment}: ${format_amount(sums.amount)}{_lower(sums)} on {self.day} after about "
                f"$0 in the {n} days before ({was}; a daily average under ${format_amount(self.near_zero)})"
            )
            found.append(
                Anomaly("from_zero", self.day, {"environment": environment}, message, sums.amount, average(total, n))
            )
        return found

    def new(self, what: str) -> list[Anomaly]:
        """A model (of a provider) or operation type with no call in the trailing days in any environment in scope,
        listed once per environment it has calls in on the day."""
        name_keys = ("provider", "model") if what == "model" else ("operation_type",)
        seen = {values for values, sums in self._sums(self.before, name_keys).items() if sums.calls}
        found = []
        for values, sums in self._sums(self.today, ("environment", *name_keys)).items():
            if not values[-1] or not sums.calls or values[1:] in seen:
                continue
            subject = dict(zip(("environment", *name_keys), values, strict=True))
            name = f"model {subject['model']} ({subject['provider']})" if what == "model" else (
                f"operation type {subject['operation_type']}")  # fmt: skip
            message = (
                f"{name} seen for the first time in {self.baseline_days} days, in {subject['environment']} on "
                f"{self.day}: {sums.calls:,} call(s), {_money(sums)}"
            )
            found.append(Anomaly(f"new_{what}", self.day, subject, message, sums.known))
        return found

    def unpriced(self) -> list[Anomaly]:
        keys = ("environment", "provider", "model")
        before = self._sums(self.before, keys)
        found = []
        for values, sums in self._sums(self.today, keys).items():
            if not sums.unknown or before.get(values, _Sums()).unknown:
                continue
            subject = dict(zip(keys, values, strict=True))
            unpriced = f", {sums.unpriced:,} of them without a price" if sums.unpriced else ""
            message = (
                f"{sums.unknown:,} call(s) of model {subject['model'] or '(none)'} ({subject['provider']}) in "
                f"{subject['environment']} on {self.day} have an unknown cost{unpriced}; none in the "
                f"{self.baseline_days} days before: the day's totals are lower bounds"
            )
            found.append(Anomaly("unpriced", self.day, subject, message, sums.known))
        return found


def _scope(subject: Mapping[str, str]) -> str:
    environment = subject["environment"]
    if "provider" in subject:
        return f"service {subject['provider']} in {environment}"
    if "operation_type" in subject:
        return f"operation type {subject['operation_type']} in {environment}"
    return f"environment {environment}"


def _factor_text(factor: Decimal) -> str:
    text = format(factor, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _lower(sums: _Sums) -> str:
    return f" (and {sums.unknown:,} call(s) of unknown cost)" if sums.unknown else ""


def _money(sums: _Sums) -> str:
    if sums.unknown and sums.unknown == sums.calls:
        return "cost unknown"
    return f"${format_amount(sums.amount)}" + (" or more (some of unknown cost)" if sums.unknown else "")
