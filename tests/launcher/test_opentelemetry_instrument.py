"""`opentelemetry-instrument python app.py`, environment variables only: spans, metrics and resource over OTLP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from otel_ai_cost.stand_in import Scenario

from .otlp_receiver import OtlpReceiver, attributes

APP = Path(__file__).with_name("app.py")
CI_VARIABLES = (
    "CI",
    "GITHUB_",
    "GITLAB_",
    "CI_",
    "CIRCLE",
    "BUILDKITE",
    "JENKINS_URL",
    "BUILD_ID",
    "OTEL_",
    "ENVIRONMENT",
)


def _run(stand_in, receiver: OtlpReceiver, script: Path | None = None, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CI_VARIABLES)}
    env.update(
        STAND_IN_OPENAI=stand_in.openai_base_url,
        STAND_IN_ANTHROPIC=stand_in.anthropic_base_url,
        OTEL_SERVICE_NAME="receipts-worker",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_EXPERIMENTAL_RESOURCE_DETECTORS="ai_cost",
        # A GitHub Actions job, as the runner describes it.
        GITHUB_ACTIONS="true",
        GITHUB_WORKFLOW="nightly-eval",
        GITHUB_RUN_ID="987654321",
        GITHUB_RUN_ATTEMPT="1",
        GITHUB_JOB="evaluate",
        GITHUB_SERVER_URL="https://github.com",
        GITHUB_REPOSITORY="acme/receipts",
        GITHUB_SHA="0123456789abcdef0123456789abcdef01234567",
        GITHUB_REF="refs/pull/42/merge",
        GITHUB_REF_NAME="42/merge",
        GITHUB_HEAD_REF="feature/labels",
    )
    env.update(extra)
    if script is not None:  # a script that starts the auto-instrumentation itself, as the launcher's hook does
        command = [sys.executable, str(script)]
    else:
        launcher = shutil.which("opentelemetry-instrument") or str(
            Path(sys.executable).with_name("opentelemetry-instrument")
        )
        command = [launcher, sys.executable, str(APP)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def _spans(receiver: OtlpReceiver) -> list[tuple[dict, dict, object]]:
    found = []
    for request in receiver.traces:
        for rs in request.resource_spans:
            resource = attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                if ss.scope.name == "otel_ai_cost":
                    found += [(resource, attributes(s.attributes), s) for s in ss.spans]
    return found


def _metric_points(receiver: OtlpReceiver, name: str) -> list[tuple[dict, object]]:
    points = []
    for request in receiver.metrics:
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        data = getattr(metric, metric.WhichOneof("data"))
                        points += [(attributes(p.attributes), p) for p in data.data_points]
    return points


def test_full_result_from_environment_variables_only(stand_in):
    stand_in.push(
        Scenario(prompt_tokens=1000, completion_tokens=200),
        Scenario(prompt_tokens=300, completion_tokens=7),
        Scenario(input_tokens=100, cache_read_input_tokens=2000, output_tokens=300),
    )
    with OtlpReceiver() as receiver:
        result = _run(stand_in, receiver)
    assert result.returncode == 0, result.stderr
    assert "app done" in result.stdout

    spans = _spans(receiver)
    assert [s.name for _, _, s in spans] == ["chat gpt-4o-mini", "chat gpt-4o-mini", "chat claude-haiku-4-5"]
    resource, first, _ = spans[0]
    assert resource["service.name"] == "receipts-worker"
    assert resource["deployment.environment.name"] == "cicd"
    assert resource["cicd.pipeline.name"] == "nightly-eval"
    assert resource["cicd.pipeline.run.id"] == "987654321"
    assert resource["cicd.pipeline.run.url.full"] == "https://github.com/acme/receipts/actions/runs/987654321"
    assert resource["cicd.pipeline.task.name"] == "evaluate"
    assert resource["vcs.repository.url.full"] == "https://github.com/acme/receipts"
    assert resource["vcs.ref.head.revision"] == "0123456789abcdef0123456789abcdef01234567"
    assert resource["vcs.ref.head.name"] == "feature/labels"
    assert resource["vcs.change.id"] == "42"

    # 1000 * 0.15 + 200 * 0.60 per 1M
    assert Decimal(first["ai_cost.amount"]) == Decimal("0.00027")
    _, streamed, _ = spans[1]
    assert (streamed["gen_ai.usage.input_tokens"], streamed["gen_ai.usage.output_tokens"]) == (300, 7)
    _, claude, _ = spans[2]
    assert claude["gen_ai.usage.input_tokens"] == 2100
    # 100 * 1.00 + 2000 * 0.10 + 300 * 5.00 = 1800 per 1M
    assert Decimal(claude["ai_cost.amount"]) == Decimal("0.0018")
    # Resource attributes stay on the resource when the detector is on.
    assert "cicd.pipeline.run.id" not in first

    spend = {labels["gen_ai.request.model"]: p.as_double for labels, p in _metric_points(receiver, "ai_cost.spend")}
    assert spend == pytest.approx({"gpt-4o-mini": 0.00027 + 0.0000492, "claude-haiku-4-5": 0.0018})
    requests = sum(p.as_int for _, p in _metric_points(receiver, "ai_cost.requests"))
    assert requests == 3
    for labels, _ in _metric_points(receiver, "ai_cost.tokens"):
        assert "cicd.pipeline.run.id" not in labels and "ai_cost.job.id" not in labels
    assert _metric_points(receiver, "gen_ai.client.operation.duration")
    assert "sk-launcher-secret" not in repr(receiver.traces) + repr(receiver.metrics)


def test_disabling_one_of_our_instrumentors_by_entry_point_name(stand_in):
    with OtlpReceiver() as receiver:
        result = _run(stand_in, receiver, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="ai_cost_anthropic")
    assert result.returncode == 0, result.stderr
    assert [attrs["gen_ai.provider.name"] for _, attrs, _ in _spans(receiver)] == ["openai", "openai"]


def test_without_the_detector_ci_attribution_lands_on_our_spans(stand_in):
    with OtlpReceiver() as receiver:
        result = _run(stand_in, receiver, OTEL_EXPERIMENTAL_RESOURCE_DETECTORS="")
    assert result.returncode == 0, result.stderr
    resource, first, _ = _spans(receiver)[0]
    assert "cicd.pipeline.run.id" not in resource
    assert first["cicd.pipeline.run.id"] == "987654321"
    assert first["deployment.environment.name"] == "cicd"


def test_only_one_sdk_importable_still_instruments_it(stand_in):
    with OtlpReceiver() as receiver:
        result = _run(stand_in, receiver, OTEL_LOG_LEVEL="debug", script=Path(__file__).with_name("only_openai_app.py"))
    assert result.returncode == 0, result.stderr
    assert "instrumented: ['openai']" in result.stdout
    assert [s.name for _, _, s in _spans(receiver)] == ["chat gpt-4o-mini"]
    for name in ("ai_cost_anthropic", "ai_cost_bedrock", "ai_cost_google_genai", "ai_cost_googlemaps"):
        assert f"Importing of {name} failed" not in result.stderr
    assert "Traceback" not in result.stderr
