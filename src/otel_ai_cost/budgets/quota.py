"""Usage quotas: `enforce:` limits of the budgets file, checked before a call is sent.

(The interface the recorder calls; the limits, their spend so far and the modes are built on it.)
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from otel_ai_cost.telemetry.recorder import Call, Recorder

__all__ = ["BudgetExceeded", "QuotaGuard", "guard_for"]


class BudgetExceeded(Exception):
    """Raised before a call is sent when an `enforce:` limit in `block` mode would be passed: no request was made.
    The message names the budget, the spend so far and the limit."""


class QuotaGuard(Protocol):
    def admit(self, call: Call) -> None:
        """Called when a call starts, before its request is sent. Raises `BudgetExceeded` to block it (having
        marked and finished the call); never raises anything else."""
        ...

    def spent(self, call: Call, amount: Decimal | None) -> None:
        """Called when a call has finished and been priced (`amount` None: unknown). Never raises."""
        ...


def guard_for(recorder: Recorder) -> QuotaGuard | None:
    """The guard of the `enforce:` limits that apply to the recorder's calls; None when there are none (the hot
    path then pays nothing)."""
    return None
