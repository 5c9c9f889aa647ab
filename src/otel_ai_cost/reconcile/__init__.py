"""Reconciliation: compare what was tracked with what each provider billed, and say where and why they differ.

One module per billing source (`openai_costs`, `anthropic_costs`, `aws_cost_explorer`, `gcp_billing_export`, and
`manual` for figures entered by hand), each behind `billed.BillingSource`; `run.reconcile` pulls, stores and
compares (`compare`: the two `sides` of each provider-day, their verdict and the `causes` found); `render` writes
the result. `docs/reconciliation.md` is the user's guide.

`lambda_handler` is the AWS Lambda entry point (`otel_ai_cost.reconcile.lambda_handler`; see `lambda_entry`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["lambda_handler"]


def lambda_handler(event: Any, context: Any = None) -> dict[str, Any]:
    """AWS Lambda: reconcile the trailing days (or the event's window) into the configured ledger."""
    from otel_ai_cost.reconcile.lambda_entry import lambda_handler as handle

    return handle(event, context)
