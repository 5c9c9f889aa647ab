"""The comparison engine on hand-made tracked rows and billed lines: verdicts, causes, and which bill counts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from otel_ai_cost.ledger.store import AggregateRow
from otel_ai_cost.reconcile.billed import OTHER, BilledLine, BilledUsage
from otel_ai_cost.reconcile.compare import compare, model_key
from otel_ai_cost.reconcile.result import Cause, Verdict

D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)
TODAY = date(2026, 12, 1)


def tracked(day: date, amount: str, *, provider: str = "openai", model: str = "gpt-4o-mini", tier: str = "",
            calls: int = 10, unknown: int = 0, input_tokens: int = 0, output_tokens: int = 0, cache_read: int = 0,
            record_source: str = "span", cost_source: str = "local", environment: str = "production",
            ) -> AggregateRow:  # fmt: skip
    group = (("day", day.isoformat()), ("provider", provider), ("model", model), ("pricing_tier", tier),
             ("record_source", record_source), ("cost_source", cost_source), ("environment", environment))  # fmt: skip
    return AggregateRow(group=group, amount=Decimal(amount), calls=calls, unpriced_calls=unknown,
                        input_tokens=input_tokens, output_tokens=output_tokens, cache_read_input_tokens=cache_read,
                        cache_write_input_tokens=0, reasoning_output_tokens=0, unknown_cost_calls=unknown)  # fmt: skip


def line(day: date, amount: str, *, provider: str = "openai", model: str = "gpt-4o-mini-2024-07-18",
         token_class: str = "input", tier: str = "", source: str = "openai_admin", text: str | None = None,
         parsed: bool = True, final: bool = True, period: str = "day") -> BilledLine:  # fmt: skip
    return BilledLine(provider=provider, day=day, source=source, line=text or f"{model}, {token_class} {tier}",
                      amount=Decimal(amount), model=model, token_class=token_class, tier=tier, parsed=parsed,
                      final=final, period=period)  # fmt: skip


def usage(day: date, input_tokens: int, output_tokens: int, *, model: str = "gpt-4o-mini-2024-07-18", tier: str = "",
          provider_side: bool = False) -> BilledUsage:  # fmt: skip
    return BilledUsage(provider="openai", day=day, source="openai_admin", model=model, tier=tier,
                       input_tokens=input_tokens, output_tokens=output_tokens, provider_side=provider_side)  # fmt: skip


def run(rows, lines, usage_rows=(), **kwargs):
    kwargs.setdefault("start_day", D1)
    kwargs.setdefault("end_day", D3)
    return compare(rows, lines, usage_rows, today=TODAY, **kwargs)


def test_an_exact_match_is_zero_percent() -> None:
    result = run([tracked(D1, "1.234567")], [line(D1, "1.000000"), line(D1, "0.234567", token_class="output")])
    (day,) = result.days
    assert day.verdict is Verdict.MATCH
    assert day.relative == 0 and day.difference == 0
    assert day.tracked == day.billed == Decimal("1.234567")
    assert not day.findings


def test_missed_calls_are_named_by_the_token_counts() -> None:
    rows = [tracked(D1, "1.00", input_tokens=1_000_000, output_tokens=0)]
    result = run(rows, [line(D1, "2.00")], [usage(D1, 2_000_000, 0)])
    (day,) = result.days
    assert day.verdict is Verdict.UNDER
    assert Cause.NOT_INSTRUMENTED in day.causes
    assert Cause.STALE_PRICE not in day.causes


def test_a_stale_price_is_told_apart_from_missed_calls() -> None:
    rows = [tracked(D1, "1.00", input_tokens=1_000_000)]
    result = run(rows, [line(D1, "1.50")], [usage(D1, 1_000_000, 0)])
    (day,) = result.days
    assert day.verdict is Verdict.UNDER
    assert day.causes == (Cause.STALE_PRICE,)
    assert "input about $1.50/1M" in day.findings[0].detail


def test_unpriced_calls_make_tracked_a_lower_bound() -> None:
    result = run([tracked(D1, "0.50", unknown=3)], [line(D1, "1.00")])
    (day,) = result.days
    assert day.verdict is Verdict.UNDER and day.unknown_cost_calls == 3
    assert Cause.UNPRICED in day.causes


def test_a_batch_tier_billed_but_tracked_as_standard() -> None:
    result = run([tracked(D1, "2.00")], [line(D1, "1.00", tier="batch")])
    (day,) = result.days
    assert day.verdict is Verdict.OVER
    assert Cause.TIER_MISMATCH in day.causes
    assert "batch" in day.findings[0].detail and "standard" in day.findings[0].detail


def test_billed_without_any_tracked_call() -> None:
    result = run([], [line(D1, "3.00", model="gpt-4.1-2025-04-14")])
    (day,) = result.days
    assert day.verdict is Verdict.NOT_TRACKED
    assert day.causes == (Cause.NOT_INSTRUMENTED,)


def test_tracked_without_a_bill_yet_and_a_pulled_day_without_lines() -> None:
    result = run([tracked(D1, "1.00"), tracked(D2, "1.00")], [], covered={"openai_admin": [D2]})
    first, second = result.days
    assert first.verdict is Verdict.NO_BILL_YET and first.billed is None
    assert second.billed == 0 and second.verdict is Verdict.OVER


def test_a_day_boundary_edge() -> None:
    rows = [tracked(D1, "1.10"), tracked(D2, "0.90")]
    result = run(rows, [line(D1, "1.00"), line(D2, "1.00")])
    assert [day.verdict for day in result.days] == [Verdict.OVER, Verdict.UNDER]
    assert all(Cause.DAY_BOUNDARY in day.causes for day in result.days)


def test_an_unparsed_line_is_kept_in_the_billed_total_and_named() -> None:
    lines = [line(D1, "1.00"), line(D1, "0.25", model="", token_class=OTHER, text="mystery line", parsed=False)]
    result = run([tracked(D1, "1.00")], lines)
    (day,) = result.days
    assert day.billed == Decimal("1.25")
    assert Cause.UNPARSED_LINES in day.causes
    assert "mystery line" in " ".join(finding.detail for finding in day.findings)


def test_the_api_bill_wins_over_a_dashboard_figure_of_the_same_day() -> None:
    lines = [line(D1, "1.00"), line(D1, "5.00", source="dashboard", model="")]
    result = run([tracked(D1, "1.00")], lines)
    (day,) = result.days
    assert day.billed == Decimal("1.00") and day.source == "openai_admin"


def test_a_dashboard_figure_is_the_bill_of_a_provider_without_an_api() -> None:
    rows = [tracked(D1, "2.00", provider="x_ai", model="grok-4")]
    result = run(rows, [line(D1, "2.00", provider="x_ai", source="dashboard", model="")])
    (day,) = result.days
    assert day.verdict is Verdict.MATCH and day.source == "dashboard"


def test_legacy_dashboard_records_are_billed_not_tracked() -> None:
    rows = [tracked(D1, "2.00", provider="x_ai", model="grok-4"),
            tracked(D1, "2.00", provider="x_ai", model="", record_source="manual", cost_source="dashboard",
                    calls=1)]  # fmt: skip
    (day,) = run(rows, []).days
    assert day.tracked == Decimal("2.00") and day.billed == Decimal("2.00")
    assert day.verdict is Verdict.MATCH


def test_a_monthly_invoice_is_compared_with_the_month() -> None:
    rows = [tracked(date(2026, 11, d), "1.00", provider="perplexity", model="sonar") for d in range(1, 31)]
    invoice = line(date(2026, 11, 1), "30.00", provider="perplexity", source="invoice", model="", period="month")
    result = run(rows, [invoice], start_day=date(2026, 11, 1), end_day=date(2026, 11, 30))
    assert all(day.verdict is Verdict.NO_BILL_YET for day in result.days)
    (month,) = [row for row in result.totals if row.source == "invoice"]
    assert month.verdict is Verdict.MATCH and month.tracked == Decimal("30.00")


def test_anthropic_priority_tier_is_said_not_counted() -> None:
    rows = [tracked(D1, "1.00", provider="anthropic", model="claude-sonnet-4-5"),
            tracked(D1, "0.80", provider="anthropic", model="claude-sonnet-4-5", tier="priority")]  # fmt: skip
    lines = [line(D1, "1.00", provider="anthropic", model="claude-sonnet-4-5-20250929", source="anthropic_admin")]
    (day,) = run(rows, lines).days
    assert day.verdict is Verdict.MATCH and day.tracked == Decimal("1.00")
    assert Cause.NOT_IN_BILL in day.causes


def test_provider_side_usage_is_named() -> None:
    rows = [tracked(D1, "1.00", input_tokens=1_000_000)]
    result = run(rows, [line(D1, "1.20")], [usage(D1, 1_000_000, 0), usage(D1, 200_000, 0, provider_side=True)])
    assert Cause.PROVIDER_SIDE in result.days[0].causes


def test_a_partial_day_is_not_final() -> None:
    (day,) = run([tracked(D1, "1.00")], [line(D1, "1.00", final=False)]).days
    assert not day.final and Cause.NOT_FINAL in day.causes


def test_models_meet_across_spellings() -> None:
    assert model_key("gpt-4o-mini-2024-07-18") == model_key("gpt-4o-mini")
    assert model_key("us.anthropic.claude-3-haiku-20240307-v1:0") == model_key("Claude3Haiku")
    assert model_key("claude-haiku-4-5-20251001") == model_key("claude-haiku-4-5")
    assert model_key("gpt-4.1") != model_key("gpt-4o")


def test_unpriced_calls_are_not_mistaken_for_a_stale_price() -> None:
    rows = [tracked(D1, "1.00", input_tokens=2_000_000, unknown=1)]
    (day,) = run(rows, [line(D1, "2.00")], [usage(D1, 2_000_000, 0)]).days
    assert day.causes == (Cause.UNPRICED,)


def test_accounts_mapped_to_an_environment_get_rows_of_their_own() -> None:
    from dataclasses import replace

    rows = [tracked(D1, "1.00"), tracked(D1, "0.50", environment="staging")]
    lines = [replace(line(D1, "1.00"), account="proj_a", environment="production", line="a"),
             replace(line(D1, "0.70"), account="proj_b", environment="staging", line="b")]  # fmt: skip
    result = run(rows, lines)
    production, staging = result.environments
    assert (production.environment, production.account, production.verdict) == ("production", "proj_a", Verdict.MATCH)
    assert (staging.tracked, staging.billed, staging.verdict) == (Decimal("0.50"), Decimal("0.70"), Verdict.UNDER)
    assert {day.environment for day in result.run_record().days} == {"", "production", "staging"}


def test_each_source_is_registered_under_its_own_name_and_providers() -> None:
    import importlib

    from otel_ai_cost.reconcile.compare import SOURCE_PRECEDENCE
    from otel_ai_cost.reconcile.sources import SOURCES

    for spec in SOURCES:
        cls = getattr(importlib.import_module(spec.module), spec.cls)
        assert (cls.name, tuple(cls.providers)) == (spec.source, spec.providers)
        assert spec.source in SOURCE_PRECEDENCE
