"""The pytest plugin (`pytest --ai-cost`), run as a user runs it: a pytest subprocess (`pytester`) whose tests call
the real `openai` client against the local stand-in, with the plugin loaded from its `pytest11` entry point."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from otel_ai_cost.ledger.open_store import open_store
from otel_ai_cost.ledger.report import format_amount
from otel_ai_cost.ledger.store import UsageQuery
from otel_ai_cost.pricing.catalog import default_catalog
from otel_ai_cost.stand_in import StandInServer

pytest_plugins = ["pytester"]

URL_ENV = "AI_COST_TEST_OPENAI_URL"
WORKERS_ENV = "AI_COST_TEST_WORKERS_DIR"
UNPRICED = "acme-unpriced-1"

# Each test its own model, so the stand-in's bill says what each test spent.
TESTS = f'''
import os
import threading

import openai


def ask(model):
    client = openai.OpenAI(base_url=os.environ["{URL_ENV}"], api_key="sk-test", max_retries=0)
    client.chat.completions.create(model=model, messages=[{{"role": "user", "content": "What is a receipt?"}}])


def test_cheap():
    ask("gpt-4o-mini")


def test_dear():
    ask("gpt-4o")
    ask("gpt-4o")


def test_unpriced():
    ask("{UNPRICED}")


def test_in_a_thread():
    thread = threading.Thread(target=ask, args=("gpt-4.1-mini",))
    thread.start()
    thread.join()


def test_without_ai():
    pass


def test_span_carries_the_test(request):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    session = request.config.pluginmanager.get_plugin("ai_cost.session")
    session.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    ask("gpt-4.1-nano")
    (span,) = exporter.get_finished_spans()
    assert span.attributes["test.case.name"] == request.node.nodeid
    assert span.attributes["ai_cost.tag.test.case.name"] == request.node.nodeid
    assert span.attributes["ai_cost.operation_type"] == "integration_test"
'''

MODEL_OF = {
    "test_main.py::test_cheap": "gpt-4o-mini",
    "test_main.py::test_dear": "gpt-4o",
    "test_main.py::test_in_a_thread": "gpt-4.1-mini",
    "test_main.py::test_span_carries_the_test": "gpt-4.1-nano",
}


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInServer]:
    with StandInServer() as server:
        monkeypatch.setenv(URL_ENV, server.openai_base_url)
        yield server


def billed_by_model(server: StandInServer) -> dict[str, list[Decimal | None]]:
    """What each call cost, per model, priced from what the stand-in served (independently of the plugin)."""
    catalog, now = default_catalog(), datetime.now(timezone.utc)
    amounts: dict[str, list[Decimal | None]] = defaultdict(list)
    for served in server.billing.usage("openai"):
        amounts[served.model].append(catalog.quote("openai", served.model, served.usage(), at=now, warn=False).amount)
    return amounts


def text_of(amount: Decimal) -> str:
    return format_amount(amount)


def test_each_call_is_the_tests_on_the_span_the_ledger_the_table_the_json_and_the_job_summary(
    pytester: pytest.Pytester, stand_in: StandInServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    summary_file = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
    ledger_url = f"sqlite://{tmp_path / 'ci-usage.db'}"
    pytester.makepyfile(test_main=TESTS)
    pytester.makeini("[pytest]\nai_cost = true\n")  # on from the ini file alone

    result = pytester.runpytest_subprocess(
        "--ai-cost-top", "2", "--ai-cost-json", "cost.json", "--ai-cost-budget", "0.00005",
        "--ai-cost-ledger", ledger_url, timeout=180,
    )  # fmt: skip

    result.assert_outcomes(passed=6)
    assert result.ret == 1, "over the budget: the session fails although every test passed"
    billed = billed_by_model(stand_in)
    assert billed[UNPRICED] == [None]
    spent = {nodeid: sum(billed[model], Decimal(0)) for nodeid, model in MODEL_OF.items()}
    ranked = sorted(spent, key=lambda nodeid: -spent[nodeid])
    total = sum(spent.values(), Decimal(0))
    assert ranked[0] == "test_main.py::test_dear"

    # The table: the top 2 of the 5 tests with AI calls, most expensive first, and the session's total, a lower
    # bound because of the unpriced call.
    result.stdout.fnmatch_lines(
        [
            "*= AI cost =*",
            "AI cost per test, most expensive first: top 2 of 5*",
            "test *calls*cost unknown*cost USD*",
            f"{ranked[0]} * 2 * 0 * {text_of(spent[ranked[0]])}*",
            f"{ranked[1]} * 1 * 0 * *{text_of(spent[ranked[1]]).rstrip('0')}*",
            f"total (5 tests) * 6 * 1 * >= *{text_of(total).rstrip('0')}*",
            f">= {text_of(total)} USD in 6 AI calls (5 tests made AI calls); 1 call of unknown cost*",
            f"AI cost budget exceeded: the tests spent {text_of(total)} USD, over the budget of 0.00005 USD "
            f"(1 call of unknown cost not included*). Most expensive: {ranked[0]} ({text_of(spent[ranked[0]])} USD), "
            f"{ranked[1]} ({text_of(spent[ranked[1]])} USD), {ranked[2]} ({text_of(spent[ranked[2]])} USD).",
        ]
    )
    assert "test_without_ai" not in result.stdout.str()

    # The JSON: every test with AI calls, exact amounts as strings; the unpriced call is counted, never $0.
    document = json.loads((pytester.path / "cost.json").read_text())
    assert document["total_cost"] == text_of(total)
    assert document["total_cost_is_lower_bound"] is True
    assert (document["calls"], document["unknown_cost_calls"], document["tests_with_calls"]) == (6, 1, 5)
    assert (document["budget"], document["budget_exceeded"], document["complete"]) == ("0.00005", True, True)
    assert [test["nodeid"] for test in document["tests"]] == [*ranked, "test_main.py::test_unpriced"]
    assert document["tests"][-1] == {
        "nodeid": "test_main.py::test_unpriced",
        "cost": None,
        "calls": 1,
        "unknown_cost_calls": 1,
        "outcome": "passed",
    }
    assert {test["nodeid"]: Decimal(test["cost"]) for test in document["tests"][:-1]} == spent
    assert document["outside_tests"] is None

    # The ledger asked for: one record per call, attributed to its test through the record's tags.
    store = open_store(ledger_url)
    try:
        records = list(store.query(UsageQuery()))
    finally:
        store.close()
    assert len(records) == 6
    assert {record.operation_type for record in records} == {"integration_test"}
    by_test: dict[str, Decimal] = defaultdict(Decimal)
    for record in records:
        by_test[record.tags["test.case.name"]] += record.amount or 0
    assert dict(by_test) == {**spent, "test_main.py::test_unpriced": Decimal(0)}
    unpriced = [record for record in records if record.request_model == UNPRICED]
    assert [(r.amount, r.pricing_status) for r in unpriced] == [(None, "unpriced")]

    # The GitHub Actions job summary.
    summary = summary_file.read_text()
    assert summary.startswith("### AI cost of the tests\n")
    assert ":x: **AI cost budget exceeded: the tests spent" in summary
    assert f"| `{ranked[0]}` | 2 | 0 | {text_of(spent[ranked[0]])}" in summary  # zeros added to align
    assert "| **total (5 tests)** | 6 | 1 | **>= " in summary


XDIST_TESTS = f'''
import os

import openai
import pytest


@pytest.mark.parametrize("n", range(10))
def test_three_calls(n):
    client = openai.OpenAI(base_url=os.environ["{URL_ENV}"], api_key="sk-test", max_retries=0)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "Total?"}}])
    with open(os.path.join(os.environ["{WORKERS_ENV}"], os.environ["PYTEST_XDIST_WORKER"]), "a"):
        pass


def test_unpriced():
    client = openai.OpenAI(base_url=os.environ["{URL_ENV}"], api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="{UNPRICED}", messages=[{{"role": "user", "content": "Total?"}}])
'''


def test_xdist_workers_spend_is_summed_exactly_by_the_controller_and_no_ledger_is_written(
    pytester: pytest.Pytester, stand_in: StandInServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The user's default ledger (no OTEL_AI_COST_LEDGER: the file under XDG_DATA_HOME) must stay untouched.
    monkeypatch.delenv("OTEL_AI_COST_LEDGER", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    workers = tmp_path / "workers"
    workers.mkdir()
    monkeypatch.setenv(WORKERS_ENV, str(workers))
    pytester.makepyfile(test_spread=XDIST_TESTS)

    result = pytester.runpytest_subprocess(
        "-n", "2", "--ai-cost", "--ai-cost-top", "0", "--ai-cost-json", "cost.json", "--ai-cost-budget", "1",
        timeout=180,
    )  # fmt: skip

    result.assert_outcomes(passed=11)
    assert result.ret == 0
    assert sorted(path.name for path in workers.iterdir()) == ["gw0", "gw1"]  # both workers spent
    billed = billed_by_model(stand_in)
    assert len(billed["gpt-4o-mini"]) == 30
    per_call = set(billed["gpt-4o-mini"])
    assert len(per_call) == 1  # the same question each time: the same exact amount
    (amount,) = per_call
    assert amount is not None
    document = json.loads((pytester.path / "cost.json").read_text())
    assert document["total_cost"] == text_of(sum(billed["gpt-4o-mini"], Decimal(0))) == text_of(amount * 30)
    assert (document["calls"], document["unknown_cost_calls"], document["tests_with_calls"]) == (31, 1, 11)
    assert document["complete"] is True
    costs = {test["nodeid"]: test["cost"] for test in document["tests"]}
    assert costs.pop("test_spread.py::test_unpriced") is None
    assert costs == {f"test_spread.py::test_three_calls[{n}]": text_of(amount * 3) for n in range(10)}
    result.stdout.fnmatch_lines(
        [
            "AI cost per test, most expensive first",
            f"test_spread.py::test_three_calls[[]0[]] * 3 * 0 * {text_of(amount * 3)}*",
            "test_spread.py::test_unpriced * 1 * 1 * unknown*",
            f"total (11 tests) * 31 * 1 * >= {text_of(amount * 30)}*",
            f"AI cost budget kept: the tests spent {text_of(amount * 30)} USD of 1.00 USD (1 call of unknown cost "
            "not included: the spend may be higher).",
        ]
    )
    assert not (tmp_path / "data").exists()


OFF_TESTS = f'''
import os
import sys

import openai


def test_nothing_is_instrumented(request):
    client = openai.OpenAI(base_url=os.environ["{URL_ENV}"], api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
    assert request.config.pluginmanager.get_plugin("ai_cost.session") is None
    assert not hasattr(openai._base_client.SyncAPIClient.request, "__wrapped__")
    loaded = sorted(name for name in sys.modules if name.startswith("otel_ai_cost"))
    plugin = ["otel_ai_cost", "otel_ai_cost.contract", "otel_ai_cost.testing", "otel_ai_cost.testing.pytest_plugin"]
    assert loaded == plugin
'''


def test_off_by_default_the_plugin_instruments_nothing_and_prints_nothing(
    pytester: pytest.Pytester, stand_in: StandInServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OTEL_AI_COST_LEDGER", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "step-summary.md"))
    pytester.makepyfile(test_off=OFF_TESTS)

    result = pytester.runpytest_subprocess(timeout=120)

    result.assert_outcomes(passed=1)
    assert len(stand_in.requests_to("/v1/chat/completions")) == 1
    assert "AI cost" not in result.stdout.str()
    assert not (tmp_path / "step-summary.md").exists()
    assert not (tmp_path / "data").exists()
    # The options are there, for when it is wanted.
    assert "--ai-cost-budget=USD" in pytester.runpytest_subprocess("--help", timeout=120).stdout.str()


CONFTEST_INSTRUMENTED = """
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_ai_cost

EXPORTER = InMemorySpanExporter()
READER = InMemoryMetricReader()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(provider)
metrics.set_meter_provider(MeterProvider(metric_readers=[READER]))
otel_ai_cost.instrument()  # the application's own instrumentation, before the tests start
"""

INSTRUMENTED_TESTS = f'''
import os

import openai

from conftest import EXPORTER, READER


def test_the_applications_spans_and_metrics(request):
    client = openai.OpenAI(base_url=os.environ["{URL_ENV}"], api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
    (span,) = [s for s in EXPORTER.get_finished_spans() if s.instrumentation_scope.name == "otel_ai_cost"]
    assert span.attributes["test.case.name"] == request.node.nodeid
    assert span.attributes["ai_cost.operation_type"] == "integration_test"
    labels = [
        dict(point.attributes)
        for resource in READER.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "ai_cost.spend"
        for point in metric.data.data_points
    ]
    assert [label.get("ai_cost.operation_type") for label in labels] == ["integration_test"]
    assert [name for label in labels for name in label if "test.case" in name] == []
'''


def test_an_already_instrumented_process_keeps_its_provider_and_its_metrics_never_carry_the_test(
    pytester: pytest.Pytester, stand_in: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Even asked for, the node id is refused as a metric label.
    monkeypatch.setenv("OTEL_AI_COST_METRIC_LABELS", "ai_cost.operation_type,test.case.name,ai_cost.tag.test.case.name")
    pytester.makeconftest(CONFTEST_INSTRUMENTED)
    pytester.makepyfile(test_app=INSTRUMENTED_TESTS)

    result = pytester.runpytest_subprocess("--ai-cost", timeout=120)

    result.assert_outcomes(passed=1)
    (amount,) = billed_by_model(stand_in)["gpt-4o-mini"]
    assert amount is not None
    result.stdout.fnmatch_lines([f"test_app.py::test_the_applications_spans_and_metrics * 1 * 0 * {text_of(amount)}*"])


def test_a_bad_budget_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("--ai-cost-budget", "ten dollars", timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--ai-cost-budget takes an amount in USD, such as 0.50, not 'ten dollars'*"])
