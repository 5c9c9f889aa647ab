"""`budgets.enforce` in the budgets file: usage quotas load with exact amounts and their scopes; bad ones fail
naming the file, line and key; `budgets check` and `budgets render` read a file that has them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from otel_ai_cost.budgets.config import BudgetConfigError, load_budgets, parse_budgets
from otel_ai_cost.budgets.rules import render_rules
from otel_ai_cost.cli.budgets import budgets
from otel_ai_cost.ledger.sqlite_store import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]

LIMITS = """\
budgets:
  daily: {production: 100}
  enforce:
    - {environment: cicd, period: job, amount: 5.00, mode: block}
    - {environment: cicd, period: job, job_id: nightly-reindex, amount: 40, mode: warn}
    - {environment: production, period: day, team: search, amount: 80, mode: block}
    - {environment: production, period: day, user_id: "*", amount: 2.5, mode: warn, refresh_seconds: 0}
    - {environment: production, period: month, user_id: ana@example.com, amount: 9, mode: block}
    - name: prod-month-stop
      environment: production
      period: month
      amount: 2400.10
      mode: block
      refresh_seconds: 5
"""


def test_limits_load_with_their_scope_period_mode_and_exact_amount():
    config = parse_budgets(LIMITS)
    assert [budget.id for budget in config.budgets] == ["production/day"]  # the budgets are unchanged
    by_name = {limit.name: limit for limit in config.limits}
    assert list(by_name) == [
        "cicd/job",
        "cicd/job/job_id=nightly-reindex",
        "production/day/team=search",
        "production/day/user_id=*",
        "production/month/user_id=ana@example.com",
        "prod-month-stop",
    ]
    each_job = by_name["cicd/job"]
    assert (each_job.scope, each_job.scope_value, each_job.amount) == ("job_id", "*", Decimal("5.00"))
    assert each_job.blocks
    assert by_name["cicd/job/job_id=nightly-reindex"].mode == "warn"
    assert by_name["production/day/user_id=*"].refresh_seconds == Decimal(0)
    stop = by_name["prod-month-stop"]
    assert (stop.scope, stop.amount, stop.refresh_seconds, stop.line) == ("environment", Decimal("2400.10"), 5, 9)
    assert by_name["production/day/team=search"].refresh_seconds == Decimal(1)  # the default


def test_a_file_with_only_limits_is_valid():
    config = parse_budgets("budgets:\n  enforce:\n    - {environment: cicd, period: day, amount: 1, mode: block}\n")
    assert config.budgets == () and [limit.name for limit in config.limits] == ["cicd/day"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "budgets:\n  enforce:\n    - {environment: cicd, period: job, amount: 5, mode: stop}\n",
            "b.yaml:3: budgets.enforce[0].mode: expected one of block, warn",
        ),
        (
            "budgets:\n  enforce:\n    - {environment: cicd, period: week, amount: 5, mode: block}\n",
            "b.yaml:3: budgets.enforce[0].period: expected one of day, month, job",
        ),
        (
            "budgets:\n  enforce:\n    - {environment: cicd, period: day, amount: 5, mode: block, usr_id: x}\n",
            "b.yaml:3: budgets.enforce[0].usr_id: unknown key (did you mean 'user_id'?)",
        ),
        (
            "budgets:\n  enforce:\n    - {environment: cicd, period: day, amount: 5}\n",
            "b.yaml:3: budgets.enforce[0]: missing required key 'mode'",
        ),
        (
            "budgets:\n  enforce:\n    - {environment: cicd, period: day, amount: 0, mode: block}\n",
            "b.yaml:3: budgets.enforce[0].amount: expected a positive amount in USD",
        ),
        (
            "budgets:\n  enforce:\n    - {environment: cicd, period: day, team: a, job_id: b, amount: 1, mode: warn}\n",
            "b.yaml:3: budgets.enforce[0]: a limit takes at most one of team, user_id, job_id, operation_type",
        ),
        (
            "budgets:\n  enforce:\n    - {environment: cicd, period: job, team: a, amount: 1, mode: warn}\n",
            "b.yaml:3: budgets.enforce[0].team: a limit of period 'job' caps each job",
        ),
        (
            "budgets:\n  enforce:\n    - {environment: cicd, period: day, amount: 1, mode: warn,\n"
            "       refresh_seconds: 7200}\n",
            "b.yaml:4: budgets.enforce[0].refresh_seconds: must be at most 3,600",
        ),
        (
            'budgets:\n  enforce:\n    - {environment: cicd, period: day, user_id: "ana\\tb", amount: 1, mode: warn}\n',
            "b.yaml:3: budgets.enforce[0].user_id: expected a value of at most 256 printable characters",
        ),
        (
            "budgets:\n  enforce:\n    - {environment: cicd, period: day, amount: 1, mode: warn}\n"
            "    - {environment: cicd, period: day, amount: 2, mode: block}\n",
            "b.yaml:4: budgets.enforce: limit 'cicd/day' is defined twice (first on line 3); give one of them a 'name'",
        ),
        ("budgets:\n  enforce: {environment: cicd}\n", "b.yaml:2: budgets.enforce: expected a list"),
    ],
)
def test_errors_name_the_file_line_and_key(text: str, expected: str):
    with pytest.raises(BudgetConfigError) as caught:
        parse_budgets(text, filename="b.yaml")
    assert str(caught.value).startswith(expected), str(caught.value)


def test_every_bad_limit_is_reported_at_once():
    text = (
        "budgets:\n  enforce:\n"
        "    - {environment: cicd, period: day, amount: -1, mode: block}\n"
        "    - {environment: cicd, period: year, amount: 1, mode: block}\n"
    )
    with pytest.raises(BudgetConfigError) as caught:
        parse_budgets(text, filename="b.yaml")
    assert caught.value.problems[0].startswith("b.yaml:3: budgets.enforce[0].amount")
    assert caught.value.problems[1].startswith("b.yaml:4: budgets.enforce[1].period")


def test_the_shipped_example_still_loads_and_its_commented_limits_are_valid():
    shipped = ROOT / "config" / "budgets.yaml"
    assert load_budgets(shipped).limits == ()  # commented out: a checkout enforces nothing
    lines = shipped.read_text().splitlines()
    start = lines.index("  # enforce:")
    items = [line.replace("  #   ", "    ", 1) for line in lines[start + 1 :] if line.startswith("  #   ")]
    block = ["  enforce:", *items]
    limits = parse_budgets("budgets:\n" + "\n".join(block) + "\n").limits
    assert [limit.name for limit in limits] == ["cicd/job", "cicd/day/team=platform", "production/day/user_id=*"]


def test_render_ignores_the_limits(tmp_path: Path):
    with_limits = parse_budgets(LIMITS)
    without = parse_budgets("budgets:\n  daily: {production: 100}\n")
    assert render_rules(with_limits) == render_rules(without)  # limits are enforced in-process, not alert rules
    path = tmp_path / "budgets.yaml"
    path.write_text(LIMITS)
    result = CliRunner().invoke(budgets, ["render", str(path), "-o", str(tmp_path / "rules.yml")])
    assert result.exit_code == 0, result.output


def test_check_reads_a_file_with_limits_and_checks_its_budgets(tmp_path: Path):
    SQLiteStore(tmp_path / "usage.db").close()
    path = tmp_path / "budgets.yaml"
    path.write_text(LIMITS)
    result = CliRunner().invoke(budgets, ["check", "--config", str(path), "--ledger", f"sqlite://{tmp_path}/usage.db"])
    assert result.exit_code == 0, result.output
    assert "production/day" in result.stdout and "cicd/job" not in result.stdout
