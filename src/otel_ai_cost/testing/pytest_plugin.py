"""The pytest plugin: what each test spent on AI calls, summed exactly, and a budget the session must keep.

Turn it on with ``pytest --ai-cost``, or in the ini file (``pytest.ini``, ``[tool.pytest.ini_options]``, ...)::

    [pytest]
    ai_cost = true

Any other ``--ai-cost-*`` option turns it on too, so a budget given on the command line is never ignored. Off,
the plugin only declares its options: it imports no instrumentation, makes no span and prints nothing.
``-p no:ai_cost`` removes it altogether.

**Attribution.** Every AI call made while a test runs, in its fixtures' setup and teardown too, is attributed to
that test: its span carries ``ai_cost.operation_type=integration_test`` and the test's node id, as
``test.case.name`` (the OpenTelemetry test semantic conventions) and as the tag ``ai_cost.tag.test.case.name``,
which the ledger record keeps in its ``tags`` (``tags["test.case.name"]``). The node id is never a metric label.
Calls made in a thread the test started are attributed too (the process runs one test at a time). An
``ai_usage_context`` opened by the code under test nests inside the test's, so its values win key by key (its own
``operation_type`` stays); the node id is always there. A session-scoped fixture's calls belong to the test that
set it up (or tore it down), as in ``--durations``; calls made outside any test are reported apart.

**At the end of the session:**

- a table of the tests that spent the most, most expensive first (``--ai-cost-top N``, default 10; 0 shows every
  test with AI calls), and a total row covering the whole session;
- ``--ai-cost-json PATH``: the per-test figures for a CI artifact (its shape is in docs/pytest.md);
- when ``$GITHUB_STEP_SUMMARY`` is set: the same table in Markdown, in the GitHub Actions job summary;
- ``--ai-cost-budget USD``: a session that spent more fails (exit status 1, as with a failed test), with a
  message naming the tests that spent the most.

**Exact money.** Each call's amount is the ``Decimal`` of its span's ``ai_cost.amount`` string, summed without
rounding. A call whose cost is unknown (no price for its model, a stream cut before its usage) is counted as such,
never as $0: a figure that leaves some out is a lower bound, shown ``>= 0.0123``, and a test whose calls all have
an unknown cost shows ``unknown``. Such calls cannot exceed a budget; the budget line says they were left out.

**pytest-xdist.** Each worker collects its own tests' figures and sends them to the controller in its
``workeroutput``; the controller sums them exactly and reports once. A worker that crashed before sending them is
named, and the figures are marked incomplete.

**Instrumentation.** Unless the AI SDKs are already instrumented when the tests start (``opentelemetry-instrument
pytest``, ``otel_ai_cost.instrument()`` in a ``conftest.py``), the plugin instruments them with
``otel_ai_cost.instrument()`` and a tracer provider of its own (not the global one: your program's tracing is left
as it is), and uninstruments them at the end. ``config.pluginmanager.get_plugin("ai_cost.session")
.tracer_provider`` is that provider, for a span processor of your own (an OTLP exporter, say). Nothing is written
to a usage ledger, the default one included, unless ``--ai-cost-ledger URL`` names one (``sqlite:///ci/usage.db``,
``dynamodb://TABLE?region=...``). When the SDKs were already instrumented, the plugin reads the spans of the global
tracer provider (an SDK ``TracerProvider``): your exporters and ledger then receive the test attribution too.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest

from otel_ai_cost.contract import CURRENCY, INSTRUMENTATION_SCOPE, Attribution, Env, Test

__all__ = [
    "DEFAULT_TOP",
    "JSON_SCHEMA_VERSION",
    "OPERATION_TYPE",
    "PLUGIN_NAME",
    "AICostSession",
    "CaseSpend",
    "SessionSpend",
    "Settings",
    "SpendTally",
]

PLUGIN_NAME = "ai_cost.session"  # the name the active session's plugin object is registered under
OPERATION_TYPE = "integration_test"
TEST_CASE_TAG = Attribution.TAG_PREFIX + Test.CASE_NAME  # ai_cost.tag.test.case.name -> record tags["test.case.name"]
DEFAULT_TOP = 10
JSON_SCHEMA_VERSION = 1
OUTSIDE_TESTS = "(outside tests)"
_WORKEROUTPUT_KEY = "ai_cost"
_NAMED_IN_BUDGET_MESSAGE = 3


# -- options -----------------------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ai-cost", "AI cost of the tests (otel-ai-cost)")
    group.addoption(
        "--ai-cost",
        action="store_true",
        default=False,
        dest="ai_cost",
        help="attribute every AI call to the test that made it and report what each test spent (ini: ai_cost)",
    )
    group.addoption(
        "--ai-cost-top",
        type=int,
        default=None,
        metavar="N",
        dest="ai_cost_top",
        help=f"show the N most expensive tests (default {DEFAULT_TOP}; 0: every test with AI calls)",
    )
    group.addoption(
        "--ai-cost-json",
        default=None,
        metavar="PATH",
        dest="ai_cost_json",
        help="write each test's AI cost (exact decimal strings) and the totals as JSON, for a CI artifact",
    )
    group.addoption(
        "--ai-cost-budget",
        default=None,
        metavar="USD",
        dest="ai_cost_budget",
        help="fail the session when the tests' AI calls cost more than USD (e.g. 0.50)",
    )
    group.addoption(
        "--ai-cost-ledger",
        default=None,
        metavar="URL",
        dest="ai_cost_ledger",
        help="also record the tests' AI calls in this usage ledger (sqlite:///PATH.db, dynamodb://TABLE?...); "
        "by default nothing is written to any ledger",
    )
    parser.addini("ai_cost", "turn the AI cost plugin on, as --ai-cost does", type="bool", default=False)


def pytest_configure(config: pytest.Config) -> None:
    settings = Settings.from_config(config)
    if settings is None:
        return  # off: nothing registered, nothing imported
    config.pluginmanager.register(AICostSession(config, settings), PLUGIN_NAME)


@dataclass(frozen=True)
class Settings:
    """The plugin's options, checked."""

    top: int = DEFAULT_TOP
    json_path: Path | None = None
    budget: Decimal | None = None
    ledger_url: str | None = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings | None:
        """The settings, or None when the plugin is off. Raises `pytest.UsageError` on a bad value."""
        top = config.getoption("ai_cost_top", None)
        json_path = config.getoption("ai_cost_json", None)
        budget = config.getoption("ai_cost_budget", None)
        ledger_url = config.getoption("ai_cost_ledger", None)
        enabled = (
            config.getoption("ai_cost", False)
            or any(value is not None for value in (top, json_path, budget, ledger_url))
            or config.getini("ai_cost")
        )
        if not enabled:
            return None
        if top is not None and top < 0:
            raise pytest.UsageError(f"--ai-cost-top takes a count of tests (0 for all), not {top}")
        path = None
        if json_path:
            path = Path(os.path.expanduser(json_path))
            if not path.is_absolute():
                path = Path(config.invocation_params.dir) / path
        return cls(
            top=DEFAULT_TOP if top is None else top,
            json_path=path,
            budget=None if budget is None else _budget(budget),
            ledger_url=ledger_url.strip() if ledger_url else None,
        )


def _budget(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().removeprefix("$"))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise pytest.UsageError(f"--ai-cost-budget takes an amount in {CURRENCY}, such as 0.50, not {text!r}")
    return value


# -- what the tests spent ----------------------------------------------------------------------------------------


@dataclass
class CaseSpend:
    """What one test (or, with `nodeid` "", the session outside any test) spent on AI calls.

    `amount` is the exact sum of the amounts known; None while no call's cost is known. With
    `unknown_cost_calls` > 0 it is a lower bound.
    """

    nodeid: str
    calls: int = 0
    unknown_cost_calls: int = 0
    amount: Decimal | None = None
    outcome: str | None = None  # passed, failed, error, skipped, xfailed, xpassed

    def add(self, amount: Decimal | None, *, unknown: bool, calls: int = 1, unknown_calls: int | None = None) -> None:
        self.calls += calls
        self.unknown_cost_calls += (1 if unknown else 0) if unknown_calls is None else unknown_calls
        # A call of known cost adds its amount ($0 for one that failed before any usage); an unknown one adds only
        # the part known (a cut stream priced so far), never a $0 that would read as known.
        if amount is not None or not unknown:
            self.amount = (self.amount if self.amount is not None else Decimal(0)) + (amount or Decimal(0))

    @property
    def shown_name(self) -> str:
        return self.nodeid or OUTSIDE_TESTS


class SpendTally:
    """Per-test spend of one process (or, on the xdist controller, of every worker). Thread-safe: spans end in
    whatever thread made the call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cases: dict[str, CaseSpend] = {}
        self._outcomes: dict[str, str] = {}

    def add_call(self, nodeid: str, amount: Decimal | None, *, unknown: bool) -> None:
        with self._lock:
            self._case(nodeid).add(amount, unknown=unknown)

    def set_outcome(self, nodeid: str, outcome: str) -> None:
        with self._lock:
            if self._outcomes.get(nodeid) not in ("failed", "error"):  # a teardown error after a pass is an error
                self._outcomes[nodeid] = outcome

    def to_wire(self) -> dict[str, Any]:
        """For xdist's `workeroutput` (plain types only; amounts as exact strings)."""
        with self._lock:
            cases = [
                [c.nodeid, None if c.amount is None else format(c.amount, "f"), c.calls, c.unknown_cost_calls]
                for c in self._cases.values()
            ]
        return {"version": JSON_SCHEMA_VERSION, "cases": cases}

    def merge(self, wire: Mapping[str, Any]) -> None:
        """Adds a worker's `to_wire()`; amounts are summed exactly."""
        with self._lock:
            for nodeid, amount, calls, unknown_calls in wire.get("cases", ()):
                case = self._case(str(nodeid))
                value = None if amount is None else Decimal(str(amount))
                case.add(value, unknown=value is None, calls=int(calls), unknown_calls=int(unknown_calls))

    def cases(self) -> list[CaseSpend]:
        """Every test with AI calls, and the calls outside tests (nodeid ""), with outcomes; unsorted."""
        with self._lock:
            for nodeid, case in self._cases.items():
                case.outcome = self._outcomes.get(nodeid)
            return list(self._cases.values())

    def _case(self, nodeid: str) -> CaseSpend:
        case = self._cases.get(nodeid)
        if case is None:
            case = self._cases[nodeid] = CaseSpend(nodeid)
        return case


def _outcome(report: pytest.TestReport) -> str | None:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed:
        return "failed" if report.when == "call" else "error"
    if report.skipped:
        return "skipped"
    return "passed" if report.when == "call" else None


@dataclass(frozen=True)
class SessionSpend:
    """The session's figures, as reported: `cases` are the tests with AI calls, most expensive first."""

    cases: Sequence[CaseSpend]
    outside: CaseSpend | None
    amount: Decimal | None
    calls: int
    unknown_cost_calls: int
    budget: Decimal | None
    missing_workers: Sequence[str] = ()

    @classmethod
    def of(cls, tally: SpendTally, budget: Decimal | None, missing_workers: Sequence[str] = ()) -> SessionSpend:
        every = tally.cases()
        total = CaseSpend("")
        for case in every:
            total.add(case.amount, unknown=case.amount is None, calls=case.calls, unknown_calls=case.unknown_cost_calls)
        tests = sorted(
            (case for case in every if case.nodeid),
            key=lambda c: (-(c.amount or 0), -c.unknown_cost_calls, -c.calls, c.nodeid),
        )
        outside = next((case for case in every if not case.nodeid), None)
        return cls(tests, outside, total.amount, total.calls, total.unknown_cost_calls, budget, missing_workers)

    @property
    def exceeded(self) -> bool:
        """Known spend above the budget (calls of unknown cost cannot prove it)."""
        return self.budget is not None and self.amount is not None and self.amount > self.budget

    def to_dict(self) -> dict[str, Any]:
        """The `--ai-cost-json` document (docs/pytest.md): amounts as exact decimal strings, None when unknown."""
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "currency": CURRENCY,
            "total_cost": _amount_text(self.amount),
            "total_cost_is_lower_bound": self.unknown_cost_calls > 0,
            "calls": self.calls,
            "unknown_cost_calls": self.unknown_cost_calls,
            "tests_with_calls": len(self.cases),
            "budget": _amount_text(self.budget),
            "budget_exceeded": self.exceeded,
            "complete": not self.missing_workers,
            "missing_workers": list(self.missing_workers),
            "tests": [
                {
                    "nodeid": case.nodeid,
                    "cost": _amount_text(case.amount),
                    "calls": case.calls,
                    "unknown_cost_calls": case.unknown_cost_calls,
                    "outcome": case.outcome,
                }
                for case in self.cases
            ],
            "outside_tests": None
            if self.outside is None
            else {
                "cost": _amount_text(self.outside.amount),
                "calls": self.outside.calls,
                "unknown_cost_calls": self.outside.unknown_cost_calls,
            },
        }


def _amount_text(amount: Decimal | None) -> str | None:
    if amount is None:
        return None
    from otel_ai_cost.ledger.report import format_amount

    return format_amount(amount)


def _money(amount: Decimal | None, unknown_calls: int) -> str:
    """An amount for a sentence: exact, `>= ` when it leaves calls out, `unknown` when none is known."""
    if amount is None:
        return "unknown"
    return (">= " if unknown_calls else "") + f"{_amount_text(amount)} {CURRENCY}"


# -- reports -----------------------------------------------------------------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _shown(spend: SessionSpend, top: int) -> Sequence[CaseSpend]:
    return spend.cases if top == 0 else spend.cases[:top]


def _title(spend: SessionSpend, top: int) -> str:
    shown = len(_shown(spend, top))
    of = f": top {shown} of {len(spend.cases)}" if shown < len(spend.cases) else ""
    return f"AI cost per test, most expensive first{of}"


def _rows(spend: SessionSpend, top: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    cases = list(_shown(spend, top))
    if spend.outside is not None:
        cases.append(spend.outside)
    rows = [
        {"test": c.shown_name, "calls": c.calls, "unknown_cost_calls": c.unknown_cost_calls, "amount": c.amount}
        for c in cases
    ]
    total = {
        "test": f"total ({_plural(len(spend.cases), 'test')})",
        "calls": spend.calls,
        "unknown_cost_calls": spend.unknown_cost_calls,
        "amount": spend.amount,
    }
    return rows, total


def render_table(spend: SessionSpend, top: int, width: int | None = None) -> str:
    """The console table (`reports/tables.py`): the top tests, the calls outside tests, the session's total."""
    from otel_ai_cost.reports.tables import Column, render, table

    columns = [
        Column("test"),
        Column("calls", "count"),
        Column("unknown_cost_calls", "count"),
        Column("amount", "money"),
    ]
    rows, total = _rows(spend, top)
    text = render(table(columns, rows, title=_title(spend, top), total=total), width=width)
    return "".join(line.rstrip() + "\n" for line in text.splitlines())  # rich pads the title to the table's width


def budget_message(spend: SessionSpend) -> str | None:
    """The budget's verdict in a sentence; None without a budget."""
    if spend.budget is None:
        return None
    budget = f"{_amount_text(spend.budget)} {CURRENCY}"
    left_out = (
        f" ({_plural(spend.unknown_cost_calls, 'call')} of unknown cost not included: the spend may be higher)"
        if spend.unknown_cost_calls
        else ""
    )
    if not spend.exceeded:
        return f"AI cost budget kept: the tests spent {_money(spend.amount, 0)} of {budget}{left_out}."
    named = ", ".join(
        f"{case.nodeid} ({_money(case.amount, case.unknown_cost_calls)})"
        for case in spend.cases[:_NAMED_IN_BUDGET_MESSAGE]
        if case.amount
    )
    return (
        f"AI cost budget exceeded: the tests spent {_money(spend.amount, 0)}, over the budget of {budget}"
        f"{left_out}. Most expensive: {named or OUTSIDE_TESTS}."
    )


def _overview(spend: SessionSpend) -> str:
    text = (
        f"{_money(spend.amount, spend.unknown_cost_calls)} in {_plural(spend.calls, 'AI call')} "
        f"({_plural(len(spend.cases), 'test')} made AI calls)"
    )
    if spend.unknown_cost_calls:
        text += f"; {_plural(spend.unknown_cost_calls, 'call')} of unknown cost, not included: a lower bound"
    return text + "."


def _missing_message(spend: SessionSpend) -> str | None:
    if not spend.missing_workers:
        return None
    return (
        f"AI cost incomplete: worker {', '.join(spend.missing_workers)} went down before sending its figures; "
        "their tests' spend is missing."
    )


def render_markdown(spend: SessionSpend, top: int) -> str:
    """The GitHub Actions job summary: the overview, the budget's verdict, and the table."""
    from otel_ai_cost.reports.tables import money_cells

    lines = ["### AI cost of the tests", "", _overview(spend)]
    for message in (budget_message(spend), _missing_message(spend)):
        if message:
            mark = ":x: " if message.startswith(("AI cost budget exceeded", "AI cost incomplete")) else ""
            lines += ["", f"{mark}**{message}**"]
    rows, total = _rows(spend, top)
    if rows:
        every = [*rows, total]
        amounts = money_cells([row["amount"] for row in every], [bool(row["unknown_cost_calls"]) for row in every])
        lines += ["", f"{_title(spend, top)}:", "", "| test | calls | cost unknown | cost USD |", "|:--|--:|--:|--:|"]
        for index, (row, amount) in enumerate(zip(every, amounts, strict=True)):
            name = row["test"].replace("|", "\\|")
            cells = [f"`{name}`" if index < len(rows) else f"**{name}**", f"{row['calls']:,}"]
            cells += [f"{row['unknown_cost_calls']:,}", amount if index < len(rows) else f"**{amount}**"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# -- spans -> per-test spend -------------------------------------------------------------------------------------


def _collector(tally: SpendTally, current_test: Callable[[], str | None]) -> Any:
    """The span processor that attributes our spans to the running test and tallies their cost."""
    from opentelemetry.sdk.trace import SpanProcessor

    from otel_ai_cost.ledger.from_span import InvalidSpan, is_cost_span, record_from_span
    from otel_ai_cost.ledger.unknown_cost import is_cost_unknown
    from otel_ai_cost.telemetry.errors import report_internal_error

    class Collector(SpanProcessor):
        active = True

        def on_start(self, span: Any, parent_context: Any = None) -> None:
            try:
                scope = span.instrumentation_scope
                if not self.active or scope is None or scope.name != INSTRUMENTATION_SCOPE:
                    return
                attributes = span.attributes or {}
                nodeid = attributes.get(TEST_CASE_TAG)
                if nodeid is None:
                    # Outside the test's context (a thread the test started): the test this process is running.
                    nodeid = current_test()
                    if nodeid is None:
                        return
                    span.set_attribute(TEST_CASE_TAG, nodeid)
                    if Attribution.OPERATION_TYPE not in attributes:
                        span.set_attribute(Attribution.OPERATION_TYPE, OPERATION_TYPE)
                span.set_attribute(Test.CASE_NAME, str(nodeid))
            except Exception as exc:  # inside the host's call: never let it fail
                report_internal_error("pytest_plugin.on_start", exc)

        def on_end(self, span: Any) -> None:
            try:
                attributes = span.attributes or {}
                if not self.active or not is_cost_span(attributes):
                    return
                nodeid = str(attributes.get(Test.CASE_NAME) or "")
                try:
                    record = record_from_span(span)
                except InvalidSpan:  # a cost span the ledger cannot hold: its cost is not known, still a call
                    tally.add_call(nodeid, None, unknown=True)
                    return
                if record is not None:
                    tally.add_call(nodeid, record.amount, unknown=is_cost_unknown(record))
            except Exception as exc:
                report_internal_error("pytest_plugin.on_end", exc)

    return Collector()


@contextmanager
def _default_ledger_off() -> Iterator[None]:
    """`instrument()` wires the default ledger into the provider it is given: the plugin's provider gets only the
    ledger asked for (`--ai-cost-ledger`), so the variable says `none` while it instruments."""
    previous = os.environ.get(Env.LEDGER)
    os.environ[Env.LEDGER] = "none"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(Env.LEDGER, None)
        else:
            os.environ[Env.LEDGER] = previous


class _Instrumentation:
    """Where the tests' spans come from, and how it is undone at the end."""

    def __init__(self, collector: Any, ledger_store: Any) -> None:
        self.collector = collector
        self.ledger_processor: Any = None
        self.provider: Any = None
        self.owned = False
        self.problem: str | None = None  # why nothing can be collected, for the summary
        if ledger_store is not None:
            from otel_ai_cost.ledger.exporter import LedgerBatchSpanProcessor, LedgerSpanExporter

            self.ledger_processor = LedgerBatchSpanProcessor(LedgerSpanExporter(ledger_store))

    def start(self) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        from otel_ai_cost import instrument_api

        already = any(cls().is_instrumented_by_opentelemetry for cls in instrument_api._INSTRUMENTORS)
        if already:
            provider = trace.get_tracer_provider()
            if not isinstance(provider, TracerProvider):
                self.problem = (
                    "the AI SDKs were instrumented before the tests started, and the global tracer provider is not "
                    "an SDK TracerProvider: no AI call could be attributed to a test"
                )
                self._close_unused_ledger()
                return
        else:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace.sampling import ALWAYS_ON

            from otel_ai_cost.attribution import AICostResourceDetector

            # Every call is counted: no sampler configured for the application may drop a test's spend.
            resource = AICostResourceDetector().detect().merge(Resource.create())
            provider = TracerProvider(resource=resource, sampler=ALWAYS_ON)
        provider.add_span_processor(self.collector)
        if self.ledger_processor is not None:
            provider.add_span_processor(self.ledger_processor)
        self.provider = provider
        if not already:
            with _default_ledger_off():
                instrument_api.instrument(tracer_provider=provider)
            self.owned = True

    def stop(self) -> None:
        """Uninstrument (if the plugin instrumented), and write what the ledger processor still holds."""
        self.collector.active = False
        if self.owned:
            from otel_ai_cost import instrument_api

            instrument_api.uninstrument()
            self.provider.shutdown()  # the ledger processor's queue is written, the store closed
        elif self.ledger_processor is not None:
            # The SDK cannot remove a span processor from a provider that is not ours: write, then stop recording.
            self.ledger_processor.force_flush()
            self.ledger_processor.ledger_exporter.pause()
            self.ledger_processor.shutdown()

    def _close_unused_ledger(self) -> None:
        if self.ledger_processor is not None:
            self.ledger_processor.ledger_exporter.pause()
            self.ledger_processor.shutdown()
            self.ledger_processor = None

    @property
    def ledger_lost(self) -> int:
        if self.ledger_processor is None:
            return 0
        exporter = self.ledger_processor.ledger_exporter
        return exporter.lost + exporter.rejected_total


# -- the session -------------------------------------------------------------------------------------------------


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _is_xdist_controller(config: pytest.Config) -> bool:
    return (
        not _is_xdist_worker(config)
        and getattr(config.option, "dist", "no") != "no"
        and bool(getattr(config.option, "tx", None))
    )


class AICostSession:
    """The plugin while on (registered as `PLUGIN_NAME`). On an xdist controller it only sums and reports; on a
    worker it only collects; without xdist it does both."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.tally = SpendTally()
        self.spend: SessionSpend | None = None
        self.current_test: str | None = None  # the node id of the test this process is running
        self._worker = _is_xdist_worker(config)
        self._controller = _is_xdist_controller(config)
        self._instrumentation: _Instrumentation | None = None
        self._missing_workers: list[str] = []
        self._problems: list[str] = []
        self._written: list[str] = []
        self._store = self._open_ledger() if settings.ledger_url else None

    @property
    def tracer_provider(self) -> Any:
        """The SDK tracer provider the tests' AI spans go to (None before the tests start or on a controller)."""
        return None if self._instrumentation is None else self._instrumentation.provider

    def _open_ledger(self) -> Any:
        from otel_ai_cost.ledger.open_store import LedgerConfigError, open_store

        url = self.settings.ledger_url
        try:
            store = open_store(url, origin="--ai-cost-ledger")
        except LedgerConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        except Exception as exc:
            raise pytest.UsageError(f"--ai-cost-ledger={url}: the ledger could not be opened: {exc}") from None
        if self._controller:  # checked and created here; the workers write to it
            store.close()
            return None
        return store

    # -- collecting (a worker, or a session without xdist) -------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        # After collection: a conftest.py that instruments the SDKs at import has done so by now.
        if not self._controller and not session.config.option.collectonly:
            self._instrumentation = _Instrumentation(_collector(self.tally, lambda: self.current_test), self._store)
            self._instrumentation.start()
            if self._instrumentation.problem:
                self._problems.append(self._instrumentation.problem)
        try:
            return (yield)
        finally:
            self._end_of_tests(session)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        if self._instrumentation is None:
            return (yield)
        from otel_ai_cost.attribution import ai_usage_context

        self.current_test = item.nodeid
        try:
            with ai_usage_context(operation_type=OPERATION_TYPE, **{Test.CASE_NAME: item.nodeid}):
                return (yield)
        finally:
            self.current_test = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = _outcome(report)
        if outcome is not None:
            self.tally.set_outcome(report.nodeid, outcome)

    def _end_of_tests(self, session: pytest.Session) -> None:
        if self._instrumentation is None:
            if self._store is not None:  # --collect-only: no call to record
                self._store.close()
        else:
            self._instrumentation.stop()
            if self._instrumentation.ledger_lost:
                self._problems.append(
                    f"{_plural(self._instrumentation.ledger_lost, 'AI call')} could not be recorded in the ledger "
                    f"{self.settings.ledger_url} (see the log)"
                )
        if self._worker:
            session.config.workeroutput[_WORKEROUTPUT_KEY] = {  # type: ignore[attr-defined]
                **self.tally.to_wire(),
                "problems": self._problems,
            }
            return
        if session.config.option.collectonly:
            return
        self.spend = SessionSpend.of(self.tally, self.settings.budget, self._missing_workers)
        if self.spend.exceeded:
            session.testsfailed += 1  # exit status 1, as for a failed test

    # -- summing (the xdist controller) --------------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        wire = output.get(_WORKEROUTPUT_KEY)
        if wire is None:
            gateway = getattr(node, "gateway", None)
            self._missing_workers.append(str(getattr(gateway, "id", node)))
            return
        self.tally.merge(wire)
        for problem in wire.get("problems", ()):
            if problem not in self._problems:
                self._problems.append(problem)

    # -- reporting (the controller, or a session without xdist) --------------------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.spend is None:
            return
        if self.settings.json_path is not None:
            path = self.settings.json_path
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(self.spend.to_dict(), indent=2) + "\n", encoding="utf-8")
                self._written.append(f"AI cost JSON written to {path}")
            except OSError as exc:
                self._problems.append(f"the AI cost JSON could not be written to {path}: {exc}")
        from otel_ai_cost.ci.step_summary import STEP_SUMMARY_ENV, append_step_summary

        try:
            if append_step_summary(render_markdown(self.spend, self.settings.top)):
                self._written.append(f"AI cost summary added to ${STEP_SUMMARY_ENV}")
        except OSError as exc:
            self._problems.append(f"the AI cost summary could not be written to ${STEP_SUMMARY_ENV}: {exc}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        spend = self.spend
        if spend is None:
            return
        terminalreporter.write_sep("=", "AI cost")
        if spend.calls:
            # A terminal's own width; a CI log has none, and wrapping node ids there would only hurt.
            width = self.config.get_terminal_writer().fullwidth if getattr(terminalreporter, "isatty", False) else None
            terminalreporter.write(render_table(spend, self.settings.top, width=width))
        terminalreporter.write_line(_overview(spend) if spend.calls else "No AI calls were made during the tests.")
        for message in (_missing_message(spend), *self._problems):
            if message:
                terminalreporter.write_line(f"ai-cost: {message}", yellow=True)
        verdict = budget_message(spend)
        if verdict:
            terminalreporter.write_line(verdict, red=spend.exceeded, green=not spend.exceeded, bold=spend.exceeded)
        for line in self._written:
            terminalreporter.write_line(line)
