"""The composite action's outputs from `budgets check --json FILE`: `python -m otel_ai_cost.ci.budget_outputs FILE
ENVIRONMENT >> "$GITHUB_OUTPUT"` prints `status=`, `spent=` and `exceeded=` lines (GitHub's `name=value` format).

`status` is the check's worst status; `spent` the environment's exact spend on the day checked (today, UTC), at
least to the cent (`1.20`), empty when the check had no ledger figure (Prometheus); `exceeded` the ids of the budgets
at or over 100%, comma-separated.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from otel_ai_cost.ledger.report import format_amount

__all__ = ["main", "outputs"]


def outputs(result: Mapping[str, Any], environment: str) -> dict[str, str]:
    """The action's outputs from the check's JSON (`ci.budget_summary.budget_check_json`)."""
    environments = result.get("environments") if isinstance(result.get("environments"), Mapping) else {}
    today = environments.get(environment) if isinstance(environments.get(environment), Mapping) else {}
    return {
        "status": str(result.get("status", "")),
        "spent": format_amount(Decimal(str(today["spent_day"]))) if today.get("spent_day") else "",
        "exceeded": ",".join(str(budget) for budget in result.get("exceeded", [])),
    }


def _line(name: str, value: str) -> str:
    # A value with a line break would start another output: none of ours has one, and none may.
    return f"{name}={value.replace(chr(10), ' ').replace(chr(13), ' ')}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m otel_ai_cost.ci.budget_outputs RESULT.json ENVIRONMENT", file=sys.stderr)
        return 2
    result = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    for name, value in outputs(result, args[1]).items():
        print(_line(name, value))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
