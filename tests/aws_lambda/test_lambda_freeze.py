"""A Lambda execution environment frozen right after each handler returns, then killed: with `traced`, every
call's ledger record, span and metrics are out before the handler returns; without it, they are lost."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from exported import cost_spans, ledger_records, metric_points
from lambda_runtime import FUNCTION_NAME, FrozenLambda, function_environment

from otel_ai_cost.contract import REQUESTS
from otel_ai_cost.stand_in import Scenario

INVOCATIONS = ({"calls": 2}, {"calls": 1}, {"calls": 3})
CALLS = sum(event["calls"] for event in INVOCATIONS)


def _run(handler: str, env: dict[str, str], events=INVOCATIONS) -> list[dict]:
    """Invokes the function once per event, each time freezing it after the response, then kills it."""
    function = FrozenLambda(handler, env)
    try:
        outcomes = [function.invoke(event) for event in events]
    finally:
        stderr = function.end()
    assert all("result" in o or "error" in o for o in outcomes), stderr
    return outcomes


def _otlp_env(stand_in, receiver, ledger_url: str, **extra: str) -> dict[str, str]:
    return function_environment(
        STAND_IN_OPENAI=stand_in.openai_base_url,
        OTLP_ENDPOINT=receiver.endpoint,
        FUNCTION_TELEMETRY="otlp",
        OTEL_SERVICE_NAME="receipts-fn",
        OTEL_AI_COST_LEDGER=ledger_url,
        **extra,
    )


def test_traced_handler_gets_every_record_span_and_metric_out_before_the_freeze(stand_in, receiver, tmp_path: Path):
    stand_in.push(*(Scenario(prompt_tokens=1000 + n, completion_tokens=200) for n in range(CALLS)))
    ledger_url = f"sqlite://{tmp_path / 'usage.db'}"

    outcomes = _run("lambda_function.traced_handler", _otlp_env(stand_in, receiver, ledger_url))

    assert [o["result"]["calls"] for o in outcomes] == [2, 1, 3]
    assert len(stand_in.requests) == CALLS
    records = ledger_records(ledger_url)
    spans = cost_spans(receiver)
    # Every call: one span exported and one ledger record, the same call on both sides.
    assert len(records) == CALLS
    assert sorted((s.trace_id, s.span_id) for s in spans) == sorted((r.trace_id, r.span_id) for r in records)
    assert sorted(r.input_tokens for r in records) == [1000 + n for n in range(CALLS)]
    assert {r.service for r in records} == {"receipts-fn"}
    # Each span names the invocation it was made in.
    by_invocation = Counter(s.attributes["faas.invocation_id"] for s in spans)
    assert by_invocation == {o["request_id"]: e["calls"] for o, e in zip(outcomes, INVOCATIONS, strict=True)}
    # Metrics: one export per invocation (cumulative), the last one counting every call; no id is a label.
    exports = metric_points(receiver, REQUESTS.name)
    assert len(exports) == len(INVOCATIONS)
    assert [sum(p.as_int for _, p in points) for points in exports] == [2, 3, 6]
    assert not any("faas.invocation_id" in labels for points in exports for labels, _ in points)


def test_without_traced_a_frozen_environment_loses_every_record_span_and_metric(stand_in, receiver, tmp_path: Path):
    """The control: the same function and invocations, without the decorator (so without a flush)."""
    ledger_url = f"sqlite://{tmp_path / 'usage.db'}"
    env = _otlp_env(stand_in, receiver, ledger_url, INSTRUMENT_AT_IMPORT="1")

    outcomes = _run("lambda_function.bare_handler", env)

    assert [o["result"]["calls"] for o in outcomes] == [2, 1, 3]
    assert len(stand_in.requests) == CALLS  # the calls were made (and billed) ...
    assert ledger_records(ledger_url) == []  # ... but the environment ended with them still queued
    assert cost_spans(receiver) == []
    assert receiver.metrics == []


def test_traced_composes_with_instrument_called_at_import(stand_in, receiver, tmp_path: Path):
    ledger_url = f"sqlite://{tmp_path / 'usage.db'}"
    env = _otlp_env(stand_in, receiver, ledger_url, INSTRUMENT_AT_IMPORT="1")

    _run("lambda_function.traced_handler", env)

    records = ledger_records(ledger_url)
    assert len(records) == CALLS
    assert len(cost_spans(receiver)) == CALLS  # one span per call: instrumented once, not twice


def test_a_handler_that_raises_still_flushes_its_calls(stand_in, receiver, tmp_path: Path):
    ledger_url = f"sqlite://{tmp_path / 'usage.db'}"

    outcomes = _run(
        "lambda_function.traced_handler",
        _otlp_env(stand_in, receiver, ledger_url),
        events=({"calls": 2, "fail": True},),
    )

    assert outcomes[0]["error"] == "RuntimeError: the handler failed after its calls"
    assert len(ledger_records(ledger_url)) == 2
    assert len(cost_spans(receiver)) == 2


def test_instrument_built_provider_alone_gets_the_ledger_out_with_the_function_as_service(
    stand_in, receiver, tmp_path: Path
):
    """No telemetry set up at all (the documented Lambda default: the in-process ledger, no collector):
    `traced` instruments, the provider it creates carries the function's resource, and the ledger is flushed."""
    ledger_url = f"sqlite://{tmp_path / 'usage.db'}"
    env = function_environment(STAND_IN_OPENAI=stand_in.openai_base_url, OTEL_AI_COST_LEDGER=ledger_url)

    _run("lambda_function.traced_handler", env)

    records = ledger_records(ledger_url)
    assert len(records) == CALLS
    assert {r.service for r in records} == {FUNCTION_NAME}
    assert receiver.traces == []  # nothing else was configured to receive spans


@pytest.mark.parametrize("decorated", [True, False], ids=["traced", "control-without-traced"])
def test_dynamodb_ledger_on_a_frozen_lambda(
    stand_in, dynamodb, aws_credentials, monkeypatch: pytest.MonkeyPatch, decorated: bool
):
    """The documented Lambda default, the in-process DynamoDB ledger, against a DynamoDB API server."""
    from otel_ai_cost.ledger.dynamodb_store import init_table

    for name, value in aws_credentials.items():  # for init_table and the reads below, made from this process
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    table = f"lambda-ledger-{'traced' if decorated else 'bare'}"
    ledger_url = f"dynamodb://{table}?region=us-east-1&endpoint_url={dynamodb.endpoint_url}"
    init_table(ledger_url)
    env = function_environment(
        STAND_IN_OPENAI=stand_in.openai_base_url,
        OTEL_AI_COST_LEDGER=ledger_url,
        INSTRUMENT_AT_IMPORT="0" if decorated else "1",
    )

    _run("lambda_function.traced_handler" if decorated else "lambda_function.bare_handler", env)

    records = ledger_records(ledger_url)
    if decorated:
        assert len(records) == CALLS
        assert {r.service for r in records} == {FUNCTION_NAME}
    else:
        assert records == []
