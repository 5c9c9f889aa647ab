"""Every attribution test starts from a neutral environment: no CI, no deployment settings, default baggage
allow-list, no baggage. The suite itself may run under a CI system, whose variables must not leak in."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from otel_ai_cost.attribution import set_baggage_keys

_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "CIRCLE", "BUILDKITE", "RUNNER_", "OTEL_")
_NAMES = {
    "CI", "ENVIRONMENT", "JENKINS_URL", "BUILD_ID", "BUILD_NUMBER", "BUILD_URL", "JOB_NAME", "STAGE_NAME",
    "GIT_URL", "GIT_COMMIT", "GIT_BRANCH", "BRANCH_NAME", "CHANGE_ID",
}  # fmt: skip


@pytest.fixture(autouse=True)
def neutral_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name in _NAMES or name.startswith(_PREFIXES):
            monkeypatch.delenv(name)
    set_baggage_keys(None)
    yield
    monkeypatch.undo()
    set_baggage_keys(None)
