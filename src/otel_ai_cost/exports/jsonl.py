"""A month of ledger records as JSON Lines, the monthly archive: `otel-ai-cost export jsonl`.

```bash
otel-ai-cost export jsonl --month 2026-11 -o history/            # history/usage-2026-11.jsonl
otel-ai-cost export jsonl --month 2026-11 -e production -o history/   # history/usage-2026-11.production.jsonl
otel-ai-cost import history/usage-2026-11.jsonl                  # back into a ledger: nothing lost, nothing doubled
```

```python
from otel_ai_cost.exports.jsonl import export_month

result = export_month(store, "2026-11", Path("history/usage-2026-11.jsonl"))
print(result.records, result.amount, result.unknown_cost_calls)
```

**One record per line, every field.** Each line is `LedgerRecord.to_dict()` as compact JSON: the identity
(`trace_id`, `span_id`), `schema_version`, the timestamp (ISO 8601 UTC with microseconds and `Z`), every token
count, `amount` and `computed_amount` as exact decimal text (`null` when unpriced or not computed: never a $0),
the attribution, the CI and VCS fields, `tags`, `record_source` and `note`, plus the derived `day`. The lines
are in the ledger's order: oldest first, ties by trace and span id. `otel-ai-cost import` recognises such lines
by their shape (`schema_version` and `trace_id`) and stores each record as it was, with its own identity, so
importing an archive twice, or into the ledger it came from, changes nothing (`otel_ai_cost.ledger.manual`).

**Atomic.** The records stream from the store into a temporary file beside the archive (`.usage-2026-11.jsonl.
<random>.partial`), one record in memory at a time; the file is flushed to disk and renamed over the archive
only once the last record is written. An interrupted export (Ctrl-C: `ExportCancelled`, a ledger failure) removes
the temporary file and leaves any earlier archive of that name as it was: a file under the archive's name is
always complete. Re-running an export replaces the archive with the ledger's current records of the month.

**What is not in it.** The billed side (figures from invoices, dashboards and the admin APIs, `reconcile`'s runs)
is not spend and is not archived here; `otel-ai-cost export focus` exports both sides for other tools.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.store import EXACT_SUMS, LedgerStore, UsageQuery
from otel_ai_cost.ledger.unknown_cost import is_cost_unknown

__all__ = [
    "PROGRESS_EVERY",
    "ArchiveResult",
    "ExportCancelled",
    "archive_line",
    "archive_name",
    "expected_records",
    "export_month",
    "month_days",
]

PROGRESS_EVERY = 1000  # records between two progress callbacks
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]")
ProgressCallback = Callable[[int, int | None], None]  # (records written, records expected or None)


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    """A finished export: `records` lines in `path`; `amount` the exact sum of the priced records, a lower bound
    when `unknown_cost_calls` > 0 (those calls' cost is unknown, never counted as $0)."""

    path: Path
    month: str
    environment: str | None
    records: int
    amount: Decimal
    unknown_cost_calls: int


class ExportCancelled(KeyboardInterrupt):
    """Ctrl-C during an export: `written` records had been written to the temporary file, which is removed; the
    archive `path` is untouched (absent, or the previous complete export). A KeyboardInterrupt, so a caller that
    does not know it still stops as on any Ctrl-C."""

    def __init__(self, path: Path, written: int, expected: int | None) -> None:
        self.path, self.written, self.expected = path, written, expected
        of = f" of {expected:,}" if expected is not None else ""
        super().__init__(
            f"interrupted after {written:,}{of} records; the partial file was removed and {path} was not written "
            "(any earlier archive of that name is unchanged). The ledger is only read by an export: re-running "
            "it is safe."
        )


def month_days(month: str) -> tuple[date, date]:
    """The first and last UTC day of `YYYY-MM`; ValueError for anything else."""
    match = _MONTH.fullmatch(month.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"expected a month YYYY-MM, got {month!r}")
    first = date(int(match.group(1)), int(match.group(2)), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def archive_name(month: str, environment: str | None = None) -> str:
    """The archive's file name: `usage-2026-11.jsonl`, or `usage-2026-11.production.jsonl` for one environment
    (characters other than letters, digits, `.`, `_` and `-` become `_`)."""
    month_days(month)
    if not environment:
        return f"usage-{month}.jsonl"
    return f"usage-{month}.{_UNSAFE_IN_NAME.sub('_', environment)}.jsonl"


def archive_line(record: LedgerRecord) -> str:
    """One record as one archive line (no newline): `to_dict()` as compact JSON, non-ASCII text as itself."""
    return json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":"))


def expected_records(store: LedgerStore, month: str, environment: str | None = None) -> int | None:
    """How many records the month holds, from the store's running totals (no scan), for a progress bar's total;
    None when the store cannot tell cheaply. Writes during the export may make the real count differ."""
    if environment:
        return store.totals(environment, month).calls
    environments = getattr(store, "environments", None)  # DynamoDB: the environment registry, a small read
    if callable(environments):
        return sum(store.totals(name, month).calls for name in environments())
    start, end = month_days(month)
    # SQLite answers this GROUP BY from its daily rollup: at most 31 rows per environment.
    return sum(row.calls for row in store.aggregate(UsageQuery(start_day=start, end_day=end), ["environment"]))


def export_month(
    store: LedgerStore,
    month: str,
    path: Path,
    *,
    environment: str | None = None,
    on_progress: ProgressCallback | None = None,
    expected: int | None = None,
) -> ArchiveResult:
    """Writes the records of `month` (`YYYY-MM`, UTC days), of one environment or all, to `path` atomically.

    Streams `store.query()`, one record in memory at a time. `on_progress(written, expected)` is called every
    `PROGRESS_EVERY` records and at the end. Raises `ExportCancelled` on Ctrl-C; on that or any other error the
    temporary file is removed and `path` is left as it was.
    """
    start, end = month_days(month)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    written, amount, unknown = 0, Decimal(0), 0
    try:
        # "x": never another file's; opened with the usual permissions (the umask), as the archive will have
        with open(temporary, "x", encoding="utf-8", newline="\n") as out:
            for record in store.query(UsageQuery(start_day=start, end_day=end, environment=environment)):
                out.write(archive_line(record))
                out.write("\n")
                written += 1
                if record.amount is not None:
                    amount = EXACT_SUMS.add(amount, record.amount)
                if is_cost_unknown(record):
                    unknown += 1
                if on_progress is not None and written % PROGRESS_EVERY == 0:
                    on_progress(written, max(expected, written) if expected is not None else None)
            out.flush()
            os.fsync(out.fileno())  # on disk before the rename makes it the archive
        os.replace(temporary, path)
    except KeyboardInterrupt as interrupt:
        temporary.unlink(missing_ok=True)
        raise ExportCancelled(path, written, expected) from interrupt
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if on_progress is not None:
        on_progress(written, written)
    return ArchiveResult(
        path=path, month=month, environment=environment, records=written, amount=amount, unknown_cost_calls=unknown
    )
