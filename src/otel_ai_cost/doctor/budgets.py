"""The budgets file `otel-ai-cost budgets check` would read: found, and valid.

The file is looked for as the budgets commands look for it (`budgets.config.find_budgets_file`: `$OTEL_AI_COST_BUDGETS`,
else the nearest `config/budgets.yaml` from the working directory up). No budgets file is not a failure (budgets
are optional); a file that is named but missing, or invalid, is.
"""

from __future__ import annotations

import os

from otel_ai_cost.contract import Env
from otel_ai_cost.doctor.checks import Result, Status

__all__ = ["BUDGETS", "check_budgets"]

BUDGETS = "budgets"


def check_budgets() -> Result:
    from otel_ai_cost.budgets.config import BudgetConfigError, find_budgets_file, load_budgets

    try:
        path, origin = find_budgets_file(None)
    except BudgetConfigError as exc:
        return Result(BUDGETS, Status.SKIP, f"no budgets file ({exc})")
    named = bool(os.environ.get(Env.BUDGETS, "").strip())
    if named and not path.exists():
        return Result(
            BUDGETS,
            Status.FAIL,
            f"{Env.BUDGETS}={path}: the file does not exist",
            fix=f"correct {Env.BUDGETS}, or create the file (docs/budgets.md)",
        )
    try:
        config = load_budgets(path)
    except BudgetConfigError as exc:
        return Result(
            BUDGETS,
            Status.FAIL,
            f"{path} ({origin}) is not a valid budgets file",
            fix=f"correct the problems listed (otel-ai-cost budgets check --budgets {path} shows them)",
            details=tuple(str(exc).splitlines()),
        )
    return Result(
        BUDGETS,
        Status.OK,
        f"{path} ({origin}): valid, {len(config.budgets)} budgets, {len(config.limits)} quota limits",
    )
