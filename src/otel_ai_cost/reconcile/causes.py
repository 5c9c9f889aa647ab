"""The causes a comparison names (`result.Cause`), each found from what the two sides of a day show: token counts
beside money (missed calls, a stale price), tiers, unparsed lines, neighbouring days, bills not final."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from otel_ai_cost.ledger.report import format_amount
from otel_ai_cost.ledger.store import EXACT_SUMS
from otel_ai_cost.reconcile.billed import BilledLine, BilledUsage
from otel_ai_cost.reconcile.result import Cause, Comparison, Finding, TokenClassDetail, Verdict, percent
from otel_ai_cost.reconcile.sides import STANDARD_TIERS, TrackedSide

__all__ = ["day_boundaries", "not_final", "tier_findings", "token_classes", "token_findings", "unparsed_finding", "usd"]


def token_classes(
    tracked: TrackedSide, lines: Sequence[BilledLine], usage: Sequence[BilledUsage]
) -> tuple[TokenClassDetail, ...]:
    """Tokens per class on both sides; the bill's count from its usage rows, else from its lines' quantities."""
    tracked_counts = {
        "input": tracked.input - tracked.cache_read - tracked.cache_write,
        "cache_read": tracked.cache_read,
        "cache_write": tracked.cache_write,
        "output": tracked.output,
    }
    billed_counts: dict[str, int] = {}
    if usage:
        for row in usage:
            writes = row.cache_write_5m_input_tokens + row.cache_write_1h_input_tokens
            for name, count in (
                ("input", row.input_tokens - row.cache_read_input_tokens - writes),
                ("cache_read", row.cache_read_input_tokens),
                ("cache_write", writes),
                ("output", row.output_tokens),
            ):
                billed_counts[name] = billed_counts.get(name, 0) + count
    amounts: dict[str, Decimal] = {}
    for line in lines:
        name = _class_of(line.token_class)
        if name is None:
            continue
        amounts[name] = EXACT_SUMS.add(amounts.get(name, Decimal(0)), line.amount)
        if not usage and line.quantity is not None and "token" in line.unit.lower():
            billed_counts[name] = billed_counts.get(name, 0) + int(line.quantity)
    names = [
        n
        for n in ("input", "cache_read", "cache_write", "output")
        if tracked_counts[n] or n in billed_counts or n in amounts
    ]
    return tuple(
        TokenClassDetail(
            name, tracked_counts[name], billed_counts.get(name) if billed_counts else None, amounts.get(name)
        )
        for name in names
    )


def _class_of(token_class: str) -> str | None:
    if token_class in ("input", "input_audio", "input_image"):
        return "input"
    if token_class in ("output", "reasoning", "output_audio", "output_image"):
        return "output"
    if token_class == "cache_read":
        return "cache_read"
    if token_class.startswith("cache_write"):
        return "cache_write"
    return None


def token_findings(
    name: str,
    tracked: TrackedSide,
    classes: Sequence[TokenClassDetail],
    amount: Decimal,
    billed: Decimal | None,
    threshold: Decimal,
) -> list[Finding]:
    """Missed calls or a stale price, told apart by the token counts (when the bill counts tokens)."""
    billed_tokens = sum(c.billed_tokens or 0 for c in classes if c.billed_tokens is not None)
    if not any(c.billed_tokens is not None for c in classes) or not billed_tokens:
        return []
    tracked_tokens = sum(c.tracked_tokens or 0 for c in classes)
    gap = Decimal(billed_tokens - tracked_tokens) / billed_tokens
    if gap > threshold:
        return [
            Finding(
                Cause.NOT_INSTRUMENTED,
                f"the bill counts {billed_tokens:,} tokens of {name}, {tracked_tokens:,} "
                f"were tracked ({percent(gap)} more billed): calls not instrumented",
                None if billed is None else billed - amount,
            )
        ]
    if abs(gap) <= threshold and not tracked.unknown:  # with calls of unknown cost, the money cannot tell
        implied = [
            f"{c.token_class} about {usd(_rate(c.billed_amount, c.billed_tokens))}/1M"
            for c in classes
            if c.billed_amount is not None and c.billed_tokens
        ]
        said = f"; the bill implies {', '.join(implied)}" if implied else ""
        return [
            Finding(
                Cause.STALE_PRICE,
                f"the token counts of {name} agree ({tracked_tokens:,} tracked, "
                f"{billed_tokens:,} billed) but the money does not: a stale or wrong price{said}",
                None if billed is None else amount - billed,
            )
        ]
    return []


def tier_findings(
    name: str, tracked: TrackedSide, lines: Sequence[BilledLine], usage: Sequence[BilledUsage]
) -> list[Finding]:
    billed_tiers: dict[str, Decimal | None] = {}
    for line in lines:
        if line.tier not in STANDARD_TIERS:
            billed_tiers[line.tier] = EXACT_SUMS.add(billed_tiers.get(line.tier) or Decimal(0), line.amount)
    for row in usage:
        if row.tier not in STANDARD_TIERS:
            billed_tiers.setdefault(row.tier, None)
    tracked_as = ", ".join(sorted(t or "standard" for t in tracked.tiers)) or "nothing"
    return [
        Finding(
            Cause.TIER_MISMATCH,
            f"{name} was billed in the {tier} tier"
            + (f" ({usd(amount)})" if amount is not None else "")
            + f", but its calls were tracked as {tracked_as}",
            amount,
        )
        for tier, amount in sorted(billed_tiers.items())
        if tier not in tracked.tiers
    ]


def unparsed_finding(lines: Sequence[BilledLine]) -> Finding:
    total = Decimal(0)
    for line in lines:
        total = EXACT_SUMS.add(total, line.amount)
    shown = ", ".join(repr(line.line) for line in lines[:3]) + (f" and {len(lines) - 3} more" if len(lines) > 3 else "")
    return Finding(
        Cause.UNPARSED_LINES,
        f"{len(lines)} billed line(s) not understood ({shown}), {usd(total)}: kept in the billed total as `other`",
        total,
    )


def day_boundaries(days: list[Comparison], threshold: Decimal) -> list[Comparison]:
    """Adds a day-boundary finding to two neighbouring days whose differences about cancel out."""
    by_key = {(row.provider, row.day): row for row in days}
    out = []
    for row in days:
        extra: list[Finding] = []
        if row.verdict in (Verdict.OVER, Verdict.UNDER) and row.difference is not None and row.day is not None:
            for neighbour_day in (row.day - timedelta(days=1), row.day + timedelta(days=1)):
                other = by_key.get((row.provider, neighbour_day))
                if other is None or other.difference is None or other.billed is None or row.billed is None:
                    continue
                if (other.difference > 0) == (row.difference > 0) or other.difference == 0:
                    continue
                if abs(row.difference + other.difference) <= threshold * (row.billed + other.billed):
                    extra.append(
                        Finding(
                            Cause.DAY_BOUNDARY,
                            f"{row.day} and {neighbour_day} differ by about "
                            f"opposite amounts ({usd(row.difference)}, {usd(other.difference)}): calls "
                            "near midnight counted on another day (the bill's day vs UTC)",
                            row.difference,
                        )
                    )
        out.append(_with_findings(row, extra) if extra else row)
    return out


def _rate(amount: Decimal, tokens: int) -> Decimal:
    """USD per 1M tokens the bill implies, to 6 places: a description of the price, not an amount summed."""
    return (amount * 1_000_000 / tokens).quantize(Decimal("0.000001")).normalize()


def not_final(day: date) -> Finding:
    return Finding(Cause.NOT_FINAL, f"the bill of {day} may still change (a partial day or an estimate): it is "
                   "re-pulled on the next runs")  # fmt: skip


def _with_findings(row: Comparison, extra: Sequence[Finding]) -> Comparison:
    return replace(row, findings=(*row.findings, *extra))


def usd(amount: Decimal | None) -> str:
    """An exact amount in a sentence: `$0.00003915`, `-$1.50` (never rounded: `ledger.report.format_amount`)."""
    if amount is None:
        return "$?"
    return f"-${format_amount(-amount)}" if amount < 0 else f"${format_amount(amount)}"
