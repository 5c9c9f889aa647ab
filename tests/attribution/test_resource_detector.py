"""Where the spend happened: `deployment.environment.name` and CI attributes, alone and through the SDK."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import OTELResourceDetector, get_aggregated_resources
from opentelemetry.sdk.resources import Resource as SDKResource

import otel_ai_cost.attribution.resource_detector as resource_detector
from otel_ai_cost.attribution import (
    AICostResourceDetector,
    detect_environment,
    detect_resource_attributes,
    parse_resource_attributes,
)
from otel_ai_cost.contract import Env, Resource

ENV = Resource.DEPLOYMENT_ENVIRONMENT_NAME
GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_WORKFLOW": "evals",
    "GITHUB_RUN_ID": "9001",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/receipts",
}


def test_default_is_development_without_ci() -> None:
    assert detect_environment({}) == "development"
    assert detect_resource_attributes({"HOME": "/root"}) == {ENV: "development"}


def test_environment_variable_used_by_existing_deployments() -> None:
    assert detect_environment({Env.ENVIRONMENT_FALLBACK: "production"}) == "production"
    assert detect_environment({Env.ENVIRONMENT_FALLBACK: " staging \n"}) == "staging"
    assert detect_environment({Env.ENVIRONMENT_FALLBACK: "   "}) == "development"


def test_ci_gives_cicd_when_nothing_else_is_set() -> None:
    assert detect_environment(GITHUB) == "cicd"
    assert detect_environment({"CI": "true"}) == "cicd"
    attributes = detect_resource_attributes(GITHUB)
    assert attributes[ENV] == "cicd"
    assert attributes[Resource.CICD_PIPELINE_RUN_ID] == "9001"
    assert attributes[Resource.CICD_PIPELINE_NAME] == "evals"


def test_environment_variable_wins_over_ci() -> None:
    # The seed's workflow sets ENVIRONMENT=cicd itself; another value set on purpose is respected.
    assert detect_environment({**GITHUB, Env.ENVIRONMENT_FALLBACK: "staging"}) == "staging"


def test_otel_resource_attributes_win() -> None:
    environ = {
        **GITHUB,
        Env.ENVIRONMENT_FALLBACK: "production",
        "OTEL_RESOURCE_ATTRIBUTES": "service.name=receipts, deployment.environment.name = staging ,team=x",
    }
    assert detect_environment(environ) == "staging"
    assert detect_resource_attributes(environ)[ENV] == "staging"


def test_otel_resource_attributes_percent_decoded() -> None:
    environ = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=eu%2Cprod%3Dblue%20green"}
    assert detect_environment(environ) == "eu,prod=blue green"


def test_deprecated_deployment_environment_key_is_honoured() -> None:
    environ = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=production", "ENVIRONMENT": "staging"}
    assert detect_environment(environ) == "production"
    both = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,deployment.environment.name=production"}
    assert detect_environment(both) == "production"


def test_blank_or_malformed_resource_attribute_falls_through() -> None:
    environ = {
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=,garbage",
        "ENVIRONMENT": "production",
    }
    assert detect_environment(environ) == "production"


def test_parse_resource_attributes_matches_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = " a = 1 ,b=x%3Dy,novalue,c=,a=2, d =%20spaced%20 "
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", raw)
    assert parse_resource_attributes(raw) == dict(OTELResourceDetector().detect().attributes)
    assert parse_resource_attributes(raw) == {"a": "2", "b": "x=y", "c": "", "d": " spaced "}


def _resource(*detectors: object) -> Mapping[str, object]:
    return get_aggregated_resources(list(detectors), SDKResource({})).attributes  # type: ignore[arg-type]


def test_detector_through_the_sdk_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**GITHUB, "GITHUB_TOKEN": "ghs_SECRET"}.items():
        monkeypatch.setenv(name, value)
    attributes = _resource(AICostResourceDetector(), OTELResourceDetector())
    assert attributes[ENV] == "cicd"
    assert attributes[Resource.CICD_PIPELINE_RUN_URL_FULL] == "https://github.com/acme/receipts/actions/runs/9001"
    assert attributes[Resource.VCS_REPOSITORY_URL_FULL] == "https://github.com/acme/receipts"
    assert not any("SECRET" in str(value) for value in attributes.values())


def test_detector_through_the_sdk_otel_resource_attributes_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging,service.name=receipts")
    attributes = _resource(AICostResourceDetector(), OTELResourceDetector())
    assert attributes[ENV] == "staging"
    assert attributes["service.name"] == "receipts"


def test_detector_through_the_sdk_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    attributes = _resource(AICostResourceDetector(), OTELResourceDetector())
    assert attributes[ENV] == "production"
    assert not any(key.startswith(("cicd.", "vcs.")) for key in attributes)


def test_detector_with_explicit_environ() -> None:
    resource = AICostResourceDetector(environ={"ENVIRONMENT": "staging"}).detect()
    assert dict(resource.attributes) == {ENV: "staging"}
    assert resource.schema_url == ""  # merges with any other detector's resource


class _BrokenEnviron(dict):
    def get(self, *args: object) -> str:
        raise RuntimeError("boom")


def test_detector_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    assert detect_resource_attributes(_BrokenEnviron()) == {ENV: "development"}

    def explode(environ: object = None) -> dict[str, str]:
        raise RuntimeError("boom")

    monkeypatch.setattr(resource_detector, "detect_resource_attributes", explode)
    detector = AICostResourceDetector(raise_on_error=True)
    assert dict(detector.detect().attributes) == {}
    assert dict(_resource(detector)) == {}


def test_entry_point_declared_in_pyproject_loads_the_detector() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    target = pyproject["project"]["entry-points"]["opentelemetry_resource_detector"]["ai_cost"]
    module, _, name = target.partition(":")
    assert getattr(__import__(module, fromlist=[name]), name) is AICostResourceDetector


@pytest.mark.skipif(
    not entry_points(group="opentelemetry_resource_detector", name="ai_cost"),
    reason="otel-ai-cost is not installed: the ai_cost entry point is not registered",
)
def test_resource_create_with_the_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "ai_cost")
    monkeypatch.setenv("ENVIRONMENT", "production")
    assert SDKResource.create().attributes[ENV] == "production"
