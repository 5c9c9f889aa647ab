"""The budget recording rules the dashboards read, isolated here as parameters.

`otel-ai-cost budgets render` generates them from config/budgets.yaml (`otel_ai_cost.budgets.rules`); their names
are imported from there, so a renamed rule changes the dashboards with it. Every series of one budget carries the
labels `budget` (its id), `environment`, `period`, `scope` and, for a scoped budget, `provider`, `team` or
`operation_type`.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_ai_cost.budgets import rules


@dataclass(frozen=True)
class BudgetRuleNames:
    """Names of the budget recording rules."""

    budget: str = rules.RECORD_BUDGET  # the amount, one series per budget
    spend: str = rules.RECORD_SPEND  # exact period-to-date spend (ledger), one series per budget
    ratio: str = rules.RECORD_RATIO  # spend / budget
    forecast: str = rules.RECORD_FORECAST  # monthly budgets: spend extrapolated to the end of the UTC month

    def names(self) -> frozenset[str]:
        return frozenset({self.budget, self.spend, self.ratio, self.forecast})


DEFAULT = BudgetRuleNames()
LEGEND = "{{budget}}"  # e.g. production/month/provider=openai


def select(name: str, period: str | None = None) -> str:
    """`name{period="...", environment=~"$environment"}`."""
    matchers = ([f'period="{period}"'] if period else []) + ['environment=~"$environment"']
    return f"{name}{{{', '.join(matchers)}}}"


def burn(rules: BudgetRuleNames, period: str | None = None) -> str:
    """Period-to-date spend / budget per budget, keeping every label of the budget (environment, period, scope...).

    Computed from the spend and budget records rather than read from `rules.ratio`: a one-to-one `/ on(budget)`
    keeps only the `budget` label, which the environment filter and the legends need."""
    return f"{select(rules.spend, period)} / on (budget) group_left () {select(rules.budget, period)}"
