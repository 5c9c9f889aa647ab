"""The environment and CI attributes a process would carry, and where each one came from.

The values are the resource detector's own (`attribution.resource_detector.detect_resource_attributes`), so
what is shown here is what the spans and the ledger get; only the origin of each is worked out here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from otel_ai_cost.attribution import ci
from otel_ai_cost.attribution.resource_detector import (
    CICD,
    DEVELOPMENT,
    detect_resource_attributes,
    parse_resource_attributes,
)
from otel_ai_cost.contract import Attribution, Env, Resource
from otel_ai_cost.doctor.checks import Result, Status

__all__ = ["ATTRIBUTION", "SERVICE_NAME", "check_attribution", "check_service_name"]

ATTRIBUTION = "attribution"
SERVICE_NAME = "service-name"

_DEPRECATED_ENVIRONMENT_KEY = "deployment.environment"  # read for compatibility, as the detector does


def _environment_origin(value: str, environ: Mapping[str, str]) -> str:
    declared = parse_resource_attributes(environ.get(Env.OTEL_RESOURCE_ATTRIBUTES))
    if declared.get(Resource.DEPLOYMENT_ENVIRONMENT_NAME, "").strip():
        return f"{Env.OTEL_RESOURCE_ATTRIBUTES} ({Resource.DEPLOYMENT_ENVIRONMENT_NAME})"
    if declared.get(_DEPRECATED_ENVIRONMENT_KEY, "").strip():
        return f"{Env.OTEL_RESOURCE_ATTRIBUTES} (deprecated {_DEPRECATED_ENVIRONMENT_KEY})"
    if (environ.get(Env.ENVIRONMENT_FALLBACK) or "").strip():
        return Env.ENVIRONMENT_FALLBACK
    if value == CICD:
        return "running under CI, no environment set"
    return f"the default: no {Env.ENVIRONMENT_FALLBACK}, no {Resource.DEPLOYMENT_ENVIRONMENT_NAME}, not under CI"


def _ci_system(environ: Mapping[str, str]) -> str | None:
    for matches, attributes in ci._SYSTEMS:  # the detector's own order: the first match wins
        if matches(environ):
            return attributes.__name__.replace("_", " ")
    return "a CI system (CI=true), without cicd.* attributes" if ci.is_ci(environ) else None


def check_attribution() -> Result:
    """`deployment.environment.name`, the CI run's `cicd.*`/`vcs.*`, `service.version` and `ai_cost.user.id`."""
    environ = os.environ
    detected = detect_resource_attributes(environ)
    declared = parse_resource_attributes(environ.get(Env.OTEL_RESOURCE_ATTRIBUTES))
    environment = detected[Resource.DEPLOYMENT_ENVIRONMENT_NAME]
    system = _ci_system(environ)
    details = [
        f"{Resource.DEPLOYMENT_ENVIRONMENT_NAME}={environment} (from {_environment_origin(environment, environ)})"
    ]
    seeds = {Resource.SERVICE_VERSION: Env.APP_VERSION, Attribution.USER_ID: Env.USER_ID}
    for key, value in detected.items():
        if key == Resource.DEPLOYMENT_ENVIRONMENT_NAME:
            continue
        if declared.get(key, "").strip():
            origin = Env.OTEL_RESOURCE_ATTRIBUTES
        else:
            origin = seeds.get(key) or f"the CI environment ({system})"
        details.append(f"{key}={value} (from {origin})")
    detectors = os.environ.get(Env.OTEL_RESOURCE_DETECTORS, "")
    if "ai_cost" in {d.strip() for d in detectors.split(",")}:
        details.append(f"resource detector ai_cost enabled ({Env.OTEL_RESOURCE_DETECTORS}): on the resource")
    else:
        details.append(
            f"resource detector ai_cost not in {Env.OTEL_RESOURCE_DETECTORS}: the same attributes go on "
            "our spans instead"
        )
    summary = f"environment {environment}" + (f", CI: {system}" if system else ", not under CI")
    if environment == DEVELOPMENT and not system:
        return Result(
            ATTRIBUTION,
            Status.WARN,
            summary + " (the default)",
            fix=f"set {Env.ENVIRONMENT_FALLBACK}=production (or {Env.OTEL_RESOURCE_ATTRIBUTES}="
            f"{Resource.DEPLOYMENT_ENVIRONMENT_NAME}=production) where this process runs, unless it "
            "really is a development machine",
            details=tuple(details),
        )
    return Result(ATTRIBUTION, Status.OK, summary, details=tuple(details))


def check_service_name() -> Result:
    """`service.name`: without it every record's service is the SDK's `unknown_service`."""
    named = os.environ.get(Env.OTEL_SERVICE_NAME, "").strip()
    if named:
        return Result(SERVICE_NAME, Status.OK, f"service {named} (from {Env.OTEL_SERVICE_NAME})")
    declared = parse_resource_attributes(os.environ.get(Env.OTEL_RESOURCE_ATTRIBUTES)).get(Resource.SERVICE_NAME)
    if declared and declared.strip():
        return Result(SERVICE_NAME, Status.OK, f"service {declared} (from {Env.OTEL_RESOURCE_ATTRIBUTES})")
    return Result(
        SERVICE_NAME,
        Status.WARN,
        "no service name: records will say unknown_service",
        fix=f"set {Env.OTEL_SERVICE_NAME}=your-service",
    )
