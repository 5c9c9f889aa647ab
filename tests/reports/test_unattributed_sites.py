"""The daily report lists the top call sites of the calls recorded `(unattributed)` (strict attribution), with
their count and cost, in every format (`otel-ai-cost report daily`), and says nothing of it when there are none."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from report_records import Ledger

from otel_ai_cost.cli.daily_report import daily
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.reports.daily import TOP_UNATTRIBUTED_SITES, build_daily_report
from otel_ai_cost.reports.json_report import load_schema
from otel_ai_cost.reports.model import Line

DAY = date(2026, 11, 22)
BILLING = "/srv/app/billing/invoices.py:42"
SEARCH = "/srv/app/search/rank.py:7"


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    ledger = Ledger()
    records = [
        *(ledger.call(DAY, "0.50", operation_type="(unattributed)", call_site=BILLING) for _ in range(3)),
        ledger.call(DAY, "2.00", operation_type="(unattributed)", call_site=SEARCH),
        ledger.call(DAY, None, operation_type="(unattributed)", call_site=SEARCH),  # unpriced: cost unknown
        ledger.call(DAY, "9.00", operation_type="nightly"),  # attributed: not a call site of the section
        ledger.call(DAY, "1.00", operation_type="(unattributed)", call_site="/srv/app/old.py:1", environment="staging"),
        *(
            ledger.call(DAY, f"0.0{n}", operation_type="(unattributed)", call_site=f"/srv/app/many.py:{n}")
            for n in range(1, 10)
        ),
    ]
    path = tmp_path / "usage.db"
    with SQLiteStore(path) as store:
        store.write(records)
    return path


def test_the_top_sites_by_cost_of_one_environment(ledger_path):
    with SQLiteStore(ledger_path) as store:
        report = build_daily_report(store, day=DAY, environment="production")
    sites = list(report.unattributed_sites)
    assert len(sites) == TOP_UNATTRIBUTED_SITES == 10  # 11 sites in production: the cheapest one left out
    assert sites[:2] == [Line(SEARCH, Decimal("2.00"), 2, 1), Line(BILLING, Decimal("1.50"), 3, 0)]
    assert "/srv/app/old.py:1" not in {s.name for s in sites}  # staging's
    assert "/srv/app/many.py:1" not in {s.name for s in sites}  # the cheapest


def run(*args: str):
    return CliRunner().invoke(daily, list(args), catch_exceptions=False)


def test_every_format_shows_the_section(ledger_path):
    ledger = ("--ledger", f"sqlite://{ledger_path}", "--date", DAY.isoformat(), "--environment", "production")
    document = json.loads(run(*ledger, "--format", "json").stdout)
    jsonschema.Draft202012Validator(load_schema()).validate(document)
    first = document["unattributed_call_sites"][0]
    assert (first["name"], first["cost"], first["count"], first["unknown_cost_calls"], first["lower_bound"]) == (
        SEARCH,
        "2.00",
        2,
        1,
        True,
    )
    for form in ("console", "markdown", "html"):
        text = run(*ledger, "--format", form).stdout
        assert "Top unattributed call sites" in text, form
        assert SEARCH in text and BILLING in text, form


def test_no_unattributed_calls_no_section(tmp_path):
    path = tmp_path / "usage.db"
    with SQLiteStore(path) as store:
        store.write([Ledger().call(DAY, "1.00")])
    ledger = ("--ledger", f"sqlite://{path}", "--date", DAY.isoformat())
    assert json.loads(run(*ledger, "--format", "json").stdout)["unattributed_call_sites"] == []
    for form in ("console", "markdown", "html"):
        assert "Top unattributed call sites" not in run(*ledger, "--format", form).stdout, form
