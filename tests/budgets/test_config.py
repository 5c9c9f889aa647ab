"""budgets.yaml validation: the shipped example loads; bad files fail naming file, line and key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from otel_ai_cost.budgets.config import DEFAULT_THRESHOLDS, BudgetConfigError, load_budgets, parse_budgets

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_example_loads_with_exact_amounts():
    config = load_budgets(ROOT / "config" / "budgets.yaml")
    ids = {b.id: b.amount for b in config.budgets}
    assert ids["production/day"] == Decimal("100.00")
    assert ids["cicd/day"] == Decimal("50.00")
    assert ids["production/month/provider=openai"] == Decimal("1500.00")
    assert "cicd/day/team=platform" in ids and "production/day/operation_type=batch_processing" in ids
    assert [t.severity for t in config.thresholds] == ["warning", "critical", "exceeded"]
    assert {c.type for c in config.channels} == {"slack", "email", "webhook"}


def test_the_seeds_shape_loads_with_default_thresholds():
    config = parse_budgets("budgets:\n  daily:\n    production: 100.00\n    cicd: 0.1\n")
    assert config.thresholds == DEFAULT_THRESHOLDS
    assert [(b.id, b.amount) for b in config.budgets] == [
        ("production/day", Decimal("100.00")),
        ("cicd/day", Decimal("0.1")),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "budgets:\n  daily:\n    production: 100\n  weekly:\n    production: 5\n",
            "b.yaml:4: budgets.weekly: unknown key",
        ),
        (
            "budgets:\n  daily:\n    production: -3\n",
            "b.yaml:3: budgets.daily.production: expected a non-negative number",
        ),
        ("budgets:\n  daily:\n    production: 0\n", "b.yaml:3: budgets.daily.production: expected a positive amount"),
        ("budgets:\n  daily:\n    production: lots\n", "b.yaml:3: budgets.daily.production: expected a non-negative"),
        (
            "budgets:\n  daily: {production: 1}\n  alerts:\n    channels:\n      - type: slack\n"
            "        webhook: https://hooks.slack.com/services/T/B/X\n",
            "b.yaml:6: budgets.alerts.channels[0].webhook: a secret must be an ${ENV_VAR} reference",
        ),
        (
            "budgets:\n  daily: {production: 1}\n  alerts:\n    thresholds:\n"
            "      - {percent: 95, severity: critical}\n"
            "      - {percent: 80, severity: warning}\n",
            "b.yaml:6: budgets.alerts.thresholds[1].percent: thresholds must increase",
        ),
        (
            "budgets:\n  daily: {production: 1}\n  alerts:\n    thresholds:\n      - {percent: 80, severity: loud}\n",
            "b.yaml:5: budgets.alerts.thresholds[0].severity: expected one of warning, critical, exceeded",
        ),
        (
            "budgets:\n  scoped:\n    - {environment: prod, period: day, amount: 5, team: a, provider: b}\n",
            "b.yaml:3: budgets.scoped[0]: a scoped budget needs exactly one of provider, team, operation_type",
        ),
        (
            "budgets:\n  scoped:\n    - {environment: prod, period: week, amount: 5, team: a}\n",
            "b.yaml:3: budgets.scoped[0].period: expected one of day, month",
        ),
        ("budgets:\n  daily:\n    'prod\"x': 5\n", "b.yaml:3: budgets.daily: expected a name"),
        (
            "budgets:\n  daily: {production: 1}\n  scoped:\n"
            "    - {environment: production, period: day, amount: 2, team: x}\n"
            "    - {environment: production, period: day, amount: 3, team: x}\n",
            "b.yaml:5: budgets: budget 'production/day/team=x' is defined twice (first on line 4)",
        ),
        ("timezone: Europe/Paris\nbudgets:\n  daily: {production: 1}\n", "b.yaml:1: timezone: expected one of UTC"),
        (
            "budgets:\n  daily: {production: 1}\n  alerts:\n    channels:\n      - type: pager\n",
            "b.yaml:5: budgets.alerts.channels[0].type",
        ),
        (
            "budgets:\n  daily: {production: 1}\n  alerts:\n    channels:\n"
            "      - type: email\n        recipients: [nobody]\n",
            "b.yaml:6: budgets.alerts.channels[0].recipients[0]: expected an e-mail address",
        ),
        ("budgets: {}\n", "b.yaml:1: budgets: no budget defined"),
        ("budgets:\n  daily: [1, 2\n", "b.yaml:3: (yaml):"),
    ],
)
def test_errors_name_the_file_line_and_key(text: str, expected: str):
    with pytest.raises(BudgetConfigError) as caught:
        parse_budgets(text, filename="b.yaml")
    assert str(caught.value).startswith(expected), str(caught.value)


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path):
    with pytest.raises(BudgetConfigError, match=r"nothing\.yaml:0: \(file\)"):
        load_budgets(tmp_path / "nothing.yaml")
