"""Moving a team's history from the legacy tracker (tnorlund/Portfolio's `AIUsageMetric` items) into the ledger.

- `legacy_item`: one DynamoDB item -> one `LedgerRecord`, or the reason it cannot be one (pure, no I/O);
- `legacy_scan`: the paginated, parallel, resumable Scan of a legacy table and the import loop around it.

The command is `otel-ai-cost import legacy-dynamodb --table NAME` (`otel_ai_cost.cli.import_legacy`); the
step-by-step guide is docs/migration.md, section 2.
"""
