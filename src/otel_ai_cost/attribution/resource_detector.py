"""Where the spend happens: deployment environment and CI run, as OpenTelemetry resource attributes.

Enable the detector with `OTEL_EXPERIMENTAL_RESOURCE_DETECTORS=ai_cost` (entry point `ai_cost` in the
`opentelemetry_resource_detector` group). The SDK runs the `otel` detector last, so anything set in
`OTEL_RESOURCE_ATTRIBUTES` wins over what this detector finds.

`deployment.environment.name` is, in order:

1. `deployment.environment.name` from `OTEL_RESOURCE_ATTRIBUTES` (or its deprecated predecessor
   `deployment.environment`, still common in older deployments);
2. the `ENVIRONMENT` variable existing deployments already set (`production`, `staging`, ...);
3. `cicd` when running under CI;
4. `development`.

Values are used as given (trimmed, not lower-cased); a blank value counts as unset.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from urllib.parse import unquote

from opentelemetry.sdk.resources import Resource as SDKResource
from opentelemetry.sdk.resources import ResourceDetector

from otel_ai_cost.attribution.ci import detect_ci, is_ci
from otel_ai_cost.contract import Env, Resource

__all__ = [
    "CICD",
    "DEVELOPMENT",
    "AICostResourceDetector",
    "detect_environment",
    "detect_resource_attributes",
    "parse_resource_attributes",
]

_logger = logging.getLogger(__name__)

# Not in contract.py: an input we read for compatibility, never a name we emit.
_DEPRECATED_ENVIRONMENT_KEY = "deployment.environment"
_OTEL_RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"

DEVELOPMENT = "development"
CICD = "cicd"


def parse_resource_attributes(value: str | None) -> dict[str, str]:
    """Parse an `OTEL_RESOURCE_ATTRIBUTES` string exactly as the Python SDK's `otel` detector does.

    Split on `,`, then on the first `=`; key and value trimmed; the value percent-decoded; a pair without `=`
    is skipped; a repeated key keeps its last value.
    """
    attributes: dict[str, str] = {}
    for item in (value or "").split(","):
        key, separator, raw = item.partition("=")
        if not separator:
            continue
        attributes[key.strip()] = unquote(raw.strip())
    return attributes


def detect_environment(environ: Mapping[str, str] | None = None) -> str:
    """The deployment environment name for `environ` (default `os.environ`); see the module docs for the rule.

    Used by the instrumentation when no SDK resource carries `deployment.environment.name`, so it applies the
    whole rule itself, `OTEL_RESOURCE_ATTRIBUTES` included.
    """
    environ = os.environ if environ is None else environ
    declared = parse_resource_attributes(environ.get(_OTEL_RESOURCE_ATTRIBUTES))
    for candidate in (
        declared.get(Resource.DEPLOYMENT_ENVIRONMENT_NAME),
        declared.get(_DEPRECATED_ENVIRONMENT_KEY),
        (environ.get(Env.ENVIRONMENT_FALLBACK) or "").strip(),
    ):
        if candidate and candidate.strip():
            return candidate
    return CICD if is_ci(environ) else DEVELOPMENT


def detect_resource_attributes(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`deployment.environment.name` plus the CI/VCS attributes of the current CI run (if any).

    Never raises: on an unexpected error it logs a warning and returns `{deployment.environment.name:
    "development"}` at worst.
    """
    environ = os.environ if environ is None else environ
    try:
        environment = detect_environment(environ)
    except Exception:  # a broken environment must not break start-up
        _logger.warning("otel-ai-cost: could not determine the deployment environment", exc_info=True)
        environment = DEVELOPMENT
    try:
        ci = detect_ci(environ)
    except Exception:
        _logger.warning("otel-ai-cost: could not read the CI environment", exc_info=True)
        ci = {}
    return {Resource.DEPLOYMENT_ENVIRONMENT_NAME: environment, **ci}


class AICostResourceDetector(ResourceDetector):
    """Resource detector adding `deployment.environment.name` and the CI run's `cicd.*`/`vcs.*` attributes.

    Registered as `ai_cost`: `OTEL_EXPERIMENTAL_RESOURCE_DETECTORS=ai_cost`. Never raises, even with
    `raise_on_error=True`: a detector failure must not break the application's start-up. The resource has no
    schema URL, so it merges with any other detector's resource (the SDK refuses to merge two different ones).
    """

    def __init__(self, raise_on_error: bool = False, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(raise_on_error)
        self._environ = environ

    def detect(self) -> SDKResource:
        try:
            return SDKResource(detect_resource_attributes(self._environ))
        except Exception:
            _logger.warning("otel-ai-cost: resource detection failed", exc_info=True)
            return SDKResource.get_empty()
