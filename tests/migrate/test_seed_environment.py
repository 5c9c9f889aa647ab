"""The legacy tracker's environment variables keep working (docs/migration.md, section 1).

Real `openai` clients against the local stand-in server, `otel_ai_cost.instrument()` (and the launcher), each
variable's effect read where a user would see it: spans, metrics, ledger records, the usage file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner
from dynamodb_server import REGION, LoopbackDynamoDB, make_record
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource as SdkResource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_ai_cost
from otel_ai_cost import instrument_api
from otel_ai_cost.attribution import AICostResourceDetector, detect_ci
from otel_ai_cost.cli import main
from otel_ai_cost.contract import INSTRUMENTATION_SCOPE, METRIC_LABELS_FORBIDDEN, Attribution, Resource
from otel_ai_cost.instrumentation.anthropic import AnthropicCostInstrumentor
from otel_ai_cost.instrumentation.openai import OpenAICostInstrumentor
from otel_ai_cost.ledger import jsonl_file_store
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.jsonl_file_store import (
    DEFAULT_USAGE_FILE,
    JsonlFileStore,
    TeeStore,
    UsageFileIsWriteOnly,
    usage_file_from_env,
)
from otel_ai_cost.ledger.open_store import LedgerConfigError, configured_url, is_disabled, open_store
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import InvalidRecord, UsageQuery
from otel_ai_cost.stand_in import Scenario
from otel_ai_cost.telemetry.errors import internal_error_counts, reset_internal_errors

LAUNCHER_ENV_DROPPED = ("CI", "GITHUB_", "GITLAB_", "CI_", "CIRCLE", "BUILDKITE", "JENKINS_URL", "BUILD_ID", "OTEL_",
                        "ENVIRONMENT", "TRACK_", "USER_ID", "APP_VERSION", "DYNAMODB_TABLE_NAME")  # fmt: skip
LEDGER_LOGGER = "otel_ai_cost"


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What is said once per process is said again in each test; nothing stays instrumented after one."""
    monkeypatch.setattr(instrument_api, "_said_off", False)
    monkeypatch.setattr(jsonl_file_store, "_warned_switch", False)
    reset_internal_errors()
    yield
    otel_ai_cost.uninstrument()


@dataclass
class Tracked:
    """Real SDK providers given to `instrument()`, with in-memory span and metric readers."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    instrumented: list[str] = field(default_factory=list)

    def spans(self) -> list[ReadableSpan]:
        return [
            s
            for s in self.exporter.get_finished_spans()
            if s.instrumentation_scope is not None and s.instrumentation_scope.name == INSTRUMENTATION_SCOPE
        ]

    def flush(self) -> None:
        assert self.tracer_provider.force_flush(30_000)  # the ledger's processor is on this provider

    def metric_label_keys(self) -> set[str]:
        keys: set[str] = set()
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        keys |= set(point.attributes or {})
        return keys


@pytest.fixture
def track() -> Iterator[Any]:
    """`track(resource=None)`: instrument() with fresh providers (the environment set first, by the test)."""
    made: list[Tracked] = []

    def start(resource: SdkResource | None = None) -> Tracked:
        resource = resource or SdkResource.create({"service.name": "receipts-worker"})
        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[reader], resource=resource)
        tracked = Tracked(tracer_provider, meter_provider, exporter, reader)
        tracked.instrumented = otel_ai_cost.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        made.append(tracked)
        return tracked

    yield start
    otel_ai_cost.uninstrument()
    for tracked in made:
        tracked.meter_provider.shutdown()
        tracked.tracer_provider.shutdown()


@pytest.fixture
def client(stand_in) -> Iterator[openai.OpenAI]:
    oai = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-seed-env-secret", max_retries=0)
    yield oai
    oai.close()


@pytest.fixture
def ledger_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An in-process SQLite ledger in tmp_path (the suite's default is OTEL_AI_COST_LEDGER=none)."""
    path = tmp_path / "ledger.db"
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", f"sqlite://{path}")
    return path


def _chat(client: openai.OpenAI, model: str = "gpt-4o-mini") -> None:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


def _records(path: Path) -> list[LedgerRecord]:
    store = SQLiteStore(path)
    try:
        return sorted(store.query(UsageQuery()), key=lambda r: (r.trace_id, r.span_id))
    finally:
        store.close()


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- TRACK_AI_USAGE ------------------------------------------------------------------------------------------


def test_track_ai_usage_false_patches_nothing_and_records_nothing(
    track, client, stand_in, ledger_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
):
    from anthropic._base_client import SyncAPIClient as AnthropicClient
    from openai._base_client import AsyncAPIClient, SyncAPIClient

    originals = (SyncAPIClient.request, AsyncAPIClient.request, AnthropicClient.request)
    usage_file = tmp_path / "usage.jsonl"
    monkeypatch.setenv("TRACK_AI_USAGE", "false")
    monkeypatch.setenv("TRACK_TO_FILE", "true")  # off wins over the file too
    monkeypatch.setenv("OTEL_AI_COST_USAGE_FILE", str(usage_file))
    caplog.set_level(logging.DEBUG, logger=LEDGER_LOGGER)

    tracked = track()
    assert otel_ai_cost.instrument() == []  # twice: still nothing, still said once
    # The entry points `opentelemetry-instrument` loads do nothing either.
    OpenAICostInstrumentor().instrument(tracer_provider=tracked.tracer_provider)
    AnthropicCostInstrumentor().instrument(tracer_provider=tracked.tracer_provider)

    assert tracked.instrumented == []
    assert (SyncAPIClient.request, AsyncAPIClient.request, AnthropicClient.request) == originals
    assert all(not hasattr(method, "__wrapped__") for method in originals)
    _chat(client)
    tracked.flush()
    assert [r.path for r in stand_in.requests] == ["/v1/chat/completions"]  # the call itself went through
    assert tracked.spans() == []
    assert tracked.metric_label_keys() == set()
    assert not ledger_db.exists() and not usage_file.exists()
    said = [r for r in caplog.records if "TRACK_AI_USAGE=false" in r.getMessage()]
    assert [(r.levelno, r.name) for r in said] == [(logging.DEBUG, LEDGER_LOGGER)]


def test_track_ai_usage_false_turns_track_request_off_too(track, ledger_db: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRACK_AI_USAGE", "false")
    tracked = track()  # instrument() does nothing; track_request would build its own recorder, and ledger, lazily
    ran = []

    @otel_ai_cost.track_request("google_places", "place_details")
    def place_details(place_id: str) -> str:
        ran.append(place_id)
        return "ok"

    assert place_details("p1") == "ok" and ran == ["p1"]  # the function runs, untracked
    tracked.flush()
    assert tracked.spans() == []
    assert not ledger_db.exists()


@pytest.mark.parametrize("value", ["true", "TRUE", " 1 ", "yes", "on", ""])
def test_track_ai_usage_true_or_blank_tracks(value: str, track, client, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRACK_AI_USAGE", value)
    tracked = track()
    _chat(client)
    assert "openai" in tracked.instrumented
    assert [s.name for s in tracked.spans()] == ["chat gpt-4o-mini"]


@pytest.mark.parametrize("value", ["0", "No", "OFF", "False"])
def test_every_spelling_of_false_turns_tracking_off(value: str, track, client, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRACK_AI_USAGE", value)
    tracked = track()
    _chat(client)
    assert (tracked.instrumented, tracked.spans()) == ([], [])


def test_track_ai_usage_with_another_value_is_refused_by_instrument_naming_it(monkeypatch: pytest.MonkeyPatch):
    from openai._base_client import SyncAPIClient

    original = SyncAPIClient.request
    monkeypatch.setenv("TRACK_AI_USAGE", "maybe")
    with pytest.raises(ValueError, match=r"TRACK_AI_USAGE='maybe' is neither true nor false"):
        otel_ai_cost.instrument()
    assert SyncAPIClient.request is original


def test_the_entry_points_warn_once_about_another_value_and_stay_off(monkeypatch: pytest.MonkeyPatch, caplog):
    from openai._base_client import SyncAPIClient

    original = SyncAPIClient.request
    monkeypatch.setenv("TRACK_AI_USAGE", "maybe")
    caplog.set_level(logging.DEBUG, logger=LEDGER_LOGGER)
    OpenAICostInstrumentor().instrument()  # what the launcher does: it must not raise and break start-up
    AnthropicCostInstrumentor().instrument()
    assert SyncAPIClient.request is original
    warned = [r for r in caplog.records if "TRACK_AI_USAGE='maybe'" in r.getMessage()]
    assert [r.levelno for r in warned] == [logging.WARNING]


def _launch(stand_in, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """`opentelemetry-instrument python script.py`, environment variables only, as a deployment runs it."""
    script = tmp_path / "script.py"
    script.write_text(
        "import os\n"
        "import openai\n"
        "from openai._base_client import SyncAPIClient\n"
        "client = openai.OpenAI(base_url=os.environ['STAND_IN_OPENAI'], api_key='sk-launch', max_retries=0)\n"
        "client.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'hi'}])\n"
        "print('patched:', hasattr(SyncAPIClient.request, '__wrapped__'))\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(LAUNCHER_ENV_DROPPED)}
    env.update(
        STAND_IN_OPENAI=stand_in.openai_base_url,
        OTEL_SERVICE_NAME="receipts-worker",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_AI_COST_LEDGER=f"sqlite://{tmp_path / 'ledger.db'}",
        TRACK_TO_FILE="true",
        OTEL_AI_COST_USAGE_FILE=str(tmp_path / "usage.jsonl"),
        XDG_DATA_HOME=str(tmp_path / "xdg"),
    )
    env.update(extra)
    launcher = shutil.which("opentelemetry-instrument") or str(
        Path(sys.executable).with_name("opentelemetry-instrument")
    )
    return subprocess.run([launcher, sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_opentelemetry_instrument_with_track_ai_usage_false_does_nothing(stand_in, tmp_path: Path):
    tracked_run = tmp_path / "tracked"
    tracked_run.mkdir()
    result = _launch(stand_in, tracked_run)  # the control: the same run, tracking on
    assert result.returncode == 0, result.stderr
    assert "patched: True" in result.stdout
    assert len(_records(tracked_run / "ledger.db")) == 1
    assert len(_lines(tracked_run / "usage.jsonl")) == 1

    off_run = tmp_path / "off"
    off_run.mkdir()
    result = _launch(stand_in, off_run, TRACK_AI_USAGE="false")
    assert result.returncode == 0, result.stderr
    assert "patched: False" in result.stdout
    assert not (off_run / "ledger.db").exists() and not (off_run / "usage.jsonl").exists()
    assert len(stand_in.requests) == 2  # both runs' calls reached the provider
    assert "sk-launch" not in result.stdout + result.stderr


# -- TRACK_TO_FILE -------------------------------------------------------------------------------------------


def test_track_to_file_appends_each_call_and_import_gives_a_fresh_ledger_the_same_records(
    track, client, stand_in, ledger_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    usage_file = tmp_path / "dev" / "ai_usage.jsonl"  # its directory is created
    monkeypatch.setenv("TRACK_TO_FILE", "true")
    monkeypatch.setenv("OTEL_AI_COST_USAGE_FILE", str(usage_file))
    stand_in.push(
        Scenario(prompt_tokens=1000, completion_tokens=200),  # 0.00027 USD
        Scenario(prompt_tokens=1200, cached_tokens=1024, completion_tokens=50),
        Scenario(prompt_tokens=10, completion_tokens=5),  # a model no catalog prices: unknown, never 0
        Scenario(status=429, should_retry=False),
    )
    tracked = track()
    _chat(client)
    with otel_ai_cost.ai_usage_context(job_id="job-42", batch_id="b-7", team="search", user_id="alice", pr="17"):
        _chat(client)
    _chat(client, model="gpt-unheard-of-9")
    with pytest.raises(openai.RateLimitError):
        _chat(client)
    client.embeddings.create(model="text-embedding-3-small", input=["a receipt"])
    tracked.flush()

    ledger = _records(ledger_db)
    lines = _lines(usage_file)
    assert len(ledger) == len(lines) == 5
    assert stat.S_IMODE(usage_file.stat().st_mode) == 0o600
    by_time = sorted(ledger, key=lambda r: r.timestamp)
    assert by_time[0].amount == Decimal("0.00027")
    assert (by_time[2].request_model, by_time[2].amount, by_time[2].pricing_status) == (
        "gpt-unheard-of-9",
        None,
        "unpriced",
    )
    assert (by_time[3].outcome, by_time[3].amount) == ("error", None)

    fresh = tmp_path / "fresh.db"
    result = CliRunner().invoke(main, ["import", str(usage_file), "--ledger", f"sqlite://{fresh}"])
    assert result.exit_code == 0, result.output
    imported = _records(fresh)
    assert [r.to_dict() for r in imported] == [r.to_dict() for r in ledger]  # every field, amounts exactly
    assert sum(r.amount for r in imported if r.amount is not None) == sum(
        r.amount for r in ledger if r.amount is not None
    )
    tagged = next(r for r in imported if r.job_id == "job-42")
    assert (tagged.batch_id, tagged.team, tagged.user_id, tagged.tags) == ("b-7", "search", "alice", {"pr": "17"})

    again = CliRunner().invoke(main, ["import", str(usage_file), "--ledger", f"sqlite://{ledger_db}"])
    assert again.exit_code == 0, again.output
    assert [r.to_dict() for r in _records(ledger_db)] == [r.to_dict() for r in ledger]  # nothing doubled
    assert "sk-seed-env-secret" not in usage_file.read_text(encoding="utf-8")


def test_track_to_file_with_the_ledger_off_writes_the_file_alone(
    track, client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    usage_file = tmp_path / "usage.jsonl"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # where a default ledger would appear
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", "none")
    monkeypatch.setenv("TRACK_TO_FILE", "TRUE")
    monkeypatch.setenv("OTEL_AI_COST_USAGE_FILE", str(usage_file))
    tracked = track()
    _chat(client)
    _chat(client)
    tracked.flush()

    lines = _lines(usage_file)
    spans = tracked.spans()
    assert sorted((line["trace_id"], line["span_id"]) for line in lines) == sorted(
        (f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}") for s in spans
    )
    amounts = {(line["trace_id"], line["span_id"]): Decimal(line["amount"]) for line in lines}
    assert amounts == {
        (f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}"): Decimal(s.attributes["ai_cost.amount"])
        for s in spans
    }
    assert not (tmp_path / "xdg").exists()


def test_without_track_to_file_no_file_is_written(
    track, client, ledger_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("OTEL_AI_COST_USAGE_FILE", str(tmp_path / "usage.jsonl"))  # the path alone is no switch
    tracked = track()
    _chat(client)
    tracked.flush()
    assert len(_records(ledger_db)) == 1
    assert not (tmp_path / "usage.jsonl").exists()


def test_the_usage_file_defaults_to_the_legacy_path(monkeypatch: pytest.MonkeyPatch):
    assert usage_file_from_env({"TRACK_TO_FILE": "true"}) == DEFAULT_USAGE_FILE == Path("/tmp/ai_usage.jsonl")
    assert usage_file_from_env({"TRACK_TO_FILE": "false", "OTEL_AI_COST_USAGE_FILE": "/x.jsonl"}) is None
    assert usage_file_from_env({}) is None
    monkeypatch.setenv("HOME", "/home/dev")
    assert usage_file_from_env({"TRACK_TO_FILE": "1", "OTEL_AI_COST_USAGE_FILE": "~/u.jsonl"}) == Path(
        "/home/dev/u.jsonl"
    )


def test_a_failing_usage_file_is_logged_once_counted_and_never_fails_the_ledger(
    track, client, ledger_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
):
    not_a_directory = tmp_path / "plain-file"
    not_a_directory.write_text("", encoding="utf-8")
    monkeypatch.setenv("TRACK_TO_FILE", "true")
    monkeypatch.setenv("OTEL_AI_COST_USAGE_FILE", str(not_a_directory / "usage.jsonl"))
    caplog.set_level(logging.WARNING, logger=LEDGER_LOGGER)
    tracked = track()
    _chat(client)
    tracked.flush()
    _chat(client)
    tracked.flush()

    assert len(_records(ledger_db)) == 2  # the ledger has every call
    assert internal_error_counts()["ledger.usage_file"] == 2
    warnings = [r for r in caplog.records if "ledger.usage_file" in r.getMessage()]
    assert len(warnings) == 1
    assert str(not_a_directory) in str(warnings[0].exc_info[1])


def test_a_symbolic_link_in_place_of_the_usage_file_is_never_followed(
    track, client, ledger_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    target = tmp_path / "someone-elses.txt"
    target.write_text("precious\n", encoding="utf-8")
    link = tmp_path / "ai_usage.jsonl"
    link.symlink_to(target)
    monkeypatch.setenv("TRACK_TO_FILE", "true")
    monkeypatch.setenv("OTEL_AI_COST_USAGE_FILE", str(link))
    tracked = track()
    _chat(client)
    tracked.flush()
    assert target.read_text(encoding="utf-8") == "precious\n"
    assert internal_error_counts()["ledger.usage_file"] == 1
    assert len(_records(ledger_db)) == 1


def test_track_to_file_with_another_value_warns_naming_it_and_the_ledger_records(
    track, client, ledger_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
):
    monkeypatch.setenv("TRACK_TO_FILE", "sometimes")
    monkeypatch.setenv("OTEL_AI_COST_USAGE_FILE", str(tmp_path / "usage.jsonl"))
    caplog.set_level(logging.WARNING, logger=LEDGER_LOGGER)
    tracked = track()
    _chat(client)
    tracked.flush()
    assert len(_records(ledger_db)) == 1
    assert not (tmp_path / "usage.jsonl").exists()
    assert any("TRACK_TO_FILE='sometimes' is neither true nor false" in r.getMessage() for r in caplog.records)


# -- DYNAMODB_TABLE_NAME -------------------------------------------------------------------------------------


def test_dynamodb_table_name_names_the_ledger_when_otel_ai_cost_ledger_is_unset(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OTEL_AI_COST_LEDGER")
    monkeypatch.setenv("DYNAMODB_TABLE_NAME", "AIUsageMetrics")
    assert configured_url() == "dynamodb://AIUsageMetrics"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert configured_url() == "dynamodb://AIUsageMetrics?region=eu-central-1"
    monkeypatch.setenv("AWS_REGION", "eu-west-1")  # Lambda's variable first, as the legacy read them
    assert configured_url() == "dynamodb://AIUsageMetrics?region=eu-west-1"

    monkeypatch.setenv("OTEL_AI_COST_LEDGER", "sqlite:///var/lib/usage.db")  # the OTel-native setting wins
    assert configured_url() == "sqlite:///var/lib/usage.db"
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", "none")
    assert is_disabled()


def test_a_bad_dynamodb_table_name_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OTEL_AI_COST_LEDGER")
    monkeypatch.setenv("DYNAMODB_TABLE_NAME", "receipts table?")
    monkeypatch.setenv("AWS_REGION", REGION)
    with pytest.raises(LedgerConfigError, match=r"DYNAMODB_TABLE_NAME.*table name 'receipts%20table%3F'"):
        open_store()


def test_calls_are_recorded_in_the_dynamodb_table_dynamodb_table_name_names(
    track, client, stand_in, server: LoopbackDynamoDB, monkeypatch: pytest.MonkeyPatch
):
    table = "AIUsageMetrics-seed-env"
    ledger = DynamoDBStore(table, region=REGION, endpoint_url=server.endpoint_url)
    ledger.ensure_table()  # `otel-ai-cost ledger init`
    monkeypatch.delenv("OTEL_AI_COST_LEDGER")
    monkeypatch.setenv("DYNAMODB_TABLE_NAME", table)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", server.endpoint_url)
    stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=200))
    tracked = track()
    _chat(client)
    tracked.flush()
    try:
        records = list(ledger.query(UsageQuery()))
    finally:
        ledger.close()
    assert [(r.request_model, r.amount, r.service) for r in records] == [
        ("gpt-4o-mini", Decimal("0.00027"), "receipts-worker")
    ]


# -- USER_ID, APP_VERSION ------------------------------------------------------------------------------------


def test_user_id_attributes_every_call_and_a_calls_own_user_id_wins(
    track, client, ledger_db: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("USER_ID", "svc-receipts")
    # Even asked for, a user id never becomes a metric label.
    monkeypatch.setenv("OTEL_AI_COST_METRIC_LABELS", f"gen_ai.request.model,{Attribution.USER_ID}")
    tracked = track()  # a provider whose resource lacks the detector's attributes
    _chat(client)
    with otel_ai_cost.ai_usage_context(user_id="alice"):
        _chat(client)
    tracked.flush()

    assert [s.attributes[Attribution.USER_ID] for s in tracked.spans()] == ["svc-receipts", "alice"]
    by_time = sorted(_records(ledger_db), key=lambda r: r.timestamp)
    assert [r.user_id for r in by_time] == ["svc-receipts", "alice"]
    labels = tracked.metric_label_keys()
    assert "gen_ai.request.model" in labels
    assert not labels & METRIC_LABELS_FORBIDDEN


def test_user_id_and_app_version_are_resource_attributes_of_the_detector(
    track, client, ledger_db: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("USER_ID", "svc-receipts")
    monkeypatch.setenv("APP_VERSION", "3.2.1")
    resource = AICostResourceDetector().detect().merge(SdkResource.create({"service.name": "receipts-worker"}))
    assert (resource.attributes[Attribution.USER_ID], resource.attributes[Resource.SERVICE_VERSION]) == (
        "svc-receipts",
        "3.2.1",
    )
    tracked = track(resource)
    _chat(client)
    tracked.flush()
    (span,) = tracked.spans()
    assert span.resource.attributes[Resource.SERVICE_VERSION] == "3.2.1"
    assert Attribution.USER_ID not in span.attributes  # on the resource, not repeated on each span
    assert [r.user_id for r in _records(ledger_db)] == ["svc-receipts"]


def test_app_version_is_put_on_spans_when_the_resource_has_no_service_version(
    track, client, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("APP_VERSION", "3.2.1")
    tracked = track()
    _chat(client)
    assert tracked.spans()[0].attributes[Resource.SERVICE_VERSION] == "3.2.1"


def test_otel_resource_attributes_win_over_user_id_and_app_version(
    track, client, ledger_db: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("USER_ID", "svc-receipts")
    monkeypatch.setenv("APP_VERSION", "3.2.1")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.version=4.0.0,ai_cost.user.id=carol")
    detected = AICostResourceDetector().detect().attributes
    assert (detected[Resource.SERVICE_VERSION], detected[Attribution.USER_ID]) == ("4.0.0", "carol")

    tracked = track(SdkResource({"service.name": "receipts-worker"}))  # a resource built without the variables
    _chat(client)
    tracked.flush()
    (span,) = tracked.spans()
    assert (span.attributes[Resource.SERVICE_VERSION], span.attributes[Attribution.USER_ID]) == ("4.0.0", "carol")
    assert [r.user_id for r in _records(ledger_db)] == ["carol"]


def test_blank_seed_variables_count_as_unset(track, client, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("USER_ID", "  ")
    monkeypatch.setenv("APP_VERSION", "")
    tracked = track()
    _chat(client)
    attributes = tracked.spans()[0].attributes
    assert Attribution.USER_ID not in attributes and Resource.SERVICE_VERSION not in attributes


# -- GITHUB_ACTOR, GITHUB_WORKFLOW ---------------------------------------------------------------------------


def test_github_actor_and_workflow_join_the_ci_attributes_never_a_metric_label(
    track, client, ledger_db: Path, monkeypatch: pytest.MonkeyPatch
):
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_WORKFLOW": "Track AI Usage",
        "GITHUB_RUN_ID": "987654321",
    }
    for name, value in github.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OTEL_AI_COST_METRIC_LABELS", f"gen_ai.request.model,{Resource.CICD_PIPELINE_RUN_ACTOR}")
    tracked = track()
    _chat(client)
    tracked.flush()

    (span,) = tracked.spans()
    assert span.attributes[Resource.CICD_PIPELINE_RUN_ACTOR] == "octocat"
    assert span.attributes[Resource.CICD_PIPELINE_NAME] == "Track AI Usage"
    (record,) = _records(ledger_db)
    assert (record.cicd_pipeline_name, record.cicd_run_id, record.environment) == (
        "Track AI Usage",
        "987654321",
        "cicd",
    )
    assert Resource.CICD_PIPELINE_RUN_ACTOR in METRIC_LABELS_FORBIDDEN
    assert not tracked.metric_label_keys() & METRIC_LABELS_FORBIDDEN

    resource = AICostResourceDetector(environ=github).detect().attributes
    assert resource[Resource.CICD_PIPELINE_RUN_ACTOR] == "octocat"


def test_github_variables_outside_github_actions_are_not_read():
    assert detect_ci({"GITHUB_ACTOR": "octocat", "GITHUB_WORKFLOW": "Track AI Usage"}) == {}
    assert Resource.CICD_PIPELINE_RUN_ACTOR not in detect_ci({"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": " "})


# -- the usage file's store ----------------------------------------------------------------------------------


def test_a_record_beyond_a_ledger_bound_is_refused_alone_and_never_appended(tmp_path: Path):
    usage_file = tmp_path / "usage.jsonl"
    store = JsonlFileStore(usage_file)
    with pytest.raises(InvalidRecord, match="input_tokens") as refused:
        store.write([make_record(1), make_record(2, input_tokens=10**12)])
    assert refused.value.key == (f"{2:032x}", f"{3:016x}")
    assert not usage_file.exists()  # nothing of the refused batch
    store.write([make_record(1)])
    assert [line["amount"] for line in _lines(usage_file)] == ["0.000450000000000001"]  # exact text


def test_the_usage_file_alone_answers_no_query_and_says_what_to_do(tmp_path: Path):
    store = JsonlFileStore(tmp_path / "usage.jsonl")
    with pytest.raises(UsageFileIsWriteOnly, match=r"otel-ai-cost import .*usage\.jsonl"):
        store.totals("production", "2026-11")
    with pytest.raises(UsageFileIsWriteOnly):
        store.query(UsageQuery())


def test_beside_a_ledger_reads_are_the_ledgers(tmp_path: Path):
    ledger = SQLiteStore(tmp_path / "ledger.db")
    tee = TeeStore(ledger, JsonlFileStore(tmp_path / "usage.jsonl"))
    try:
        assert tee.write([make_record(1), make_record(2)]).written == 2
        assert tee.write([make_record(1)]).duplicates == 1  # the ledger's answer, whatever the file did
        assert [r.trace_id for r in tee.query(UsageQuery())] == [f"{1:032x}", f"{2:032x}"]
        assert tee.totals("production", "2026-11").amount == Decimal("0.000900000000000002")
        assert tee.path == ledger.path  # the rest of the ledger's interface
    finally:
        tee.close()
    assert len(_lines(tmp_path / "usage.jsonl")) == 3  # a replayed record is one more line; import dedupes it
