"""End-to-end: real SDK calls -> ledger service + instrumented program's metrics -> real Prometheus evaluating the
rendered budget rules -> real Alertmanager (shipped routes, grouping, inhibition) -> a webhook in the test; and every
Grafana panel query answered with data by this Prometheus, the Reconciliation dashboard's billed panels included
(the ledger's store holds a reconciliation run, written as `otel-ai-cost reconcile` writes it).

Spend is driven with gpt-4o-mini calls of many output tokens ($0.60 per million) against a $1.00 daily budget:
past 80 % (warning), then 95 % (critical), then 100 % (exceeded). The ledger's exact day-to-date spend is what the
budget rules read, so each step is sized from what the ledger reports.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from decimal import ROUND_CEILING, Decimal
from typing import Any

import openai
import pytest
import requests
from servers import DAILY_BUDGET, ENVIRONMENT, Notification, Stack, wait_for

from otel_ai_cost import ai_usage_context
from otel_ai_cost.budgets.config import load_budgets
from otel_ai_cost.budgets.rules import ALERT_THRESHOLD
from otel_ai_cost.dashboards import all_queries, reconciliation
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.reconcile.runs import ReconciledDay, RunRecord
from otel_ai_cost.stand_in import Scenario

MODEL = "gpt-4o-mini"
OUTPUT_PRICE = Decimal("0.60") / 1_000_000  # USD per output token of gpt-4o-mini
ALERT_TIMEOUT = 25.0  # s: scrape 1 s + evaluation 1 s + the rules' `for:` + Alertmanager's group_wait, with margin

_LEDGER_SPEND = re.compile(
    r'^ai_cost_ledger_spend_USD\{(?=[^}]*environment="' + ENVIRONMENT + r'")(?=[^}]*period="day")[^}]*\} (\S+)$',
    re.MULTILINE,
)


def ledger_day_spend(stack: Stack) -> Decimal:
    """The ledger service's exact spend of the environment today, from its /metrics."""
    text = requests.get(f"{stack.ledger.url}/metrics", timeout=5).text
    found = _LEDGER_SPEND.search(text)
    return Decimal(found.group(1)) if found else Decimal(0)


def spend_up_to(stack: Stack, fraction: Decimal) -> Decimal:
    """One call that takes the day's spend just past `fraction` of the budget; returns the ledger's new total."""
    target = DAILY_BUDGET * fraction + Decimal("0.005")
    missing = target - ledger_day_spend(stack)
    assert missing > 0, f"already past {fraction:.0%} of the budget before this step"
    tokens = int((missing / OUTPUT_PRICE).to_integral_value(ROUND_CEILING))
    stack.app.stand_in.push(Scenario(prompt_tokens=1, completion_tokens=tokens))
    with ai_usage_context(operation_type="e2e_budget", team="e2e-team", job_id=f"budget-{fraction}"):
        stack.app.openai.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "spend"}])
    spent = ledger_day_spend(stack)
    assert spent >= DAILY_BUDGET * fraction, f"the ledger reports {spent} after spending towards {target}"
    return spent


def budget_alerts(notifications: list[Notification], severity: str, budget: str) -> list[tuple[Notification, dict]]:
    """The firing threshold alerts of `severity` for `budget` in the notifications, in arrival order."""
    return [
        (notification, alert)
        for notification in notifications
        for alert in notification.alerts("firing")
        if alert["labels"].get("alertname") == ALERT_THRESHOLD
        and alert["labels"].get("severity") == severity
        and alert["labels"].get("budget") == budget
    ]


def wait_for_alert(stack: Stack, severity: str, budget: str) -> tuple[Notification, dict]:
    """The first notification of a firing `severity` alert for `budget` (the test fails after ALERT_TIMEOUT)."""
    found = wait_for(
        f"a firing {severity} alert for {budget} at the webhook",
        lambda: budget_alerts(stack.webhook.received(), severity, budget),
        timeout=ALERT_TIMEOUT,
    )
    return found[0]


def describe(stack: Stack) -> str:
    """What Prometheus and Alertmanager hold, and what the webhook got (for failure messages)."""
    firing = [(a["labels"], a["state"]) for a in stack.prometheus.alerts()]
    held = [(a["labels"], a["status"]) for a in stack.alertmanager.alerts()]
    got = [(n.path, [(a["labels"], a["status"]) for a in n.alerts(None)]) for n in stack.webhook.received()]
    return f"Prometheus alerts: {firing}\nAlertmanager alerts: {held}\nwebhook: {got}"


def drive_variety(stack: Stack) -> None:
    """Cheap calls (well under a cent) that fill every series the dashboards show: both providers, cache reads and
    writes, reasoning, embeddings, a stream, an error, an unpriced model, teams and operation types."""
    app, push = stack.app, stack.app.stand_in.push
    messages = [{"role": "user", "content": "hello"}]
    with ai_usage_context(operation_type="receipt_ocr", team="receipts", job_id="e2e-job-1"):
        push(Scenario(prompt_tokens=2048, cached_tokens=1024, completion_tokens=100))
        app.openai.chat.completions.create(model=MODEL, messages=messages)
        push(Scenario(prompt_tokens=500, completion_tokens=1500, reasoning_tokens=1200))
        app.openai.chat.completions.create(model="o4-mini", messages=messages)
        push(Scenario(prompt_tokens=300, completion_tokens=7))
        list(app.openai.chat.completions.create(model=MODEL, messages=messages, stream=True))
    with ai_usage_context(operation_type="search_index", team="search", job_id="e2e-job-2"):
        push(Scenario(prompt_tokens=5000))
        app.openai.embeddings.create(model="text-embedding-3-small", input=["coffee", "bagel"])
        push(
            Scenario(
                input_tokens=100,
                cache_read_input_tokens=2000,
                cache_write_5m_input_tokens=1000,
                cache_write_1h_input_tokens=500,
                output_tokens=200,
            )
        )
        app.anthropic.messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=messages)
        push(Scenario(prompt_tokens=10, completion_tokens=10))  # a model no catalog prices: unpriced, never $0
        app.openai.chat.completions.create(model="e2e-unpriced-model", messages=messages)
        push(Scenario(status=500, should_retry=False))
        with pytest.raises(openai.APIStatusError):
            app.openai.chat.completions.create(model=MODEL, messages=messages)


# Today's reconciliation run: openai billed 4% more than tracked (a match at 5%), anthropic 25% more (tracked 20%
# below its bill: beyond the alert's threshold).
RUN_AGE = timedelta(minutes=5)
DISCREPANCY = "AICostReconciliationDiscrepancy"
RECONCILED = {"openai": ("0.0100", "0.0104", "match"), "anthropic": ("0.0020", "0.0025", "under")}


def reconcile(stack: Stack) -> None:
    """Writes a run into the ledger service's store, as `otel-ai-cost reconcile` does (the service reads it at each
    scrape)."""
    now = datetime.now(timezone.utc)
    finished, today = now - RUN_AGE, now.date()  # today: a day of the current month, whenever the test runs
    days = [
        ReconciledDay(provider, today, Decimal(tracked), Decimal(billed), verdict, "e2e-run", finished)
        for provider, (tracked, billed, verdict) in RECONCILED.items()
    ]
    store = SQLiteStore(stack.ledger.db)
    try:
        store.write_reconciliation(RunRecord("e2e-run", finished, today, today, days))
    finally:
        store.close()


@pytest.fixture(scope="module")
def driven(stack: Stack) -> Stack:
    """The stack after the variety calls and a reconciliation run, with Prometheus holding the program's, the
    ledger's and the reconciliation series."""
    drive_variety(stack)
    reconcile(stack)
    wait_for(
        "Prometheus to hold the program's spend, the ledger's spend and the billed side",
        lambda: (
            stack.prometheus.query("ai_cost_spend_USD_total")
            and stack.prometheus.query("ai_cost_ledger_spend_USD")
            and stack.prometheus.query("ai_cost_ledger_billed_USD")
        ),
        timeout=10,
    )
    return stack


def test_budget_alerts_reach_the_webhook_warning_then_critical_then_exceeded(driven: Stack) -> None:
    stack = driven
    (budget,) = [b for b in load_budgets(stack.budgets_file).budgets if b.period == "day"]
    budget_id = budget.id  # the `budget` label the generated rules put on every threshold alert
    expected = {"alertname": ALERT_THRESHOLD, "environment": ENVIRONMENT, "budget": budget_id, "period": "day"}

    # Nothing fires below 80 %.
    assert ledger_day_spend(stack) < DAILY_BUDGET * Decimal("0.8")
    assert not budget_alerts(stack.webhook.received(), "warning", budget_id), describe(stack)

    # 80 %: warning, and nothing more severe yet.
    spend_up_to(stack, Decimal("0.80"))
    warning_notification, warning = wait_for_alert(stack, "warning", budget_id)
    assert {**expected, "severity": "warning", "threshold": "80"}.items() <= warning["labels"].items(), warning
    assert not budget_alerts(stack.webhook.received(), "critical", budget_id), describe(stack)

    # 95 %: critical.
    spend_up_to(stack, Decimal("0.95"))
    critical_notification, critical = wait_for_alert(stack, "critical", budget_id)
    assert {**expected, "severity": "critical", "threshold": "95"}.items() <= critical["labels"].items(), critical
    assert critical_notification.received > warning_notification.received
    assert not budget_alerts(stack.webhook.received(), "exceeded", budget_id), describe(stack)

    # Inhibition: Alertmanager holds the warning as suppressed by the critical alert of the same budget.
    def warning_inhibited() -> bool:
        return any(
            alert["labels"].get("severity") == "warning"
            and alert["labels"].get("budget") == budget_id
            and alert["status"]["state"] == "suppressed"
            and alert["status"]["inhibitedBy"]
            for alert in stack.alertmanager.alerts()
        ) or not any(  # or the warning rule itself stopped firing once past the critical threshold
            alert["labels"].get("severity") == "warning" and alert["labels"].get("budget") == budget_id
            for alert in stack.alertmanager.alerts()
            if alert["status"]["state"] == "active"
        )

    wait_for("the warning to be inhibited by the critical alert", warning_inhibited, timeout=10)

    # 100 %: exceeded.
    spend_up_to(stack, Decimal("1.00"))
    exceeded_notification, exceeded = wait_for_alert(stack, "exceeded", budget_id)
    assert {**expected, "severity": "exceeded", "threshold": "100"}.items() <= exceeded["labels"].items(), exceeded
    assert exceeded_notification.received > critical_notification.received

    # No warning notification for this budget after the critical one: give the groups two more intervals to send.
    time.sleep(2 * 2 + 1)
    late_warnings = [
        alert
        for notification, alert in budget_alerts(stack.webhook.received(), "warning", budget_id)
        if notification.received > critical_notification.received
    ]
    assert not late_warnings, f"warning notified after critical:\n{describe(stack)}"


def test_every_dashboard_query_returns_data(driven: Stack) -> None:
    queries: list[tuple[str, str, str]] = list(all_queries())
    assert queries, "the dashboards define no queries"
    # Rates need two scrapes of the latest values: wait until the slowest kind (a histogram quantile) has data.
    time.sleep(3)
    empty: list[str] = []
    failed: list[str] = []
    for uid, title, expr in queries:
        try:
            result: list[dict[str, Any]] = driven.prometheus.query(expr)
        except ValueError as error:
            failed.append(f"{uid} / {title}: {error}")
            continue
        if not result:
            empty.append(f"{uid} / {title}: {expr}")
    assert not failed, "queries Prometheus rejected:\n" + "\n".join(failed)
    broken_rules = [
        f"{rule['name']}: {rule.get('lastError')}"
        for group in driven.prometheus.rule_groups()
        for rule in group["rules"]
        if rule.get("health") != "ok"
    ]
    assert not empty, "queries without data:\n" + "\n".join(empty) + f"\nrules not healthy: {broken_rules}"


def test_the_reconciliation_dashboards_billed_panels_show_the_stored_run(driven: Stack) -> None:
    """Each billed panel's query, as the dashboard has it, answers the run's figures from the real Prometheus."""
    panels: dict[str, list[str]] = {}
    for query in all_queries():
        if query.dashboard_uid == reconciliation.UID:
            panels.setdefault(query.panel, []).append(query.expr)

    query = driven.prometheus.query

    def by_provider(expr: str) -> dict[str, Decimal]:
        return {r["metric"].get("provider", ""): Decimal(r["value"][1]) for r in query(expr)}

    billed, tracked = panels["Billed vs tracked per provider, month to date"]
    assert by_provider(billed) == {provider: Decimal(b) for provider, (_, b, _) in RECONCILED.items()}
    assert by_provider(tracked) == {provider: Decimal(t) for provider, (t, _, _) in RECONCILED.items()}
    (ratio_title,) = [title for title in panels if title.startswith("Discrepancy per provider")]
    ratio, threshold, negative = panels[ratio_title]
    ratios = by_provider(ratio)
    assert ratios["anthropic"] == Decimal("-0.2")
    assert abs(ratios["openai"] - (Decimal("0.0100") - Decimal("0.0104")) / Decimal("0.0104")) < Decimal("1e-12")
    assert by_provider(threshold) == {"": Decimal("0.05")} and by_provider(negative) == {"": Decimal("-0.05")}
    latest_day = panels["Billed and tracked per provider: latest billed day and month to date"]
    assert [by_provider(expr)["openai"] for expr in latest_day] == [Decimal(v) for v in ("0.0104", "0.0100") * 2]
    (verdicts,) = panels["Reconciled days this month by verdict"]
    counted = {(r["metric"]["provider"], r["metric"]["verdict"]): r["value"][1] for r in query(verdicts)}
    assert counted[("openai", "match")] == "1" and counted[("anthropic", "under")] == "1"
    assert counted[("anthropic", "match")] == "0"
    (age,) = panels["Last reconciliation run"]
    seconds = Decimal(query(age)[0]["value"][1])
    assert RUN_AGE.total_seconds() <= seconds < RUN_AGE.total_seconds() + 120

    # Past the threshold, the discrepancy alert is pending for anthropic only (it fires after its `for: 1h`).
    def discrepancy_alerts() -> list[tuple[str, str]]:
        alerts = driven.prometheus.alerts()
        return [(a["labels"]["provider"], a["state"]) for a in alerts if a["labels"]["alertname"] == DISCREPANCY]

    assert wait_for("the discrepancy alert to be pending", discrepancy_alerts, timeout=5) == [("anthropic", "pending")]
