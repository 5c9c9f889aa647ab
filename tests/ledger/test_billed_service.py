"""The billed side of the ledger service: `/v1/usage?billed=true` (billed beside tracked per day and provider) and the
reconciliation gauges of `/metrics` (billed, tracked, discrepancy ratio, days by verdict, last run), exact and
scoped to a token's environments. Real HTTP requests against a real service over a real SQLite store, holding
records, billed lines and a reconciliation run written through the store's own methods."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import requests

from otel_ai_cost import contract
from otel_ai_cost.ledger.service import LedgerService
from otel_ai_cost.ledger.service.access import parse_tokens
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.reconcile.billed import OTHER, BilledLine, BilledPull
from otel_ai_cost.reconcile.runs import ReconciledDay, RunRecord

NOW = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
D18, D19 = date(2026, 11, 18), date(2026, 11, 19)
FINISHED = datetime(2026, 11, 20, 6, 0, 4, 120000, tzinfo=timezone.utc)
EVERYTHING = "grafana-reader-0123456789"
PRODUCTION = "production-reader-0123456789"
STAGING = "staging-reader-0123456789"
TOKENS = f"""\
tokens:
  - {{name: grafana, token: {EVERYTHING}, read: ["*"]}}
  - {{name: production, token: {PRODUCTION}, read: [production]}}
  - {{name: staging, token: {STAGING}, read: [staging]}}
"""
BILLED = "start_date=2026-11-18&end_date=2026-11-19&billed=true"


def line(day: date, amount: str, *, account: str, environment: str, text: str, final: bool = True) -> BilledLine:
    return BilledLine(
        provider="openai", day=day, source="openai_costs", line=text, amount=Decimal(amount), account=account,
        environment=environment, final=final, model="gpt-4o-mini" if "gpt" in text else "",
        token_class="input" if "input" in text else OTHER, parsed="gpt" in text,
    )  # fmt: skip


def verdict(provider: str, day: date, tracked: str, billed: str | None, text: str, environment: str) -> ReconciledDay:
    return ReconciledDay(
        provider=provider, day=day, tracked=Decimal(tracked), billed=None if billed is None else Decimal(billed),
        verdict=text, run_id="run-1", finished_at=FINISHED, environment=environment,
    )  # fmt: skip


@pytest.fixture
def billed_store(store: SQLiteStore, make_record: Callable[..., Any]) -> SQLiteStore:
    """Tracked: openai 11-18 production 1.00 (two calls) and staging 0.25, 11-19 production 2.00; anthropic 11-19
    production 0.50. Billed (openai only): 11-18 production 1.05 (two lines), staging 0.25, organization-wide 0.30
    (an unparsed line); 11-19 production 2.0000, not final. A run of both days (anthropic: no bill yet)."""
    at = {D18: datetime(2026, 11, 18, 9, tzinfo=timezone.utc), D19: datetime(2026, 11, 19, 9, tzinfo=timezone.utc)}
    store.write(
        [
            make_record(timestamp=at[D18], amount=Decimal("0.60")),
            make_record(timestamp=at[D18], amount=Decimal("0.40")),
            make_record(timestamp=at[D18], amount=Decimal("0.25"), environment="staging"),
            make_record(timestamp=at[D19], amount=Decimal("2.00")),
            make_record(timestamp=at[D19], amount=Decimal("0.50"), provider="anthropic", request_model="claude"),
        ]
    )
    lines = [
        line(D18, "0.95", account="proj_prod", environment="production", text="gpt-4o-mini, input"),
        line(D18, "0.10", account="proj_prod", environment="production", text="gpt-4o-mini, output"),
        line(D18, "0.25", account="proj_staging", environment="staging", text="gpt-4o-mini, input"),
        line(D18, "0.30", account="", environment="", text="a line item nobody can parse"),
        line(D19, "2.0000", account="proj_prod", environment="production", text="gpt-4o-mini, input", final=False),
    ]
    store.replace_billed(BilledPull("openai_costs", D18, D19, lines=lines))
    days = [
        verdict("openai", D18, "1.00", "1.05", "match", "production"),
        verdict("openai", D18, "0.25", "0.25", "match", "staging"),
        verdict("openai", D18, "0", "0.30", "not tracked", ""),
        verdict("openai", D19, "2.00", "2.0000", "match", "production"),
        verdict("anthropic", D19, "0.50", None, "no bill yet", "production"),
    ]
    store.write_reconciliation(RunRecord("run-1", FINISHED, D18, D19, days))
    return store


@pytest.fixture
def service(start_service: Callable[..., LedgerService], billed_store: SQLiteStore) -> LedgerService:
    return start_service(billed_store, clock=lambda: NOW, tokens=parse_tokens(TOKENS))


def usage(service: LedgerService, query: str, token: str = EVERYTHING) -> requests.Response:
    return requests.get(f"{service.url}/v1/usage?{query}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def billed_rows(service: LedgerService, query: str, token: str = EVERYTHING) -> dict[tuple[str, str], dict]:
    answer = usage(service, query, token)
    assert answer.status_code == 200, answer.text
    return {(row["day"], row["provider"]): row for row in answer.json()["billed"]["rows"]}


# --- /v1/usage?billed=true -----------------------------------------------------------------------------------------
def test_billed_beside_tracked_per_day_and_provider_with_exact_amounts(service: LedgerService) -> None:
    answer = usage(service, f"aggregation=day,provider&{BILLED}")
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["query"] == {"start_date": "2026-11-18", "end_date": "2026-11-19", "billed": True}
    assert [(r["day"], r["provider"], r["amount"]) for r in document["rows"]] == [
        ("2026-11-18", "openai", "1.25"), ("2026-11-19", "anthropic", "0.5"), ("2026-11-19", "openai", "2"),
    ]  # fmt: skip  # the tracked aggregation is unchanged
    rows = {(row["day"], row["provider"]): row for row in document["billed"]["rows"]}
    assert list(rows) == [("2026-11-18", "openai"), ("2026-11-19", "anthropic"), ("2026-11-19", "openai")]

    day18 = rows[("2026-11-18", "openai")]
    assert (day18["tracked"], day18["billed"], day18["difference"]) == ("1.25", "1.60", "-0.35")
    assert (day18["billed_final"], day18["billed_lines"], day18["currency"]) == (True, 4, "USD")
    assert day18["verdict"] is None  # its parts disagree: each is listed
    assert day18["verdicts"] == [
        {"environment": "", "verdict": "not tracked"},
        {"environment": "production", "verdict": "match"},
        {"environment": "staging", "verdict": "match"},
    ]
    assert day18["reconciled_at"] == "2026-11-20T06:00:04.120000Z"

    day19 = rows[("2026-11-19", "openai")]
    assert (day19["tracked"], day19["billed"], day19["difference"]) == ("2", "2.0000", "0.0000")
    assert (day19["billed_final"], day19["verdict"]) == (False, "match")

    no_bill = rows[("2026-11-19", "anthropic")]  # a bill not stored yet is null, never "0"
    assert (no_bill["tracked"], no_bill["billed"], no_bill["billed_final"], no_bill["difference"]) == (
        "0.5", None, None, None,
    )  # fmt: skip
    assert (no_bill["billed_lines"], no_bill["verdict"]) == (0, "no bill yet")

    assert document["billed"]["summary"] == {
        "tracked": "3.25", "billed": "3.6000", "difference": "-0.3500", "billed_final": False, "currency": "USD",
        "unknown_cost_calls": 0, "rows_without_bill": 1,
    }  # fmt: skip


def test_a_production_token_sees_only_the_bill_lines_mapped_to_production(service: LedgerService) -> None:
    rows = billed_rows(service, f"aggregation=day,provider&{BILLED}", PRODUCTION)
    day18 = rows[("2026-11-18", "openai")]  # neither staging's 0.25 nor the organization-wide 0.30
    assert (day18["tracked"], day18["billed"], day18["difference"], day18["billed_lines"]) == (
        "1", "1.05", "-0.05", 2,
    )  # fmt: skip
    assert (day18["verdict"], day18["verdicts"]) == ("match", [{"environment": "production", "verdict": "match"}])
    assert rows[("2026-11-19", "openai")]["billed"] == "2.0000"
    assert rows[("2026-11-19", "anthropic")]["verdict"] == "no bill yet"

    staging = billed_rows(service, f"aggregation=day,provider&{BILLED}", STAGING)
    assert list(staging) == [("2026-11-18", "openai")]
    assert (staging[("2026-11-18", "openai")]["tracked"], staging[("2026-11-18", "openai")]["billed"]) == (
        "0.25", "0.25",
    )  # fmt: skip

    refused = usage(service, f"aggregation=day&environment=staging&{BILLED}", PRODUCTION)
    assert refused.status_code == 403 and refused.json()["parameter"] == "environment"


def test_filters_the_bill_honours_narrow_both_sides(service: LedgerService) -> None:
    openai = billed_rows(service, f"aggregation=provider&provider=openai&{BILLED}")
    assert list(openai) == [("2026-11-18", "openai"), ("2026-11-19", "openai")]
    staging = billed_rows(service, f"aggregation=day&environment=staging&{BILLED}")
    assert [(key, row["tracked"], row["billed"]) for key, row in staging.items()] == [
        (("2026-11-18", "openai"), "0.25", "0.25")
    ]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        (f"aggregation=model&{BILLED}", "billed"),  # neither day nor provider
        (f"aggregation=service,model&{BILLED}", "billed"),
        (BILLED, "billed"),  # records, not an aggregation
        ("aggregation=day&start_date=2026-11-18&end_date=2026-11-19&billed=yes", "billed"),
        ("aggregation=day&start_date=2026-11-18&billed=true", "end_date"),
        ("aggregation=day&end_date=2026-11-18&billed=true", "start_date"),
        ("aggregation=day&start_date=2025-11-18&end_date=2026-11-19&billed=true", "end_date"),  # over 366 days
        (f"aggregation=day&model=gpt-4o-mini&{BILLED}", "model"),  # a bill has no model filter here
        (f"aggregation=day&team=search&{BILLED}", "team"),
        (f"aggregation=day&{BILLED}&billed=true", "billed"),
    ],
)
def test_billed_true_is_refused_naming_the_parameter(service: LedgerService, query: str, parameter: str) -> None:
    answer = usage(service, query)
    assert answer.status_code == 400, answer.text
    assert answer.json()["parameter"] == parameter


def test_without_billed_the_answer_is_unchanged(service: LedgerService) -> None:
    for query in ("aggregation=day,provider&start_date=2026-11-18&end_date=2026-11-19", "aggregation=model"):
        document = usage(service, query).json()
        assert "billed" not in document and "billed" not in document["query"]
    assert "billed" not in usage(service, "aggregation=day&billed=false").json()


# --- /metrics ------------------------------------------------------------------------------------------------------
_SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")


def scrape(service: LedgerService, token: str = EVERYTHING) -> dict[str, dict[tuple[tuple[str, str], ...], str]]:
    """{metric: {labels: value as exposed}} of the reconciliation families."""
    text = requests.get(f"{service.url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10).text
    names = {metric.name for metric in contract.LEDGER_METRICS if "billed" in metric.name or "reconcil" in metric.name}
    out: dict[str, dict[tuple[tuple[str, str], ...], str]] = {name: {} for name in names}
    for text_line in text.splitlines():
        match = _SAMPLE.match(text_line)
        if match and match.group(1) in names:
            labels = tuple(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
            out[match.group(1)][labels] = match.group(3)
    return out


def of(samples: dict[tuple[tuple[str, str], ...], str], **labels: str) -> str | None:
    return samples.get(tuple(labels.items()))


def verdict_counts(samples: dict[tuple[tuple[str, str], ...], str], provider: str) -> dict[str, int]:
    return {dict(labels)["verdict"]: int(v) for labels, v in samples.items() if dict(labels)["provider"] == provider}


def test_metrics_export_billed_tracked_ratio_days_and_last_run(service: LedgerService) -> None:
    found = scrape(service)
    billed, tracked = found[contract.LEDGER_BILLED.name], found[contract.LEDGER_RECONCILED_TRACKED.name]
    assert of(billed, provider="openai", period="month") == "3.6000"
    assert of(tracked, provider="openai", period="month") == "3.25"
    assert of(billed, provider="openai", period="day") == "2.0000"  # the latest day with a bill: the 19th
    assert of(tracked, provider="openai", period="day") == "2.00"
    # Anthropic has no bill yet: no billed, tracked or ratio series, rather than a zero bill.
    assert not [labels for labels in {**billed, **tracked} if ("provider", "anthropic") in labels]
    ratio = found[contract.LEDGER_RECONCILIATION_DISCREPANCY_RATIO.name]
    assert list(ratio) == [(("provider", "openai"),)]
    assert Decimal(of(ratio, provider="openai")) == (Decimal("3.25") - Decimal("3.6000")) / Decimal("3.6000")
    days = found[contract.LEDGER_RECONCILIATION_DAYS.name]
    every_verdict = dict.fromkeys(contract.RECONCILIATION_VERDICTS, 0)
    assert verdict_counts(days, "openai") == {**every_verdict, "match": 3, "not tracked": 1}
    assert verdict_counts(days, "anthropic") == {**every_verdict, "no bill yet": 1}
    last_run = found[contract.LEDGER_RECONCILIATION_LAST_RUN.name]
    assert last_run == {(): "1795154404.120000"}
    assert datetime.fromtimestamp(float(last_run[()]), timezone.utc) == FINISHED


def test_metrics_of_a_scoped_token_cover_its_environments_only(service: LedgerService) -> None:
    found = scrape(service, PRODUCTION)
    assert of(found[contract.LEDGER_BILLED.name], provider="openai", period="month") == "3.0500"
    assert of(found[contract.LEDGER_RECONCILED_TRACKED.name], provider="openai", period="month") == "3.00"
    ratio = of(found[contract.LEDGER_RECONCILIATION_DISCREPANCY_RATIO.name], provider="openai")
    assert Decimal(ratio) == (Decimal("3.00") - Decimal("3.0500")) / Decimal("3.0500")
    counts = verdict_counts(found[contract.LEDGER_RECONCILIATION_DAYS.name], "openai")
    assert (counts["match"], counts["not tracked"]) == (2, 0)  # the organization-wide day is not production's

    staging = scrape(service, STAGING)
    assert of(staging[contract.LEDGER_BILLED.name], provider="openai", period="month") == "0.25"
    assert verdict_counts(staging[contract.LEDGER_RECONCILIATION_DAYS.name], "anthropic") == {}


def test_metrics_read_the_current_month_and_the_last_seven_days_only(
    start_service: Callable[..., LedgerService], store: SQLiteStore
) -> None:
    """On 3 November: 31 October (in the 7 days) is the latest billed day and counts for the last run, but not for
    the month; 20 October (beyond them) is not read at all."""
    now = datetime(2026, 11, 3, 8, tzinfo=timezone.utc)
    old = datetime(2026, 10, 21, tzinfo=timezone.utc)
    recent = datetime(2026, 11, 1, tzinfo=timezone.utc)
    store.write_reconciliation(
        RunRecord("old", old, date(2026, 10, 20), date(2026, 10, 20), [
            ReconciledDay("openai", date(2026, 10, 20), Decimal("9"), Decimal("1"), "over", "old", old),
        ])
    )  # fmt: skip
    store.write_reconciliation(
        RunRecord("recent", recent, date(2026, 10, 31), date(2026, 11, 1), [
            ReconciledDay("openai", date(2026, 10, 31), Decimal("1.10"), Decimal("1.00"), "over", "recent", recent),
            ReconciledDay("openai", date(2026, 11, 1), Decimal("0.40"), None, "no bill yet", "recent", recent),
        ])
    )  # fmt: skip
    found = scrape(start_service(store, clock=lambda: now))
    billed = found[contract.LEDGER_BILLED.name]
    assert billed == {(("provider", "openai"), ("period", "day")): "1.00"}  # no month series: no bill this month
    assert found[contract.LEDGER_RECONCILIATION_DISCREPANCY_RATIO.name] == {}
    assert verdict_counts(found[contract.LEDGER_RECONCILIATION_DAYS.name], "openai")["no bill yet"] == 1
    assert verdict_counts(found[contract.LEDGER_RECONCILIATION_DAYS.name], "openai")["over"] == 0
    assert datetime.fromtimestamp(float(found[contract.LEDGER_RECONCILIATION_LAST_RUN.name][()]), timezone.utc) == (
        recent
    )


def test_provider_and_verdict_labels_are_bounded_and_sums_stay_exact(
    start_service: Callable[..., LedgerService], store: SQLiteStore
) -> None:
    """30 providers (names anyone can type in a manual bill) with --metrics-top-n 3: the 3 most billed keep their
    name, the rest are summed as `other`; a verdict the service does not know is counted as `other`."""
    finished = NOW - timedelta(hours=1)
    days = [
        ReconciledDay(f"provider-{n:02d}", D19, Decimal(n) + Decimal("0.001"), Decimal(n), "over", "many", finished)
        for n in range(1, 31)
    ]
    days.append(ReconciledDay("provider-01", D18, Decimal("1"), Decimal("1"), "a future verdict", "many", finished))
    store.write_reconciliation(RunRecord("many", finished, D18, D19, days))
    found = scrape(start_service(store, clock=lambda: NOW, metrics_top_n=3))
    billed = found[contract.LEDGER_BILLED.name]
    month = {dict(labels)["provider"]: Decimal(v) for labels, v in billed.items() if dict(labels)["period"] == "month"}
    assert set(month) == {"provider-30", "provider-29", "provider-28", "other"}
    assert month["other"] == sum(Decimal(n) for n in range(1, 28)) + 1  # provider-01's 18th included
    assert sum(month.values()) == sum(Decimal(n) for n in range(1, 31)) + 1
    tracked = found[contract.LEDGER_RECONCILED_TRACKED.name]
    assert Decimal(of(tracked, provider="other", period="month")) == month["other"] + Decimal("0.027")
    providers = {dict(labels)["provider"] for labels in found[contract.LEDGER_RECONCILIATION_DAYS.name]}
    assert providers == set(month)
    verdicts = {dict(labels)["verdict"] for labels in found[contract.LEDGER_RECONCILIATION_DAYS.name]}
    assert verdicts == {*contract.RECONCILIATION_VERDICTS, "other"}
    other = verdict_counts(found[contract.LEDGER_RECONCILIATION_DAYS.name], "other")
    assert (other["over"], other["other"]) == (27, 1)
    assert len(found[contract.LEDGER_RECONCILIATION_DISCREPANCY_RATIO.name]) == 4


def test_a_ledger_never_reconciled_exposes_the_families_without_samples(
    start_service: Callable[..., LedgerService], store: SQLiteStore
) -> None:
    text = requests.get(f"{start_service(store, clock=lambda: NOW).url}/metrics", timeout=10).text
    for metric in (contract.LEDGER_BILLED, contract.LEDGER_RECONCILIATION_LAST_RUN):
        assert f"# TYPE {metric.name} gauge" in text
        assert not re.search(rf"^{metric.name}[{{ ]", text, re.MULTILINE)
    assert "ai_cost_ledger_store_up 1" in text


def test_the_verdict_label_values_are_the_reconcile_verdicts():
    from otel_ai_cost.reconcile.result import Verdict

    assert contract.RECONCILIATION_VERDICTS == tuple(verdict.value for verdict in Verdict)
