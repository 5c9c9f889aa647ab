"""The comparison: tracked spend (the ledger's records) beside billed spend (the sources' lines), per provider and
UTC day, per model, and over the window, with a verdict and the causes the data can show. Pure: no I/O.

**Which bill counts.** A provider's day can be billed by more than one source: an admin API, an invoice or a
dashboard figure entered by hand. The day's billed figure comes from ONE of them, the first present in
`SOURCE_PRECEDENCE` (an API, then an invoice, then a dashboard figure): never their sum. A monthly invoice
(`period` month) is compared with the month's tracked total in `totals`, never with one day.

**Models** are matched by a normalized name (`model_key`): lower case, no date or version suffix, no region or
vendor prefix, letters and digits only, so `gpt-4o-mini-2024-07-18` (the bill) meets `gpt-4o-mini` (the call)
and `us.anthropic.claude-3-haiku-20240307-v1:0` meets `Claude3Haiku`.

**Causes** (`result.Cause`), each named where the data shows it:
- calls not instrumented: the bill has usage of a model with no tracked call, or more tokens than were tracked;
- a stale or wrong price: the token counts agree (within the threshold) while the money does not;
- unpriced records: tracked calls of unknown cost, so tracked is a lower bound;
- a tier mismatch: billed as batch, flex or priority, tracked as another tier;
- a day-boundary edge: the next or the previous day differs by about the opposite amount;
- provider-side usage: usage the source marks as not from an API key (Workbench, console);
- unparsed line items: kept as `other`, in the billed total, and listed;
- a bill not final (today's partial day, AWS Estimated);
- spend a source never bills (Anthropic's cost report has no priority-tier cost): left out of the comparison
  and said, not counted as a difference.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from otel_ai_cost.contract import RecordSource
from otel_ai_cost.ledger.manual import BILLED_SOURCES
from otel_ai_cost.ledger.report import format_amount
from otel_ai_cost.ledger.store import EXACT_SUMS, AggregateRow
from otel_ai_cost.reconcile.billed import OTHER, BilledLine, BilledUsage
from otel_ai_cost.reconcile.result import (
    DEFAULT_THRESHOLD,
    Cause,
    Comparison,
    Finding,
    Reconciliation,
    SourceSummary,
    TokenClassDetail,
    Verdict,
    percent,
)
from otel_ai_cost.reconcile.sources import SOURCES, providers_billed_by

__all__ = ["MANUAL_BILLED_SOURCES", "SOURCE_PRECEDENCE", "TRACKED_GROUPS", "compare", "model_key"]

# The billed figure of a provider's day comes from the first of these present (never from their sum): the API
# sources, then an invoice, then a dashboard figure.
SOURCE_PRECEDENCE = (*(spec.source for spec in SOURCES), "invoice", "dashboard")
MANUAL_BILLED_SOURCES = BILLED_SOURCES  # figures entered by hand: the billed side, never tracked spend
# (provider, source) -> tiers that source never bills: tracked spend in them is left out of its comparison.
UNBILLED_TIERS: dict[tuple[str, str], tuple[str, ...]] = {("anthropic", "anthropic_admin"): ("priority",)}
# The fields the tracked side is read with (`LedgerStore.aggregate`).
TRACKED_GROUPS = ("day", "provider", "model", "pricing_tier", "record_source", "cost_source", "environment")
NO_MODEL = "(no model)"  # billed lines that bill no model: tools, storage, lines not understood
_STANDARD = ("", "standard", "default", "auto")


def model_key(name: str) -> str:
    """The name a model is matched by on both sides (see the module documentation)."""
    text = name.strip().lower()
    text = re.sub(r"^(?:(?:us|eu|apac|global|jp|au)\.)?(?:[a-z0-9-]+\.)(?=[a-z])", "", text) if "." in text else text
    text = re.sub(r"^(?:ft:|ft-)", "", text)
    text = re.sub(r"(?:-v\d+(?::\d+)?)$", "", text)  # Bedrock's -v1:0
    text = re.sub(r"[-_@]?(?:\d{4}-\d{2}-\d{2}|\d{8})$", "", text)  # dated snapshots
    return re.sub(r"[^a-z0-9]", "", text)


@dataclass
class _Tracked:
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
class _Billed:
    """One provider's day and model on the billed side (from one source)."""

    name: str = ""
    amount: Decimal = Decimal(0)
    lines: list[BilledLine] = field(default_factory=list)
    usage: list[BilledUsage] = field(default_factory=list)


def compare(
    tracked: Sequence[AggregateRow],
    lines: Sequence[BilledLine],
    usage: Sequence[BilledUsage] = (),
    *,
    start_day: date,
    end_day: date,
    today: date,
    threshold: Decimal = DEFAULT_THRESHOLD,
    covered: Mapping[str, Iterable[date]] | None = None,
    sources: Sequence[SourceSummary] = (),
    notes: Sequence[str] = (),
    run_id: str = "",
    now: Callable[[], datetime] | None = None,
) -> Reconciliation:
    """Compares `tracked` (aggregate rows grouped by `TRACKED_GROUPS`) with the billed `lines` and `usage` of the
    UTC days `start_day`..`end_day`.

    `covered`: per source, the days it was pulled for in this run; such a day without any line of the provider
    was billed $0 (before `today`), where an uncovered day without lines has no bill yet."""
    tracked_rows, legacy = _split_legacy(tracked)
    all_lines = [*lines, *legacy]
    covered_days = {source: set(days) for source, days in (covered or {}).items()}
    day_lines = [line for line in all_lines if line.period == "day" and start_day <= line.day <= end_day]
    month_lines = [line for line in all_lines if line.period == "month"]
    usage = [row for row in usage if start_day <= row.day <= end_day]

    tracked_by: dict[tuple[str, date], dict[str, tuple[str, _Tracked]]] = defaultdict(dict)
    tracked_env: dict[tuple[str, date, str], _Tracked] = defaultdict(_Tracked)
    for row, tier in tracked_rows:
        group = dict(row.group)
        day = date.fromisoformat(group["day"])
        if not start_day <= day <= end_day:
            continue
        models = tracked_by[(group["provider"], day)]
        name = group.get("model", "")
        key = model_key(name) or NO_MODEL
        models.setdefault(key, (name, _Tracked(name=name)))[1].add(row, tier)
        tracked_env[(group["provider"], day, group.get("environment", ""))].add(row, tier)

    lines_of: dict[tuple[str, date], list[BilledLine]] = defaultdict(list)
    for line in day_lines:
        lines_of[(line.provider, line.day)].append(line)
    usage_of: dict[tuple[str, date], list[BilledUsage]] = defaultdict(list)
    for row in usage:
        usage_of[(row.provider, row.day)].append(row)
    keys = set(tracked_by) | set(lines_of) | set(usage_of)
    days: list[Comparison] = []
    models: list[Comparison] = []
    environments: list[Comparison] = []
    for provider, day in sorted(keys):
        source = _chosen_source(provider, day, lines_of[(provider, day)], usage_of[(provider, day)], covered_days)
        billed = _billed_models(source, lines_of[(provider, day)], usage_of[(provider, day)])
        has_bill = source is not None and (
            any(b.lines or b.usage for b in billed.values()) or (day in covered_days.get(source, ()) and day < today)
        )
        model_rows = [
            _compare_model(
                provider,
                day,
                source or "",
                key,
                tracked_by[(provider, day)].get(key),
                billed.get(key),
                has_bill=has_bill,
                threshold=threshold,
            )
            for key in sorted(set(tracked_by[(provider, day)]) | set(billed))
        ]
        models.extend(model_rows)
        days.append(_day_row(provider, day, source or "", model_rows, billed, has_bill, threshold))
        environments.extend(_environment_rows(provider, day, billed, tracked_env, threshold))
    days = _day_boundaries(days, threshold)
    totals = _totals(days, month_lines, tracked_by, start_day, end_day, threshold)
    finished = (now or (lambda: datetime.now(timezone.utc)))()
    return Reconciliation(
        run_id=run_id,
        finished_at=finished,
        start_day=start_day,
        end_day=end_day,
        threshold=threshold,
        days=days,
        models=models,
        totals=totals,
        environments=environments,
        sources=sources,
        notes=notes,
    )


def verdict(tracked: Decimal, calls: int, billed: Decimal | None, threshold: Decimal) -> Verdict:
    if billed is None:
        return Verdict.NO_BILL_YET
    if calls == 0 and tracked == 0:
        return Verdict.NOT_TRACKED if billed != 0 else Verdict.MATCH
    if billed == 0:
        return Verdict.MATCH if tracked == 0 else Verdict.OVER
    relative = (tracked - billed) / billed
    if abs(relative) <= threshold:
        return Verdict.MATCH
    return Verdict.OVER if relative > 0 else Verdict.UNDER


# --- the two sides -------------------------------------------------------------------------------------------


def _split_legacy(rows: Sequence[AggregateRow]) -> tuple[list[tuple[AggregateRow, str]], list[BilledLine]]:
    """Tracked rows (with their tier), and the dashboard or invoice figures that older versions kept as ledger
    records (`record --source dashboard` before billed lines existed): those are billed figures, not spend."""
    tracked: list[tuple[AggregateRow, str]] = []
    legacy: list[BilledLine] = []
    for row in rows:
        group = dict(row.group)
        tier = group.get("pricing_tier", "")
        tier = "" if tier in _STANDARD else tier
        by_hand = group.get("record_source") in (RecordSource.MANUAL.value, RecordSource.IMPORT.value)
        if by_hand and group.get("cost_source") in MANUAL_BILLED_SOURCES:
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


def _chosen_source(
    provider: str, day: date, lines: Sequence[BilledLine], usage: Sequence[BilledUsage], covered: Mapping[str, set]
) -> str | None:
    """The source whose figure is the provider-day's bill (`lines` and `usage` are that day's)."""
    present = {line.source for line in lines} | {row.source for row in usage}
    present |= {source for source, days in covered.items() if day in days and provider in providers_billed_by(source)}
    for source in SOURCE_PRECEDENCE:
        if source in present:
            return source
    return min(present) if present else None


def _billed_models(source: str | None, lines: Sequence[BilledLine], usage: Sequence[BilledUsage]) -> dict[str, _Billed]:
    """The provider-day's bill from `source`, per model (`lines` and `usage` are that day's)."""
    out: dict[str, _Billed] = {}
    for line in lines:
        if line.source == source:
            key = model_key(line.model) or NO_MODEL
            billed = out.setdefault(key, _Billed(name=line.model or NO_MODEL))
            billed.amount = EXACT_SUMS.add(billed.amount, line.amount)
            billed.lines.append(line)
    for row in usage:
        if row.source == source:
            key = model_key(row.model) or NO_MODEL
            out.setdefault(key, _Billed(name=row.model or NO_MODEL)).usage.append(row)
    return out


# --- one model's day -------------------------------------------------------------------------------------------


def _compare_model(
    provider: str,
    day: date,
    source: str,
    key: str,
    entry: tuple[str, _Tracked] | None,
    billed: _Billed | None,
    *,
    has_bill: bool,
    threshold: Decimal,
) -> Comparison:
    tracked = entry[1] if entry else _Tracked()
    name = (
        (billed.name if billed and billed.name != NO_MODEL else "") or tracked.name or (billed.name if billed else "")
    )
    findings: list[Finding] = []
    amount = tracked.amount
    for tier in UNBILLED_TIERS.get((provider, source), ()):
        left_out = tracked.tiers.get(tier)
        if left_out:
            amount -= left_out
            findings.append(
                Finding(
                    Cause.NOT_IN_BILL,
                    f"{_usd(left_out)} of {tier}-tier calls of {name} tracked: "
                    f"{source} never bills the {tier} tier, so they are left out of this comparison",
                    left_out,
                )
            )
    billed_amount = billed.amount if billed else (Decimal(0) if has_bill else None)
    if billed and not billed.lines and billed.usage and not has_bill:
        billed_amount = None
    outcome = verdict(amount, tracked.calls, billed_amount, threshold)
    lines = billed.lines if billed else []
    billed_usage = [row for row in (billed.usage if billed else []) if not row.provider_side]
    provider_side = [row for row in (billed.usage if billed else []) if row.provider_side]
    classes = _token_classes(tracked, lines, billed_usage)

    if tracked.unknown:
        findings.append(
            Finding(
                Cause.UNPRICED,
                f"{tracked.unknown} tracked call(s) of {name} have an unknown cost: "
                "tracked is a lower bound (see `otel-ai-cost prices show`)",
            )
        )
    findings.extend(_tier_findings(name, tracked, lines, billed_usage))
    if provider_side:
        tokens = sum(row.input_tokens + row.output_tokens for row in provider_side)
        findings.append(
            Finding(
                Cause.PROVIDER_SIDE,
                f"{tokens:,} tokens of {name} were used outside the API (no API "
                "key: Workbench or console), which no instrumented call can see",
            )
        )
    if outcome == Verdict.NOT_TRACKED and key != NO_MODEL:
        findings.append(
            Finding(
                Cause.NOT_INSTRUMENTED,
                f"{_usd(billed_amount)} billed for {name}, and no call of it "
                "was tracked: calls not instrumented, or made with a key whose calls are not",
                billed_amount,
            )
        )
    elif outcome in (Verdict.UNDER, Verdict.OVER):
        findings.extend(_token_findings(name, tracked, classes, amount, billed_amount, threshold))
    unparsed = [line for line in lines if not line.parsed or line.token_class == OTHER]
    if unparsed:
        findings.append(_unparsed_finding(unparsed))
    if any(not line.final for line in lines) or any(not row.final for row in billed_usage):
        findings.append(_not_final(day))
    tiers = sorted({*tracked.tiers, *(line.tier for line in lines), *(row.tier for row in billed_usage)} - {""})
    return Comparison(
        provider=provider,
        day=day,
        model=name,
        tracked=amount,
        billed=billed_amount,
        verdict=outcome,
        tracked_calls=tracked.calls,
        unknown_cost_calls=tracked.unknown,
        findings=tuple(findings),
        token_classes=classes,
        tiers=tuple(tiers),
        final=all(line.final for line in lines) and all(row.final for row in billed_usage),
        source=source,
    )


def _token_classes(
    tracked: _Tracked, lines: Sequence[BilledLine], usage: Sequence[BilledUsage]
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


def _token_findings(
    name: str,
    tracked: _Tracked,
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
            f"{c.token_class} about {_usd(_rate(c.billed_amount, c.billed_tokens))}/1M"
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


def _tier_findings(
    name: str, tracked: _Tracked, lines: Sequence[BilledLine], usage: Sequence[BilledUsage]
) -> list[Finding]:
    billed_tiers: dict[str, Decimal | None] = {}
    for line in lines:
        if line.tier not in _STANDARD:
            billed_tiers[line.tier] = EXACT_SUMS.add(billed_tiers.get(line.tier) or Decimal(0), line.amount)
    for row in usage:
        if row.tier not in _STANDARD:
            billed_tiers.setdefault(row.tier, None)
    tracked_as = ", ".join(sorted(t or "standard" for t in tracked.tiers)) or "nothing"
    return [
        Finding(
            Cause.TIER_MISMATCH,
            f"{name} was billed in the {tier} tier"
            + (f" ({_usd(amount)})" if amount is not None else "")
            + f", but its calls were tracked as {tracked_as}",
            amount,
        )
        for tier, amount in sorted(billed_tiers.items())
        if tier not in tracked.tiers
    ]


def _unparsed_finding(lines: Sequence[BilledLine]) -> Finding:
    total = Decimal(0)
    for line in lines:
        total = EXACT_SUMS.add(total, line.amount)
    shown = ", ".join(repr(line.line) for line in lines[:3]) + (f" and {len(lines) - 3} more" if len(lines) > 3 else "")
    return Finding(
        Cause.UNPARSED_LINES,
        f"{len(lines)} billed line(s) not understood ({shown}), {_usd(total)}: kept in the billed total as `other`",
        total,
    )


# --- days and the window ---------------------------------------------------------------------------------------


def _day_row(
    provider: str,
    day: date,
    source: str,
    model_rows: Sequence[Comparison],
    billed: Mapping[str, _Billed],
    has_bill: bool,
    threshold: Decimal,
) -> Comparison:
    tracked = Decimal(0)
    for row in model_rows:
        tracked = EXACT_SUMS.add(tracked, row.tracked)
    total_billed: Decimal | None = None
    if has_bill:
        total_billed = Decimal(0)
        for entry in billed.values():
            total_billed = EXACT_SUMS.add(total_billed, entry.amount)
    calls = sum(row.tracked_calls for row in model_rows)
    findings = tuple(finding for row in model_rows for finding in row.findings if finding.cause != Cause.NOT_FINAL)
    final = all(row.final for row in model_rows)
    if not final:
        findings += (_not_final(day),)
    return Comparison(
        provider=provider,
        day=day,
        tracked=tracked,
        billed=total_billed,
        verdict=verdict(tracked, calls, total_billed, threshold),
        tracked_calls=calls,
        unknown_cost_calls=sum(row.unknown_cost_calls for row in model_rows),
        findings=findings,
        tiers=tuple(sorted({tier for row in model_rows for tier in row.tiers})),
        final=final,
        source=source,
    )


def _environment_rows(
    provider: str,
    day: date,
    billed: Mapping[str, _Billed],
    tracked_env: Mapping[tuple[str, date, str], _Tracked],
    threshold: Decimal,
) -> list[Comparison]:
    """Per environment that billing accounts are mapped to (`reconcile --accounts`): those accounts' bill beside
    the environment's tracked calls."""
    amounts: dict[str, Decimal] = {}
    accounts: dict[str, set[str]] = defaultdict(set)
    final: dict[str, bool] = {}
    for entry in billed.values():
        for line in entry.lines:
            if line.environment:
                amounts[line.environment] = EXACT_SUMS.add(amounts.get(line.environment, Decimal(0)), line.amount)
                accounts[line.environment].add(line.account or "(default)")
                final[line.environment] = final.get(line.environment, True) and line.final
    rows = []
    for environment in sorted(amounts):
        tracked = tracked_env.get((provider, day, environment), _Tracked())
        findings: tuple[Finding, ...] = ()
        if tracked.unknown:
            findings = (Finding(Cause.UNPRICED, f"{tracked.unknown} tracked call(s) in {environment} have an unknown "
                                "cost: tracked is a lower bound"),)  # fmt: skip
        rows.append(
            Comparison(
                provider=provider,
                day=day,
                tracked=tracked.amount,
                billed=amounts[environment],
                verdict=verdict(tracked.amount, tracked.calls, amounts[environment], threshold),
                tracked_calls=tracked.calls,
                unknown_cost_calls=tracked.unknown,
                findings=findings,
                final=final[environment],
                environment=environment,
                account=", ".join(sorted(accounts[environment])),
            )
        )
    return rows


def _day_boundaries(days: list[Comparison], threshold: Decimal) -> list[Comparison]:
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
                            f"opposite amounts ({_usd(row.difference)}, {_usd(other.difference)}): calls "
                            "near midnight counted on another day (the bill's day vs UTC)",
                            row.difference,
                        )
                    )
        out.append(_with_findings(row, extra) if extra else row)
    return out


def _totals(
    days: Sequence[Comparison],
    month_lines: Sequence[BilledLine],
    tracked_by: Mapping[tuple[str, date], Mapping[str, tuple[str, _Tracked]]],
    start_day: date,
    end_day: date,
    threshold: Decimal,
) -> list[Comparison]:
    """Per provider over the window; and per monthly invoice, against the tracked spend of its month."""
    out = []
    for provider in sorted({row.provider for row in days}):
        rows = [row for row in days if row.provider == provider]
        tracked, billed = Decimal(0), None
        for row in rows:
            tracked = EXACT_SUMS.add(tracked, row.tracked)
            if row.billed is not None:
                billed = EXACT_SUMS.add(billed or Decimal(0), row.billed)
        calls = sum(row.tracked_calls for row in rows)
        out.append(
            Comparison(
                provider=provider,
                day=None,
                tracked=tracked,
                billed=billed,
                verdict=verdict(tracked, calls, billed, threshold),
                tracked_calls=calls,
                unknown_cost_calls=sum(row.unknown_cost_calls for row in rows),
                final=all(row.final for row in rows),
            )
        )
    for line in month_lines:
        month = line.day.strftime("%Y-%m")
        tracked, calls, unknown = Decimal(0), 0, 0
        for (provider, day), models in tracked_by.items():
            if provider == line.provider and day.strftime("%Y-%m") == month:
                for _, entry in models.values():
                    tracked = EXACT_SUMS.add(tracked, entry.amount)
                    calls, unknown = calls + entry.calls, unknown + entry.unknown
        covers_month = start_day <= line.day and (line.day.replace(day=28) + timedelta(days=4)).replace(day=1) <= (
            end_day + timedelta(days=1)
        )
        findings = (
            ()
            if covers_month
            else (
                Finding(
                    Cause.NOT_FINAL, f"the window does not cover all of {month}: the tracked side is part of the month"
                ),
            )
        )
        out.append(
            Comparison(
                provider=line.provider,
                day=None,
                model=f"{line.source} {month}",
                tracked=tracked,
                billed=line.amount,
                verdict=verdict(tracked, calls, line.amount, threshold),
                tracked_calls=calls,
                unknown_cost_calls=unknown,
                findings=findings,
                source=line.source,
            )
        )
    return out


def _rate(amount: Decimal, tokens: int) -> Decimal:
    """USD per 1M tokens the bill implies, to 6 places: a description of the price, not an amount summed."""
    return (amount * 1_000_000 / tokens).quantize(Decimal("0.000001")).normalize()


def _not_final(day: date) -> Finding:
    return Finding(Cause.NOT_FINAL, f"the bill of {day} may still change (a partial day or an estimate): it is "
                   "re-pulled on the next runs")  # fmt: skip


def _with_findings(row: Comparison, extra: Sequence[Finding]) -> Comparison:
    return replace(row, findings=(*row.findings, *extra))


def _usd(amount: Decimal | None) -> str:
    """An exact amount in a sentence: `$0.00003915`, `-$1.50` (never rounded: `ledger.report.format_amount`)."""
    if amount is None:
        return "$?"
    return f"-${format_amount(-amount)}" if amount < 0 else f"${format_amount(amount)}"
