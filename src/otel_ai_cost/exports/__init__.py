"""The ledger's data in other tools' formats: `otel-ai-cost export ...`.

- `focus`: the tracked and the billed cost as a FinOps FOCUS 1.2 cost-and-usage dataset (CSV or Parquet), the
  format Vantage, Datadog, Cloudability and OpenCost import as custom cost data (docs/focus.md).
- `jsonl`: a month of ledger records, one JSON object per line (the monthly archive `import` reads back).
"""
