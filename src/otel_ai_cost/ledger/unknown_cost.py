"""Which ledger records have a cost we do not know: one rule for the reports and the stores' rollups.

A cost is known only when it is:
- `priced` and complete (outcome `success` or `error`): the amount is what the call cost;
- `no_usage` with outcome `error`: the call failed before the provider reported any usage (a 429, a 400, a
  connection refused), so nothing was billed and $0 is the true cost.

Everything else is unknown, never $0:
- `unpriced`: usage known, but no price for the model;
- outcome `partial`: a stream closed before its usage arrived (`no_usage`), or priced from the usage seen so far,
  which leaves out the output generated after it: at best a lower bound;
- `no_usage` with outcome `success`: the provider answered (and billed) without reporting usage;
- any other status (a record from a newer version, an import): we cannot tell, so we do not claim to.

A limit of the record: a stream that fails midway (outcome `error`, `no_usage`) is indistinguishable from a call
that failed before any generation; it is counted as known ($0).

The stores count these calls in their aggregates and running totals (`AggregateRow.unknown_cost_calls`,
`Totals.unknown_cost_calls`): the SQLite store in SQL, with `UNKNOWN_COST_SQL`, the same rule over a record's columns
(its tests hold the two equal for every combination of status, outcome and amount).
"""

from __future__ import annotations

from otel_ai_cost.contract import Outcome, PricingStatus
from otel_ai_cost.ledger.record import LedgerRecord

__all__ = ["UNKNOWN_COST_SQL", "cost_is_unknown", "is_cost_unknown"]

_PRICED = PricingStatus.PRICED.value
_NO_USAGE = PricingStatus.NO_USAGE.value
_PARTIAL = Outcome.PARTIAL.value
_ERROR = Outcome.ERROR.value

# `is_cost_unknown` as a SQL expression over a record's columns `pricing_status`, `outcome` and `amount`: 1 when
# the cost is unknown, else 0. `IS` rather than `=` so that a NULL (a column a newer version or an import left
# empty) is an unknown cost, as the Python rule says of any status it does not know.
UNKNOWN_COST_SQL = (
    f"(CASE WHEN pricing_status IS '{_PRICED}' AND amount IS NOT NULL AND outcome IS NOT '{_PARTIAL}' THEN 0 "
    f"WHEN pricing_status IS '{_NO_USAGE}' AND outcome IS '{_ERROR}' THEN 0 ELSE 1 END)"
)


def cost_is_unknown(pricing_status: str, outcome: str) -> bool:
    """Whether a call of this pricing status and outcome has an unknown cost (see the module documentation)."""
    if pricing_status == _PRICED:
        return outcome == _PARTIAL
    if pricing_status == _NO_USAGE:
        return outcome != _ERROR
    return True


def is_cost_unknown(record: LedgerRecord) -> bool:
    """Whether the record's cost is unknown (a `priced` record without an amount is, too)."""
    if record.pricing_status == _PRICED and record.amount is None:
        return True
    return cost_is_unknown(record.pricing_status, record.outcome)
