"""Shared fixtures: a neutral environment, real SDK providers with in-memory exporters, the provider stand-in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_ai_cost
from otel_ai_cost.attribution import set_baggage_keys
from otel_ai_cost.contract import INSTRUMENTATION_SCOPE
from otel_ai_cost.stand_in import StandInServer
from otel_ai_cost.telemetry.errors import reset_internal_errors

_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "CIRCLE", "BUILDKITE", "RUNNER_", "OTEL_")
_NAMES = {
    "CI", "ENVIRONMENT", "JENKINS_URL", "BUILD_ID", "BUILD_NUMBER", "BUILD_URL", "JOB_NAME", "STAGE_NAME",
    "GIT_URL", "GIT_COMMIT", "GIT_BRANCH", "BRANCH_NAME", "CHANGE_ID",
    # the legacy tracker's variables (docs/migration.md), which a developer's shell may still export
    "TRACK_AI_USAGE", "TRACK_TO_FILE", "DYNAMODB_TABLE_NAME", "USER_ID", "APP_VERSION",
}  # fmt: skip


@pytest.fixture(scope="session")
def _ledger_data_home(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("xdg-data-home"))


@pytest.fixture(autouse=True)
def neutral_environment(monkeypatch: pytest.MonkeyPatch, _ledger_data_home: str) -> Iterator[None]:
    """No CI, no deployment settings, default baggage allow-list: the suite may itself run under a CI system,
    whose variables must not leak into what the tests expect.

    The usage ledger is off (`OTEL_AI_COST_LEDGER=none`; the ledger tests turn it on with a file in `tmp_path`),
    and its default location is a temporary directory (`XDG_DATA_HOME`), for subprocesses that drop `OTEL_*`
    variables: the suite never writes into the user's home directory."""
    for name in list(os.environ):
        if name in _NAMES or name.startswith(_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", "none")
    monkeypatch.setenv("XDG_DATA_HOME", _ledger_data_home)
    set_baggage_keys(None)
    yield
    monkeypatch.undo()
    set_baggage_keys(None)


@dataclass
class Telemetry:
    spans_exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def spans(self) -> list[ReadableSpan]:
        """Our GenAI spans (not the anthropic SDK's own), in end order."""
        return [
            s
            for s in self.spans_exporter.get_finished_spans()
            if s.instrumentation_scope is not None and s.instrumentation_scope.name == INSTRUMENTATION_SCOPE
        ]

    def span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def metrics(self) -> MetricsData:
        return self.reader.get_metrics_data()

    def points(self, name: str) -> list:
        data = self.metrics()
        found = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "tests"}))
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "tests"}))
    reset_internal_errors()
    otel_ai_cost.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield Telemetry(exporter, reader, tracer_provider, meter_provider)
    finally:
        otel_ai_cost.uninstrument()
        meter_provider.shutdown()
        tracer_provider.shutdown()


@pytest.fixture(scope="session")
def _stand_in_server() -> Iterator[StandInServer]:
    with StandInServer() as server:
        yield server


@pytest.fixture
def stand_in(_stand_in_server: StandInServer) -> StandInServer:
    _stand_in_server.reset()
    return _stand_in_server
