"""CI/CD and VCS attributes from the variables each CI system documents.

Pure functions: an environment mapping in, `cicd.*` / `vcs.*` resource attributes out. One small function
per system, written from the vendor's variable reference (GitHub "Variables reference", GitLab "Predefined
CI/CD variables", CircleCI "Project values and variables", Buildkite "Environment variables", Jenkins `env`
globals).

Rules every function follows:

- an attribute whose variables are absent or empty is omitted, never emitted as an empty string;
- who started a run is `ai_cost.cicd.pipeline.run.actor` (GitHub's `GITHUB_ACTOR`, which the legacy tracker
  recorded): OpenTelemetry semconv v1.41 has no such attribute (its `cicd.*`/`vcs.*` registries name none, and
  `enduser.id`/`user.id` describe the user of a request or of the host, not the trigger of a CI run), so the name
  is ours, shaped like `cicd.pipeline.run.id`. It is a login, unbounded and personal: never a metric label;
- variables that hold credentials (`GITHUB_TOKEN`, `CI_JOB_TOKEN`, `CI_REPOSITORY_URL`, `CIRCLE_OIDC_TOKEN`,
  `BUILDKITE_AGENT_ACCESS_TOKEN`, ...) are never read, and every URL passes through `strip_credentials`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from otel_ai_cost.contract import Resource

__all__ = [
    "buildkite",
    "circleci",
    "detect_ci",
    "github_actions",
    "gitlab_ci",
    "is_ci",
    "jenkins",
    "strip_credentials",
]

Environ = Mapping[str, str]

_GITHUB_PR_REF = re.compile(r"^refs/pull/(\d+)/(?:merge|head)$")
_TRAILING_NUMBER = re.compile(r"/(\d+)/?$")


def strip_credentials(url: str) -> str:
    """Return `url` without the credentials a CI system may have embedded in it.

    - `scheme://user:password@host/path` and `scheme://token@host/path` lose their whole `userinfo`: a bare
      user name in an HTTP(S) URL is commonly a token (`https://x-access-token:...@github.com`,
      `https://TOKEN@...`).
    - scp-like git addresses (`git@github.com:org/repo.git`) keep a plain user name, which is the SSH login
      and not a secret, but lose a `user:password@` prefix.
    """
    scheme_end = url.find("://")
    if scheme_end != -1:
        host_start = scheme_end + 3
        host_end = len(url)
        for delimiter in "/?#":
            index = url.find(delimiter, host_start)
            if index != -1:
                host_end = min(host_end, index)
        # rfind: a password with an unencoded "@" still belongs to the userinfo.
        at = url.rfind("@", host_start, host_end)
        return url if at == -1 else url[:host_start] + url[at + 1 :]
    at = url.find("@")
    if at != -1 and ":" in url[:at]:
        return url[at + 1 :]
    return url


def _get(environ: Environ, *names: str) -> str | None:
    """The first of `names` that is set to a non-blank value, stripped."""
    for name in names:
        value = environ.get(name)
        if value and value.strip():
            return value.strip()
    return None


def _url(environ: Environ, *names: str) -> str | None:
    value = _get(environ, *names)
    return strip_credentials(value) if value else None


def _attrs(
    pipeline_name: str | None = None,
    run_id: str | None = None,
    run_url: str | None = None,
    task_name: str | None = None,
    repository_url: str | None = None,
    revision: str | None = None,
    head_name: str | None = None,
    change_id: str | None = None,
    actor: str | None = None,
) -> dict[str, str]:
    pairs = {
        Resource.CICD_PIPELINE_NAME: pipeline_name,
        Resource.CICD_PIPELINE_RUN_ID: run_id,
        Resource.CICD_PIPELINE_RUN_URL_FULL: run_url,
        Resource.CICD_PIPELINE_TASK_NAME: task_name,
        Resource.VCS_REPOSITORY_URL_FULL: repository_url,
        Resource.VCS_REF_HEAD_REVISION: revision,
        Resource.VCS_REF_HEAD_NAME: head_name,
        Resource.VCS_CHANGE_ID: change_id,
        Resource.CICD_PIPELINE_RUN_ACTOR: actor,
    }
    return {name: value for name, value in pairs.items() if value}


def _is_true(environ: Environ, name: str) -> bool:
    return (environ.get(name) or "").strip().lower() == "true"


# --- GitHub Actions ---


def _is_github(environ: Environ) -> bool:
    return _is_true(environ, "GITHUB_ACTIONS")


def github_actions(environ: Environ) -> dict[str, str]:
    """GitHub Actions.

    The run id is `GITHUB_RUN_ID` alone (what GitHub's UI and API call the run; re-runs keep it). The run
    URL points at the attempt that actually ran: `/attempts/N` is appended when `GITHUB_RUN_ATTEMPT` is above
    1, so a re-run's spend links to the re-run, and a first attempt links to the run's canonical page.

    `GITHUB_WORKFLOW` (the workflow's name) is `cicd.pipeline.name`; `GITHUB_ACTOR` (the account that started
    the workflow, as the legacy tracker recorded it; GitHub keeps it on a re-run, whose re-runner is
    `GITHUB_TRIGGERING_ACTOR`, not read) is `ai_cost.cicd.pipeline.run.actor`.
    """
    server = _get(environ, "GITHUB_SERVER_URL")
    repository = _get(environ, "GITHUB_REPOSITORY")
    run_id = _get(environ, "GITHUB_RUN_ID")
    repository_url = strip_credentials(f"{server.rstrip('/')}/{repository}") if server and repository else None
    run_url = None
    if repository_url and run_id:
        run_url = f"{repository_url}/actions/runs/{run_id}"
        attempt = _get(environ, "GITHUB_RUN_ATTEMPT")
        if attempt and attempt.isdigit() and int(attempt) > 1:
            run_url += f"/attempts/{int(attempt)}"
    pull = _GITHUB_PR_REF.match(_get(environ, "GITHUB_REF") or "")
    return _attrs(
        pipeline_name=_get(environ, "GITHUB_WORKFLOW"),
        run_id=run_id,
        run_url=run_url,
        task_name=_get(environ, "GITHUB_JOB"),
        repository_url=repository_url,
        revision=_get(environ, "GITHUB_SHA"),
        # GITHUB_HEAD_REF is the PR's source branch (empty outside pull_request events); GITHUB_REF_NAME is
        # "<n>/merge" there, which is not a branch anyone recognises.
        head_name=_get(environ, "GITHUB_HEAD_REF", "GITHUB_REF_NAME"),
        change_id=pull.group(1) if pull else None,
        actor=_get(environ, "GITHUB_ACTOR"),
    )


# --- GitLab CI ---


def _is_gitlab(environ: Environ) -> bool:
    return _is_true(environ, "GITLAB_CI")


def gitlab_ci(environ: Environ) -> dict[str, str]:
    """GitLab CI. `CI_PIPELINE_NAME` is often empty, then the project path names the pipeline.

    `CI_REPOSITORY_URL` embeds the job token and is never read; `CI_PROJECT_URL` is the repository URL.
    """
    return _attrs(
        pipeline_name=_get(environ, "CI_PIPELINE_NAME", "CI_PROJECT_PATH"),
        run_id=_get(environ, "CI_PIPELINE_ID"),
        run_url=_url(environ, "CI_PIPELINE_URL"),
        task_name=_get(environ, "CI_JOB_NAME"),
        repository_url=_url(environ, "CI_PROJECT_URL"),
        revision=_get(environ, "CI_COMMIT_SHA"),
        head_name=_get(environ, "CI_COMMIT_REF_NAME"),
        change_id=_get(environ, "CI_MERGE_REQUEST_IID"),
    )


# --- CircleCI ---


def _is_circleci(environ: Environ) -> bool:
    return _is_true(environ, "CIRCLECI")


def circleci(environ: Environ) -> dict[str, str]:
    """CircleCI. It exposes no pipeline name nor workflow URL: the project's repository name stands for the
    pipeline, the workflow id for the run, and no run URL is emitted (only job URLs exist)."""
    pull = _TRAILING_NUMBER.search(_get(environ, "CIRCLE_PULL_REQUEST") or "")
    return _attrs(
        pipeline_name=_get(environ, "CIRCLE_PROJECT_REPONAME"),
        run_id=_get(environ, "CIRCLE_WORKFLOW_ID", "CIRCLE_PIPELINE_ID"),
        task_name=_get(environ, "CIRCLE_JOB"),
        repository_url=_url(environ, "CIRCLE_REPOSITORY_URL"),
        revision=_get(environ, "CIRCLE_SHA1"),
        head_name=_get(environ, "CIRCLE_BRANCH", "CIRCLE_TAG"),
        change_id=pull.group(1) if pull else _get(environ, "CIRCLE_PR_NUMBER"),
    )


# --- Buildkite ---


def _is_buildkite(environ: Environ) -> bool:
    return _is_true(environ, "BUILDKITE")


def buildkite(environ: Environ) -> dict[str, str]:
    """Buildkite. `BUILDKITE_PULL_REQUEST` is "false" outside pull requests, and `BUILDKITE_COMMIT` may be the
    symbolic "HEAD" (a build started without a commit): neither is emitted."""
    pull_request = _get(environ, "BUILDKITE_PULL_REQUEST")
    revision = _get(environ, "BUILDKITE_COMMIT")
    return _attrs(
        pipeline_name=_get(environ, "BUILDKITE_PIPELINE_NAME", "BUILDKITE_PIPELINE_SLUG"),
        run_id=_get(environ, "BUILDKITE_BUILD_ID"),
        run_url=_url(environ, "BUILDKITE_BUILD_URL"),
        task_name=_get(environ, "BUILDKITE_LABEL", "BUILDKITE_STEP_KEY"),
        repository_url=_url(environ, "BUILDKITE_REPO"),
        revision=None if revision == "HEAD" else revision,
        head_name=_get(environ, "BUILDKITE_BRANCH", "BUILDKITE_TAG"),
        change_id=None if pull_request == "false" else pull_request,
    )


# --- Jenkins ---


def _is_jenkins(environ: Environ) -> bool:
    # JENKINS_URL alone is also exported on developer machines for jenkins-cli; a build also has BUILD_ID.
    return _get(environ, "JENKINS_URL") is not None and _get(environ, "BUILD_ID", "BUILD_NUMBER") is not None


def jenkins(environ: Environ) -> dict[str, str]:
    """Jenkins (the git plugin's variables, and multibranch `BRANCH_NAME`/`CHANGE_ID`).

    `STAGE_NAME` is only set inside a declarative pipeline stage. `GIT_BRANCH` from the git plugin reads
    `origin/main`; the `origin/` remote prefix is removed.
    """
    head_name = _get(environ, "BRANCH_NAME")
    if head_name is None:
        git_branch = _get(environ, "GIT_BRANCH")
        head_name = git_branch.removeprefix("origin/") if git_branch else None
    return _attrs(
        pipeline_name=_get(environ, "JOB_NAME"),
        run_id=_get(environ, "BUILD_NUMBER", "BUILD_ID"),
        run_url=_url(environ, "BUILD_URL"),
        task_name=_get(environ, "STAGE_NAME"),
        repository_url=_url(environ, "GIT_URL"),
        revision=_get(environ, "GIT_COMMIT"),
        head_name=head_name,
        change_id=_get(environ, "CHANGE_ID"),
    )


# Checked in this order; the first match wins. Jenkins is last: its detection is the weakest.
_SYSTEMS: tuple[tuple[Callable[[Environ], bool], Callable[[Environ], dict[str, str]]], ...] = (
    (_is_github, github_actions),
    (_is_gitlab, gitlab_ci),
    (_is_circleci, circleci),
    (_is_buildkite, buildkite),
    (_is_jenkins, jenkins),
)


def detect_ci(environ: Environ | None = None) -> dict[str, str]:
    """The `cicd.*` and `vcs.*` attributes of the CI run this process belongs to; empty outside CI.

    Supported: GitHub Actions, GitLab CI, CircleCI, Buildkite, Jenkins. `environ` defaults to `os.environ`.
    """
    environ = os.environ if environ is None else environ
    for matches, attributes in _SYSTEMS:
        if matches(environ):
            return attributes(environ)
    return {}


def is_ci(environ: Environ | None = None) -> bool:
    """True when running under CI: one of the supported systems, or any system setting the conventional
    `CI` variable to `true`/`1` (Travis, Bitbucket, Drone, Woodpecker, ...), which gets no `cicd.*`
    attributes."""
    environ = os.environ if environ is None else environ
    if any(matches(environ) for matches, _ in _SYSTEMS):
        return True
    return (environ.get("CI") or "").strip().lower() in {"true", "1"}
