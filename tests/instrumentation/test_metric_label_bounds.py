"""Caller-chosen metric labels are bounded in-process: past the bound a value is `other`, and the totals across
series stay exact (issue 10, item 9). Without this, the OTel SDK's 2,000-series cap merges per-model figures into
one overflow series."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import otel_ai_cost
from otel_ai_cost.contract import (
    METRIC_LABEL_LIMIT_DEFAULT,
    METRIC_LABEL_OTHER,
    Attribution,
    Env,
    GenAI,
)
from otel_ai_cost.pricing.usage import Usage
from otel_ai_cost.stand_in import Scenario
from otel_ai_cost.telemetry.recorder import Recorder

MSGS = [{"role": "user", "content": "hi"}]
# gpt-4o-mini: $0.15 input, $0.60 output per million tokens.
PER_CALL = Decimal("0.15") * 1000 / 1_000_000 + Decimal("0.60") * 100 / 1_000_000


class Metrics:
    def __init__(self, reader: InMemoryMetricReader) -> None:
        data = reader.get_metrics_data()
        self.by_name: dict[str, list] = {}
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    self.by_name.setdefault(metric.name, []).extend(metric.data.data_points)

    def points(self, name: str) -> list:
        return self.by_name.get(name, [])


@pytest.fixture
def providers() -> Iterator[tuple[TracerProvider, MeterProvider, InMemoryMetricReader]]:
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer_provider = TracerProvider()
    yield tracer_provider, meter_provider, reader
    meter_provider.shutdown()
    tracer_provider.shutdown()


def _calls(recorder: Recorder, models: list[str]) -> None:
    for model in models:
        call = recorder.start(
            provider="openai",
            operation="chat",
            request_model=model,
            server_address=None,
            server_port=None,
            stream=False,
        )
        call.finish(Usage(input_tokens=1000, output_tokens=100), response_model="gpt-4o-mini")


@pytest.mark.parametrize("limit", [None, 50])
def test_ten_thousand_models_give_at_most_limit_plus_one_series(limit, providers, monkeypatch):
    if limit is not None:
        monkeypatch.setenv(Env.METRIC_LABEL_LIMIT, str(limit))
    bound = METRIC_LABEL_LIMIT_DEFAULT if limit is None else limit
    tracer_provider, meter_provider, reader = providers
    recorder = Recorder(tracer_provider=tracer_provider, meter_provider=meter_provider)
    models = [f"model-{i:05d}" for i in range(10_000)]
    _calls(recorder, models)
    metrics = Metrics(reader)

    requests = metrics.points("ai_cost.requests")
    by_model = {p.attributes[GenAI.REQUEST_MODEL]: p.value for p in requests}
    assert len(requests) <= bound + 1
    assert set(by_model) == {*models[:bound], METRIC_LABEL_OTHER}  # the first values seen keep their own series
    assert all(by_model[m] == 1 for m in models[:bound])
    assert by_model[METRIC_LABEL_OTHER] == 10_000 - bound
    assert sum(by_model.values()) == 10_000  # exact totals across series

    tokens = metrics.points("ai_cost.tokens")
    assert len({p.attributes[GenAI.REQUEST_MODEL] for p in tokens}) == bound + 1
    assert sum(p.value for p in tokens) == 10_000 * 1100

    spend = metrics.points("ai_cost.spend")
    assert len(spend) == bound + 1
    assert sum(p.value for p in spend) == pytest.approx(float(PER_CALL * 10_000), rel=1e-12)

    for histogram in ("gen_ai.client.token.usage", "gen_ai.client.operation.duration"):
        points = metrics.points(histogram)
        assert {p.attributes[GenAI.REQUEST_MODEL] for p in points} == {*models[:bound], METRIC_LABEL_OTHER}
        assert sum(p.count for p in points) == 10_000 * (2 if histogram == "gen_ai.client.token.usage" else 1)


def test_an_allow_list_keeps_exactly_its_values(providers, monkeypatch):
    monkeypatch.setenv(Env.METRIC_LABEL_VALUES_PREFIX + "GEN_AI_REQUEST_MODEL", "model-b, model-c")
    tracer_provider, meter_provider, reader = providers
    recorder = Recorder(tracer_provider=tracer_provider, meter_provider=meter_provider)
    _calls(recorder, ["model-a", "model-b", "model-c", "model-d", "model-b"])
    by_model = {p.attributes[GenAI.REQUEST_MODEL]: p.value for p in Metrics(reader).points("ai_cost.requests")}
    assert by_model == {"model-b": 2, "model-c": 1, METRIC_LABEL_OTHER: 2}


def test_attribution_labels_are_bounded_through_the_real_sdk(stand_in, monkeypatch):
    """Teams and operation types come from the caller: bounded the same way, on calls of the real openai client."""
    monkeypatch.setenv(Env.METRIC_LABEL_LIMIT, "2")
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer_provider = TracerProvider()
    otel_ai_cost.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="k", max_retries=0)
        for team in ("search", "ads", "ml", "infra", "search"):
            with otel_ai_cost.ai_usage_context(team=team, operation_type=f"op-{team}"):
                stand_in.push(Scenario(prompt_tokens=10, completion_tokens=2))
                client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        requests = Metrics(reader).points("ai_cost.requests")
        by_team: dict[str, int] = {}
        for p in requests:
            by_team[p.attributes[Attribution.TEAM]] = by_team.get(p.attributes[Attribution.TEAM], 0) + p.value
        assert by_team == {"search": 2, "ads": 1, METRIC_LABEL_OTHER: 2}
        assert {p.attributes[Attribution.OPERATION_TYPE] for p in requests} == {
            "op-search",
            "op-ads",
            METRIC_LABEL_OTHER,
        }
    finally:
        otel_ai_cost.uninstrument()
        meter_provider.shutdown()
        tracer_provider.shutdown()


def test_an_unusable_limit_falls_back_to_the_default(providers, monkeypatch, caplog):
    monkeypatch.setenv(Env.METRIC_LABEL_LIMIT, "lots")
    tracer_provider, meter_provider, reader = providers
    recorder = Recorder(tracer_provider=tracer_provider, meter_provider=meter_provider)
    _calls(recorder, [f"m-{i}" for i in range(METRIC_LABEL_LIMIT_DEFAULT + 5)])
    models = {p.attributes[GenAI.REQUEST_MODEL] for p in Metrics(reader).points("ai_cost.requests")}
    assert len(models) == METRIC_LABEL_LIMIT_DEFAULT + 1
    assert any(Env.METRIC_LABEL_LIMIT in r.getMessage() for r in caplog.records)


def test_an_allow_list_variable_naming_no_label_is_warned_about(monkeypatch, caplog):
    from otel_ai_cost.attribution.labels import label_bounds

    monkeypatch.setenv(Env.METRIC_LABEL_VALUES_PREFIX + "GEN_AI_REQUEST_MODLE", "gpt-4o")  # a typo
    bounds = label_bounds()
    assert any("GEN_AI_REQUEST_MODLE" in r.getMessage() for r in caplog.records)
    assert bounds.value(GenAI.REQUEST_MODEL, "anything") == "anything"  # the limit applies, not the typo
