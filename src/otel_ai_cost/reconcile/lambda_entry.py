"""The AWS Lambda entry point: `otel_ai_cost.reconcile.lambda_handler`, run by an EventBridge schedule.

The function's environment: `OTEL_AI_COST_LEDGER=dynamodb://TABLE?region=...` (the team ledger), the admin keys of
the sources to pull (`OPENAI_ADMIN_KEY`, `ANTHROPIC_ADMIN_KEY`, ...; see `reconcile.sources`), and an IAM role with
the table's read/write and, for Bedrock, `ce:GetCostAndUsage`. The event may set the window and options; every key
is optional:

```json
{"from": "2026-11-01", "to": "2026-11-30", "providers": ["openai", "aws.bedrock"], "threshold": "5%"}
```

Without `from`/`to` the trailing days are reconciled (`cli.reconcile.TRAILING_DAYS`), so an hourly or daily
schedule keeps re-pulling partial and late days. The answer is a JSON summary; with `"fail_on_discrepancy": true`
a discrepancy raises, so the invocation counts as failed (Lambda's Errors metric, an alarm on it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

__all__ = ["Discrepancy", "lambda_handler"]

_KEYS = {"from", "to", "providers", "threshold", "fail_on_discrepancy"}


class Discrepancy(RuntimeError):
    """Raised with `fail_on_discrepancy`: the message lists the days beyond the threshold."""


def lambda_handler(event: Mapping[str, Any] | None, context: Any = None) -> dict[str, Any]:
    from otel_ai_cost.cli.reconcile import TRAILING_DAYS, parse_threshold
    from otel_ai_cost.ledger.open_store import configured_url, open_store
    from otel_ai_cost.reconcile.accounts import ACCOUNTS_ENV, load_accounts
    from otel_ai_cost.reconcile.billed import AccountMap
    from otel_ai_cost.reconcile.run import reconcile
    from otel_ai_cost.reconcile.sources import billed_providers, configured_sources

    event = dict(event or {})
    unknown = sorted(set(event) - _KEYS)
    if unknown:
        raise ValueError(f"unknown event key(s) {', '.join(unknown)}; accepted: {', '.join(sorted(_KEYS))}")
    today = datetime.now(timezone.utc).date()
    end_day = _day(event.get("to"), today, "to")
    start_day = _day(event.get("from"), end_day - timedelta(days=TRAILING_DAYS), "from")
    providers = list(event.get("providers") or [])
    threshold = parse_threshold(str(event.get("threshold", "5%")))
    accounts_file = os.environ.get(ACCOUNTS_ENV, "").strip()
    accounts = load_accounts(accounts_file) if accounts_file else AccountMap()
    store = open_store(configured_url())
    try:
        sources = configured_sources(providers, account_map=accounts)
        result = reconcile(store, start_day=start_day, end_day=end_day, sources=sources,
                           providers=billed_providers(providers), threshold=threshold, today=today)  # fmt: skip
    finally:
        store.close()
    verdicts: dict[str, int] = {}
    for row in result.days:
        verdicts[row.verdict.value] = verdicts.get(row.verdict.value, 0) + 1
    summary = {
        "run_id": result.run_id,
        "from": start_day.isoformat(),
        "to": end_day.isoformat(),
        "days": len(result.days),
        "verdicts": verdicts,
        "discrepancies": [f"{row.day} {row.provider} {row.verdict.value}" for row in result.discrepancies],
        "sources": [source.to_dict() for source in result.sources],
    }
    if event.get("fail_on_discrepancy") and result.discrepancies:
        raise Discrepancy(f"{len(result.discrepancies)} day(s) beyond the threshold: {summary['discrepancies'][:10]}")
    return summary


def _day(value: Any, default: date, key: str) -> date:
    if value in (None, ""):
        return default
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"event key {key!r}: not a day (YYYY-MM-DD): {value!r}") from None
