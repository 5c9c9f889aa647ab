"""`otel-ai-cost doctor`: check the set-up a process would run with, and say how to fix what is wrong.

`run_doctor()` runs every check (`checks.py` holds the types, one module per concern holds the checks) and returns
the results; `cli/doctor.py` prints them (`render.py`) and exits 0 when nothing failed, else 1. `CHECK_NAMES` is
every check name the doctor can report: `docs/operations.md` lists each one (a test keeps them together).
"""

from __future__ import annotations

from otel_ai_cost.doctor.checks import Result, Status, exit_code
from otel_ai_cost.doctor.run import CHECK_NAMES, CHECKS, run_doctor

__all__ = ["CHECKS", "CHECK_NAMES", "Result", "Status", "exit_code", "run_doctor"]
