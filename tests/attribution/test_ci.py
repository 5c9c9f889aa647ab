"""Each CI system, with the variables its documentation shows, gives exactly the expected attributes."""

from __future__ import annotations

import pytest

from otel_ai_cost.attribution import detect_ci, is_ci, strip_credentials
from otel_ai_cost.contract import Resource

SHA = "ffac537e6cbbf934b08745a378932722df287a53"

GITHUB_PULL_REQUEST = {
    "CI": "true",
    "GITHUB_ACTIONS": "true",
    "GITHUB_WORKFLOW": "CI",
    "GITHUB_RUN_ID": "1658821493",
    "GITHUB_RUN_NUMBER": "3",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_JOB": "build",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "octocat/Hello-World",
    "GITHUB_SHA": SHA,
    "GITHUB_REF": "refs/pull/42/merge",
    "GITHUB_REF_NAME": "42/merge",
    "GITHUB_HEAD_REF": "feature-branch-1",
    "GITHUB_BASE_REF": "main",
    "GITHUB_EVENT_NAME": "pull_request",
    "GITHUB_TOKEN": "ghs_SECRETSECRETSECRET",
    "ACTIONS_RUNTIME_TOKEN": "eyJSECRET",
    "RUNNER_NAME": "GitHub Actions 2",
}


def test_github_actions_pull_request() -> None:
    assert detect_ci(GITHUB_PULL_REQUEST) == {
        Resource.CICD_PIPELINE_NAME: "CI",
        Resource.CICD_PIPELINE_RUN_ID: "1658821493",
        Resource.CICD_PIPELINE_RUN_URL_FULL: "https://github.com/octocat/Hello-World/actions/runs/1658821493",
        Resource.CICD_PIPELINE_TASK_NAME: "build",
        Resource.VCS_REPOSITORY_URL_FULL: "https://github.com/octocat/Hello-World",
        Resource.VCS_REF_HEAD_REVISION: SHA,
        Resource.VCS_REF_HEAD_NAME: "feature-branch-1",
        Resource.VCS_CHANGE_ID: "42",
    }


def test_github_actions_push_rerun() -> None:
    environ = {
        **GITHUB_PULL_REQUEST,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_REF_NAME": "main",
        "GITHUB_HEAD_REF": "",  # GitHub sets it empty outside pull_request events
        "GITHUB_BASE_REF": "",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_SERVER_URL": "https://ghe.example.com/",
    }
    attributes = detect_ci(environ)
    assert attributes[Resource.VCS_REF_HEAD_NAME] == "main"
    assert Resource.VCS_CHANGE_ID not in attributes
    # The run id is GitHub's; the URL points at the attempt that ran.
    assert attributes[Resource.CICD_PIPELINE_RUN_ID] == "1658821493"
    assert (
        attributes[Resource.CICD_PIPELINE_RUN_URL_FULL]
        == "https://ghe.example.com/octocat/Hello-World/actions/runs/1658821493/attempts/2"
    )
    assert attributes[Resource.VCS_REPOSITORY_URL_FULL] == "https://ghe.example.com/octocat/Hello-World"


def test_github_actions_without_server_url_has_no_urls() -> None:
    environ = {k: v for k, v in GITHUB_PULL_REQUEST.items() if k != "GITHUB_SERVER_URL"}
    attributes = detect_ci(environ)
    assert Resource.CICD_PIPELINE_RUN_URL_FULL not in attributes
    assert Resource.VCS_REPOSITORY_URL_FULL not in attributes
    assert attributes[Resource.CICD_PIPELINE_RUN_ID] == "1658821493"


GITLAB_MERGE_REQUEST = {
    "CI": "true",
    "GITLAB_CI": "true",
    "CI_PIPELINE_NAME": "",
    "CI_PROJECT_PATH": "gitlab-org/gitlab-foss",
    "CI_PROJECT_URL": "https://gitlab.example.com/gitlab-org/gitlab-foss",
    "CI_PIPELINE_ID": "1000",
    "CI_PIPELINE_URL": "https://gitlab.example.com/gitlab-org/gitlab-foss/-/pipelines/1000",
    "CI_JOB_ID": "50",
    "CI_JOB_NAME": "rspec:test 1/3",
    "CI_JOB_URL": "https://gitlab.example.com/gitlab-org/gitlab-foss/-/jobs/50",
    "CI_COMMIT_SHA": "1ecfd275763eff1d6b4844ea3168962458c9f27a",
    "CI_COMMIT_REF_NAME": "feature/receipts",
    "CI_MERGE_REQUEST_IID": "7",
    "CI_REPOSITORY_URL": "https://gitlab-ci-token:glcbt-SECRET@gitlab.example.com/gitlab-org/gitlab-foss.git",
    "CI_JOB_TOKEN": "glcbt-SECRET",
}


def test_gitlab_ci_merge_request() -> None:
    assert detect_ci(GITLAB_MERGE_REQUEST) == {
        Resource.CICD_PIPELINE_NAME: "gitlab-org/gitlab-foss",  # CI_PIPELINE_NAME is empty
        Resource.CICD_PIPELINE_RUN_ID: "1000",
        Resource.CICD_PIPELINE_RUN_URL_FULL: "https://gitlab.example.com/gitlab-org/gitlab-foss/-/pipelines/1000",
        Resource.CICD_PIPELINE_TASK_NAME: "rspec:test 1/3",
        Resource.VCS_REPOSITORY_URL_FULL: "https://gitlab.example.com/gitlab-org/gitlab-foss",
        Resource.VCS_REF_HEAD_REVISION: "1ecfd275763eff1d6b4844ea3168962458c9f27a",
        Resource.VCS_REF_HEAD_NAME: "feature/receipts",
        Resource.VCS_CHANGE_ID: "7",
    }


def test_gitlab_ci_named_pipeline_on_branch() -> None:
    environ = {**GITLAB_MERGE_REQUEST, "CI_PIPELINE_NAME": "Nightly evals"}
    del environ["CI_MERGE_REQUEST_IID"]
    attributes = detect_ci(environ)
    assert attributes[Resource.CICD_PIPELINE_NAME] == "Nightly evals"
    assert Resource.VCS_CHANGE_ID not in attributes


CIRCLECI_PULL_REQUEST = {
    "CI": "true",
    "CIRCLECI": "true",
    "CIRCLE_PROJECT_REPONAME": "circleci-demo",
    "CIRCLE_PROJECT_USERNAME": "acme",
    "CIRCLE_WORKFLOW_ID": "4f1a0a9c-5b7e-4b8a-9a3e-2d6c7b0d8e11",
    "CIRCLE_PIPELINE_ID": "a3b9c1d2-0000-4000-8000-000000000001",
    "CIRCLE_WORKFLOW_JOB_ID": "b8c7d6e5-1111-4111-8111-111111111111",
    "CIRCLE_JOB": "integration-tests",
    "CIRCLE_BUILD_NUM": "1234",
    "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/circleci-demo/1234",
    "CIRCLE_REPOSITORY_URL": "git@github.com:acme/circleci-demo.git",
    "CIRCLE_SHA1": "0d6b9a1c2e3f405162738495a6b7c8d9e0f1a2b3",
    "CIRCLE_BRANCH": "fix-tokens",
    "CIRCLE_PULL_REQUEST": "https://github.com/acme/circleci-demo/pull/123",
    "CIRCLE_OIDC_TOKEN": "eyJSECRET",
}


def test_circleci_pull_request() -> None:
    assert detect_ci(CIRCLECI_PULL_REQUEST) == {
        Resource.CICD_PIPELINE_NAME: "circleci-demo",
        Resource.CICD_PIPELINE_RUN_ID: "4f1a0a9c-5b7e-4b8a-9a3e-2d6c7b0d8e11",
        Resource.CICD_PIPELINE_TASK_NAME: "integration-tests",
        Resource.VCS_REPOSITORY_URL_FULL: "git@github.com:acme/circleci-demo.git",
        Resource.VCS_REF_HEAD_REVISION: "0d6b9a1c2e3f405162738495a6b7c8d9e0f1a2b3",
        Resource.VCS_REF_HEAD_NAME: "fix-tokens",
        Resource.VCS_CHANGE_ID: "123",
    }


def test_circleci_tag_build_with_credentials_in_repository_url() -> None:
    environ = {
        **CIRCLECI_PULL_REQUEST,
        "CIRCLE_BRANCH": "",
        "CIRCLE_TAG": "v1.2.0",
        "CIRCLE_PULL_REQUEST": "",
        "CIRCLE_REPOSITORY_URL": "https://x-access-token:ghs_SECRET@github.com/acme/circleci-demo.git",
    }
    attributes = detect_ci(environ)
    assert attributes[Resource.VCS_REF_HEAD_NAME] == "v1.2.0"
    assert Resource.VCS_CHANGE_ID not in attributes
    assert attributes[Resource.VCS_REPOSITORY_URL_FULL] == "https://github.com/acme/circleci-demo.git"


BUILDKITE_BRANCH_BUILD = {
    "CI": "true",
    "BUILDKITE": "true",
    "BUILDKITE_PIPELINE_NAME": "Receipts pipeline",
    "BUILDKITE_PIPELINE_SLUG": "receipts-pipeline",
    "BUILDKITE_BUILD_ID": "4735ba57-80d0-46e2-8fa0-b28223a86586",
    "BUILDKITE_BUILD_NUMBER": "1514",
    "BUILDKITE_BUILD_URL": "https://buildkite.com/acme-inc/receipts-pipeline/builds/1514",
    "BUILDKITE_LABEL": ":hammer: Tests",
    "BUILDKITE_STEP_KEY": "tests",
    "BUILDKITE_JOB_ID": "e44f9784-e20e-4b93-a21d-f41fd5869db9",
    "BUILDKITE_REPO": "git@github.com:acme-inc/receipts.git",
    "BUILDKITE_COMMIT": "83a20ec058e2fb00e7fa4558c4c6e81e2dcf253d",
    "BUILDKITE_BRANCH": "main",
    "BUILDKITE_TAG": "",
    "BUILDKITE_PULL_REQUEST": "false",
    "BUILDKITE_AGENT_ACCESS_TOKEN": "bkagent_SECRET",
    "BUILDKITE_AGENT_NAME": "agent-1",
}


def test_buildkite_branch_build() -> None:
    assert detect_ci(BUILDKITE_BRANCH_BUILD) == {
        Resource.CICD_PIPELINE_NAME: "Receipts pipeline",
        Resource.CICD_PIPELINE_RUN_ID: "4735ba57-80d0-46e2-8fa0-b28223a86586",
        Resource.CICD_PIPELINE_RUN_URL_FULL: "https://buildkite.com/acme-inc/receipts-pipeline/builds/1514",
        Resource.CICD_PIPELINE_TASK_NAME: ":hammer: Tests",
        Resource.VCS_REPOSITORY_URL_FULL: "git@github.com:acme-inc/receipts.git",
        Resource.VCS_REF_HEAD_REVISION: "83a20ec058e2fb00e7fa4558c4c6e81e2dcf253d",
        Resource.VCS_REF_HEAD_NAME: "main",
        # BUILDKITE_PULL_REQUEST="false" means "no pull request": no change id, and never the string "false".
    }


def test_buildkite_pull_request_with_symbolic_commit() -> None:
    environ = {**BUILDKITE_BRANCH_BUILD, "BUILDKITE_PULL_REQUEST": "123", "BUILDKITE_COMMIT": "HEAD"}
    attributes = detect_ci(environ)
    assert attributes[Resource.VCS_CHANGE_ID] == "123"
    assert Resource.VCS_REF_HEAD_REVISION not in attributes


JENKINS_MULTIBRANCH_PR = {
    "JENKINS_URL": "https://jenkins.example.com/",
    "BUILD_ID": "42",
    "BUILD_NUMBER": "42",
    "BUILD_TAG": "jenkins-receipts-PR-17-42",
    "JOB_NAME": "receipts/PR-17",
    "BUILD_URL": "https://jenkins.example.com/job/receipts/job/PR-17/42/",
    "STAGE_NAME": "Integration tests",
    "NODE_NAME": "built-in",
    "GIT_URL": "https://ci-bot:s3cr3t-t0ken@github.com/acme/receipts.git",
    "GIT_COMMIT": "6d1f5c0f6b7b8c2a1e4d3f2a1b0c9d8e7f6a5b4c",
    "GIT_BRANCH": "PR-17",
    "BRANCH_NAME": "PR-17",
    "CHANGE_ID": "17",
}


def test_jenkins_multibranch_pull_request() -> None:
    assert detect_ci(JENKINS_MULTIBRANCH_PR) == {
        Resource.CICD_PIPELINE_NAME: "receipts/PR-17",
        Resource.CICD_PIPELINE_RUN_ID: "42",
        Resource.CICD_PIPELINE_RUN_URL_FULL: "https://jenkins.example.com/job/receipts/job/PR-17/42/",
        Resource.CICD_PIPELINE_TASK_NAME: "Integration tests",
        Resource.VCS_REPOSITORY_URL_FULL: "https://github.com/acme/receipts.git",
        Resource.VCS_REF_HEAD_REVISION: "6d1f5c0f6b7b8c2a1e4d3f2a1b0c9d8e7f6a5b4c",
        Resource.VCS_REF_HEAD_NAME: "PR-17",
        Resource.VCS_CHANGE_ID: "17",
    }


def test_jenkins_freestyle_job_with_git_plugin_branch() -> None:
    environ = {
        "JENKINS_URL": "https://jenkins.example.com/",
        "BUILD_ID": "7",
        "BUILD_NUMBER": "7",
        "JOB_NAME": "nightly-evals",
        "GIT_BRANCH": "origin/main",
    }
    assert detect_ci(environ) == {
        Resource.CICD_PIPELINE_NAME: "nightly-evals",
        Resource.CICD_PIPELINE_RUN_ID: "7",
        Resource.VCS_REF_HEAD_NAME: "main",
    }


def test_jenkins_url_alone_is_a_developer_machine_not_ci() -> None:
    environ = {"JENKINS_URL": "https://jenkins.example.com/"}  # jenkins-cli users export it
    assert detect_ci(environ) == {}
    assert not is_ci(environ)


@pytest.mark.parametrize(
    "environ",
    [
        GITHUB_PULL_REQUEST,
        GITLAB_MERGE_REQUEST,
        CIRCLECI_PULL_REQUEST,
        BUILDKITE_BRANCH_BUILD,
        JENKINS_MULTIBRANCH_PR,
    ],
    ids=["github", "gitlab", "circleci", "buildkite", "jenkins"],
)
def test_no_secret_and_no_empty_value_is_ever_emitted(environ: dict[str, str]) -> None:
    attributes = detect_ci(environ)
    assert attributes and is_ci(environ)
    assert all(value and value.strip() == value for value in attributes.values())
    assert not any("SECRET" in value.upper() or "s3cr3t" in value for value in attributes.values())


def test_no_ci() -> None:
    assert detect_ci({"HOME": "/root", "PATH": "/usr/bin"}) == {}
    assert not is_ci({"HOME": "/root"})
    assert not is_ci({"CI": "false"})


def test_generic_ci_variable_is_ci_without_attributes() -> None:
    assert is_ci({"CI": "true"})
    assert detect_ci({"CI": "true"}) == {}


def test_blank_variables_are_omitted() -> None:
    assert detect_ci({"GITLAB_CI": "true", "CI_PIPELINE_ID": "  ", "CI_JOB_NAME": ""}) == {}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pass@github.com/acme/app.git", "https://github.com/acme/app.git"),
        ("https://ghp_TOKEN@github.com/acme/app.git", "https://github.com/acme/app.git"),
        ("https://user:p@ss@example.com:8443/repo?x=1", "https://example.com:8443/repo?x=1"),
        ("ssh://git@github.com/acme/app.git", "ssh://github.com/acme/app.git"),
        ("git@github.com:acme/app.git", "git@github.com:acme/app.git"),
        ("deploy:hunter2@git.example.com:acme/app.git", "git.example.com:acme/app.git"),
        ("https://github.com/acme/app.git", "https://github.com/acme/app.git"),
        ("https://github.com/acme/app@v1", "https://github.com/acme/app@v1"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected
