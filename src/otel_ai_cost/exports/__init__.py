"""The ledger's data in other tools' formats: `otel-ai-cost export ...`.

- `focus`: the tracked and the billed cost as a FinOps FOCUS 1.2 cost-and-usage dataset (CSV or Parquet), the
  format Vantage, Datadog, Cloudability and OpenCost import as custom cost data (docs/focus.md).
"""

from otel_ai_cost.exports.focus import (
    COLUMNS,
    FOCUS_VERSION,
    FORMATS,
    TRACKED_GROUP_BY,
    FocusColumn,
    FocusDataset,
    csv_text,
    focus_dataset,
    format_of,
    read_ledger,
    write_csv,
    write_focus,
    write_parquet,
)

__all__ = [
    "COLUMNS",
    "FOCUS_VERSION",
    "FORMATS",
    "TRACKED_GROUP_BY",
    "FocusColumn",
    "FocusDataset",
    "csv_text",
    "focus_dataset",
    "format_of",
    "read_ledger",
    "write_csv",
    "write_focus",
    "write_parquet",
]
