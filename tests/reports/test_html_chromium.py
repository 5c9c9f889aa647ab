"""The HTML daily report opened in real headless Chromium (Debian's, driven by Playwright) from a file:// URL, as a
person opens the file: nothing is fetched, nothing fails in the console, the figures on the page are the report's
exact figures, every chart has its data points, the anomalies are marked, and the page reads on a laptop and prints.

`OTEL_AI_COST_WRITE_SCREENSHOT=1` writes the screenshot of docs/reports.md (docs/images/daily-report.png) from the
planted report below; otherwise it goes to a temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from otel_ai_cost.reports.html import render_html
from otel_ai_cost.reports.model import (
    Anomaly,
    BudgetBurn,
    DailyReport,
    DaySpend,
    Line,
    Saving,
    UnknownCost,
)
from otel_ai_cost.reports.tables import money_cells

CHROMIUM = "/usr/bin/chromium"
LAPTOP = {"width": 1366, "height": 768}
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "daily-report.png"
# Read at import: the suite's autouse fixture clears every OTEL_* variable before a test runs.
WRITE_SCREENSHOT = os.environ.get("OTEL_AI_COST_WRITE_SCREENSHOT") == "1"
HOSTILE_MODEL = '<script>alert("pwned")</script>'
HOSTILE_TEAM = '"><img src=x onerror=alert(1)>'
DAY = date(2024, 1, 15)
START = DAY - timedelta(days=6)  # a 7-day report: 2024-01-09 .. 2024-01-15
D = Decimal

# Production's spend per day from the 1st of the month: its monthly budget of 1000.00 is at exactly 80% on the 15th.
PRODUCTION = [
    D(v) for v in "50.12 51.30 49.87 55.02 53.10 48.75 52.40 54.33 51.90 50.05 56.20 53.47 52.81 54.66 66.02".split()
]
STAGING = [
    D(v)
    for v in "2.1034 2.4410 3.0127 2.7781 2.2093 3.3350 2.9012 2.6644 3.1208 2.4470 2.8815 3.0061 2.5529 2.9903".split()
]
CICD = [D(v) for v in "3.20 3.90 3.10 3.60 3.45 3.75 3.30 3.40 3.60 3.35 3.55 3.70 3.40 14.000027".split()]
DEVELOPMENT = [D(v) for v in "0.05 0.04 0.06 0.05 0.05 0.07 0.04 0.05 0.06 0.05 0.04 0.05 0.06 0.000027".split()]
CHART_DAYS = [date(2024, 1, 2) + timedelta(days=i) for i in range(14)]  # 7 baseline days, then the report's 7


def _in_period(values: list[Decimal]) -> Decimal:
    return sum(values[-7:], D(0))


def planted_report() -> DailyReport:
    """A week of four environments with a cicd spike, a new model, an unpriced model, a budget at 80%, one over
    its limit, hostile names and calls with no team."""
    daily = []
    for index, day in enumerate(CHART_DAYS):
        daily.append(DaySpend(day, "production", PRODUCTION[index + 1], calls=1200))
        daily.append(DaySpend(day, "staging", STAGING[index], calls=300))
        daily.append(DaySpend(day, "cicd", CICD[index], calls=600 if day == DAY else 150))
        last = day == DAY
        daily.append(DaySpend(day, "development", DEVELOPMENT[index], calls=43 if last else 40,
                              unknown_cost_calls=3 if last else 0))  # fmt: skip
    production, staging = _in_period(PRODUCTION), _in_period(STAGING)
    cicd, development = _in_period(CICD), _in_period(DEVELOPMENT)
    total = production + staging + cicd + development
    calls = 7 * 1200 + 7 * 300 + (6 * 150 + 600) + (7 * 40 + 3)
    haiku = D("0.42")
    hostile = D("1.25")
    cumulative, points = D(0), []
    for index, amount in enumerate(PRODUCTION):
        cumulative += amount
        points.append((date(2024, 1, 1) + timedelta(days=index), cumulative))
    return DailyReport(
        date=DAY,
        days=7,
        environment=None,
        generated_at=datetime(2024, 1, 16, 6, 0, tzinfo=timezone.utc),
        total=Line("", total, calls, unknown_cost_calls=3),
        by_environment=[
            Line("production", production, 8400),
            Line("staging", staging, 2100),
            Line("cicd", cicd, 1500),
            Line("development", development, 283, unknown_cost_calls=3),
        ],
        by_service=[
            Line("openai", production + staging + development, 10780),
            Line("anthropic", cicd, 1500),
            Line("ollama", D(0), 3, unknown_cost_calls=3),
        ],
        top_operations=[
            Line("chat", production, 8400),
            Line("integration_test", cicd, 1500),
            Line("batch_processing", staging, 2100),
            Line("embedding", development, 283, unknown_cost_calls=3),
        ],
        by_model=[
            Line("gpt-4o", production, 8400),
            Line("claude-sonnet-4-20250514", cicd - haiku, 1380),
            Line("gpt-4o-mini", staging - hostile + development, 2080),
            Line(HOSTILE_MODEL, hostile, 300),
            Line("claude-3-5-haiku-20241022", haiku, 120),
            Line("llama3-unpriced", D(0), 3, unknown_cost_calls=3),
        ],
        by_team=[
            Line("search", production, 8400),
            Line("platform", cicd, 1500),
            Line(HOSTILE_TEAM, staging, 2100),
            Line("", development, 283, unknown_cost_calls=3),
        ],
        by_job=[Line("", production + cicd + development, 10183, 3), Line("nightly-eval", staging, 2100)],
        daily=daily,
        budgets=[
            BudgetBurn("production/month", "monthly", D("1000.00"), cumulative, points),
            # a daily budget: each report day's own spend (each day is a period of its own)
            BudgetBurn("cicd/day", "daily", D("10.00"), CICD[-1], list(zip(CHART_DAYS[7:], CICD[7:], strict=True))),
        ],
        anomalies=[
            Anomaly(
                "spike",
                DAY,
                {"environment": "cicd", "service": "anthropic", "operation_type": "integration_test"},
                "cicd spent 14.000027 USD on integration tests, 400% of its 7-day average: look at the CI runs.",
                amount=CICD[-1],
                baseline=D("3.50"),
                factor=CICD[-1] / D("3.50"),
            ),
            Anomaly(
                "new_model",
                DAY,
                {"environment": "cicd", "model": "claude-3-5-haiku-20241022"},
                "claude-3-5-haiku-20241022 was used for the first time.",
                amount=haiku,
            ),
        ],
        savings=[
            Saving("batch_tier", {"operation_type": "integration_test"}, cicd / 2, "Run test calls on the batch tier."),
            Saving("prompt_cache", {"model": "gpt-4o"}, D("12.3456"), "Cache misses on the system prompt cost this."),
            Saving("cheaper_model", {"model": "gpt-4o"}, D("40.1215"), "gpt-4o-mini for the same token mix.", True),
        ],
        unknown=[UnknownCost("ollama", "llama3-unpriced", 3, "unpriced")],
        ledger="sqlite:///var/lib/otel-ai-cost/ledger.db",
    )  # fmt: skip


def empty_report() -> DailyReport:
    """A quiet day: no call, and a daily budget with nothing spent."""
    return DailyReport(
        date=DAY, days=1, environment="staging", generated_at=datetime(2024, 1, 16, tzinfo=timezone.utc),
        total=Line("", D(0), 0), budgets=[BudgetBurn("staging/day", "daily", D(20), D(0), [(DAY, D(0))])],
        ledger="sqlite:///tmp/empty.db",
    )  # fmt: skip


@dataclass
class Opened:
    page: Page
    url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def _open(browser: Browser, path: Path, html: str) -> Opened:
    path.write_text(html, encoding="utf-8")
    context = browser.new_context(viewport=LAPTOP, device_scale_factor=1)
    page = context.new_page()
    opened = Opened(page, path.as_uri())
    page.on("request", lambda request: opened.requests.append(request.url))

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            opened.errors.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: opened.errors.append(f"pageerror: {error}"))
    page.on("requestfailed", lambda request: opened.errors.append(f"requestfailed: {request.url}"))
    page.goto(opened.url, wait_until="load")
    return opened


@pytest.fixture(scope="module")
def report() -> DailyReport:
    return planted_report()


@pytest.fixture(scope="module")
def opened(browser: Browser, report: DailyReport, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Opened]:
    result = _open(browser, tmp_path_factory.mktemp("html") / "report.html", render_html(report))
    yield result
    result.page.context.close()


def _money(amount: Decimal) -> str:
    return money_cells([amount])[0]


def _all(page: Page, selector: str, script: str) -> list[Any]:
    return page.eval_on_selector_all(selector, f"els => els.map(el => {script})")


def test_the_page_fetches_nothing_and_logs_no_error(opened: Opened) -> None:
    opened.page.wait_for_timeout(50)  # a late load (an image, a font) would show here
    assert opened.requests == [opened.url]
    assert opened.errors == []
    assert opened.page.locator("script").count() == 0
    assert opened.page.locator("img").count() == 0


def test_hostile_names_are_text(opened: Opened, report: DailyReport) -> None:
    page = opened.page
    assert page.locator("#table-model tbody td.name").nth(3).text_content() == HOSTILE_MODEL
    assert page.locator("#table-team tbody td.name").nth(2).text_content() == HOSTILE_TEAM
    labels = _all(page, "#chart-models g.bar", "el.dataset.model")
    assert HOSTILE_MODEL in labels
    assert "<script" not in render_html(report)


def test_every_text_is_escaped(browser: Browser, tmp_path: Path) -> None:
    """Names in every place a report has them: environments, budgets, anomalies, savings, the ledger."""
    bad = '</title></svg><img src="x.png" onerror="alert(1)"><script>alert(2)</script>'
    report = planted_report()
    report = replace(
        report,
        environment=bad,
        daily=[replace(spend, environment=bad) if spend.environment == "staging" else spend for spend in report.daily],
        by_environment=[*report.by_environment, Line(bad, D("1.5"), 1)],
        by_service=[Line(bad, D("1.5"), 1)],
        by_job=[Line(bad, D("1.5"), 1)],
        top_operations=[Line(bad, D("1.5"), 1)],
        budgets=[replace(burn, name=bad) for burn in report.budgets],
        anomalies=[replace(a, subject={"environment": bad, bad: bad}, message=bad) for a in report.anomalies],
        savings=[Saving("cheaper_model", {"model": bad}, D("1"), bad, True)],
        unknown=[UnknownCost(bad, bad, 1, bad)],
        ledger=bad,
    )
    opened = _open(browser, tmp_path / "hostile.html", render_html(report))
    page = opened.page
    assert opened.requests == [opened.url] and opened.errors == []
    assert page.locator("script, img").count() == 0
    assert bad in _all(page, "#chart-daily .legend-item", "el.dataset.label")
    assert bad in (page.locator("#anomalies li").first.text_content() or "")
    assert page.locator("figure.budget .budget-name").first.text_content() == bad
    assert page.locator("footer .ledger").text_content() == bad
    page.context.close()


def test_totals_are_the_reports_exact_totals(opened: Opened, report: DailyReport) -> None:
    page = opened.page
    total = page.locator("#total-cost")
    assert Decimal(total.get_attribute("data-amount") or "") == report.total.amount
    assert total.text_content() == f"≥ {_money(report.total.amount)}"  # 3 calls of unknown cost are not in it
    assert "3 calls of unknown cost" in (page.locator(".card.total .note").text_content() or "")
    assert page.locator("#total-calls").text_content() == f"{report.total.calls:,}"
    for table in ("#table-environment", "#table-service"):
        assert (
            Decimal(page.locator(f"{table} tfoot td.money").get_attribute("data-amount") or "") == report.total.amount
        )
    shown = dict(zip(_all(page, "#table-environment tbody tr", "el.dataset.name"),
                     _all(page, "#table-environment tbody td.money", "el.dataset.amount"), strict=True))  # fmt: skip
    assert {name: Decimal(value) for name, value in shown.items()} == {
        line.name: line.amount for line in report.by_environment
    }
    texts = _all(page, "#table-environment tbody td.money", "el.textContent")
    # aligned on the decimal point: the column has the 6 decimals of development's 0.000027, exactly, not rounded
    assert texts == ["385.110000", "19.663000", "35.000027", "≥ 0.310027"]


def test_spend_per_day_chart_has_every_point(opened: Opened, report: DailyReport) -> None:
    points = _all(
        opened.page, "#chart-daily rect.segment", "[el.dataset.day, el.dataset.environment, el.dataset.amount]"
    )
    assert len(points) == len(report.daily) == 14 * 4
    assert {(d, e): Decimal(a) for d, e, a in points} == {
        (s.day.isoformat(), s.environment): s.amount for s in report.daily
    }
    tooltip = opened.page.locator('#chart-daily rect.segment[data-day="2024-01-15"][data-environment="cicd"] title')
    assert tooltip.text_content() == "cicd on 2024-01-15: 14.000027 USD · 600 calls"
    legend = _all(opened.page, "#chart-daily .legend-item", "el.dataset.label")
    assert legend == ["production", "cicd", "staging", "development", "report period", "anomaly"]
    assert len(_all(opened.page, "#chart-daily .x-axis text", "el.textContent")) >= 7


def test_spend_by_model_chart_and_cost_unknown(opened: Opened, report: DailyReport) -> None:
    page = opened.page
    bars = _all(page, "#chart-models g.bar", "[el.dataset.model, el.dataset.amount ?? null, el.dataset.cost ?? null]")
    assert [b[0] for b in bars] == [line.name for line in report.by_model]
    known = {name: Decimal(amount) for name, amount, _ in bars if amount is not None}
    assert known == {line.name: line.amount for line in report.by_model if line.name != "llama3-unpriced"}
    assert bars[-1] == ["llama3-unpriced", None, "unknown"]
    unpriced = page.locator('#chart-models g.bar[data-model="llama3-unpriced"] text.value')
    assert unpriced.text_content() == "cost unknown"
    row = page.locator('#table-model tr[data-name="llama3-unpriced"]')
    assert row.locator('td[data-col="amount"]').text_content() == "cost unknown"
    assert row.locator('td[data-col="average"]').text_content() == "cost unknown"
    assert "0.00" not in (row.text_content() or "")
    assert page.locator('#table-service tr[data-name="ollama"] td.money').text_content() == "cost unknown"
    partial = page.locator('#table-environment tr[data-name="development"] td.money')
    assert (partial.text_content() or "").startswith("≥ ")
    assert page.locator("#unknown-cost tbody tr").count() == 1
    assert page.locator("#unknown-cost tbody td.unknown").text_content() == "cost unknown"


def test_budget_burn_against_each_line(opened: Opened, report: DailyReport) -> None:
    page = opened.page
    figures = page.locator("figure.budget")
    assert _all(page, "figure.budget", "[el.dataset.budget, el.dataset.status]") == [
        ["production/month", "warning"],
        ["cicd/day", "exceeded"],
    ]
    monthly = figures.nth(0)
    assert monthly.locator(".percent").text_content() == "80.0%"
    assert Decimal(monthly.locator(".limit-line").get_attribute("data-amount") or "") == Decimal("1000.00")
    points = _all(page, "#chart-budget-0 .burn-point", "[el.dataset.day, el.dataset.amount]")
    assert [(d, Decimal(a)) for d, a in points] == [(d.isoformat(), a) for d, a in report.budgets[0].points]
    assert Decimal(points[-1][1]) == Decimal("800.00")
    assert len(_all(page, "#chart-budget-0 .x-axis text", "el.textContent")) >= 5  # the whole month: 31 days
    assert page.locator("#chart-budget-0 .pace-line").count() == 1
    daily = _all(page, "#chart-budget-1 rect.burn-point", "[el.dataset.day, el.dataset.amount, el.classList.value]")
    assert [(d, Decimal(a)) for d, a, _ in daily] == [(d.isoformat(), a) for d, a in report.budgets[1].points]
    assert [c for _, _, c in daily] == ["point burn-point"] * 6 + ["point burn-point over-limit"]
    assert page.locator("#chart-budget-1 .limit-line").get_attribute("data-amount") == "10.00"


def test_anomalies_are_marked_in_the_chart_and_listed(opened: Opened, report: DailyReport) -> None:
    page = opened.page
    markers = _all(page, "#chart-daily .anomaly-marker", "[el.dataset.day, el.dataset.kinds, el.dataset.environments]")
    assert markers == [["2024-01-15", "spike new_model", "cicd"]]  # one marker per day, for both
    marker = page.locator("#chart-daily .anomaly-marker")
    assert marker.locator("text").text_content() == "2"
    assert marker.locator("title").text_content() == "\n".join(
        f"{kind} on 2024-01-15: {anomaly.message}"
        for kind, anomaly in zip(["spike", "new model"], report.anomalies, strict=True)
    )
    flagged = _all(page, "#chart-daily rect.segment.anomalous", "[el.dataset.day, el.dataset.environment]")
    assert flagged == [["2024-01-15", "cicd"]]
    assert (
        page.locator('#chart-models g.bar.anomalous[data-model="claude-3-5-haiku-20241022"] .anomaly-marker').count()
        == 1
    )
    items = page.locator("#anomalies li.anomaly")
    assert items.count() == 2
    spike = items.nth(0)
    assert spike.get_attribute("data-kind") == "spike"
    assert spike.locator(".message").text_content() == report.anomalies[0].message
    assert Decimal(spike.locator(".money").first.get_attribute("data-amount") or "") == Decimal("14.000027")
    assert spike.locator(".factor").text_content() == "4.0\u00d7"  # x 4.0
    assert page.locator("#anomaly-count").text_content() == "2"


def test_empty_attribution_is_none(opened: Opened) -> None:
    page = opened.page
    assert page.locator('#table-team tr[data-name=""] td.name').text_content() == "(none)"
    assert page.locator('#table-job tr[data-name=""] td.name').text_content() == "(none)"


def test_fits_a_laptop_screen(opened: Opened) -> None:
    widths = opened.page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1] <= LAPTOP["width"]
    assert opened.page.locator("#chart-daily").bounding_box()["width"] > 900  # type: ignore[index]


def test_print_keeps_the_totals_and_charts(browser: Browser, report: DailyReport, tmp_path: Path) -> None:
    opened = _open(browser, tmp_path / "print.html", render_html(report))
    page = opened.page
    page.emulate_media(media="print")
    assert page.evaluate("matchMedia('print').matches") is True
    total = page.locator("#total-cost")
    assert total.is_visible() and total.text_content() == f"≥ {_money(report.total.amount)}"
    for chart in ("#chart-daily", "#chart-models", "#chart-budget-0", "#anomalies"):
        box = page.locator(chart).bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 20, chart
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    pdf = page.pdf(prefer_css_page_size=True)  # the page asks for A4 landscape
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 2
    assert opened.requests == [opened.url] and opened.errors == []
    page.context.close()


def test_screenshot(opened: Opened, tmp_path: Path) -> None:
    target = SCREENSHOT if WRITE_SCREENSHOT else tmp_path / "daily-report.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    png = opened.page.screenshot(path=str(target), full_page=True, animations="disabled")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == LAPTOP["width"]  # no sideways overflow widened the page


def test_an_empty_report_reads(browser: Browser, tmp_path: Path) -> None:
    opened = _open(browser, tmp_path / "empty.html", render_html(empty_report()))
    page = opened.page
    assert opened.requests == [opened.url] and opened.errors == []
    assert page.locator("#total-cost").text_content() == "0.00"  # no calls at all: a true zero
    assert "environment staging" in (page.locator("header .meta").text_content() or "")
    assert page.locator("#daily .empty").text_content() == "No spend recorded in these days."
    assert page.locator("#anomalies").text_content() == "No anomalies."
    assert page.locator(".chart").count() == 1  # the budget's, one bar against its limit
    assert _all(page, "#chart-budget-0 .burn-point", "el.dataset.amount") == ["0"]
    assert page.locator("figure.budget").get_attribute("data-status") == "ok"
    assert page.locator("figure.budget .percent").text_content() == "0.0%"
    page.context.close()


def test_a_report_of_only_unpriced_calls_says_cost_unknown(browser: Browser, tmp_path: Path) -> None:
    """No call has a known cost: nowhere a $0, the chart's point is a cost-unknown box, not a bar of 0."""
    unpriced = Line("development", D(0), 5, unknown_cost_calls=5)
    report = DailyReport(
        date=DAY, days=1, environment=None, generated_at=datetime(2024, 1, 16, tzinfo=timezone.utc),
        total=Line("", D(0), 5, unknown_cost_calls=5), by_environment=[unpriced],
        by_model=[Line("llama3", D(0), 5, 5)], daily=[DaySpend(DAY, "development", D(0), 5, 5)],
        unknown=[UnknownCost("ollama", "llama3", 5, "unpriced")],
    )  # fmt: skip
    opened = _open(browser, tmp_path / "unpriced.html", render_html(report))
    page = opened.page
    assert opened.requests == [opened.url] and opened.errors == []
    assert page.locator("#total-cost").text_content() == "cost unknown"
    assert page.locator("#total-cost").get_attribute("data-amount") is None
    segment = page.locator("#chart-daily rect.segment")
    assert segment.get_attribute("data-cost") == "unknown" and segment.get_attribute("data-amount") is None
    assert (
        segment.locator("title").text_content()
        == "development on 2024-01-15: cost unknown · 5 calls · 5 of unknown cost"
    )
    assert float(segment.get_attribute("height") or 0) > 0  # seen, as a dashed box
    assert page.locator("#table-environment tbody td.money").text_content() == "cost unknown"
    assert "0.00" not in (page.locator("main").text_content() or "")
    page.context.close()
