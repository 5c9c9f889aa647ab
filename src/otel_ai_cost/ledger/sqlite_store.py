"""The embedded ledger store: one SQLite file, zero set-up, safe with several writer processes.

```python
from otel_ai_cost.ledger.sqlite_store import SQLiteStore

store = SQLiteStore("~/.local/share/otel-ai-cost/usage.db")  # parent directories are created
store.write(records)          # WriteResult(written=..., duplicates=...)
store.aggregate(UsageQuery(environment="production"), ["day", "provider", "model"])
store.totals("production", "2026-11")   # running totals: no scan
```

**Concurrency.** The file is in WAL mode, so readers never block the writer and the writer never blocks readers.
Writers (threads or processes) take the write lock with `BEGIN IMMEDIATE`, wait for each other up to the busy
timeout, and hold the lock for one short transaction per `write()`. A write that still fails (locked beyond the
busy timeout, disk full, I/O error) is retried with bounded exponential backoff and then raises
`StoreUnavailable`: nothing is ever dropped silently. WAL needs a local file system (not NFS/SMB).

**Idempotency.** (`trace_id`, `span_id`) is the primary key. Writing a record that is already stored (a retry, a
replay, a re-import) is counted in `WriteResult.duplicates` and changes nothing; one whose stored content differs
(another amount or token count) is also counted in `WriteResult.conflicts`, and the first of a process is logged.

**Errors, in the three classes of `store.py`.** Every record is checked against `limits.py` first
(`InvalidRecord`). Locked, busy, disk full, I/O errors: retried, then `StoreUnavailable`; a damaged file:
`StoreUnavailable` at once. An error a record's values cause inside SQLite (`OverflowError`, `IntegrityError`,
`DataError`, `InterfaceError`, a binding error): `InvalidRecord` naming the record. A running sum that the batch
would take past 2**63-1: `InvalidRecord` for one record, `RetryBatch` for several. Anything else is a bug.

**Sums never overflow into floats.** SQLite's `+` turns an integer overflow into a float without a word: the
rollup's upsert refuses it instead (the sum becomes NULL in a NOT NULL column). A `SUM` beyond 64 bits in
`aggregate()` (a ledger written before the bounds) is computed again in 32-bit halves, exactly.

**Exact money.** Amounts are never stored as floating point. Each record keeps its exact decimal text (`amount`)
and, for fast exact sums in SQL, the same amount split into integers: whole micro-USD (`amount_micro`) and the
pico-USD below that (`amount_pico`, 0..999999). SQL `SUM` over integers is exact, and two columns keep the sums far
from the 64-bit limit (9.2 trillion USD, and 9.2 trillion records). The rare amount with more than 12 decimal
places keeps the part below 1e-12 USD exactly in `amount_residual` (decimal text), which `aggregate()` adds back in
Python; no amount is ever rounded.

**Running totals and the daily rollup.** Two small tables are updated in the same transaction as the record
insert, and only for records actually inserted, so they never double count:

- `totals`: per environment, period (UTC day `YYYY-MM-DD` and month `YYYY-MM`), provider and model, the exact
  amount, the calls and the unpriced calls. `totals()` reads a handful of its rows instead of scanning records.
- `daily`: the sums of `aggregate()` (calls, unpriced calls, calls of unknown cost, amount, tokens) per UTC day,
  environment, service,
  provider, requested and responded model, operation, operation type and team. `aggregate()` answers from it
  whenever the query filters and groups on those fields only (the usual report: by day, month, environment,
  provider, model, team...), so a report reads one row per group and day however many records there are. Queries
  by job, batch, CI run or trace id read the records themselves, through their indexes.

**Schema.** Versioned with `PRAGMA user_version` (`SCHEMA_VERSION`); created on open, an older file migrated on
open (`_MIGRATIONS`; version 2 added `computed_amount`, version 3 the rollup's `unknown_cost_calls`, counted from
the records already stored in one pass over them, version 4 the billed side's tables, below, created empty,
version 5 `prune_horizons`, below, created empty). A file written by a newer version is refused rather than misread.

**Retention** (`prune_plan()`, `prune()`, `prune_horizons()`; the rules in `sqlite_prune.py`, the command
`otel-ai-cost ledger prune`): an environment's records before a day are deleted in one transaction, the `daily`
rollup and `totals` kept, so every `aggregate()` the rollup answers and every `totals()` stay exact. The table
`prune_horizons` keeps, per environment, the last day pruned; `write()` refuses a record dated on or before it
(`WriteResult.pruned`, counted as a duplicate, logged once), since its day's figures are already in the rollup and
a replay of a pruned record would otherwise count twice.

**The billed side** (`otel_ai_cost.reconcile`: what the providers billed, and each reconciliation run) lives in four
tables of its own, which no record read, rollup or running total ever touches, so billed money never counts as
tracked spend:

- `billed_lines`, primary key `BilledLine.key` (provider, day, source, account, line), and `billed_usage`, primary
  key `BilledUsage.key` (provider, day, source, account, model, tier, provider_side); both indexed by (source, day)
  for `replace_billed` and by day for reads. Amounts and quantities are exact decimal text (negative amounts are
  credits), flags 0/1. `replace_billed(pull)` deletes the source's rows of the window's days and inserts the
  pull's in ONE transaction: a reader sees the old bill or the new one, never a mix, and a re-pulled day is never
  doubled. `write_billed` upserts by key (the latest figure wins).
- `reconciliation_runs` (`run_id` primary key, `finished_at`, the window, `days` and `document` as compact JSON
  text, `run_codec`), and `reconciled_days`, the latest verdict per (provider, day, environment): a run's days
  replace a stored verdict only when the run finished at the same time or later, in the transaction that stores
  the run.

What the billed side accepts is bounded (`billed_bounds`: names of 200 characters, line texts of 1,000, days from
2000 to 2099, |amount| <= 10**7 USD per line with at most 30 decimal places, usage counts <= 10**15 per day, run
documents <= 64 MiB of JSON). A value beyond a bound raises `InvalidRecord` naming the row and the field, and
nothing of that call is written; the writes retry and fail like `write()` (`StoreUnavailable`).

**Calls of unknown cost.** `otel_ai_cost.ledger.unknown_cost` says which calls have an unknown cost; SQL counts them
with the same rule written as SQL (`UNKNOWN_COST_SQL`, held equal to the Python rule by the tests), in the rollup,
in `aggregate()` over the records, in `totals()` (from the rollup) and in the version 3 backfill.
"""

from __future__ import annotations

import json
import logging
import random
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from decimal import ROUND_FLOOR, Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from otel_ai_cost.contract import CostSource, PricingStatus, Record
from otel_ai_cost.ledger import billed_bounds, limits, run_codec, sqlite_prune
from otel_ai_cost.ledger.api_keys import SharedApiKey, shared_keys
from otel_ai_cost.ledger.record import LedgerRecord, format_timestamp, parse_timestamp
from otel_ai_cost.ledger.store import (
    GROUP_BY_FIELDS,
    AggregateRow,
    BilledQuery,
    BilledWrite,
    InvalidRecord,
    RetryBatch,
    StoreUnavailable,
    Totals,
    UsageQuery,
    WriteResult,
)
from otel_ai_cost.ledger.unknown_cost import UNKNOWN_COST_SQL, is_cost_unknown
from otel_ai_cost.reconcile.billed import BilledLine, BilledPull, BilledUsage
from otel_ai_cost.reconcile.runs import ReconciledDay, RunRecord

__all__ = ["SCHEMA_VERSION", "SQLiteStore", "SchemaVersionError", "exact_sum", "split_amount"]

logger = logging.getLogger("otel_ai_cost.ledger")

SCHEMA_VERSION = 5

# Decimal arithmetic that can never round silently: an inexact result raises instead.
EXACT = Context(prec=400, traps=[InvalidOperation, Overflow, Inexact, Rounded])
_MICRO = 10**6
_PICO_DIGITS = 12

# The record's own fields, stored one column each (timestamp as ISO text, tags as JSON, amount as decimal text).
_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(LedgerRecord))
# Derived columns: for indexes, GROUP BY and exact integer sums.
_DERIVED: tuple[str, ...] = (Record.DAY, "model", "amount_micro", "amount_pico", "amount_residual")
_COLUMNS: tuple[str, ...] = _FIELDS + _DERIVED
# Columns added after version 1, by the migration that adds them (the version 1 table is created without them).
_ADDED_COLUMNS: dict[int, tuple[str, ...]] = {
    2: (Record.COMPUTED_AMOUNT,),
    5: (Record.API_KEY_FINGERPRINT, Record.CALL_SITE),
}
_V1_COLUMNS: tuple[str, ...] = tuple(c for c in _COLUMNS if all(c not in a for a in _ADDED_COLUMNS.values()))

_INTEGER_FIELDS = {f.name for f in fields(LedgerRecord) if f.type in ("int", int)}
_REAL_FIELDS = {f.name for f in fields(LedgerRecord) if f.type in ("float", float)}


def _column_type(name: str) -> str:
    if name in _INTEGER_FIELDS or name in ("amount_micro", "amount_pico"):
        return "INTEGER"
    if name in _REAL_FIELDS:
        return "REAL"  # duration_ms only: never money
    return "TEXT"


# The daily rollup's key (see `_DAILY_KEY`), for the migrations.
_DAILY_KEY_V1 = ("day", "environment", "service", "provider", "request_model", "response_model", "operation",
                 "operation_type", "team")  # fmt: skip

_REQUIRED = {Record.TRACE_ID, Record.SPAN_ID, Record.TIMESTAMP, Record.DAY, Record.ENVIRONMENT, "model"}

_SCHEMA_V1 = [
    "CREATE TABLE IF NOT EXISTS records (\n    "
    + ",\n    ".join(f"{c} {_column_type(c)}{' NOT NULL' if c in _REQUIRED else ''}" for c in _V1_COLUMNS)
    + ",\n    PRIMARY KEY (trace_id, span_id)\n)",
    # Access paths: environment + day range, day range, provider/model + day range, model alone (a model filter
    # matches the response or the request model: both sides indexed), job, batch, CI run. Trace id: the primary key.
    "CREATE INDEX IF NOT EXISTS records_environment_day ON records (environment, day)",
    "CREATE INDEX IF NOT EXISTS records_day ON records (day)",
    "CREATE INDEX IF NOT EXISTS records_provider_model_day ON records (provider, model, day)",
    "CREATE INDEX IF NOT EXISTS records_model_day ON records (model, day)",
    "CREATE INDEX IF NOT EXISTS records_request_model_day ON records (request_model, day)",
    "CREATE INDEX IF NOT EXISTS records_job ON records (job_id)",
    "CREATE INDEX IF NOT EXISTS records_batch ON records (batch_id)",
    "CREATE INDEX IF NOT EXISTS records_cicd_run ON records (cicd_run_id)",
    """CREATE TABLE IF NOT EXISTS daily (
    day TEXT NOT NULL,
    environment TEXT NOT NULL,
    service TEXT NOT NULL,
    provider TEXT NOT NULL,
    request_model TEXT NOT NULL,
    response_model TEXT NOT NULL,
    operation TEXT NOT NULL,
    operation_type TEXT NOT NULL,
    team TEXT NOT NULL,
    model TEXT NOT NULL,
    calls INTEGER NOT NULL,
    unpriced_calls INTEGER NOT NULL,
    amount_micro INTEGER NOT NULL,
    amount_pico INTEGER NOT NULL,
    amount_residual TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_input_tokens INTEGER NOT NULL,
    cache_write_5m_input_tokens INTEGER NOT NULL,
    cache_write_1h_input_tokens INTEGER NOT NULL,
    reasoning_output_tokens INTEGER NOT NULL,
    PRIMARY KEY (day, environment, service, provider, request_model, response_model, operation, operation_type, team)
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS totals (
    environment TEXT NOT NULL,
    period TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    amount TEXT NOT NULL,
    calls INTEGER NOT NULL,
    unpriced_calls INTEGER NOT NULL,
    PRIMARY KEY (environment, period, provider, model)
)""",
]
# Version 2: our catalog's figure beside a provider-reported amount (exact decimal text; NULL when not computed,
# which is what every record written before has). A partial index keeps the report's provider-vs-computed
# comparison to those records only.
_SCHEMA_V2 = [
    "ALTER TABLE records ADD COLUMN computed_amount TEXT",
    "CREATE INDEX IF NOT EXISTS records_computed_day ON records (day) WHERE computed_amount IS NOT NULL",
]
# Version 3: the daily rollup counts the calls of unknown cost (`otel_ai_cost.ledger.unknown_cost`), not only the
# unpriced ones; the rows already there are counted from their records, with the same rule, in one GROUP BY into a
# temporary table keyed like the rollup (a lookup per rollup row; no `UPDATE ... FROM`, which older SQLite lacks).
_BACKFILL_KEY = ", ".join(_DAILY_KEY_V1)
_SCHEMA_V3 = [
    "ALTER TABLE daily ADD COLUMN unknown_cost_calls INTEGER NOT NULL DEFAULT 0",
    f"CREATE TEMP TABLE unknown_cost_backfill ({_BACKFILL_KEY}, n INTEGER NOT NULL, PRIMARY KEY ({_BACKFILL_KEY}))",
    f"INSERT INTO temp.unknown_cost_backfill SELECT {_BACKFILL_KEY}, SUM({UNKNOWN_COST_SQL}) FROM records "
    f"GROUP BY {_BACKFILL_KEY}",
    "UPDATE daily SET unknown_cost_calls = COALESCE((SELECT n FROM temp.unknown_cost_backfill AS counted WHERE "
    + " AND ".join(f"counted.{name} = daily.{name}" for name in _DAILY_KEY_V1)
    + "), 0)",
    "DROP TABLE temp.unknown_cost_backfill",
]
# Version 4: the billed side (`otel_ai_cost.reconcile`), four tables of their own that no record read, rollup or
# total ever touches. Amounts are exact decimal text; flags are 0/1. Nothing is backfilled: a version 3 file keeps
# its records, rollup and totals as they are.
_SCHEMA_V4 = [
    """CREATE TABLE IF NOT EXISTS billed_lines (
    provider TEXT NOT NULL,
    day TEXT NOT NULL,
    source TEXT NOT NULL,
    account TEXT NOT NULL,
    line TEXT NOT NULL,
    amount TEXT NOT NULL,
    model TEXT NOT NULL,
    token_class TEXT NOT NULL,
    tier TEXT NOT NULL,
    quantity TEXT,
    unit TEXT NOT NULL,
    environment TEXT NOT NULL,
    final INTEGER NOT NULL,
    parsed INTEGER NOT NULL,
    period TEXT NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (provider, day, source, account, line)
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS billed_lines_source_day ON billed_lines (source, day)",
    "CREATE INDEX IF NOT EXISTS billed_lines_day ON billed_lines (day)",
    """CREATE TABLE IF NOT EXISTS billed_usage (
    provider TEXT NOT NULL,
    day TEXT NOT NULL,
    source TEXT NOT NULL,
    account TEXT NOT NULL,
    model TEXT NOT NULL,
    tier TEXT NOT NULL,
    provider_side INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    cache_read_input_tokens INTEGER NOT NULL,
    cache_write_5m_input_tokens INTEGER NOT NULL,
    cache_write_1h_input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    requests INTEGER,
    environment TEXT NOT NULL,
    final INTEGER NOT NULL,
    PRIMARY KEY (provider, day, source, account, model, tier, provider_side)
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS billed_usage_source_day ON billed_usage (source, day)",
    "CREATE INDEX IF NOT EXISTS billed_usage_day ON billed_usage (day)",
    """CREATE TABLE IF NOT EXISTS reconciliation_runs (
    run_id TEXT PRIMARY KEY,
    finished_at TEXT NOT NULL,
    start_day TEXT NOT NULL,
    end_day TEXT NOT NULL,
    days TEXT NOT NULL,
    document TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS reconciliation_runs_finished ON reconciliation_runs (finished_at, run_id)",
    """CREATE TABLE IF NOT EXISTS reconciled_days (
    provider TEXT NOT NULL,
    day TEXT NOT NULL,
    environment TEXT NOT NULL,
    tracked TEXT NOT NULL,
    billed TEXT,
    verdict TEXT NOT NULL,
    run_id TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    unknown_cost_calls INTEGER NOT NULL,
    final INTEGER NOT NULL,
    PRIMARY KEY (provider, day, environment)
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS reconciled_days_day ON reconciled_days (day)",
]
# Version 5: operability (issue 15): the statements for retention (`ledger prune`) and API key fingerprints.
_SCHEMA_V5: list[str] = [
    sqlite_prune.SCHEMA,  # the prune horizon per environment: `write()` refuses records on or before it
    # API key fingerprints and the call sites of unattributed calls (NULL in the records written before), and the
    # environments each key was seen in, kept up to date by `write()` (`shared_api_keys()` reads this table only).
    *(f"ALTER TABLE records ADD COLUMN {column} TEXT" for column in _ADDED_COLUMNS[5]),
    """CREATE TABLE IF NOT EXISTS api_keys (
    fingerprint TEXT NOT NULL,
    provider TEXT NOT NULL,
    environment TEXT NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, provider, environment)
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS api_keys_last_day ON api_keys (last_day)",
]

# version -> the statements that migrate a file to it
_MIGRATIONS: dict[int, list[str]] = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3, 4: _SCHEMA_V4, 5: _SCHEMA_V5}

_INSERT = (
    f"INSERT INTO records ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    "ON CONFLICT (trace_id, span_id) DO NOTHING"
)

# SQL for each GROUP_BY_FIELDS name ("model" is the stored response-else-request model).
_GROUP_EXPRESSIONS: dict[str, str] = {name: name for name in GROUP_BY_FIELDS}
_GROUP_EXPRESSIONS["month"] = "substr(day, 1, 7)"

# The daily rollup: its key (`model` is derived from the two model columns, so it is not part of the key), and
# which groupings and filters it can answer.
_DAILY_KEY = _DAILY_KEY_V1
_DAILY_MEASURES = ("calls", "unpriced_calls", "amount_micro", "amount_pico", "input_tokens", "output_tokens",
                   "cache_read_input_tokens", "cache_write_5m_input_tokens", "cache_write_1h_input_tokens",
                   "reasoning_output_tokens", "unknown_cost_calls")  # fmt: skip
_DAILY_GROUPS = frozenset({"day", "month", "environment", "service", "provider", "model", "operation", "operation_type",
                           "team"})  # fmt: skip
_UPSERT_DAILY = (
    f"INSERT INTO daily ({', '.join([*_DAILY_KEY, 'model', *_DAILY_MEASURES])}) "
    f"VALUES ({', '.join('?' * (len(_DAILY_KEY) + 1 + len(_DAILY_MEASURES)))}) "
    f"ON CONFLICT ({', '.join(_DAILY_KEY)}) DO UPDATE SET "
    # SQLite's `+` turns an integer overflow into a float, silently: a sum that would pass 2**63-1 becomes NULL
    # instead, which the NOT NULL constraint refuses (IntegrityError), so the rollup stays exact integers.
    + ", ".join(
        f"{m} = CASE WHEN {m} <= {limits.INT64_MAX} - excluded.{m} THEN {m} + excluded.{m} END" for m in _DAILY_MEASURES
    )
)

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_DAY_PERIOD = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH_PERIOD = re.compile(r"^\d{4}-\d{2}$")


class SchemaVersionError(RuntimeError):
    """The ledger file was written by a newer otel-ai-cost (its schema is unknown to this version)."""


def split_amount(amount: Decimal) -> tuple[int, int, str | None]:
    """An exact amount as (whole micro-USD, pico-USD below that, exact remainder below 1e-12 USD or None).

    `micro * 1e-6 + pico * 1e-12 + remainder == amount`, exactly; the integers are what SQL sums.
    """
    scaled = EXACT.scaleb(amount, _PICO_DIGITS)
    picos = int(scaled)
    if picos == scaled:  # the common case, no remainder: a fifth of the general path's cost
        return (*divmod(picos, _MICRO), None)
    picos = int(scaled.to_integral_value(rounding=ROUND_FLOOR, context=EXACT))
    residual = EXACT.subtract(amount, EXACT.scaleb(Decimal(picos), -_PICO_DIGITS))
    micro, pico = divmod(picos, _MICRO)
    return micro, pico, (format(residual, "f") if residual else None)


def exact_sum(micro: int, pico: int, residuals: Sequence[Decimal] = ()) -> Decimal:
    """Inverse of `split_amount` over sums: the exact total, without trailing zeros."""
    total = EXACT.add(EXACT.scaleb(Decimal(micro), -6), EXACT.scaleb(Decimal(pico), -_PICO_DIGITS))
    for residual in residuals:
        total = EXACT.add(total, residual)
    return _plain(total)


def _plain(value: Decimal) -> Decimal:
    """Without trailing zeros, but never in exponent form for whole numbers (1E+1 -> 10)."""
    normalized = EXACT.normalize(value)
    exponent = normalized.as_tuple().exponent
    return normalized.quantize(Decimal(1), context=EXACT) if isinstance(exponent, int) and exponent > 0 else normalized


class SQLiteStore:
    """A `LedgerStore` in one SQLite file (see the module documentation for the guarantees).

    `busy_timeout_s`: how long one attempt waits for another writer's lock. `write_attempts`: attempts per
    `write()` (the first plus retries) before `StoreUnavailable`; the waits between them double from
    `backoff_s` up to `max_backoff_s`, with jitter so that competing processes do not retry in lockstep.
    `synchronous`: SQLite's `PRAGMA synchronous`; `FULL` (the default) makes every committed write durable across
    a power loss, which a ledger needs (a committed batch was acknowledged to the exporter).

    Thread-safe: one connection for writes, guarded by a lock; `query()` streams from a connection of its own, so
    a long read never holds up the writers.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_s: float = 5.0,
        write_attempts: int = 4,
        backoff_s: float = 0.1,
        max_backoff_s: float = 2.0,
        synchronous: str = "FULL",
    ) -> None:
        if synchronous.upper() not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, got {synchronous!r}")
        self.path = Path(path).expanduser()
        self._busy_timeout_s = busy_timeout_s
        self._write_attempts = max(1, write_attempts)
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._synchronous = synchronous
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the ledger directory {self.path.parent}: {exc}") from exc
        self._conn = self._retrying(self._open_and_migrate, what=f"open the ledger {self.path}")[0]

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # -- connections and schema ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; each write is one explicit BEGIN IMMEDIATE ... COMMIT.
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
        return conn

    def _open_and_migrate(self) -> sqlite3.Connection:
        conn = self._connect()
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                logger.warning("otel-ai-cost ledger: %s is not in WAL mode (%s)", self.path, mode)
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the ledger {self.path} has schema version {version}; this otel-ai-cost knows up to "
                f"{SCHEMA_VERSION}: upgrade otel-ai-cost"
            )
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _retrying(self, operation: Any, *, what: str) -> tuple[Any, int]:
        """Runs `operation()`, retrying SQLite operational errors (locked, busy, full, I/O) with bounded
        exponential backoff; returns (result, retries) or raises `StoreUnavailable` naming the last error."""
        delay = self._backoff_s
        for attempt in range(self._write_attempts):
            try:
                return operation(), attempt
            except sqlite3.OperationalError as exc:
                last: sqlite3.Error = exc
            except sqlite3.DatabaseError as exc:  # a damaged file: retrying will not help
                raise StoreUnavailable(f"cannot {what}: {exc}") from exc
            if attempt + 1 < self._write_attempts:
                logger.debug("otel-ai-cost ledger: cannot %s (%s); retrying in %.2fs", what, last, delay)
                time.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self._max_backoff_s)
        raise StoreUnavailable(
            f"cannot {what} after {self._write_attempts} attempts: {last}", retry_after_s=delay
        ) from last

    # -- writes -----------------------------------------------------------------------------------------------

    def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
        """Stores the records that are new, in one transaction with their running totals.

        Returns how many were new and how many were already stored. On a failure that outlasts the retries
        raises `StoreUnavailable`, and nothing of this call was stored (the transaction is all or nothing), so
        the caller can simply write the same records again.
        """
        records = list(records)
        if not records:
            return WriteResult(0, 0)
        for record in records:  # records also come from `record` and `import`: the bounds hold for every writer
            limits.validate_record(record)
        rows = [_row(r) for r in records]  # outside the lock and the retries: a bad record fails fast
        with self._lock:
            self._check_open()
            (written, conflicts, pruned), retries = self._retrying(
                lambda: self._insert(records, rows), what=f"write to {self.path}"
            )
        if conflicts:
            _log_conflict_once(conflicts[0])
        if pruned:
            _log_pruned_once(pruned[0])
        return WriteResult(
            written=written,
            duplicates=len(records) - written,
            retries=retries,
            conflicts=len(conflicts),
            pruned=len(pruned),
        )

    def _insert(
        self, records: list[LedgerRecord], rows: list[tuple[Any, ...]]
    ) -> tuple[int, list[_Conflict], list[tuple[LedgerRecord, date]]]:
        """One transaction: the new records, then their running totals and rollup. Returns how many were new, the
        already stored identities whose stored content differs, and the records refused because they are dated on
        or before their environment's prune horizon (with that horizon)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            cursor = conn.cursor()
            inserted: list[tuple[LedgerRecord, tuple[Any, ...]]] = []
            conflicts: list[_Conflict] = []
            pruned: list[tuple[LedgerRecord, date]] = []
            # Read under the write lock, so a prune committed by another process a moment ago is seen.
            horizons = {env: day.isoformat() for env, day in sqlite_prune.horizons(cursor).items()}
            for record, row in zip(records, rows, strict=True):
                horizon = horizons.get(record.environment)
                if horizon is not None and row[_DAY_AT] <= horizon:  # a replay of a pruned record, maybe: refused
                    pruned.append((record, date.fromisoformat(horizon)))
                    continue
                _insert_one(cursor, record, row)
                if cursor.rowcount == 1:  # 0: the identity is already stored (or repeated within this batch)
                    inserted.append((record, row))
                elif (conflict := _conflict(cursor, record, row)) is not None:
                    conflicts.append(conflict)
            try:
                _add_to_totals(cursor, inserted)
                _add_to_daily(cursor, inserted)
                _add_to_api_keys(cursor, inserted)
            except _RECORD_ERRORS as exc:  # a sum would leave 64 bits: caused by this batch's records together
                _raise_for_batch(records, exc)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return len(inserted), conflicts, pruned

    # -- reads ------------------------------------------------------------------------------------------------

    def query(self, query: UsageQuery) -> Iterator[LedgerRecord]:
        """Matching records, oldest first, streamed from a read connection of their own."""
        where, params = _where(query)
        sql = f"SELECT {', '.join(_FIELDS)} FROM records{where} ORDER BY timestamp, trace_id, span_id"
        self._check_open()
        return self._stream(sql, params)

    def _stream(self, sql: str, params: list[Any]) -> Iterator[LedgerRecord]:
        conn = self._connect()
        try:
            cursor = conn.execute(sql, params)
            while batch := cursor.fetchmany(1000):
                for row in batch:
                    yield _record(row)
        finally:
            conn.close()

    def aggregate(self, query: UsageQuery, group_by: Sequence[str]) -> list[AggregateRow]:
        """Exact sums per group, computed by SQL GROUP BY; groups ordered by their values.

        `group_by` names fields of `GROUP_BY_FIELDS` (`model` is the response model, else the request model);
        empty means one row over everything that matches (no row when nothing does). Answered from the daily
        rollup when the query only involves its fields, else from the records.
        """
        unknown = [g for g in group_by if g not in _GROUP_EXPRESSIONS]
        if unknown:
            raise ValueError(f"cannot group by {', '.join(unknown)}; choose from {', '.join(GROUP_BY_FIELDS)}")
        table = "daily" if answers_from_rollup(query, group_by) else "records"
        return self._aggregate_from(table, query, group_by)

    def _aggregate_from(self, table: str, query: UsageQuery, group_by: Sequence[str]) -> list[AggregateRow]:
        """`aggregate()` over `records` or `daily` (the tests hold the two equal).

        Never inexact, never an 'integer overflow': a SQL `SUM` beyond 64 bits (possible only in a ledger written
        before the bounds of `limits.py`, or at millions of records at the bound) is computed again with every
        measure summed as two 32-bit halves, exactly; a rollup that an older version let overflow into floats is
        bypassed for the records themselves."""
        where, params = _where(query)
        keys = [_GROUP_EXPRESSIONS[g] for g in group_by]
        group_sql = f" GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}" if keys else ""
        with self._lock:
            self._check_open()
            try:
                found = self._conn.execute(_sums_sql(table, keys, where, group_sql), params).fetchall()
                if table == "daily" and any(isinstance(v, float) for row in found for v in row[len(keys) :]):
                    raise _InexactRollup
            except (sqlite3.OperationalError, _InexactRollup) as exc:
                if not isinstance(exc, _InexactRollup) and "integer overflow" not in str(exc):
                    raise
                table = "records" if isinstance(exc, _InexactRollup) else table
                sums = _SUMS if table == "records" else _DAILY_SUMS
                split = _split_sums(sums)
                found = [
                    (*row[: len(keys)], *_join_halves(sums, row[len(keys) :]))
                    for row in self._conn.execute(
                        f"SELECT {', '.join([*keys, *split])} FROM {table}{where}{group_sql}", params
                    ).fetchall()
                ]
            residuals: dict[tuple[Any, ...], list[Decimal]] = {}
            if any(row[len(keys) + 3] for row in found):  # some amount has more than 12 decimal places: rare
                residual_sql = f"SELECT {', '.join([*keys, 'amount_residual'])} FROM {table}{where}"
                residual_sql += (" AND " if where else " WHERE ") + "amount_residual IS NOT NULL"
                for row in self._conn.execute(residual_sql, params).fetchall():
                    residuals.setdefault(tuple(row[: len(keys)]), []).append(Decimal(row[-1]))
            # Provider-reported amounts with our catalog's figure beside them: few records, read through their
            # partial index (the planner would rather take the environment's index and read all its records),
            # unless a job, batch, CI run or trace narrows the records more.
            indexed = "" if _by_record(query) else " INDEXED BY records_computed_day"
            computed_sql = f"SELECT {', '.join([*keys, 'amount', 'computed_amount'])} FROM records{indexed}{where}"
            computed_sql += (" AND " if where else " WHERE ") + _HAS_COMPUTED
            differences: dict[tuple[Any, ...], Decimal] = {}
            for row in self._conn.execute(computed_sql, params).fetchall():
                group = tuple(row[: len(keys)])
                difference = EXACT.subtract(Decimal(row[-1]), Decimal(row[-2] or 0))
                differences[group] = EXACT.add(differences.get(group, Decimal(0)), difference)
        out = []
        for row in found:
            group = tuple(row[: len(keys)])
            labels = tuple(
                (name, "" if value is None else str(value)) for name, value in zip(group_by, group, strict=True)
            )
            calls, micro, pico, _, unpriced, tin, tout, tcr, tcw5, tcw1, treason, unknown = (
                v or 0 for v in row[len(keys) :]
            )
            if not calls:
                continue
            amount = exact_sum(micro, pico, residuals.get(group, ()))
            difference = differences.get(group)
            out.append(
                AggregateRow(
                    group=labels,
                    amount=amount,
                    calls=calls,
                    unpriced_calls=unpriced,
                    input_tokens=tin,
                    output_tokens=tout,
                    cache_read_input_tokens=tcr,
                    cache_write_input_tokens=tcw5 + tcw1,
                    reasoning_output_tokens=treason,
                    computed_amount=None if difference is None else _plain(EXACT.add(amount, difference)),
                    unknown_cost_calls=unknown,
                )
            )
        return out

    def totals(self, environment: str, period: str) -> Totals:
        """The running totals of one environment for a UTC day (`2026-11-22`) or month (`2026-11`).

        Reads the few rows of the `totals` table (one per provider/model): no scan of records. The spend per
        team and per operation type, and the calls of unknown cost, come from the daily rollup: a GROUP BY over
        the period's rollup rows (at most 31 days of them), in the same read transaction, so every figure is of
        the same moment.
        """
        if not (_DAY_PERIOD.match(period) or _MONTH_PERIOD.match(period)):
            raise ValueError(f"period must be a UTC day YYYY-MM-DD or a month YYYY-MM, got {period!r}")
        days = (period, period) if _DAY_PERIOD.match(period) else (f"{period}-01", f"{period}-31")
        with self._lock:
            self._check_open()
            self._conn.execute("BEGIN")  # one snapshot for every read
            try:
                rows = self._conn.execute(
                    "SELECT provider, model, amount, calls, unpriced_calls FROM totals "
                    "WHERE environment = ? AND period = ?",
                    (environment, period),
                ).fetchall()
                by_team = _spend_by(self._conn, Record.TEAM, environment, days)
                by_operation_type = _spend_by(self._conn, Record.OPERATION_TYPE, environment, days)
                unknown = _unknown_cost_calls(self._conn, environment, days)
            finally:
                self._conn.execute("COMMIT")
        amount = Decimal(0)
        by_provider_model: dict[tuple[str, str], Decimal] = {}
        for provider, model, text, _, _ in rows:
            value = Decimal(text)
            by_provider_model[(provider, model)] = value
            amount = EXACT.add(amount, value)
        return Totals(
            period=period,
            environment=environment,
            amount=_plain(amount),
            calls=sum(r[3] for r in rows),
            unpriced_calls=sum(r[4] for r in rows),
            by_provider_model=by_provider_model,
            by_team=by_team,
            by_operation_type=by_operation_type,
            unknown_cost_calls=unknown,
        )

    # -- the billed side (`otel_ai_cost.reconcile`) ---------------------------------------------------------

    def replace_billed(self, pull: BilledPull) -> BilledWrite:
        """Replaces, in one transaction, every line and usage row of `pull.source` on the days `pull.start_day`..
        `pull.end_day` with the pull's: a day pulled again is replaced, never added to, and a line the provider
        dropped is gone. `BilledWrite.removed` counts the stored rows the pull did not have again.

        Checked before anything is written (`billed_bounds.validate_pull`): a row of another source, outside the
        window or twice in the pull raises `ValueError`, a value beyond a bound `InvalidRecord`."""
        billed_bounds.validate_pull(pull)
        lines = [_line_row(line) for line in pull.lines]
        usage = [_usage_row(row) for row in pull.usage]
        window = (pull.source, _day(pull.start_day), _day(pull.end_day))

        def replace(cursor: sqlite3.Cursor) -> int:
            removed = 0
            for table, columns, key_width, rows in (
                ("billed_lines", _LINE_COLUMNS, _LINE_KEY_WIDTH, lines),
                ("billed_usage", _USAGE_COLUMNS, _USAGE_KEY_WIDTH, usage),
            ):
                where = " FROM " + table + " WHERE source = ? AND day >= ? AND day <= ?"
                keys = ", ".join(columns[:key_width])
                stored = {tuple(row) for row in cursor.execute(f"SELECT {keys}{where}", window)}
                cursor.execute(f"DELETE{where}", window)
                cursor.executemany(_insert_sql(table, columns, replace=False), rows)
                removed += len(stored - {row[:key_width] for row in rows})
            return removed

        removed = self._transaction(replace, what=f"replace the billed lines of {pull.source} in {self.path}")
        return BilledWrite(written=len(lines) + len(usage), removed=removed)

    def write_billed(self, lines: Sequence[BilledLine]) -> BilledWrite:
        """Upserts lines by `BilledLine.key` in one transaction (figures entered by hand: the latest figure for a key
        wins, also within one call). `written` counts the keys stored."""
        lines = list(lines)
        billed_bounds.validate_lines(lines)
        rows = list({line.key: _line_row(line) for line in lines}.values())
        if rows:
            self._transaction(
                lambda cursor: cursor.executemany(_insert_sql("billed_lines", _LINE_COLUMNS, replace=True), rows),
                what=f"write billed lines to {self.path}",
            )
        return BilledWrite(written=len(rows))

    def billed_lines(self, query: BilledQuery) -> list[BilledLine]:
        """Stored billed lines matching `query`, by day, then source, account, line and provider."""
        where, params = _billed_where(query)
        if where is None:
            return []
        order = " ORDER BY day, source, account, line, provider"
        sql = f"SELECT {', '.join(_LINE_COLUMNS)} FROM billed_lines{where}{order}"
        return [_line_from_row(row) for row in self._read(sql, params)]

    def billed_usage(self, query: BilledQuery) -> list[BilledUsage]:
        """Stored billed usage rows matching `query`, by day, then source, account, model, tier, provider and
        provider_side."""
        where, params = _billed_where(query)
        if where is None:
            return []
        sql = (
            f"SELECT {', '.join(_USAGE_COLUMNS)} FROM billed_usage{where} "
            "ORDER BY day, source, account, model, tier, provider, provider_side"
        )
        return [_usage_from_row(row) for row in self._read(sql, params)]

    def write_reconciliation(self, run: RunRecord) -> None:
        """Stores a run (a run stored again under its `run_id` is replaced) and, in the same transaction, makes each
        of its days the latest verdict of its (provider, day, environment), unless a run that finished later has
        already been stored for it (the latest run wins, whatever the order they are written in)."""
        billed_bounds.validate_run(run)
        document = run_codec.encode_document(run.run_id, run.document)
        run_row = (run.run_id, format_timestamp(run.finished_at), _day(run.start_day), _day(run.end_day),
                   run_codec.encode_days(run.days), document)  # fmt: skip
        day_rows = [_reconciled_row(day) for day in run.days]

        def store(cursor: sqlite3.Cursor) -> None:
            cursor.execute(_insert_sql("reconciliation_runs", _RUN_COLUMNS, replace=True), run_row)
            cursor.executemany(_UPSERT_RECONCILED, day_rows)

        self._transaction(store, what=f"write reconciliation run {run.run_id!r} to {self.path}")

    def reconciled_days(self, query: BilledQuery) -> list[ReconciledDay]:
        """The latest run's verdict per (provider, day, environment) matching `query` (its `source` does not apply:
        a verdict weighs every source), by day, then provider and environment."""
        where, params = _billed_where(query, with_source=False)
        if where is None:
            return []
        sql = f"SELECT {', '.join(_RECONCILED_COLUMNS)} FROM reconciled_days{where} ORDER BY day, provider, environment"
        return [_reconciled_from_row(row) for row in self._read(sql, params)]

    def reconciliation_runs(self, limit: int = 20) -> list[RunRecord]:
        """The latest `limit` runs by `finished_at`, newest first (ties by run id), each with its days and document."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be a whole number >= 0, got {limit!r}")
        order = " ORDER BY finished_at DESC, run_id DESC LIMIT ?"
        sql = f"SELECT {', '.join(_RUN_COLUMNS)} FROM reconciliation_runs{order}"
        return [_run_from_row(row) for row in self._read(sql, [limit])]

    def _transaction(self, work: Any, *, what: str) -> Any:
        """`work(cursor)` in one write transaction (all or nothing), retried like `write()`; returns its result."""

        def attempt() -> Any:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn.cursor())
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        with self._lock:
            self._check_open()
            return self._retrying(attempt, what=what)[0]

    def shared_api_keys(self, since: date | str) -> list[SharedApiKey]:
        """API keys (by fingerprint) recorded in more than one environment on or after the UTC day `since`, with
        those environments: read from the `api_keys` table that `write()` keeps, never from the records."""
        rows = self._read(
            "SELECT fingerprint, provider, environment, calls, last_day FROM api_keys WHERE last_day >= ? "
            "ORDER BY fingerprint, provider, environment",
            (_day(since),),
        )
        return shared_keys(rows)

    def remove_environment(self, environment: str) -> int:
        """Removes every record of one environment with its running totals, daily rollup rows and every other row
        of it (each table with an `environment` column), in one transaction; returns how many records went. For
        `otel-ai-cost doctor --write-test`'s reserved environment (`contract.DOCTOR_ENVIRONMENT`): the totals and
        rollup are per environment, so dropping the environment's rows undoes exactly what its records added, and
        no other environment's figure changes."""

        def remove(cursor: sqlite3.Cursor) -> int:
            removed = cursor.execute("DELETE FROM records WHERE environment = ?", (environment,)).rowcount
            tables = [row[0] for row in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:  # the ledger's own table names, quoted
                columns = {row[1] for row in cursor.execute(f'PRAGMA table_info("{table}")')}
                if table != "records" and "environment" in columns:
                    cursor.execute(f'DELETE FROM "{table}" WHERE environment = ?', (environment,))
            return int(removed)

        return int(self._transaction(remove, what=f"remove the environment {environment!r} from {self.path}"))

    # -- retention (`otel-ai-cost ledger prune`; the rules in `sqlite_prune.py`) ---------------------------------

    def prune_plan(self, cutoffs: Mapping[str, date]) -> list[sqlite_prune.PrunePlan]:
        """What `prune(cutoffs)` would delete, per environment (`{environment: first UTC day kept}`): records, days,
        exact spend (from the rollup). Changes nothing; one read snapshot, so writers are never held up."""
        with self._lock:
            self._check_open()
            self._conn.execute("BEGIN")
            try:
                cursor = self._conn.cursor()
                return [sqlite_prune.plan(cursor, env, before) for env, before in sorted(cutoffs.items())]
            finally:
                self._conn.execute("COMMIT")

    def prune(
        self,
        cutoffs: Mapping[str, date],
        *,
        progress: sqlite_prune.Progress | None = None,
        chunk: int = sqlite_prune.CHUNK,
    ) -> list[sqlite_prune.PrunePlan]:
        """Deletes each environment's records dated before its cutoff (`{environment: first UTC day kept}`),
        keeping the daily rollup and the running totals, and moves the environments' prune horizons, in ONE
        transaction: an error or Ctrl-C midway (raised by `progress(done, total)` too) leaves the ledger as it
        was. Returns what was deleted, per environment."""

        def prune(cursor: sqlite3.Cursor) -> list[sqlite_prune.PrunePlan]:
            plans = [sqlite_prune.plan(cursor, env, before) for env, before in sorted(cutoffs.items())]
            sqlite_prune.delete(cursor, plans, progress, chunk)
            return plans

        return self._transaction(prune, what=f"prune {', '.join(sorted(cutoffs))} in {self.path}")

    def prune_horizons(self) -> dict[str, date]:
        """Per environment, the last UTC day whose records were pruned (the rollup and totals keep its figures)."""
        with self._lock:
            self._check_open()
            return sqlite_prune.horizons(self._conn.cursor())

    def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            self._check_open()
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        """Closes the connection (idempotent). Committed writes are already on disk."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable(f"the ledger {self.path} is closed")


# Aggregates, in the order `aggregate()` reads them; sums of integers only (exact), never of REAL or text.
_SUMS = (
    "COUNT(*)",
    "SUM(amount_micro)",
    "SUM(amount_pico)",
    "COUNT(amount_residual)",
    f"SUM(pricing_status = '{PricingStatus.UNPRICED.value}')",
    "SUM(input_tokens)",
    "SUM(output_tokens)",
    "SUM(cache_read_input_tokens)",
    "SUM(cache_write_5m_input_tokens)",
    "SUM(cache_write_1h_input_tokens)",  # added in Python: a `+` in SQL may overflow into a float
    "SUM(reasoning_output_tokens)",
    f"SUM({UNKNOWN_COST_SQL})",
)


# The records whose provider-reported amount has our catalog's figure beside it (`records_computed_day` serves it).
_HAS_COMPUTED = f"cost_source = '{CostSource.PROVIDER.value}' AND computed_amount IS NOT NULL"


# The same aggregates over the daily rollup, in the same order.
_DAILY_SUMS = (
    "SUM(calls)",
    "SUM(amount_micro)",
    "SUM(amount_pico)",
    "COUNT(amount_residual)",
    "SUM(unpriced_calls)",
    "SUM(input_tokens)",
    "SUM(output_tokens)",
    "SUM(cache_read_input_tokens)",
    "SUM(cache_write_5m_input_tokens)",
    "SUM(cache_write_1h_input_tokens)",  # added in Python: a `+` in SQL may overflow into a float
    "SUM(reasoning_output_tokens)",
    "SUM(unknown_cost_calls)",
)


class _InexactRollup(Exception):
    """The daily rollup holds a float (an older version let a sum overflow): answer from the records instead."""


_HALF = 32  # bits: each half of a value below 2**63 is below 2**32, so its SUM stays exact for 2**31 rows
_SUM = re.compile(r"SUM\((.+)\)")


def _sums_sql(table: str, keys: Sequence[str], where: str, group_sql: str) -> str:
    sums = _SUMS if table == "records" else _DAILY_SUMS
    return f"SELECT {', '.join([*keys, *sums])} FROM {table}{where}{group_sql}"


def _split_sums(sums: Sequence[str]) -> list[str]:
    """Each `SUM(x)` as `SUM(x >> 32), SUM(x & 0xFFFFFFFF)`: sums that cannot overflow, joined by `_join_halves`."""
    out: list[str] = []
    for expression in sums:
        match = _SUM.fullmatch(expression)
        if match:
            out += [f"SUM(({match[1]}) >> {_HALF})", f"SUM(({match[1]}) & {2**_HALF - 1})"]
        else:
            out.append(expression)
    return out


def _join_halves(sums: Sequence[str], values: Sequence[Any]) -> list[Any]:
    """The values of `_split_sums(sums)` as one exact Python int per `SUM`."""
    out: list[Any] = []
    it = iter(values)
    for expression in sums:
        if _SUM.fullmatch(expression):
            high, low = next(it), next(it)
            out.append(None if high is None and low is None else ((high or 0) << _HALF) + (low or 0))
        else:
            out.append(next(it))
    return out


def _row(record: LedgerRecord) -> tuple[Any, ...]:
    """The column values of one record, in `_COLUMNS` order (once per record written: one attrgetter for the plain
    fields, then the few that are stored as text)."""
    timestamp = record.timestamp
    if timestamp.tzinfo is None:
        raise ValueError(f"record {record.trace_id}/{record.span_id}: timestamp must be timezone-aware")
    values = list(_FIELD_VALUES(record))
    values[_TIMESTAMP_AT] = stamp = format_timestamp(timestamp)
    amount = record.amount
    if amount is not None:
        values[_AMOUNT_AT] = format(amount, "f")
    if record.computed_amount is not None:
        values[_COMPUTED_AMOUNT_AT] = format(record.computed_amount, "f")
    tags = record.tags
    values[_TAGS_AT] = json.dumps(dict(tags), sort_keys=True, separators=(",", ":")) if tags else None
    micro = pico = residual = None
    if amount is not None:
        micro, pico, residual = split_amount(amount)
    values += [stamp[:10], record.response_model or record.request_model, micro, pico, residual]  # stamp: UTC
    return tuple(values)


_FIELD_VALUES = attrgetter(*_FIELDS)
_TIMESTAMP_AT = _FIELDS.index(Record.TIMESTAMP)
_AMOUNT_AT = _FIELDS.index(Record.AMOUNT)
_COMPUTED_AMOUNT_AT = _FIELDS.index(Record.COMPUTED_AMOUNT)
_TAGS_AT = _FIELDS.index(Record.TAGS)


def _record(row: Sequence[Any]) -> LedgerRecord:
    values = dict(zip(_FIELDS, row, strict=True))
    values[Record.TIMESTAMP] = parse_timestamp(values[Record.TIMESTAMP])
    for name in (Record.AMOUNT, Record.COMPUTED_AMOUNT):
        values[name] = None if values[name] is None else Decimal(values[name])
    values[Record.TAGS] = json.loads(values[Record.TAGS]) if values[Record.TAGS] else {}
    for name, value in values.items():
        if value is None and name not in (Record.AMOUNT, Record.COMPUTED_AMOUNT):
            values[name] = "" if name not in _INTEGER_FIELDS else 0
    return LedgerRecord(**values)


# Errors SQLite (or the binding of a value) raises because of what a record holds, not because of the store's state.
_RECORD_ERRORS = (OverflowError, sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, UnicodeEncodeError)


def _insert_one(cursor: sqlite3.Cursor, record: LedgerRecord, row: tuple[Any, ...]) -> None:
    """Inserts one record's row (or nothing, for an identity already stored); an error that this record's values
    cause is `InvalidRecord` naming it (the bounds of `limits.py` make this a second line of defence)."""
    try:
        cursor.execute(_INSERT, row)
    except (*_RECORD_ERRORS, sqlite3.ProgrammingError) as exc:
        if isinstance(exc, sqlite3.ProgrammingError) and "binding" not in str(exc).lower():
            raise  # a bug of this store (a closed cursor, wrong SQL), not something of the record
        raise InvalidRecord(
            f"record {record.trace_id}/{record.span_id}: the SQLite ledger cannot store it "
            f"({type(exc).__name__}: {exc})",
            key=record.key,
        ) from exc


def _raise_for_batch(records: Sequence[LedgerRecord], exc: BaseException) -> None:
    """A running sum or rollup row would leave SQLite's exact 64-bit integers: `InvalidRecord` for a single record
    (it can never be added to that row), else `RetryBatch` (smaller slices may fit; the caller finds the one that
    does not)."""
    reason = f"adding it to the ledger's exact 64-bit sums would overflow them ({type(exc).__name__}: {exc})"
    if len(records) == 1:
        record = records[0]
        raise InvalidRecord(f"record {record.trace_id}/{record.span_id}: {reason}", key=record.key) from exc
    raise RetryBatch(f"a batch of {len(records)} records: {reason}; write it in smaller slices") from exc


@dataclass(frozen=True, slots=True)
class _Conflict:
    """An identity already stored with other content: the stored amount and the refused one (never more)."""

    key: tuple[str, str]
    stored_amount: str | None
    new_amount: str | None


# What a replay of the same call must repeat exactly: the money and the usage.
_CONTENT = (Record.AMOUNT, Record.COMPUTED_AMOUNT, *limits.COUNT_LIMITS, Record.PRICING_STATUS)
_SELECT_CONTENT = f"SELECT {', '.join(_CONTENT)} FROM records WHERE trace_id = ? AND span_id = ?"
_AMOUNTS = (Record.AMOUNT, Record.COMPUTED_AMOUNT)


def _conflict(cursor: sqlite3.Cursor, record: LedgerRecord, row: tuple[Any, ...]) -> _Conflict | None:
    """For a record whose identity is already stored: a `_Conflict` when the stored content differs, else None
    (a plain replay). One primary-key read, only for duplicates."""
    stored = cursor.execute(_SELECT_CONTENT, record.key).fetchone()
    if stored is None:
        return None
    new = tuple(row[_ROW_INDEX[name]] for name in _CONTENT)
    for name, old_value, new_value in zip(_CONTENT, stored, new, strict=True):
        if name in _AMOUNTS:
            same = (old_value is None) == (new_value is None) and (
                old_value is None or Decimal(old_value) == Decimal(new_value)
            )
        else:
            same = old_value == new_value
        if not same:
            return _Conflict(record.key, stored[0], new[0])
    return None


_CONFLICT_LOG_LOCK = threading.Lock()
_conflict_logged = False


def _log_conflict_once(conflict: _Conflict) -> None:
    """Warns about the first conflict of the process (key and amounts only); later ones are only counted."""
    global _conflict_logged
    with _CONFLICT_LOG_LOCK:
        if _conflict_logged:
            return
        _conflict_logged = True
    logger.warning(
        "otel-ai-cost ledger: record %s/%s is already stored with different content (stored amount %s, refused "
        "amount %s): the stored record is kept. Such conflicts are counted (WriteResult.conflicts, "
        "ai_cost_ledger_record_conflicts_total) and logged once per process",
        *conflict.key,
        conflict.stored_amount,
        conflict.new_amount,
    )


_PRUNED_LOG_LOCK = threading.Lock()
_pruned_logged = False


def _log_pruned_once(refused: tuple[LedgerRecord, date]) -> None:
    """Warns about the first record of the process refused for its prune horizon; later ones are only counted."""
    global _pruned_logged
    with _PRUNED_LOG_LOCK:
        if _pruned_logged:
            return
        _pruned_logged = True
    record, horizon = refused
    logger.warning(
        "otel-ai-cost ledger: record %s/%s of %s is dated %s, on or before the day its records were pruned through "
        "(%s): refused, because the daily rollup already holds the pruned records and a replay would count twice. "
        "Such records are counted (WriteResult.pruned, as duplicates) and logged once per process",
        *record.key,
        record.environment,
        format_timestamp(record.timestamp)[:10],
        horizon.isoformat(),
    )


def rollup_sums(cursor: sqlite3.Cursor, where: str, params: Sequence[Any]) -> tuple[int, Decimal, int]:
    """(calls, exact amount, calls of unknown cost) of the daily rollup rows matching `where`, summed in 32-bit
    halves (no SUM can overflow), with the rare remainders below 1e-12 USD added back."""
    sums = ("SUM(calls)", "SUM(amount_micro)", "SUM(amount_pico)", "SUM(unknown_cost_calls)")
    row = cursor.execute(f"SELECT {', '.join(_split_sums(sums))} FROM daily WHERE {where}", params).fetchone()
    calls, micro, pico, unknown = (value or 0 for value in _join_halves(sums, row))
    residuals = [
        Decimal(text)
        for (text,) in cursor.execute(
            f"SELECT amount_residual FROM daily WHERE {where} AND amount_residual IS NOT NULL", params
        ).fetchall()
    ]
    return calls, exact_sum(micro, pico, residuals), unknown


def _where(query: UsageQuery) -> tuple[str, list[Any]]:
    """The WHERE clause of a query; every field is an equality or a day bound, so each maps onto an index."""
    terms: list[str] = []
    params: list[Any] = []

    def equal(column: str, value: str | None) -> None:
        if value is not None:
            terms.append(f"{column} = ?")
            params.append(value)

    if query.start_day is not None:
        terms.append("day >= ?")
        params.append(_day(query.start_day))
    if query.end_day is not None:
        terms.append("day <= ?")
        params.append(_day(query.end_day))
    equal(Record.ENVIRONMENT, query.environment)
    equal(Record.SERVICE, query.service)
    equal(Record.PROVIDER, query.provider)
    if query.model:
        # "response or request model", written over the stored `model` (response, else request) so that both
        # sides of the OR are indexed: equivalent for a non-empty name.
        terms.append("(model = ? OR request_model = ?)")
        params += [query.model, query.model]
    elif query.model is not None:
        terms.append("(request_model = ? OR response_model = ?)")
        params += [query.model, query.model]
    equal(Record.OPERATION_TYPE, query.operation_type)
    equal(Record.TEAM, query.team)
    equal(Record.JOB_ID, query.job_id)
    equal(Record.BATCH_ID, query.batch_id)
    equal("cicd_run_id", query.cicd_run_id)
    equal(Record.TRACE_ID, None if query.trace_id is None else query.trace_id.lower())
    return (" WHERE " + " AND ".join(terms) if terms else ""), params


def answers_from_rollup(query: UsageQuery, group_by: Sequence[str]) -> bool:
    """Whether `aggregate(query, group_by)` is answered from the daily rollup (complete also over pruned days)
    rather than from the records."""
    return not _by_record(query) and set(group_by) <= _DAILY_GROUPS


def _by_record(query: UsageQuery) -> bool:
    """Whether the query names a job, batch, CI run or trace: their indexes narrow the records best."""
    return (query.job_id, query.batch_id, query.cicd_run_id, query.trace_id) != (None, None, None, None)


def _day(value: date | str) -> str:
    return value if isinstance(value, str) else value.strftime("%Y-%m-%d")


def _add_to_totals(cursor: sqlite3.Cursor, inserted: Sequence[tuple[LedgerRecord, tuple[Any, ...]]]) -> None:
    """Adds the newly inserted records to the running totals (inside the caller's transaction). Amounts are summed
    as the row's integer micro and pico halves (plus the rare remainders), and made one exact decimal per total."""
    sums: dict[tuple[str, str, str, str], list[Any]] = {}
    unpriced_status = PricingStatus.UNPRICED.value
    for record, row in inserted:
        day = row[_DAY_AT]
        unpriced = record.pricing_status == unpriced_status
        residual = row[_RESIDUAL_AT]
        for period in (day, day[:7]):
            key = (record.environment, period, record.provider, row[_MODEL_AT])
            total = sums.get(key)
            if total is None:
                total = sums[key] = [0, 0, [], 0, 0]
            total[0] += row[_MICRO_AT] or 0
            total[1] += row[_PICO_AT] or 0
            if residual is not None:
                total[2].append(Decimal(residual))
            total[3] += 1
            total[4] += unpriced
    for key, (micro, pico, residuals, calls, unpriced) in sums.items():
        amount = exact_sum(micro, pico, residuals)
        current = cursor.execute(
            "SELECT amount FROM totals WHERE environment = ? AND period = ? AND provider = ? AND model = ?", key
        ).fetchone()
        if current is None:
            cursor.execute(
                "INSERT INTO totals (environment, period, provider, model, amount, calls, unpriced_calls) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*key, format(_plain(amount), "f"), calls, unpriced),
            )
        else:
            cursor.execute(  # the counts guarded like the rollup's sums: NULL (refused) rather than a float
                "UPDATE totals SET amount = ?1, "
                f"calls = CASE WHEN calls <= {limits.INT64_MAX} - ?2 THEN calls + ?2 END, "
                f"unpriced_calls = CASE WHEN unpriced_calls <= {limits.INT64_MAX} - ?3 THEN unpriced_calls + ?3 END "
                "WHERE environment = ?4 AND period = ?5 AND provider = ?6 AND model = ?7",
                (format(_plain(EXACT.add(Decimal(current[0]), amount)), "f"), calls, unpriced, *key),
            )


_ROW_INDEX = {name: i for i, name in enumerate(_COLUMNS)}
_DAILY_KEY_OF = itemgetter(*(_ROW_INDEX[name] for name in _DAILY_KEY))
_DAY_AT, _MODEL_AT, _MICRO_AT, _PICO_AT, _RESIDUAL_AT = (_ROW_INDEX[name] for name in _DERIVED)


def _add_to_api_keys(cursor: sqlite3.Cursor, inserted: Sequence[tuple[LedgerRecord, tuple[Any, ...]]]) -> None:
    """Notes the (key fingerprint, provider, environment) of the newly inserted records that have a fingerprint,
    with the first and last UTC day seen and the calls (inside the caller's transaction)."""
    seen: dict[tuple[str, str, str], list[Any]] = {}
    for record, row in inserted:
        if record.api_key_fingerprint:
            day = row[_DAY_AT]
            key = (record.api_key_fingerprint, record.provider, record.environment)
            entry = seen.get(key)
            if entry is None:
                seen[key] = [day, day, 1]
            else:
                entry[0], entry[1], entry[2] = min(entry[0], day), max(entry[1], day), entry[2] + 1
    if seen:
        cursor.executemany(
            "INSERT INTO api_keys (fingerprint, provider, environment, first_day, last_day, calls) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint, provider, environment) DO UPDATE SET "
            "first_day = min(first_day, excluded.first_day), last_day = max(last_day, excluded.last_day), "
            f"calls = CASE WHEN calls <= {limits.INT64_MAX} - excluded.calls THEN calls + excluded.calls "
            "ELSE calls END",
            [(*key, *entry) for key, entry in seen.items()],
        )


def _spend_by(conn: sqlite3.Connection, column: str, environment: str, days: tuple[str, str]) -> dict[str, Decimal]:
    """Exact spend per value of a daily-rollup key column ("" for calls without one) over a range of days of one
    environment. Sums of 32-bit halves, so no SUM can overflow; a rollup an older version let overflow into a
    float is bypassed for the records of the period."""
    for table in ("daily", "records"):
        where = f" FROM {table} WHERE day >= ? AND day <= ? AND environment = ?"
        found = conn.execute(
            f"SELECT {column}, {', '.join(_split_sums(_SPEND_SUMS))}, "
            f"SUM(typeof(amount_micro) = 'real' OR typeof(amount_pico) = 'real'){where} GROUP BY {column}",
            (*days, environment),
        ).fetchall()
        if table == "records" or not any(row[-1] for row in found):
            break
    residuals: dict[str, list[Decimal]] = {}
    if any(row[-2] for row in found):  # amounts with more than 12 decimal places: rare
        sql = f"SELECT {column}, amount_residual{where} AND amount_residual IS NOT NULL"
        for value, residual in conn.execute(sql, (*days, environment)).fetchall():
            residuals.setdefault(value or "", []).append(Decimal(residual))
    out: dict[str, Decimal] = {}
    for row in found:
        micro, pico, _ = _join_halves(_SPEND_SUMS, row[1:-1])
        out[row[0] or ""] = exact_sum(micro or 0, pico or 0, residuals.get(row[0] or "", ()))
    return out


_SPEND_SUMS = ("SUM(amount_micro)", "SUM(amount_pico)", "COUNT(amount_residual)")
_UNKNOWN_SUMS = ("SUM(unknown_cost_calls)",)


def _unknown_cost_calls(conn: sqlite3.Connection, environment: str, days: tuple[str, str]) -> int:
    """The calls of unknown cost over a range of days of one environment, from the daily rollup (summed in 32-bit
    halves: no SUM can overflow)."""
    row = conn.execute(
        f"SELECT {', '.join(_split_sums(_UNKNOWN_SUMS))} FROM daily WHERE day >= ? AND day <= ? AND environment = ?",
        (*days, environment),
    ).fetchone()
    (unknown,) = _join_halves(_UNKNOWN_SUMS, row)
    return unknown or 0


def _add_to_daily(cursor: sqlite3.Cursor, inserted: Sequence[tuple[LedgerRecord, tuple[Any, ...]]]) -> None:
    """Adds the newly inserted records to the daily rollup (inside the caller's transaction): one upsert per
    rollup row the batch touches."""
    deltas: dict[tuple[Any, ...], list[Any]] = {}
    residuals: dict[tuple[Any, ...], Decimal] = {}
    unpriced_status = PricingStatus.UNPRICED.value
    for record, row in inserted:
        key = _DAILY_KEY_OF(row)
        delta = deltas.get(key)
        if delta is None:
            delta = deltas[key] = [row[_MODEL_AT], *(0 for _ in _DAILY_MEASURES)]
        delta[1] += 1
        delta[2] += record.pricing_status == unpriced_status
        delta[3] += row[_MICRO_AT] or 0
        delta[4] += row[_PICO_AT] or 0
        delta[5] += record.input_tokens
        delta[6] += record.output_tokens
        delta[7] += record.cache_read_input_tokens
        delta[8] += record.cache_write_5m_input_tokens
        delta[9] += record.cache_write_1h_input_tokens
        delta[10] += record.reasoning_output_tokens
        delta[11] += is_cost_unknown(record)
        residual = row[_RESIDUAL_AT]
        if residual is not None:
            residuals[key] = EXACT.add(residuals.get(key, Decimal(0)), Decimal(residual))
    cursor.executemany(_UPSERT_DAILY, [(*key, *delta) for key, delta in deltas.items()])
    where = " AND ".join(f"{name} = ?" for name in _DAILY_KEY)
    for key, residual in residuals.items():  # rare: amounts with more than 12 decimal places
        (current,) = cursor.execute(f"SELECT amount_residual FROM daily WHERE {where}", key).fetchone()
        total = residual if current is None else EXACT.add(Decimal(current), residual)
        cursor.execute(f"UPDATE daily SET amount_residual = ? WHERE {where}", (format(total, "f"), *key))


# -- the billed side: rows of the version 4 tables -------------------------------------------------------------------

_LINE_COLUMNS = ("provider", "day", "source", "account", "line", "amount", "model", "token_class", "tier", "quantity",
                 "unit", "environment", "final", "parsed", "period", "note")  # fmt: skip
_LINE_KEY_WIDTH = 5  # BilledLine.key: provider, day, source, account, line
_USAGE_COLUMNS = ("provider", "day", "source", "account", "model", "tier", "provider_side", "input_tokens",
                  "cache_read_input_tokens", "cache_write_5m_input_tokens", "cache_write_1h_input_tokens",
                  "output_tokens", "requests", "environment", "final")  # fmt: skip
_USAGE_KEY_WIDTH = 7  # BilledUsage.key: provider, day, source, account, model, tier, provider_side
_RUN_COLUMNS = ("run_id", "finished_at", "start_day", "end_day", "days", "document")
_RECONCILED_COLUMNS = ("provider", "day", "environment", "tracked", "billed", "verdict", "run_id", "finished_at",
                       "unknown_cost_calls", "final")  # fmt: skip
_RECONCILED_UPDATES = ", ".join(f"{name} = excluded.{name}" for name in _RECONCILED_COLUMNS[3:])
# The latest run wins: a day is replaced only by a run that finished at the same time or later (ISO UTC text of
# fixed width: text order is time order).
_UPSERT_RECONCILED = (
    f"INSERT INTO reconciled_days ({', '.join(_RECONCILED_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_RECONCILED_COLUMNS))})"
    f" ON CONFLICT (provider, day, environment) DO UPDATE SET {_RECONCILED_UPDATES}"
    " WHERE excluded.finished_at >= reconciled_days.finished_at"
)


def _insert_sql(table: str, columns: Sequence[str], *, replace: bool) -> str:
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _billed_where(query: BilledQuery, *, with_source: bool = True) -> tuple[str | None, list[Any]]:
    """The WHERE clause of a billed-side read, or None when nothing can match (an empty set of environments)."""
    terms = ["day >= ?", "day <= ?"]
    params: list[Any] = [_day(query.start_day), _day(query.end_day)]
    if query.provider is not None:
        terms.append("provider = ?")
        params.append(query.provider)
    if with_source and query.source is not None:
        terms.append("source = ?")
        params.append(query.source)
    if query.environments is not None:
        if not query.environments:
            return None, []
        wanted = sorted(query.environments)
        terms.append(f"environment IN ({', '.join('?' * len(wanted))})")
        params += wanted
    return " WHERE " + " AND ".join(terms), params


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _line_row(line: BilledLine) -> tuple[Any, ...]:
    return (line.provider, _day(line.day), line.source, line.account, line.line, format(line.amount, "f"), line.model,
            line.token_class, line.tier, _decimal_text(line.quantity), line.unit, line.environment, int(line.final),
            int(line.parsed), line.period, line.note)  # fmt: skip


def _line_from_row(row: Sequence[Any]) -> BilledLine:
    values = dict(zip(_LINE_COLUMNS, row, strict=True))
    values["day"] = date.fromisoformat(values["day"])
    values["amount"] = Decimal(values["amount"])
    values["quantity"] = None if values["quantity"] is None else Decimal(values["quantity"])
    values["final"] = bool(values["final"])
    values["parsed"] = bool(values["parsed"])
    return BilledLine(**values)


def _usage_row(row: BilledUsage) -> tuple[Any, ...]:
    return (row.provider, _day(row.day), row.source, row.account, row.model, row.tier, int(row.provider_side),
            row.input_tokens, row.cache_read_input_tokens, row.cache_write_5m_input_tokens,
            row.cache_write_1h_input_tokens, row.output_tokens, row.requests, row.environment,
            int(row.final))  # fmt: skip


def _usage_from_row(row: Sequence[Any]) -> BilledUsage:
    values = dict(zip(_USAGE_COLUMNS, row, strict=True))
    values["day"] = date.fromisoformat(values["day"])
    values["provider_side"] = bool(values["provider_side"])
    values["final"] = bool(values["final"])
    return BilledUsage(**values)


def _reconciled_row(day: ReconciledDay) -> tuple[Any, ...]:
    return (day.provider, _day(day.day), day.environment, format(day.tracked, "f"), _decimal_text(day.billed),
            day.verdict, day.run_id, format_timestamp(day.finished_at), day.unknown_cost_calls,
            int(day.final))  # fmt: skip


def _reconciled_from_row(row: Sequence[Any]) -> ReconciledDay:
    values = dict(zip(_RECONCILED_COLUMNS, row, strict=True))
    values["day"] = date.fromisoformat(values["day"])
    values["tracked"] = Decimal(values["tracked"])
    values["billed"] = None if values["billed"] is None else Decimal(values["billed"])
    values["finished_at"] = parse_timestamp(values["finished_at"])
    values["final"] = bool(values["final"])
    return ReconciledDay(**values)


def _run_from_row(row: Sequence[Any]) -> RunRecord:
    run_id, finished_at, start_day, end_day, days, document = row
    return RunRecord(
        run_id=run_id,
        finished_at=parse_timestamp(finished_at),
        start_day=date.fromisoformat(start_day),
        end_day=date.fromisoformat(end_day),
        days=run_codec.decode_days(days),
        document=json.loads(document),
    )
