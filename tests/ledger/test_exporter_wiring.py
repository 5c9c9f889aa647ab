"""The in-process exporter is on by default: instrument() and opentelemetry-instrument wire it into the ledger."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider

import otel_ai_cost
from otel_ai_cost.contract import Cost
from otel_ai_cost.ledger.exporter import LedgerBatchSpanProcessor
from otel_ai_cost.ledger.open_store import LEDGER_ENV
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery
from otel_ai_cost.stand_in import Scenario


def _ledger_processors(provider: TracerProvider) -> list[LedgerBatchSpanProcessor]:
    return [p for p in provider._active_span_processor._span_processors if isinstance(p, LedgerBatchSpanProcessor)]


def _records(path: Path) -> list:
    with SQLiteStore(path) as store:
        return list(store.query(UsageQuery()))


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "wired"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.memory = memory  # type: ignore[attr-defined]
    yield provider
    otel_ai_cost.uninstrument()
    provider.shutdown()


def _chat(stand_in) -> None:
    client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def test_instrument_adds_the_ledger_once_per_provider_and_uninstrument_makes_it_inert(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, provider: TracerProvider, stand_in
):
    ledger = tmp_path / "usage.db"
    monkeypatch.setenv(LEDGER_ENV, f"sqlite://{ledger}")
    otel_ai_cost.instrument(tracer_provider=provider)
    otel_ai_cost.instrument(tracer_provider=provider)
    (processor,) = _ledger_processors(provider)

    stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=200))
    _chat(stand_in)
    assert provider.force_flush()
    (record,) = _records(ledger)
    assert (record.service, record.amount) == ("wired", Decimal("0.00027"))

    otel_ai_cost.uninstrument()
    assert processor.ledger_exporter.paused
    provider.get_tracer("x").start_span("chat", attributes={Cost.PRICING_STATUS: "priced"}).end()
    provider.force_flush()
    assert len(_records(ledger)) == 1  # inert: the provider lives on, the ledger no longer records

    otel_ai_cost.instrument(tracer_provider=provider)
    assert _ledger_processors(provider) == [processor] and not processor.ledger_exporter.paused
    _chat(stand_in)
    provider.force_flush()
    assert len(_records(ledger)) == 2


def test_the_ledger_stays_on_while_one_sdk_is_still_instrumented(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, provider: TracerProvider
):
    from otel_ai_cost.instrumentation.anthropic import AnthropicCostInstrumentor

    monkeypatch.setenv(LEDGER_ENV, f"sqlite://{tmp_path}/usage.db")
    otel_ai_cost.instrument(tracer_provider=provider)
    (processor,) = _ledger_processors(provider)
    AnthropicCostInstrumentor().uninstrument()
    assert not processor.ledger_exporter.paused  # openai still records
    otel_ai_cost.uninstrument()
    assert processor.ledger_exporter.paused


def test_none_turns_the_ledger_off(provider: TracerProvider):
    assert os.environ[LEDGER_ENV] == "none"  # as the whole suite runs
    otel_ai_cost.instrument(tracer_provider=provider)
    assert _ledger_processors(provider) == []


def test_a_provider_that_is_not_the_sdk_is_left_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv(LEDGER_ENV, f"sqlite://{tmp_path}/usage.db")
    try:
        assert {"openai", "anthropic"} <= set(otel_ai_cost.instrument(tracer_provider=NoOpTracerProvider()))
    finally:
        otel_ai_cost.uninstrument()
    assert not (tmp_path / "usage.db").exists()


def test_a_ledger_that_cannot_be_opened_does_not_break_instrument(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, provider: TracerProvider, stand_in, caplog
):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(LEDGER_ENV, f"sqlite://{tmp_path}/file/usage.db")  # read-only home, Lambda, ...
    with caplog.at_level(logging.WARNING, "otel_ai_cost"):
        otel_ai_cost.instrument(tracer_provider=provider)
    assert _ledger_processors(provider) == []
    assert any("the usage ledger is off" in r.getMessage() and LEDGER_ENV in r.getMessage() for r in caplog.records)
    _chat(stand_in)
    assert [s.name for s in provider.memory.get_finished_spans()] == ["chat gpt-4o-mini"]  # still traced


# -- no provider set at all; opentelemetry-instrument ---------------------------------------------------------

APP = """
import os, openai
from opentelemetry import trace
{start}
client = openai.OpenAI(base_url=os.environ["STAND_IN_OPENAI"], api_key="sk-test", max_retries=0)
client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
otel_ai_cost.instrument()  # again: harmless
from otel_ai_cost.ledger.exporter import LedgerBatchSpanProcessor
processors = trace.get_tracer_provider()._active_span_processor._span_processors
print("ledger processors:", sum(isinstance(p, LedgerBatchSpanProcessor) for p in processors))
"""


def _run(tmp_path: Path, stand_in, start: str, *, launcher: bool = False, **env: str) -> str:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(APP.format(start=start)))
    environ = {**os.environ, "STAND_IN_OPENAI": stand_in.openai_base_url, **env}
    for name in [k for k, v in env.items() if v is None]:
        del environ[name]
    command = [sys.executable, str(script)]
    if launcher:
        name = "opentelemetry-instrument"
        command = [shutil.which(name) or str(Path(sys.executable).with_name(name)), *command]
    result = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_instrument_alone_records_every_call_into_the_default_sqlite_ledger(tmp_path: Path, stand_in):
    stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=200))
    out = _run(
        tmp_path,
        stand_in,
        "import otel_ai_cost; otel_ai_cost.instrument()",
        XDG_DATA_HOME=str(tmp_path / "data"),
        ENVIRONMENT="staging",
        OTEL_SERVICE_NAME="receipts-worker",
        **{LEDGER_ENV: None},  # type: ignore[arg-type]  # unset: the default location
    )
    assert "ledger processors: 1" in out
    (record,) = _records(tmp_path / "data" / "otel-ai-cost" / "usage.db")
    assert (record.environment, record.service, record.amount) == ("staging", "receipts-worker", Decimal("0.00027"))


def test_opentelemetry_instrument_wires_the_ledger_too(tmp_path: Path, stand_in):
    ledger = tmp_path / "usage.db"
    out = _run(
        tmp_path,
        stand_in,
        "import otel_ai_cost",
        launcher=True,
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="launched",
        **{LEDGER_ENV: f"sqlite://{ledger}"},
    )
    assert "ledger processors: 1" in out  # both instrumentors and instrument(): still one
    (record,) = _records(ledger)
    assert (record.service, record.provider) == ("launched", "openai")
