"""Usage quotas: the `enforce:` limits of the budgets file, checked before a call is sent.

```yaml
budgets:
  enforce:
    - {environment: cicd, period: job, amount: 5, mode: block}       # each job of cicd: at most $5 in all
    - {environment: production, period: day, team: search, amount: 80, mode: block}
    - {environment: production, period: day, user_id: "*", amount: 2, mode: warn}   # each user apart
```

`instrument()` reads the budgets file the `budgets` commands read (`$OTEL_AI_COST_BUDGETS`, else the nearest
`config/budgets.yaml`); without one, or without a limit for the process's environment, there is no guard and a call
pays nothing. Otherwise, before each call of every instrumented SDK and of `track_request` (sync, async, streams):

- **block**: when the spend so far has reached the limit, or the call would pass it (the previous call to the same
  model cost more than what is left), the call is not sent: `otel_ai_cost.BudgetExceeded` is raised, naming the
  limit, the spend so far and the limit. The call's span ends with `error.type` `BudgetExceeded` and
  `ai_cost.quota.blocked` (the limit's name), and `ai_cost.quota.blocked` (metric) counts it.
- **warn**: the call is sent; the first one over a limit (per scope: per job, per user...) is logged, every one is
  counted in `ai_cost.quota.warned` and marked `ai_cost.quota.warned` on its span.

**Spend so far** is the ledger's (its running totals; the same ledger `OTEL_AI_COST_LEDGER` names, shared by every
process of an environment), read at most every `refresh_seconds` (default 1) per limit, plus this process's own
calls, added as they finish. Close to a limit the guard reads the ledger at every call (and first writes this
process's finished calls to it), so concurrent processes go over a limit by at most one call each; see
docs/operations.md, "Usage quotas". A call whose cost is unknown (unpriced, a stream cut before its usage) adds
nothing to the figure, which is then a lower bound: such calls are counted, logged once per limit, and named in
the `BudgetExceeded` message, never taken as $0 without saying so.

The guard never fails a call for its own reasons: a ledger it cannot read is logged (once) and the last figure,
with this process's spend, is used; with the ledger off (`OTEL_AI_COST_LEDGER=none`) a limit holds per process.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from otel_ai_cost.telemetry.recorder import Call, Recorder

__all__ = ["BudgetExceeded", "QuotaGuard", "guard_for"]


class BudgetExceeded(Exception):
    """Raised before a call is sent when an `enforce:` limit in `block` mode would be passed: no request was made.
    The message names the budget, the spend so far and the limit.

    Attributes (None when raised without them): `limit` (the limit's name), `spent` (USD so far, a lower bound
    when `unknown_cost_calls` is non-zero), `amount` (the limit, USD), `scope` (what it covers, e.g.
    `cicd, job_id=job-42`), `unknown_cost_calls`."""

    def __init__(
        self,
        message: str,
        *,
        limit: str | None = None,
        spent: Decimal | None = None,
        amount: Decimal | None = None,
        scope: str | None = None,
        unknown_cost_calls: int = 0,
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.spent = spent
        self.amount = amount
        self.scope = scope
        self.unknown_cost_calls = unknown_cost_calls


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
    from otel_ai_cost.budgets.quota_setup import build_guard  # lazy: the instrumentation imports this module

    return build_guard(recorder)
