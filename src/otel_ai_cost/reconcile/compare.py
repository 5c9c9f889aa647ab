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

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from otel_ai_cost.ledger.manual import BILLED_SOURCES
from otel_ai_cost.ledger.store import EXACT_SUMS, AggregateRow
from otel_ai_cost.reconcile.billed import OTHER, BilledLine, BilledUsage
from otel_ai_cost.reconcile.causes import (
    day_boundaries,
    not_final,
    tier_findings,
    token_classes,
    token_findings,
    unparsed_finding,
    usd,
)
from otel_ai_cost.reconcile.result import (
    DEFAULT_THRESHOLD,
    Cause,
    Comparison,
    Finding,
    Reconciliation,
    SourceSummary,
    Verdict,
)
from otel_ai_cost.reconcile.sides import NO_MODEL, TRACKED_GROUPS, BilledSide, TrackedSide, model_key, split_legacy
from otel_ai_cost.reconcile.sources import SOURCES, providers_billed_by

__all__ = ["MANUAL_BILLED_SOURCES", "SOURCE_PRECEDENCE", "TRACKED_GROUPS", "compare", "model_key"]

# The billed figure of a provider's day comes from the first of these present (never from their sum): the API
# sources, then an invoice, then a dashboard figure.
SOURCE_PRECEDENCE = (*(spec.source for spec in SOURCES), "invoice", "dashboard")
MANUAL_BILLED_SOURCES = BILLED_SOURCES  # figures entered by hand: the billed side, never tracked spend
# (provider, source) -> tiers that source never bills: tracked spend in them is left out of its comparison.
UNBILLED_TIERS: dict[tuple[str, str], tuple[str, ...]] = {("anthropic", "anthropic_admin"): ("priority",)}


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
    tracked_rows, legacy = split_legacy(tracked)
    all_lines = [*lines, *legacy]
    covered_days = {source: set(days) for source, days in (covered or {}).items()}
    day_lines = [line for line in all_lines if line.period == "day" and start_day <= line.day <= end_day]
    month_lines = [line for line in all_lines if line.period == "month"]
    usage = [row for row in usage if start_day <= row.day <= end_day]

    tracked_by: dict[tuple[str, date], dict[str, tuple[str, TrackedSide]]] = defaultdict(dict)
    tracked_env: dict[tuple[str, date, str], TrackedSide] = defaultdict(TrackedSide)
    for row, tier in tracked_rows:
        group = dict(row.group)
        day = date.fromisoformat(group["day"])
        if not start_day <= day <= end_day:
            continue
        models = tracked_by[(group["provider"], day)]
        name = group.get("model", "")
        key = model_key(name) or NO_MODEL
        models.setdefault(key, (name, TrackedSide(name=name)))[1].add(row, tier)
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
    days = day_boundaries(days, threshold)
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


def _billed_models(
    source: str | None, lines: Sequence[BilledLine], usage: Sequence[BilledUsage]
) -> dict[str, BilledSide]:
    """The provider-day's bill from `source`, per model (`lines` and `usage` are that day's)."""
    out: dict[str, BilledSide] = {}
    for line in lines:
        if line.source == source:
            key = model_key(line.model) or NO_MODEL
            billed = out.setdefault(key, BilledSide(name=line.model or NO_MODEL))
            billed.amount = EXACT_SUMS.add(billed.amount, line.amount)
            billed.lines.append(line)
    for row in usage:
        if row.source == source:
            key = model_key(row.model) or NO_MODEL
            out.setdefault(key, BilledSide(name=row.model or NO_MODEL)).usage.append(row)
    return out


# --- one model's day -------------------------------------------------------------------------------------------


def _compare_model(
    provider: str,
    day: date,
    source: str,
    key: str,
    entry: tuple[str, TrackedSide] | None,
    billed: BilledSide | None,
    *,
    has_bill: bool,
    threshold: Decimal,
) -> Comparison:
    tracked = entry[1] if entry else TrackedSide()
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
                    f"{usd(left_out)} of {tier}-tier calls of {name} tracked: "
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
    classes = token_classes(tracked, lines, billed_usage)

    if tracked.unknown:
        findings.append(
            Finding(
                Cause.UNPRICED,
                f"{tracked.unknown} tracked call(s) of {name} have an unknown cost: "
                "tracked is a lower bound (see `otel-ai-cost prices show`)",
            )
        )
    findings.extend(tier_findings(name, tracked, lines, billed_usage))
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
                f"{usd(billed_amount)} billed for {name}, and no call of it "
                "was tracked: calls not instrumented, or made with a key whose calls are not",
                billed_amount,
            )
        )
    elif outcome in (Verdict.UNDER, Verdict.OVER):
        findings.extend(token_findings(name, tracked, classes, amount, billed_amount, threshold))
    unparsed = [line for line in lines if not line.parsed or line.token_class == OTHER]
    if unparsed:
        findings.append(unparsed_finding(unparsed))
    if any(not line.final for line in lines) or any(not row.final for row in billed_usage):
        findings.append(not_final(day))
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


# --- days and the window ---------------------------------------------------------------------------------------


def _day_row(
    provider: str,
    day: date,
    source: str,
    model_rows: Sequence[Comparison],
    billed: Mapping[str, BilledSide],
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
        findings += (not_final(day),)
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
    billed: Mapping[str, BilledSide],
    tracked_env: Mapping[tuple[str, date, str], TrackedSide],
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
        tracked = tracked_env.get((provider, day, environment), TrackedSide())
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


def _totals(
    days: Sequence[Comparison],
    month_lines: Sequence[BilledLine],
    tracked_by: Mapping[tuple[str, date], Mapping[str, tuple[str, TrackedSide]]],
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
