"""Just enough of a GitHub Actions runner to execute a workflow job's or a composite action's `run:` steps on this
machine, with the environment GitHub would give them (imported by name by the CI tests).

What it does as GitHub does (docs "Workflow syntax", "Metadata syntax", "Evaluate expressions", "Variables"):
- `env` of the workflow, the job and the step, in that order, with `${{ }}` expressions evaluated; `inputs`,
  `vars`, `secrets`, `github`, `steps.<id>.outputs/outcome` contexts (an unset variable or secret is `''`);
- `if:` (a bare expression or `${{ }}`), implicitly `success() && ...` unless it calls a status function;
- `shell: bash` as `bash --noprofile --norc -eo pipefail {0}`; `GITHUB_OUTPUT` (`name=value` and `name<<EOF`
  lines) read into the step's outputs; one `GITHUB_STEP_SUMMARY` file per step, kept in order;
- the runner's default variables (`CI`, `GITHUB_ACTIONS`, `GITHUB_RUN_ID`, `RUNNER_TEMP`, ...).

What it does not: `uses:` steps are not run (their outputs can be given, as the action would have set them). An
expression it cannot evaluate fails the test, naming it: extend `evaluate` rather than guess.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.DOTALL)
_STATUS_FUNCTIONS = ("always()", "success()", "failure()", "cancelled()")
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]


def load(path: Path) -> dict[str, Any]:
    """A workflow or action file; YAML 1.1 reads the key `on` as True, GitHub reads it as "on"."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    return data


@dataclass
class StepResult:
    name: str
    kind: str  # run | uses | skipped
    outcome: str  # success | failure | skipped
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""


@dataclass
class JobResult:
    steps: list[StepResult]

    @property
    def failed(self) -> bool:
        return any(step.outcome == "failure" for step in self.steps)

    def step(self, name: str) -> StepResult:
        return next(step for step in self.steps if step.name == name)

    @property
    def summary(self) -> str:
        return "".join(step.summary for step in self.steps)

    @property
    def output(self) -> str:
        return "".join(step.stdout + step.stderr for step in self.steps)


class Contexts:
    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)
        self.ok = True

    def lookup(self, path: str) -> Any:
        value: Any = self.values
        for part in path.split("."):
            if not isinstance(value, Mapping):
                return ""
            value = value.get(part, "")
        return "" if value is None else value


def evaluate(expression: str, contexts: Contexts) -> Any:
    """The subset of GitHub's expression language these files use (see the module documentation)."""
    text = expression.strip()
    if text == "always()":
        return True
    if text == "success()":
        return contexts.ok
    if text == "failure()":
        return not contexts.ok
    if "||" in text:
        value: Any = ""
        for part in text.split("||"):
            value = evaluate(part, contexts)
            if value:
                return value
        return value
    compared = re.fullmatch(r"(.+?)\s*(==|!=)\s*(.+)", text)
    if compared:
        left, operator, right = compared.groups()
        equal = str(evaluate(left, contexts)) == str(evaluate(right, contexts))
        return equal if operator == "==" else not equal
    if re.fullmatch(r"'[^']*'", text):
        return text[1:-1]
    if re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)+", text):
        return contexts.lookup(text)
    raise AssertionError(f"the test runner cannot evaluate ${{{{ {text} }}}}: extend actions_runner.evaluate")


def interpolate(value: Any, contexts: Contexts) -> str:
    text = str(value)
    return _EXPRESSION.sub(lambda match: _text(evaluate(match.group(1), contexts)), text)


def _text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _should_run(condition: Any, contexts: Contexts) -> bool:
    if condition is None:
        return contexts.ok
    text = str(condition).strip()
    whole = _EXPRESSION.fullmatch(text) if text.count("${{") == 1 else None
    expression = whole.group(1) if whole else text
    result = bool(evaluate(expression, contexts)) if expression not in ("true", "false") else expression == "true"
    if not any(function in expression for function in _STATUS_FUNCTIONS):
        result = result and contexts.ok
    return result


def _read_outputs(path: Path) -> dict[str, str]:
    outputs: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    index = 0
    while index < len(lines):
        line = lines[index]
        heredoc = re.fullmatch(r"([\w-]+)<<(.+)", line)
        if heredoc:
            name, delimiter = heredoc.groups()
            end = lines.index(delimiter, index + 1)
            outputs[name] = "\n".join(lines[index + 1 : end])
            index = end + 1
            continue
        if "=" in line:
            name, _, value = line.partition("=")
            outputs[name] = value
        index += 1
    return outputs


def run_steps(
    steps: list[Mapping[str, Any]],
    *,
    base_env: Mapping[str, str],
    env_layers: list[Mapping[str, Any]],
    contexts: Mapping[str, Any],
    workdir: Path,
    temp: Path,
    default_shell: str | None = None,
    uses_outputs: Mapping[str, Mapping[str, str]] | None = None,
    timeout_s: float = 180,
) -> JobResult:
    """Runs `steps` in order (see the module documentation). `env_layers` are the workflow's and the job's `env`
    (unevaluated); `contexts` the expression contexts; `uses_outputs` the outputs of `uses:` steps, by step id."""
    ctx = Contexts({**contexts, "steps": {}})
    results = []
    for number, step in enumerate(steps, start=1):
        name = str(step.get("name") or step.get("uses") or f"step {number}")
        step_id = step.get("id")
        if not _should_run(step.get("if"), ctx):
            result = StepResult(name, "skipped", "skipped")
        elif "uses" in step:
            outputs = dict((uses_outputs or {}).get(str(step_id), {}))
            result = StepResult(name, "uses", "success", outputs=outputs)
        else:
            result = _run(step, name, number, ctx, base_env, env_layers, workdir, temp, default_shell, timeout_s)
            if result.outcome == "failure":
                ctx.ok = False
        if step_id:
            ctx.values["steps"][str(step_id)] = {"outputs": result.outputs, "outcome": result.outcome}
        results.append(result)
    return JobResult(results)


def _run(
    step: Mapping[str, Any],
    name: str,
    number: int,
    ctx: Contexts,
    base_env: Mapping[str, str],
    env_layers: list[Mapping[str, Any]],
    workdir: Path,
    temp: Path,
    default_shell: str | None,
    timeout_s: float,
) -> StepResult:
    shell = step.get("shell") or default_shell or "bash"
    assert shell == "bash", f"{name}: only bash steps are run here, not {shell}"
    env = dict(base_env)
    for layer in [*env_layers, step.get("env") or {}]:
        for key, value in layer.items():
            env[str(key)] = interpolate(value, ctx)
    output_file, summary_file = temp / f"output-{number}", temp / f"summary-{number}"
    output_file.write_text("")
    summary_file.write_text("")
    env["GITHUB_OUTPUT"], env["GITHUB_STEP_SUMMARY"] = str(output_file), str(summary_file)
    script = temp / f"step-{number}.sh"
    script.write_text(interpolate(step["run"], ctx), encoding="utf-8")
    done = subprocess.run([*BASH, str(script)], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout_s)
    return StepResult(
        name,
        "run",
        "success" if done.returncode == 0 else "failure",
        done.returncode,
        done.stdout,
        done.stderr,
        _read_outputs(output_file),
        summary_file.read_text(encoding="utf-8"),
    )


def shim_directory(path: Path, pip_log: Path) -> Path:
    """`python` (the interpreter running the tests; `-m pip ...` is recorded in `pip_log`, not run: installing the
    checkout into the environment under test is not the test's to do) and `otel-ai-cost` (this checkout's CLI)."""
    path.mkdir(parents=True, exist_ok=True)
    python = path / "python"
    python.write_text(
        "#!/bin/bash\n"
        'if [ "${1:-}" = "-m" ] && [ "${2:-}" = "pip" ]; then\n'
        f"  {{ printf 'cwd=%s\\n' \"$PWD\"; printf '%s\\n' \"$@\"; }} >> '{pip_log}'\n"
        "  exit 0\n"
        "fi\n"
        f'exec "{sys.executable}" "$@"\n'
    )
    cli = path / "otel-ai-cost"
    cli.write_text(f'#!/bin/bash\nexec "{sys.executable}" -m otel_ai_cost "$@"\n')
    for tool in (python, cli):
        tool.chmod(0o755)
    return path


def runner_env(home: Path, temp: Path, workspace: Path, shims: Path, **overrides: str) -> dict[str, str]:
    """The variables a GitHub-hosted runner sets for every step (none of this machine's own but PATH)."""
    env = {
        "PATH": f"{shims}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "LANG": "C.UTF-8",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "RUNNER_TEMP": str(temp),
        "RUNNER_OS": "Linux",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/receipts",
        "GITHUB_RUN_ID": "5550001",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_WORKFLOW": "AI usage report",
        "GITHUB_JOB": "report",
        "GITHUB_SHA": "4c0ffee4c0ffee4c0ffee4c0ffee4c0ffee4c0ff",
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_REF_NAME": "main",
        "GITHUB_EVENT_NAME": "schedule",
    }
    env.update(overrides)
    return env
