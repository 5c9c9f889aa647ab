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

Two variables of the legacy tracker's deployments also become resource attributes (docs/migration.md):

- `APP_VERSION` is `service.version`;
- `USER_ID` is `ai_cost.user.id`, the user the process's calls are attributed to (the ledger's `user_id`). A
  call's own `ai_usage_context(user_id=...)` wins over it. Like every user id it is never a metric label.

For every attribute found here, a value declared in `OTEL_RESOURCE_ATTRIBUTES` wins (`service.version=2.0`
over `APP_VERSION`, `ai_cost.user.id=...` over `USER_ID`, `cicd.pipeline.name=...` over `GITHUB_WORKFLOW`), as
it does on the SDK's resource: the values the instrumentation puts on spans when the resource lacks them agree.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from urllib.parse import unquote

from opentelemetry.sdk.resources import Resource as SDKResource
from opentelemetry.sdk.resources import ResourceDetector

from otel_ai_cost.attribution.ci import detect_ci, is_ci
from otel_ai_cost.contract import Attribution, Env, Resource

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
    """`deployment.environment.name`, the CI/VCS attributes of the current CI run (if any), and `service.version`
    and `ai_cost.user.id` from `APP_VERSION` and `USER_ID` (if set); see the module documentation.

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
    try:
        seed = _seed_attributes(environ)
        declared = parse_resource_attributes(environ.get(_OTEL_RESOURCE_ATTRIBUTES))
    except Exception:
        _logger.warning("otel-ai-cost: could not read APP_VERSION, USER_ID or the resource attributes", exc_info=True)
        seed, declared = {}, {}
    detected = {Resource.DEPLOYMENT_ENVIRONMENT_NAME: environment, **ci, **seed}
    for key in detected:  # what OTEL_RESOURCE_ATTRIBUTES declares wins, as on the SDK resource
        value = declared.get(key)
        if value and value.strip():
            detected[key] = value
    return detected


def _seed_attributes(environ: Mapping[str, str]) -> dict[str, str]:
    """`service.version` from `APP_VERSION` and `ai_cost.user.id` from `USER_ID` (the legacy tracker's variables),
    each only when set to a non-blank value."""
    pairs = {
        Resource.SERVICE_VERSION: environ.get(Env.APP_VERSION),
        Attribution.USER_ID: environ.get(Env.USER_ID),
    }
    return {key: value.strip() for key, value in pairs.items() if value and value.strip()}


class AICostResourceDetector(ResourceDetector):
    """Resource detector adding `deployment.environment.name`, the CI run's `cicd.*`/`vcs.*` attributes, and
    `service.version`/`ai_cost.user.id` from `APP_VERSION`/`USER_ID`.

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
