"""`otel-ai-cost import claude-code`: a Claude Code run's execution file (the shape `anthropics/claude-code-action`
writes, `execution_files.py`) becomes ledger records, exactly, with the run's CI attributes, idempotently."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from execution_files import (
    HAIKU,
    SECRET_TEXT,
    SESSION,
    SONNET,
    github_env,
    messages,
    result_message,
    write_execution_file,
)

from otel_ai_cost.ci.claude_code import ExecutionFileError, records_from_execution_file
from otel_ai_cost.cli.import_claude_code import claude_code
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery
from otel_ai_cost.pricing.catalog import default_catalog
from otel_ai_cost.pricing.usage import Usage

ENDED = datetime(2026, 11, 20, 14, 30, tzinfo=timezone.utc)
API_KEY = "sk-ant-api03-THIS-KEY-MUST-NEVER-APPEAR"
# Variables of the machine running the tests that would change what is detected: cleared for every invocation.
_CLEARED = [name for name in os.environ if name.startswith(("GITHUB_", "OTEL_", "CLAUDE_CODE_"))] + [
    "CI", "ENVIRONMENT", "RUNNER_TEMP", "BUILDKITE", "GITLAB_CI", "CIRCLECI", "JENKINS_URL",
]  # fmt: skip


def invoke(tmp_path: Path, file: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    environ: dict[str, str | None] = {name: None for name in _CLEARED}
    environ.update(env if env is not None else github_env(tmp_path))
    environ["ANTHROPIC_API_KEY"] = API_KEY  # the review's key is in the job's environment: never read, never stored
    ledger = f"sqlite://{tmp_path / 'usage.db'}"
    return CliRunner().invoke(claude_code, ["--file", str(file), "--ledger", ledger, *args], env=environ)


def stored(tmp_path: Path) -> list:
    with SQLiteStore(tmp_path / "usage.db") as store:
        return list(store.query(UsageQuery()))


def test_a_review_becomes_one_exact_record_per_model(tmp_path: Path):
    file = write_execution_file(tmp_path / "claude-execution-output.json")
    records = {r.request_model: r for r in records_from_execution_file(file, github_env(tmp_path), at=ENDED)}
    assert set(records) == {SONNET, HAIKU}
    sonnet = records[SONNET]
    assert sonnet.amount == Decimal("0.1592122") and records[HAIKU].amount == Decimal("0.0020825")  # the file's text
    assert sonnet.amount + records[HAIKU].amount == Decimal("0.1612947")  # = total_cost_usd, exactly
    assert (sonnet.cost_source, sonnet.pricing_status, sonnet.record_source) == ("provider", "priced", "import")
    assert (sonnet.operation_type, sonnet.operation, sonnet.provider) == ("code_review", "invoke_agent", "anthropic")
    # The ledger's convention: the input total includes the cache; Claude Code's inputTokens excludes it.
    assert sonnet.input_tokens == 41 + 120544 + 18034 and sonnet.cache_read_input_tokens == 120544
    assert sonnet.cache_write_5m_input_tokens == 18034 and sonnet.output_tokens == 2411
    # Our catalog's figure for the same tokens, beside the file's (what `reconcile` compares with the bill).
    usage = Usage(input_tokens=41 + 120544 + 18034, output_tokens=2411, cache_read_input_tokens=120544,
                  cache_write_5m_input_tokens=18034)  # fmt: skip
    started = ENDED - timedelta(milliseconds=48213)
    assert sonnet.computed_amount == default_catalog().quote("anthropic", SONNET, usage, at=started).amount
    assert sonnet.timestamp == started and sonnet.duration_ms == 48213  # the run's start and wall-clock time
    assert sonnet.tags == {"claude_code.session_id": SESSION, "claude_code.num_turns": "7",
                           "claude_code.subtype": "success"}  # fmt: skip
    assert sonnet.outcome == "success" and sonnet.trace_id == records[HAIKU].trace_id != ""  # one run, one trace


def test_records_carry_the_runs_ci_attributes_and_pull_request(tmp_path: Path):
    file = write_execution_file(tmp_path / "out.json")
    env = github_env(tmp_path, GITHUB_RUN_ATTEMPT="2")
    [record, _] = records_from_execution_file(file, env, at=ENDED)
    assert record.environment == "cicd"  # detected: a CI run without ENVIRONMENT
    assert record.cicd_pipeline_name == "Claude Review" and record.cicd_run_id == "9876543210"
    assert record.cicd_run_url == "https://github.com/acme/receipts/actions/runs/9876543210/attempts/2"
    assert record.cicd_task_name == "review" and record.vcs_repository_url == "https://github.com/acme/receipts"
    assert record.vcs_revision == "4c0ffee4c0ffee4c0ffee4c0ffee4c0ffee4c0ff"
    assert record.vcs_ref_name == "feature/receipt-ocr" and record.vcs_change_id == "42"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"issue": {"number": 17, "pull_request": {"url": "https://api.github.com/repos/a/b/pulls/17"}}}, "17"),
        ({"issue": {"number": 18}}, ""),  # a comment on an issue, not a pull request
        ({"workflow_run": {"pull_requests": [{"number": 23}]}}, "23"),  # the legacy tracker's trigger
        ({"pull_request": {"number": 31}}, "31"),
    ],
)
def test_the_pull_request_of_a_comment_or_workflow_run_comes_from_the_event(tmp_path: Path, event, expected):
    """`@claude` in a PR comment runs on `issue_comment`: GITHUB_REF is the default branch, the PR is in the event."""
    payload = tmp_path / "event.json"
    payload.write_text(json.dumps(event))
    env = github_env(tmp_path, GITHUB_REF="refs/heads/main", GITHUB_EVENT_PATH=str(payload))
    [record, _] = records_from_execution_file(write_execution_file(tmp_path / "out.json"), env, at=ENDED)
    assert record.vcs_change_id == expected


def test_importing_twice_changes_nothing_and_a_rerun_is_new_spend(tmp_path: Path):
    file = write_execution_file(tmp_path / "claude-execution-output.json")
    first = invoke(tmp_path, file)
    assert first.exit_code == 0, first.output
    assert f"{file}: 2 new, 0 already recorded in sqlite://{tmp_path / 'usage.db'}" in first.output
    copy = tmp_path / "downloaded-artifact.json"  # the same file elsewhere, with another modification time
    shutil.copy(file, copy)
    os.utime(copy, (1_700_000_000, 1_700_000_000))
    for again in (file, copy):
        result = invoke(tmp_path, again)
        assert result.exit_code == 0 and "0 new, 2 already recorded" in result.output, result.output
    assert len(stored(tmp_path)) == 2
    rerun = invoke(tmp_path, file, env=github_env(tmp_path, GITHUB_RUN_ATTEMPT="2"))  # "Re-run jobs": billed again
    assert "2 new, 0 already recorded" in rerun.output, rerun.output
    assert sum(r.amount for r in stored(tmp_path)) == Decimal("0.3225894")


def test_the_command_shows_the_cost_and_writes_the_job_summary(tmp_path: Path):
    summary = tmp_path / "summary.md"
    file = write_execution_file(tmp_path / "out.json")
    result = invoke(tmp_path, file, env=github_env(tmp_path, GITHUB_STEP_SUMMARY=str(summary)))
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[0].strip(): [c.strip() for c in line.split("│")[1:]] for line in result.output.splitlines()
            if "│" in line}  # fmt: skip
    assert rows[SONNET][-2:] == ["0.1592122", "provider"] and rows[HAIKU][-2:] == ["0.0020825", "provider"]
    assert rows["total"][-2] == "0.1612947"
    assert "PR #42" in result.output and "https://github.com/acme/receipts/actions/runs/9876543210" in result.output
    text = summary.read_text()
    assert text.startswith("### Claude Code: 0.1612947 USD on PR #42\n")
    assert f"| {SONNET} | 138,619 | 120,544 | 18,034 | 2,411 | 0.1592122 | provider |" in text
    assert "| **total** |" in text and "code\\_review, 7 turns" in text


def test_no_conversation_text_and_no_key_is_ever_stored_or_shown(tmp_path: Path):
    summary = tmp_path / "summary.md"
    file = write_execution_file(tmp_path / "out.json")
    result = invoke(tmp_path, file, env=github_env(tmp_path, GITHUB_STEP_SUMMARY=str(summary)))
    assert result.exit_code == 0, result.output
    ledger_bytes = (tmp_path / "usage.db").read_bytes()
    for secret in (SECRET_TEXT, API_KEY, "sk-live"):
        assert secret not in result.output and secret not in summary.read_text()
        assert secret.encode() not in ledger_bytes
    assert all(SECRET_TEXT not in json.dumps(r.to_dict()) for r in stored(tmp_path))


def test_stream_json_lines_read_as_the_array(tmp_path: Path):
    array = records_from_execution_file(write_execution_file(tmp_path / "a.json"), github_env(tmp_path), at=ENDED)
    lines = write_execution_file(tmp_path / "b.jsonl", lines=True)
    assert records_from_execution_file(lines, github_env(tmp_path), at=ENDED) == array


def test_an_older_file_with_the_total_only_is_one_record_for_the_runs_model(tmp_path: Path):
    """test/fixtures/sample-turns.json of the action: a result with only `total_cost_usd` and `duration_ms`."""
    old_result = {"type": "result", "total_cost_usd": 0.0347, "duration_ms": 18750, "result": "Done."}
    file = write_execution_file(tmp_path / "old.json", old_result)
    [record] = records_from_execution_file(file, github_env(tmp_path), at=ENDED)
    assert record.request_model == SONNET and record.amount == Decimal("0.0347") and record.cost_source == "provider"
    assert record.duration_ms == 18750 and record.input_tokens == 0


def test_a_cost_the_file_does_not_know_is_unknown_never_zero(tmp_path: Path):
    usage = result_message()["modelUsage"][SONNET] | {"costUSD": 0, "costBasis": "unknown"}
    file = write_execution_file(tmp_path / "u.json", result_message(modelUsage={"claude-next-preview": usage},
                                                                   total_cost_usd=0))  # fmt: skip
    [record] = records_from_execution_file(file, github_env(tmp_path), at=ENDED)
    assert record.amount is None and record.pricing_status == "unpriced"  # no price anywhere: unknown, not $0
    result = invoke(tmp_path, file)
    assert result.exit_code == 0 and "unknown" in result.output and " 0.00 " not in result.output, result.output


def test_a_failed_run_is_recorded_with_its_cost_and_outcome(tmp_path: Path):
    file = write_execution_file(tmp_path / "f.json", result_message(subtype="error_max_turns", is_error=True))
    records = records_from_execution_file(file, github_env(tmp_path), at=ENDED)
    assert {r.outcome for r in records} == {"error"} and {r.error_type for r in records} == {"error_max_turns"}
    assert sum(r.amount for r in records) == Decimal("0.1612947")  # the tokens were spent up to the failure


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (json.dumps(messages()), "no result message: the run ended before Claude Code reported its usage"),
        ("{not json\n", ":1: not JSON"),
        (json.dumps(messages(result_message(modelUsage={SONNET: {"inputTokens": -1}}))), "inputTokens must be a"),
        (json.dumps(messages(result_message(total_cost_usd="0.16"))), "total_cost_usd must be a number"),
    ],
    ids=["cut-short", "not-json", "negative-tokens", "cost-as-text"],
)
def test_a_file_that_states_no_usable_result_records_nothing(tmp_path: Path, content: str, message: str):
    file = tmp_path / "bad.json"
    file.write_text(content)
    with pytest.raises(ExecutionFileError) as raised:
        records_from_execution_file(file, github_env(tmp_path))
    assert message in str(raised.value)
    result = invoke(tmp_path, file)
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "usage.db").exists()  # nothing written, no ledger created


def test_the_pr_and_provider_options(tmp_path: Path):
    file = write_execution_file(tmp_path / "out.json")
    env = github_env(tmp_path, GITHUB_REF="refs/heads/main", CLAUDE_CODE_USE_BEDROCK="1")
    assert invoke(tmp_path, file, "--pr", "#77", "--environment", "ci-reviews", env=env).exit_code == 0
    records = stored(tmp_path)
    assert {(r.vcs_change_id, r.environment, r.provider) for r in records} == {("77", "ci-reviews", "aws.bedrock")}
    bad = invoke(tmp_path, file, "--pr", "main")
    assert bad.exit_code == 2 and "expected a pull request number" in bad.output


def test_one_hour_cache_writes_are_split_when_the_run_used_one_model(tmp_path: Path):
    sonnet = result_message()["modelUsage"][SONNET]
    split = {"ephemeral_1h_input_tokens": 8000, "ephemeral_5m_input_tokens": 10034}
    usage = result_message()["usage"] | {"cache_creation": split}
    one = write_execution_file(tmp_path / "one.json", result_message(modelUsage={SONNET: sonnet}, usage=usage))
    [record] = records_from_execution_file(one, github_env(tmp_path), at=ENDED)
    assert (record.cache_write_5m_input_tokens, record.cache_write_1h_input_tokens) == (10034, 8000)
    assert record.computed_amount is not None
    two = write_execution_file(tmp_path / "two.json", result_message(usage=usage))  # which model wrote them: unknown
    records = {r.request_model: r for r in records_from_execution_file(two, github_env(tmp_path), at=ENDED)}
    assert records[SONNET].cache_write_5m_input_tokens == 18034 and records[SONNET].computed_amount is None
    assert records[SONNET].amount == Decimal("0.1592122")  # the file's figure stands either way
