"""`traced` in this process: async handlers, errors passed through unchanged, the invocation id on our spans,
and a flush bounded by the time the invocation has left."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from exported import ledger_records
from in_process import NEVER_MS, Batched, batched_providers

import otel_ai_cost
from otel_ai_cost import aws_lambda
from otel_ai_cost.aws_lambda import FAAS_INVOCATION_ID, traced


class Context:
    """The parts of the Lambda context object `traced` reads."""

    def __init__(self, request_id: str, remaining_ms: int = 60_000) -> None:
        self.aws_request_id = request_id
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


@pytest.fixture
def ledger_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite://{tmp_path / 'usage.db'}"
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", str(NEVER_MS))
    return url


@pytest.fixture
def batched(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Batched]:
    providers = batched_providers()
    otel_ai_cost.instrument(tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider)
    monkeypatch.setattr(aws_lambda, "_set_up", False)  # a new execution environment for each test
    try:
        yield providers
    finally:
        otel_ai_cost.uninstrument()
        providers.shutdown()


@pytest.fixture
def client(stand_in) -> Iterator[openai.OpenAI]:
    oai = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-traced-test", max_retries=0)
    yield oai
    oai.close()


def test_an_async_handler_is_flushed_before_it_returns(batched: Batched, client, ledger_url: str):
    aclient = openai.AsyncOpenAI(base_url=str(client.base_url), api_key="sk-traced-test", max_retries=0)

    @traced
    async def handler(event: dict[str, Any], context: Any) -> str:
        await aclient.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        return "done"

    async def invoke() -> str:
        try:
            return await handler({}, Context("req-async"))
        finally:
            await aclient.close()

    assert asyncio.run(invoke()) == "done"

    assert len(ledger_records(ledger_url)) == 1
    (span,) = batched.cost_spans()
    assert span.attributes[FAAS_INVOCATION_ID] == "req-async"


def test_the_handlers_exception_is_raised_unchanged_after_the_flush(batched: Batched, client, ledger_url: str):
    failure = ValueError("bad receipt")

    @traced
    def handler(event: dict[str, Any], context: Any) -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        raise failure

    with pytest.raises(ValueError) as raised:
        handler({}, Context("req-fail"))

    assert raised.value is failure
    assert len(ledger_records(ledger_url)) == 1
    assert len(batched.cost_spans()) == 1


def test_calls_outside_an_invocation_carry_no_invocation_id(batched: Batched, client):
    @traced(flush_timeout_s=5)
    def handler(event: dict[str, Any], context: Any) -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "in"}])

    handler({}, Context("req-1"))
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "out"}])
    otel_ai_cost.flush()

    inside, outside = batched.cost_spans()
    assert inside.attributes[FAAS_INVOCATION_ID] == "req-1"
    assert FAAS_INVOCATION_ID not in outside.attributes


def test_a_handler_called_without_a_lambda_context_still_runs_and_flushes(batched: Batched, client, ledger_url):
    @traced
    def handler(event: dict[str, Any], context: Any) -> int:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        return 7

    assert handler({}, None) == 7
    assert len(ledger_records(ledger_url)) == 1


@pytest.mark.parametrize(
    ("remaining_ms", "limit_s", "budget_s"),
    [(60_000, 10.0, 10.0), (2_600, 10.0, 2.5), (50, 10.0, 0.001)],
    ids=["the-limit", "the-time-left-less-the-response-margin", "out-of-time"],
)
def test_the_flush_never_outlasts_the_invocation(remaining_ms: int, limit_s: float, budget_s: float):
    assert aws_lambda._flush_budget(Context("req", remaining_ms), limit_s) == pytest.approx(budget_s)


@pytest.mark.parametrize("flush_timeout_s", [0, -2, float("nan"), "10"])
def test_a_bad_flush_timeout_is_refused_when_decorating(flush_timeout_s):
    with pytest.raises(ValueError, match="flush_timeout_s must be a positive number of seconds"):
        traced(flush_timeout_s=flush_timeout_s)


def test_only_a_callable_can_be_traced():
    with pytest.raises(TypeError, match="wraps a Lambda handler function"):
        traced("handler.main")
