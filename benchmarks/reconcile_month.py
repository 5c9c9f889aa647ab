"""Reconciliation benchmark: `reconcile` of 30 days over a 1,000,000-record SQLite ledger and a month of bills.

```bash
python benchmarks/reconcile_month.py                   # 1,000,000 records over 30 days; about a minute
python benchmarks/reconcile_month.py --records 200000
```

The ledger is `ledger_report.py`'s (6 OpenAI and Anthropic models, 3 environments, 1 call in 997 unpriced). The bill is
built from the ledger itself: per day and model, one input and one output line whose amounts add up to the day's
tracked sum exactly, plus usage rows with the same tokens, so every day must come out `match` at exactly 0%;
the run checks that, so a fast but wrong comparison cannot pass unnoticed. What is timed is `reconcile()` without
pulling (the ledger's aggregate, the comparison, storing the run): median of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ledger_report import END_DAY, build, timed

from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery
from otel_ai_cost.reconcile.billed import BilledLine, BilledPull, BilledUsage
from otel_ai_cost.reconcile.result import Verdict
from otel_ai_cost.reconcile.run import reconcile

SOURCE = {"openai": "openai_admin", "anthropic": "anthropic_admin"}


def bill(store: SQLiteStore, start: date, end: date) -> int:
    """Billed lines and usage equal to the ledger's priced calls, per provider, day and model."""
    rows = store.aggregate(UsageQuery(start_day=start, end_day=end), ["day", "provider", "model"])
    pulls: dict[str, tuple[list[BilledLine], list[BilledUsage]]] = {}
    for row in rows:
        group = dict(row.group)
        provider = group["provider"]
        source = SOURCE.get(provider, "dashboard")
        day = date.fromisoformat(group["day"])
        half = (row.amount / 2).quantize(Decimal(1).scaleb(row.amount.as_tuple().exponent - 1))
        lines, usage = pulls.setdefault(source, ([], []))
        for token_class, amount in (("input", half), ("output", row.amount - half)):
            lines.append(BilledLine(provider=provider, day=day, source=source, line=f"{group['model']}, {token_class}",
                                    amount=amount, model=group["model"], token_class=token_class))  # fmt: skip
        if source != "dashboard":
            priced_tokens = row.calls - row.unpriced_calls  # unpriced calls: not on the bill
            usage.append(BilledUsage(provider=provider, day=day, source=source, model=group["model"],
                                     input_tokens=row.input_tokens * priced_tokens // max(row.calls, 1),
                                     output_tokens=row.output_tokens * priced_tokens // max(row.calls, 1)))  # fmt: skip
    count = 0
    for source, (lines, usage) in pulls.items():
        if source == "dashboard":
            store.write_billed(lines)
        else:
            store.replace_billed(BilledPull(source=source, start_day=start, end_day=end, lines=lines, usage=usage))
        count += len(lines)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    start, end = END_DAY - timedelta(days=args.days - 1), END_DAY
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "usage.db"
        built, _ = build(path, args.records, args.days)
        with SQLiteStore(path) as store:
            started = time.perf_counter()
            lines = bill(store, start, end)
            billed = time.perf_counter() - started
            seconds, result = timed(lambda: reconcile(store, start_day=start, end_day=end, today=end + timedelta(1)),
                                    args.repeat)  # fmt: skip
    days = list(result.days)
    wrong = [row for row in days if row.verdict is not Verdict.MATCH or row.relative != 0]
    print(f"ledger: {args.records:,} records over {args.days} days built in {built:.1f} s")
    print(f"bill: {lines:,} billed lines stored in {billed:.2f} s")
    print(f"reconcile (no pull): median {seconds:.2f} s of {args.repeat}: {len(days)} provider-days, "
          f"{len(result.models)} model-days")  # fmt: skip
    if wrong:
        print(f"WRONG: {len(wrong)} provider-days not an exact match, e.g. {wrong[0].to_dict()}")
        return 1
    print("check: every provider-day matches at exactly 0.00%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
