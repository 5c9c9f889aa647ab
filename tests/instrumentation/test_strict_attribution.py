"""Strict attribution in production: a call without an operation type is recorded `(unattributed)` on its span, its
metrics and its ledger record, counted, and its call site (this file, the line) named once per site in a warning
and kept on the span and record. Never a failed call. Real openai and anthropic clients against the stand-in."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

import otel_ai_cost
from otel_ai_cost.contract import INSTRUMENTATION_SCOPE
from otel_ai_cost.ledger.from_span import record_from_span
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery

HI = [{"role": "user", "content": "hi"}]
HERE = str(Path(__file__).resolve())


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "usage.db"
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", f"sqlite://{path}")
    return path


def environment(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, name: str, require: str | None):
    """Instruments with ENVIRONMENT=name (and OTEL_AI_COST_REQUIRE_CONTEXT=require, unset when None)."""
    monkeypatch.setenv("ENVIRONMENT", name)
    if require is None:
        monkeypatch.delenv("OTEL_AI_COST_REQUIRE_CONTEXT", raising=False)
    else:
        monkeypatch.setenv("OTEL_AI_COST_REQUIRE_CONTEXT", require)
    return request.getfixturevalue("telemetry")


@pytest.fixture
def production(monkeypatch, request, ledger):
    return environment(monkeypatch, request, "production", None)  # the default: production is strict


@pytest.fixture
def oa(stand_in) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0) as client:
        yield client


def records(path: Path) -> list:
    with SQLiteStore(path) as store:
        return sorted(store.query(UsageQuery()), key=lambda r: r.timestamp)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("otel_ai_cost") and "(unattributed)" in
            r.getMessage()]  # fmt: skip


def test_an_unattributed_production_call_is_recorded_as_such_with_its_call_site(
    production, oa, ledger, caplog, stand_in
):
    caplog.set_level(logging.WARNING, logger="otel_ai_cost")
    line = inspect.currentframe().f_lineno + 2  # type: ignore[union-attr]
    for _ in range(3):
        response = oa.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert response.choices[0].message.content  # the call itself is untouched
    with otel_ai_cost.ai_usage_context(operation_type="receipts"):
        oa.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert production.tracer_provider.force_flush()

    spans = production.spans()
    assert [s.attributes["ai_cost.operation_type"] for s in spans] == ["(unattributed)"] * 3 + ["receipts"]
    first = spans[0].attributes
    assert (first["code.file.path"], first["code.line.number"]) == (HERE, line)
    assert (
        first["code.function.name"]
        == f"{__name__}.{test_an_unattributed_production_call_is_recorded_as_such_with_its_call_site.__name__}"
    )
    assert "code.file.path" not in spans[3].attributes  # attributed: no call site

    stored = records(ledger)
    assert [(r.operation_type, r.call_site) for r in stored] == [("(unattributed)", f"{HERE}:{line}")] * 3 + [
        ("receipts", "")
    ]
    ours = [s for s in spans if s.instrumentation_scope.name == INSTRUMENTATION_SCOPE]
    assert [record_from_span(s) for s in ours] == stored  # the collector's path says the same

    [counted] = production.points("ai_cost.unattributed_calls")
    assert counted.value == 3
    assert dict(counted.attributes) == {"deployment.environment.name": "production", "gen_ai.provider.name": "openai"}
    by_type = {p.attributes["ai_cost.operation_type"]: p.value for p in production.points("ai_cost.requests")}
    assert by_type == {"(unattributed)": 3, "receipts": 1}

    [warning] = warnings_of(caplog)  # three calls from one line: one warning
    assert f"module {__name__}, line {line}" in warning and HERE in warning and "'production'" in warning


def test_each_call_site_is_named_once_and_async_calls_name_their_own_line(production, stand_in, caplog):
    caplog.set_level(logging.WARNING, logger="otel_ai_cost")

    async def calls() -> int:
        async with openai.AsyncOpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0) as client:
            line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
            await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
            await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
            return line

    first = asyncio.run(calls())
    with anthropic.Anthropic(base_url=stand_in.anthropic_base_url, api_key="sk-ant-test", max_retries=0) as client:
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        client.messages.create(model="claude-sonnet-4-20250514", max_tokens=10, messages=HI)

    named = warnings_of(caplog)
    assert len(named) == 3  # three lines, one warning each
    assert f"line {first}" in named[0] and f"line {first + 1}" in named[1] and f"line {line}" in named[2]
    spans = production.spans()
    assert [s.attributes["code.line.number"] for s in spans] == [first, first + 1, line]
    assert spans[2].attributes["gen_ai.provider.name"] == "anthropic"
    assert spans[2].attributes["ai_cost.operation_type"] == "(unattributed)"
    counted = {p.attributes["gen_ai.provider.name"]: p.value for p in production.points("ai_cost.unattributed_calls")}
    assert counted == {"openai": 2, "anthropic": 1}


def test_a_failed_unattributed_call_fails_as_it_would_and_is_still_recorded(production, oa, ledger, stand_in):
    from otel_ai_cost.stand_in import Scenario

    stand_in.push(Scenario(status=400))
    with pytest.raises(openai.BadRequestError):
        oa.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert production.tracer_provider.force_flush()
    [record] = records(ledger)
    assert (record.operation_type, record.outcome) == ("(unattributed)", "error")
    assert record.call_site.startswith(f"{HERE}:")


@pytest.mark.parametrize(
    ("name", "require", "strict"),
    [
        ("development", None, False),  # default: production only
        ("staging", "production,staging", True),
        ("staging", " production , staging ", True),
        ("production", "", False),  # empty: off
        ("production", "staging", False),
    ],
)
def test_which_environments_are_strict(monkeypatch, request, ledger, oa, name, require, strict):
    telemetry = environment(monkeypatch, request, name, require)
    oa.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert telemetry.tracer_provider.force_flush()
    attributes = telemetry.span().attributes
    assert (attributes.get("ai_cost.operation_type") == "(unattributed)") is strict
    assert ("code.file.path" in attributes) is strict
    [record] = records(ledger)
    assert (record.operation_type, bool(record.call_site)) == (("(unattributed)", True) if strict else ("", False))
    assert bool(telemetry.points("ai_cost.unattributed_calls")) is strict


def test_an_operation_type_from_baggage_attributes_the_call(monkeypatch, request, ledger, oa):
    from opentelemetry import baggage, context

    telemetry = environment(monkeypatch, request, "production", None)
    token = context.attach(baggage.set_baggage("operation_type", "from-upstream"))
    try:
        oa.chat.completions.create(model="gpt-4o-mini", messages=HI)
    finally:
        context.detach(token)
    assert telemetry.span().attributes["ai_cost.operation_type"] == "from-upstream"
    assert not telemetry.points("ai_cost.unattributed_calls")


def test_a_process_wide_operation_type_on_the_resource_attributes_every_call(monkeypatch, request, ledger, oa):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "ai_cost.operation_type=worker")
    telemetry = environment(monkeypatch, request, "production", None)
    oa.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert telemetry.tracer_provider.force_flush()
    assert "code.file.path" not in telemetry.span().attributes
    [record] = records(ledger)
    assert (record.operation_type, record.call_site) == ("worker", "")
    assert not telemetry.points("ai_cost.unattributed_calls")


def test_a_failure_inside_strict_attribution_never_fails_the_call(production, oa, monkeypatch):
    from otel_ai_cost.telemetry import recorder
    from otel_ai_cost.telemetry.errors import internal_error_counts

    def broken(*_args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(recorder, "unattributed_attribution", broken)
    response = oa.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert response.choices[0].message.content
    assert internal_error_counts() == {"recorder.strict_attribution": 1}
    assert production.span().attributes["ai_cost.pricing.status"] == "priced"  # recorded all the same


def test_two_calls_on_one_line_are_one_site(production, oa, caplog):
    caplog.set_level(logging.WARNING, logger="otel_ai_cost")
    create = oa.chat.completions.create
    line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
    create(model="gpt-4o-mini", messages=HI), create(model="gpt-4o-mini", messages=HI)
    [warning] = warnings_of(caplog)
    assert f"line {line}" in warning
    assert [s.attributes["code.line.number"] for s in production.spans()] == [line, line]
