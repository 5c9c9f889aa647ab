"""Reconciliation: compare what was tracked with what each provider billed, and say where and why they differ.

One module per billing source (`openai_costs`, `anthropic_costs`, `aws_cost_explorer`, `gcp_billing_export`),
each behind `billed.BillingSource`; the comparison is `compare`; `docs/reconciliation.md` is the user's guide.
"""
