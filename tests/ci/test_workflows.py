"""The GitHub Actions files: the daily workflow, the composite action and the reconciliation workflow.

Each parses as YAML and is valid against SchemaStore's official schemas of workflow and action syntax (the copies
`check-jsonschema` ships: actionlint cannot be installed here, its wrapper downloads a binary). Their bash scripts
parse (`bash -n`), take every value through `env` (no `${{ }}` inside a script: no injection), and every action
they use is pinned to a release. Then the daily workflow's and the action's `run:` steps are executed on this
machine as a runner would (`actions_runner.py`): against a SQLite ledger with records, with the GITHUB_* variables,
and a local HTTP server standing in for the Slack webhook, asserting the JSON it receives. `uses:` steps are the
only ones not run. The reconciliation workflow's script is executed by tests/deploy/test_deploy_reconcile.py.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from actions_runner import JobResult, load, run_steps, runner_env, shim_directory
from execution_files import github_env, write_execution_file

from otel_ai_cost.ci.slack_summary import slack_message
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.reports.markdown_tables import markdown_table
from otel_ai_cost.reports.tables import Column

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ai-usage-report.yml"
ACTION = ROOT / "action.yml"
RECONCILE = ROOT / "deploy" / "github" / "reconcile.yml"
FILES = {"workflow": (WORKFLOW, "github-workflows.json"), "action": (ACTION, "github-actions.json"),
         "reconcile": (RECONCILE, "github-workflows.json")}  # fmt: skip
BUDGETS = "budgets:\n  daily: {cicd: 10.00, production: 100}\n  monthly: {cicd: 200}\n"
WEBHOOK_PATH = "/services/T0000/B0000/not-a-real-secret-but-kept-like-one"


def schema(name: str) -> dict[str, Any]:
    """SchemaStore's schema as check-jsonschema vendors it (builtin_schemas/vendor); found without importing it."""
    spec = importlib.util.find_spec("check_jsonschema")
    assert spec is not None and spec.submodule_search_locations, "pip install -e '.[test]' (check-jsonschema)"
    path = Path(next(iter(spec.submodule_search_locations))) / "builtin_schemas" / "vendor" / name
    return json.loads(path.read_text(encoding="utf-8"))


def schema_errors(document: dict[str, Any], name: str) -> list[str]:
    validator = jsonschema.Draft7Validator(schema(name))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def steps_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    if "runs" in document:
        return list(document["runs"]["steps"])
    return [step for job in document["jobs"].values() for step in job["steps"]]


# -- the files themselves ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", sorted(FILES))
def test_each_file_is_valid_against_the_official_schema(which: str):
    path, name = FILES[which]
    document = load(path)
    assert schema_errors(document, name) == []


def test_the_schema_check_catches_a_broken_file():
    workflow = load(WORKFLOW)
    workflow["jobs"]["report"]["step"] = workflow["jobs"]["report"].pop("steps")  # a typo GitHub would refuse
    assert any("step" in error for error in schema_errors(workflow, "github-workflows.json"))
    action = load(ACTION)
    action["runs"]["using"] = "composit"
    assert schema_errors(action, "github-actions.json")


@pytest.mark.parametrize("which", sorted(FILES))
def test_scripts_parse_take_values_through_env_and_actions_are_pinned(which: str):
    document = load(FILES[which][0])
    for step in steps_of(document):
        if "uses" in step:
            assert step["uses"].startswith("./") or "@v" in step["uses"], step["uses"]
            continue
        script = step["run"]
        assert "${{" not in script, f"{step.get('name')}: pass values through env, never into the script's text"
        if "runs" in document:
            assert step.get("shell") == "bash", f"{step.get('name')}: a composite action's step names its shell"
        checked = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
        assert checked.returncode == 0, f"{step.get('name')}: {checked.stderr}"


def test_the_workflow_covers_the_seeds_and_the_legacy_tracker():
    """The seeds' daily workflow (schedule, `days` input, report, gate, artifact, Slack), and what the legacy
    tracker (tnorlund/Portfolio track-ai-usage.yml, a 5,000-token estimate per review) did, now from the real
    execution file: docs/ci.md shows the review step, tested in test_claude_code.py."""
    workflow = load(WORKFLOW)
    assert workflow["on"]["schedule"][0]["cron"] == "0 0 * * *"
    assert workflow["on"]["workflow_dispatch"]["inputs"]["days"]["default"] == "1"
    assert workflow["env"]["ENVIRONMENT"] == "cicd"
    uses = [step.get("uses", "") for step in steps_of(workflow)]
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    assert "import claude-code --file" in (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")


# -- running the steps ------------------------------------------------------------------------------------------


class SlackStandIn:
    """A local HTTP server answering like a Slack incoming webhook (200 `ok`), keeping what it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((self.path, self.headers.get("Content-Type", ""), body))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{WEBHOOK_PATH}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    server = SlackStandIn()
    yield server
    server.close()


def _record(n: int, day: date, environment: str, amount: str | None, **extra: Any) -> LedgerRecord:
    values: dict[str, Any] = {
        "trace_id": f"{n:032x}", "span_id": f"{n:016x}", "environment": environment, "service": "receipts",
        "timestamp": datetime.combine(day, time(9, n % 60), tzinfo=timezone.utc), "provider": "openai",
        "request_model": "gpt-4o-mini", "operation": "chat", "operation_type": "integration_test",
        "input_tokens": 1000, "output_tokens": 100, "amount": None if amount is None else Decimal(amount),
    }  # fmt: skip
    values.update(extra)
    return LedgerRecord(**values)


@pytest.fixture
def machine(tmp_path: Path) -> dict[str, Path]:
    """A runner's directories: the workspace (with the repository's config/budgets.yaml), RUNNER_TEMP, HOME."""
    paths = {name: tmp_path / name for name in ("workspace", "temp", "home")}
    for path in paths.values():
        path.mkdir()
    (paths["workspace"] / "config").mkdir()
    (paths["workspace"] / "config" / "budgets.yaml").write_text(BUDGETS)
    paths["ledger"] = tmp_path / "team-ledger.db"
    paths["pip_log"] = tmp_path / "pip.log"
    paths["shims"] = shim_directory(tmp_path / "shims", paths["pip_log"])
    return paths


def run_workflow(machine: dict[str, Path], *, inputs: dict[str, str], secrets: dict[str, str], **github: str):
    workflow = load(WORKFLOW)
    job = workflow["jobs"]["report"]
    env = runner_env(machine["home"], machine["temp"], machine["workspace"], machine["shims"], **github)
    contexts = {
        "inputs": inputs,
        "vars": {"OTEL_AI_COST_LEDGER": f"sqlite://{machine['ledger']}"},
        "secrets": secrets,
        "github": {"server_url": env["GITHUB_SERVER_URL"], "repository": env["GITHUB_REPOSITORY"],
                   "run_id": env["GITHUB_RUN_ID"], "event_name": env["GITHUB_EVENT_NAME"]},
    }  # fmt: skip
    return run_steps(
        job["steps"],
        base_env=env,
        env_layers=[workflow.get("env") or {}, job.get("env") or {}],
        contexts=contexts,
        workdir=machine["workspace"],
        temp=machine["temp"],
        default_shell=workflow["defaults"]["run"]["shell"],
    )


def test_the_daily_workflow_reports_gates_and_posts_to_slack(machine: dict[str, Path], slack: SlackStandIn):
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    with SQLiteStore(machine["ledger"]) as store:
        store.write(
            [
                _record(1, yesterday, "cicd", "6.00"),
                _record(2, yesterday, "cicd", "4.5"),
                _record(3, yesterday, "cicd", "0.0012345"),
                _record(4, yesterday, "cicd", None, pricing_status="unpriced", request_model="gpt-next"),
                _record(5, yesterday, "production", "1.25"),
            ]
        )
    job = run_workflow(machine, inputs={}, secrets={"SLACK_WEBHOOK_URL": slack.url})  # the nightly schedule
    outcomes = {step.name: (step.kind, step.outcome) for step in job.steps}
    assert outcomes["Generate the daily report"] == ("run", "success"), job.step("Generate the daily report").stderr
    assert outcomes["Check the budgets"] == ("run", "failure") and job.step("Check the budgets").returncode == 1
    assert outcomes["Upload the report"] == ("uses", "success")  # `if: always()`: the artifact even when over
    assert outcomes["Post to Slack"] == ("run", "success"), job.step("Post to Slack").stderr
    assert job.failed  # the gate fails the job: the failed run is the alert

    reports = machine["workspace"] / "reports"
    assert {p.name for p in reports.iterdir()} == {"report.md", "report.html", "report.json", "budgets.json"}
    report = json.loads((reports / "report.json").read_text())
    assert report["date"] == yesterday.isoformat() and report["summary"]["total_cost"] == "11.7512345"
    assert report["summary"]["lower_bound"] is True  # the unpriced call is not a $0 call
    budgets = json.loads((reports / "budgets.json").read_text())
    assert budgets["status"] == "exceeded" and budgets["exceeded"] == ["cicd/day"]
    assert budgets["environments"]["cicd"]["day"] == yesterday.isoformat()  # the day that just ended
    assert budgets["environments"]["cicd"]["spent_day"] == "10.5012345"
    assert "<html" in (reports / "report.html").read_text().lower()

    summary = job.summary  # the job summary page: the report, then the gate's cost summary
    assert (reports / "report.md").read_text().strip() in summary
    assert "### AI spend: 1 budget exceeded (cicd)" in summary
    assert "| cicd/day | &ge; 10.5012345 | 10.00 | 105.0% | ⛔ EXCEEDED |" in summary

    [(path, content_type, body)] = slack.requests
    assert path == WEBHOOK_PATH and content_type == "application/json"
    text = json.loads(body)["text"]
    assert f"*AI usage report {yesterday.isoformat()}*: ≥ 11.7512345 USD over 5 calls" in text
    assert "*Budgets*: exceeded: cicd/day ≥ 10.5012345 USD of 10.00 USD (exceeded)" in text
    assert "<https://github.com/acme/receipts/actions/runs/5550001|The run>" in text
    assert WEBHOOK_PATH not in job.output  # the secret webhook URL is never printed

    [install] = [block for block in machine["pip_log"].read_text().split("cwd=") if block]
    assert install.splitlines() == [str(machine["workspace"]), "-m", "pip", "install", "--disable-pip-version-check",
                                    ".[bedrock]"]  # fmt: skip


def test_a_dispatched_run_reports_the_days_asked_and_posts_nothing_without_the_secret(
    machine: dict[str, Path], slack: SlackStandIn
):
    day = date(2026, 11, 20)
    with SQLiteStore(machine["ledger"]) as store:
        store.write([_record(1, day - timedelta(days=1), "cicd", "2.00"), _record(2, day, "cicd", "3.25")])
    job = run_workflow(
        machine, inputs={"days": "2", "date": day.isoformat(), "environment": "cicd"}, secrets={},
        GITHUB_EVENT_NAME="workflow_dispatch",
    )  # fmt: skip
    assert not job.failed, job.output
    report = json.loads((machine["workspace"] / "reports" / "report.json").read_text())
    assert (report["date"], report["days"], report["environment"]) == ("2026-11-20", 2, "cicd")
    assert report["summary"]["total_cost"] == "5.25"
    budgets = json.loads((machine["workspace"] / "reports" / "budgets.json").read_text())
    assert budgets["status"] == "ok" and budgets["environments"]["cicd"]["spent_day"] == "3.25"
    assert "### AI spend: within budget (cicd)" in job.summary
    assert "no SLACK_WEBHOOK_URL secret: nothing posted" in job.step("Post to Slack").stdout
    assert slack.requests == []


def run_action(machine: dict[str, Path], with_: dict[str, str], **github: str) -> JobResult:
    action = load(ACTION)
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    inputs.update(with_)
    env = runner_env(machine["home"], machine["temp"], machine["workspace"], machine["shims"], **github)
    return run_steps(
        action["runs"]["steps"],
        base_env=env,
        env_layers=[],
        contexts={"inputs": inputs, "github": {"action_path": str(ROOT)}},
        workdir=machine["workspace"],
        temp=machine["temp"],
        uses_outputs={"python": {"python-path": str(machine["shims"] / "python")}},  # what setup-python outputs
    )


def test_the_action_records_the_review_gates_and_sets_its_outputs(machine: dict[str, Path], tmp_path: Path):
    today = datetime.now(timezone.utc).date()
    with SQLiteStore(machine["ledger"]) as store:
        store.write([_record(1, today, "cicd", "9.90")])
    review = write_execution_file(tmp_path / "claude-execution-output.json")
    pull_request = {k: v for k, v in github_env(tmp_path).items() if k.startswith("GITHUB_")}
    job = run_action(
        machine,
        {"ledger": f"sqlite://{machine['ledger']}", "claude-code-execution-file": str(review)},
        **pull_request,
    )
    gate = job.step("Check the budgets")
    assert job.step("Record the Claude Code run").outcome == "success", job.output
    assert gate.returncode == 1, gate.stdout + gate.stderr  # 9.90 + the review's 0.1612947 > 10.00
    assert gate.outputs == {"status": "exceeded", "spent": "10.0612947", "exceeded": "cicd/day"}
    assert "### Claude Code: 0.1612947 USD on PR #42" in job.summary
    assert "### AI spend: 1 budget exceeded (cicd)" in job.summary
    [install] = [block for block in machine["pip_log"].read_text().split("cwd=") if block]
    assert install.splitlines()[-1] == f"{ROOT}[bedrock]"  # the action's own checkout
    rerun = run_action(machine, {"ledger": f"sqlite://{machine['ledger']}", "claude-code-execution-file": str(review),
                                 "fail-on-exceeded": "false"}, **pull_request)  # fmt: skip
    assert not rerun.failed and rerun.step("Check the budgets").outputs["spent"] == "10.0612947"  # not counted twice
    assert "0 new, 2 already recorded" in rerun.step("Record the Claude Code run").stdout


def test_the_action_without_a_review_and_with_a_wrong_flag(machine: dict[str, Path]):
    with SQLiteStore(machine["ledger"]) as store:
        store.write([_record(1, datetime.now(timezone.utc).date(), "cicd", "1.20")])
    ledger = f"sqlite://{machine['ledger']}"
    job = run_action(machine, {"ledger": ledger, "budgets": str(machine["workspace"] / "config" / "budgets.yaml")})
    assert job.step("Record the Claude Code run").kind == "skipped"
    assert not job.failed and job.step("Check the budgets").outputs == {"status": "ok", "spent": "1.20", "exceeded": ""}
    wrong = run_action(machine, {"ledger": ledger, "fail-on-exceeded": "yes"})
    gate = wrong.step("Check the budgets")
    assert gate.returncode == 2 and "::error::fail-on-exceeded must be true or false, got 'yes'" in gate.stdout


def test_what_the_messages_read_from_files_cannot_become_markup():
    """A model, budget or anomaly text is data: in Slack it cannot mention `@channel` or make a link, in the job
    summary it cannot break the table or add HTML."""
    summary = {"total_cost": "1.5", "calls": 3, "by_environment": {"cicd": "1.5"}, "by_service": {"<!channel>": "1.5"}}
    report = {
        "date": "2026-12-03",
        "summary": summary,
        "anomalies": [{"description": "new model <http://x|click> & co"}],
    }
    text = slack_message(report, None, budget_outcome="skipped")["text"]
    assert "&lt;!channel&gt; 1.5 USD" in text and "new model &lt;http://x|click&gt; &amp; co" in text
    assert "<!channel>" not in text and "*Budgets*: not checked (the step's outcome: skipped)." in text
    table = markdown_table([Column("model"), Column("amount", "money")], [{"model": "a|b<img src=x>", "amount": None}])
    assert table.splitlines()[-1] == "| a\\|b&lt;img src=x&gt; | unknown |"
