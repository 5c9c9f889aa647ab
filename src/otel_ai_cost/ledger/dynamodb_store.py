"""The DynamoDB ledger store: one table, environment-scoped partitions, sharded writes, exact running totals.

```python
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore, init_table

print(init_table("dynamodb://ai-usage-metrics?region=eu-west-1"))       # what `otel-ai-cost ledger init` does
store = DynamoDBStore.from_url("dynamodb://ai-usage-metrics?region=eu-west-1&shards=16&ttl_days=production:400,*:90")
store.write(records)                  # WriteResult(written=..., duplicates=..., retries=...)
store.totals("production", "2026-11") # running totals: N small reads, no scan
```

**Writes.** Records go in `TransactWriteItems` of up to `records_per_transaction` records: one conditional `Put`
per record (`attribute_not_exists(PK)`: the key is the record's identity) and one `Update ... ADD` per running-total
item the group touches, the deltas of the group's records merged per item. A record already stored fails its
condition, the transaction is cancelled with a `ConditionalCheckFailed` reason at that record's position, and the
store counts it as a duplicate (and as a conflict when the stored item, returned with the cancellation, has other
content) and re-sends the rest: totals are only ever added together with a new record. Every error `write()`
raises is `InvalidRecord`, `RetryBatch` or `StoreUnavailable` (the table in `dynamodb_retry.py`), and the whole
write keeps one deadline (`deadline_s`).

**Reads.** `query()` reads one GSI (or, by trace id, the table) with `Query`, fanning out over the write shards
and merging the shards' time-ordered pages; never a `Scan`. `aggregate()` groups those records in Python (DynamoDB
has no GROUP BY). `totals()` reads the running-total items of one period (overall, per provider/model, per team,
per operation type): one `Query` per shard. The environment registry heals itself when the table is recreated
under a running store (`_register`).

**The billed side** (`replace_billed`, `write_billed`, `billed_lines`, `billed_usage`, `write_reconciliation`,
`reconciled_days`, `reconciliation_runs`): items of their own in the same table, laid out in `dynamodb_billed.py`,
in no record index and no running total, so billed money never reads as tracked spend. A billing source's rows
of a month are one partition ordered by day: `replace_billed` reads the source's old rows of its window with one
key-range `Query` per month and kind, puts the pull's rows and deletes the rows the pull no longer has
(`BatchWriteItem`; a key is one item, so a re-pulled day is never doubled; not one transaction, so a reader during
a replace may briefly still see a dropped row). Reads are a `Query` per source and month that a small registry
partition says holds anything; never a `Scan`. A run's JSON is zlib-compressed into its item, or split into
350,000-byte chunk items written before it when larger (refused only beyond the 64 MiB JSON bound); reconciled
days are conditional `Put`s on `finished_at` in transactions, so the latest run wins whatever the write order.
Every call goes through the retry helper (throttling, 5xx, `UnprocessedItems`), and errors are the same three
classes as `write()`'s. The bounds (`billed_bounds.py`: names of 200 characters, line texts of 1,000, days from
2000 to 2099, |amount| <= 10**7 USD per line with at most 30 decimal places, so at most 37 digits, usage counts
<= 10**15 per day) are checked before anything is sent; a reconciled day's sum beyond DynamoDB's 38 significant
digits is refused (`InvalidRecord`), which the SQLite store, keeping decimal text, would accept.

The key design is in `dynamodb_schema.py`, the retry rules in `dynamodb_retry.py`, the reasoning in docs/ledger.md.
"""

from __future__ import annotations

import calendar
import heapq
import logging
import re
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from otel_ai_cost.contract import CostSource, PricingStatus, Record
from otel_ai_cost.ledger import billed_bounds, dynamodb_billed, limits, run_codec
from otel_ai_cost.ledger import dynamodb_retry as retry
from otel_ai_cost.ledger import store as ledger_store
from otel_ai_cost.ledger.api_keys import SharedApiKey
from otel_ai_cost.ledger.dynamodb_api_keys import API_KEYS_PK, KeyRegistry
from otel_ai_cost.ledger.dynamodb_schema import (
    BATCH_TIME,
    CI_RUN_TIME,
    ENV_TIME,
    EXPIRES_AT,
    GSI_SK,
    INDEXES,
    JOB_TIME,
    MAX_ITEM_BYTES,
    MAX_PARTITION_KEY_BYTES,
    MAX_SORT_KEY_BYTES,
    MAX_TRANSACTION_ACTIONS,
    MAX_TRANSACTION_BYTES,
    MODEL_TIME,
    PK,
    REGISTRY_PK,
    REQUEST_MODEL_TIME,
    SK,
    TOTAL_ALL_SK,
    Index,
    InvalidRecord,
    index_partition,
    is_period,
    item_size,
    number_text,
    record_from_item,
    record_item,
    registry_key,
    schema_problems,
    shard_of,
    table_definition,
    time_bounds,
    totals_model_sort_key,
    totals_operation_type_sort_key,
    totals_partition,
    totals_team_sort_key,
    trace_partition,
    validate,
)
from otel_ai_cost.ledger.record import LedgerRecord, format_timestamp
from otel_ai_cost.ledger.retention import Retention
from otel_ai_cost.ledger.store import (
    GROUP_BY_FIELDS,
    AggregateRow,
    BilledQuery,
    BilledWrite,
    RetryBatch,
    StoreUnavailable,
    Totals,
    UsageQuery,
    WriteResult,
)
from otel_ai_cost.ledger.unknown_cost import is_cost_unknown
from otel_ai_cost.reconcile.billed import BilledLine, BilledPull, BilledUsage
from otel_ai_cost.reconcile.runs import ReconciledDay, RunRecord

logger = logging.getLogger("otel_ai_cost.ledger")

__all__ = [
    "DEFAULT_SHARDS",
    "DynamoDBSettings",
    "DynamoDBStore",
    "InvalidRecord",
    "Retention",
    "SchemaMismatch",
    "init_table",
    "parse_url",
]

DEFAULT_SHARDS = 16  # ~2,000 records/s per environment-day at 1 record per transaction before a totals partition
# nears 1,000 WCU/s (day and month items: overall, model, team, operation type); far more at 25 (merged per group)
MAX_SHARDS = 100
DEFAULT_RECORDS_PER_TRANSACTION = 25
REGISTRY_REFRESH_S = 60.0  # a writer re-registers its environments this often (one UpdateItem each): self-healing

# Sums of money: enough precision that nothing we add can round, and a trap if it ever would.
EXACT = Context(prec=200, traps=[InvalidOperation, Overflow, Inexact, Rounded])

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_URL_PARAMETERS = ("region", "endpoint_url", "shards", "ttl_days", "records_per_tx", "deadline_s")
_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "reasoning_output_tokens",
)


class SchemaMismatch(RuntimeError):
    """The table exists but does not have the ledger's key schema or indexes (says what differs)."""


# --------------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class DynamoDBSettings:
    """What a `dynamodb://TABLE?...` URL says."""

    table: str
    region: str | None = None
    endpoint_url: str | None = None
    shards: int = DEFAULT_SHARDS
    retention: Retention = field(default_factory=Retention)
    records_per_transaction: int = DEFAULT_RECORDS_PER_TRANSACTION
    deadline_s: float = retry.DEFAULT_DEADLINE_S  # a whole write(), see dynamodb_retry


def parse_url(url: str) -> DynamoDBSettings:
    """Parses `dynamodb://TABLE?region=...&endpoint_url=...&shards=N&ttl_days=...&records_per_tx=N&deadline_s=S`.

    Raises ValueError naming the offending part; unknown parameters are refused (a typo must not be ignored)."""
    parts = urlsplit(url)
    if parts.scheme != "dynamodb":
        raise ValueError(f"not a dynamodb:// URL: {url!r}")
    table = parts.netloc
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError(f"dynamodb URL: expected dynamodb://TABLE?..., got {url!r}")
    if not _TABLE_NAME.match(table):
        raise ValueError(f"dynamodb URL: table name {table!r} must be 3-255 characters of A-Z a-z 0-9 _ . -")
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as error:
        raise ValueError(f"dynamodb URL: malformed query {parts.query!r}") from error
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in _URL_PARAMETERS:
            raise ValueError(f"dynamodb URL: unknown parameter {name!r}; known: {', '.join(_URL_PARAMETERS)}")
        if name in values:
            raise ValueError(f"dynamodb URL: {name} given twice")
        if not value:
            raise ValueError(f"dynamodb URL: {name} is empty")
        values[name] = value
    endpoint = values.get("endpoint_url")
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ValueError(f"dynamodb URL: endpoint_url must be http:// or https://, got {endpoint!r}")
    return DynamoDBSettings(
        table=table,
        region=values.get("region"),
        endpoint_url=endpoint,
        shards=_bounded_int(values.get("shards"), "shards", DEFAULT_SHARDS, 1, MAX_SHARDS),
        retention=Retention.parse(values["ttl_days"]) if "ttl_days" in values else Retention(),
        records_per_transaction=_bounded_int(
            values.get("records_per_tx"), "records_per_tx", DEFAULT_RECORDS_PER_TRANSACTION, 1, 99
        ),
        deadline_s=_deadline(values.get("deadline_s")),
    )


def _deadline(text: str | None) -> float:
    if text is None:
        return retry.DEFAULT_DEADLINE_S
    if not re.fullmatch(r"\d+(\.\d+)?", text) or not 1 <= float(text) <= retry.MAX_DEADLINE_S:
        raise ValueError(f"dynamodb URL: deadline_s must be a number of seconds from 1 to {retry.MAX_DEADLINE_S:g}, "
                         f"got {text!r}")  # fmt: skip
    return float(text)


def _bounded_int(text: str | None, name: str, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    if not re.fullmatch(r"\d+", text) or not low <= int(text) <= high:
        raise ValueError(f"dynamodb URL: {name} must be a whole number from {low} to {high}, got {text!r}")
    return int(text)


# ------------------------------------------------------------------------------------------------ write plans


@dataclass(slots=True)
class _Entry:
    record: LedgerRecord
    item: dict[str, Any]
    size: int


@dataclass(slots=True)
class _Group:
    """Records committed by one `TransactWriteItems`; their totals all go to the shard `totals_shard`."""

    totals_shard: int
    entries: list[_Entry] = field(default_factory=list)
    totals_keys: set[tuple[str, str]] = field(default_factory=set)
    size: int = 0


@dataclass(slots=True)
class _Sums:
    amount: Decimal = Decimal(0)
    calls: int = 0
    unpriced_calls: int = 0
    unknown_cost_calls: int = 0  # `is_cost_unknown`: the unpriced calls and every other call of unknown cost
    tokens: list[int] = field(default_factory=lambda: [0] * len(_TOKEN_FIELDS))
    computed_difference: Decimal | None = None  # computed minus reported, over provider-reported calls with both

    def add(self, record: LedgerRecord) -> None:
        if record.amount is not None:
            self.amount = EXACT.add(self.amount, record.amount)
        if record.cost_source == CostSource.PROVIDER.value and record.computed_amount is not None:
            difference = EXACT.subtract(record.computed_amount, record.amount or Decimal(0))
            self.computed_difference = EXACT.add(self.computed_difference or Decimal(0), difference)
        self.calls += 1
        self.unpriced_calls += record.pricing_status == PricingStatus.UNPRICED.value
        self.unknown_cost_calls += is_cost_unknown(record)
        for i, value in enumerate(_record_tokens(record)):
            self.tokens[i] += value

    def row(self, group: tuple[tuple[str, str], ...]) -> AggregateRow:
        difference = self.computed_difference
        computed = None if difference is None else _plain(EXACT.add(self.amount, difference))
        return AggregateRow(group, _plain(self.amount), self.calls, self.unpriced_calls, *self.tokens, computed,
                            unknown_cost_calls=self.unknown_cost_calls)  # fmt: skip


@dataclass(slots=True)
class _Delta(_Sums):
    """What one group adds to one running-total item."""

    environment: str = ""
    period: str = ""
    labels: tuple[tuple[str, str], ...] = ()  # what the item is a total of: (("provider", p), ("model", m)), ...


def _record_tokens(record: LedgerRecord) -> tuple[int, ...]:
    return (
        record.input_tokens,
        record.output_tokens,
        record.cache_read_input_tokens,
        record.cache_write_5m_input_tokens + record.cache_write_1h_input_tokens,
        record.reasoning_output_tokens,
    )


_Target = tuple[tuple[str, str], str, str, tuple[tuple[str, str], ...]]  # (PK, SK), environment, period, labels


def _totals_targets(record: LedgerRecord, shard: int) -> list[_Target]:
    """The eight running-total items a record adds to: for its day and its month, overall, for its provider/model,
    for its team and for its operation type ("" when it has none)."""
    model = record.response_model or record.request_model
    labelled = [
        (totals_model_sort_key(record.provider, model), (("provider", record.provider), ("model", model))),
        (totals_team_sort_key(record.team), (("team", record.team),)),
        (totals_operation_type_sort_key(record.operation_type), (("operation_type", record.operation_type),)),
    ]
    targets: list[_Target] = []
    for period in (record.day, record.month):
        pk = totals_partition(record.environment, period, shard)
        targets.append(((pk, TOTAL_ALL_SK), record.environment, period, ()))
        targets += [((pk, sk), record.environment, period, labels) for sk, labels in labelled]
    return targets


@dataclass(frozen=True, slots=True)
class _Read:
    """One partition to read: the table (index None) or a GSI, optionally a GSISK range."""

    index: Index | None
    partition: str
    low: str | None = None
    high: str | None = None


# ---------------------------------------------------------------------------------------------------- store


class DynamoDBStore:
    """A `LedgerStore` in one DynamoDB table (see the module documentation and docs/ledger.md)."""

    def __init__(
        self,
        table: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        shards: int = DEFAULT_SHARDS,
        retention: Retention | None = None,
        records_per_transaction: int = DEFAULT_RECORDS_PER_TRANSACTION,
        retry_policy: retry.RetryPolicy | None = None,
        client: Any = None,
        read_workers: int = 16,
        registry_refresh_s: float = REGISTRY_REFRESH_S,
    ) -> None:
        if not 1 <= shards <= MAX_SHARDS:
            raise ValueError(f"shards must be 1..{MAX_SHARDS}, got {shards}")
        if not 1 <= records_per_transaction < MAX_TRANSACTION_ACTIONS:
            raise ValueError(f"records_per_transaction must be 1..99, got {records_per_transaction}")
        self.table = table
        self.shards = shards
        self.retention = retention or Retention()
        self.records_per_transaction = records_per_transaction
        self.retry_policy = retry_policy or retry.RetryPolicy()
        self.endpoint_url = endpoint_url
        # Called with the item count of every page a read fetches (from the reading threads): a progress bar of
        # records read, which `otel-ai-cost` commands show on a terminal (`cli.report.open_ledger`).
        self.read_progress: Callable[[int], None] | None = None
        if client is None:
            import boto3  # imported here: the SQLite default must not pay for boto3

            session = boto3.session.Session()
            region = region or session.region_name
            if not region:
                raise ValueError("no AWS region: add ?region=... to the dynamodb:// URL or set AWS_REGION")
            client = session.client(
                "dynamodb",
                region_name=region,
                endpoint_url=endpoint_url,
                config=retry.botocore_config(
                    max_pool_connections=max(32, 2 * read_workers),
                    connect_timeout_s=self.retry_policy.connect_timeout_s,
                    read_timeout_s=self.retry_policy.read_timeout_s,
                ),
            )
        self.client = client
        self.region = region or client.meta.region_name
        self._pool = ThreadPoolExecutor(max_workers=read_workers, thread_name_prefix="ledger-dynamodb")
        self.registry_refresh_s = registry_refresh_s
        self._registered: dict[tuple[str, int], float] = {}  # (environment, shards) -> when registered (monotonic)
        self._api_keys = KeyRegistry()  # API key fingerprints per environment (`dynamodb_api_keys.py`)
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> DynamoDBStore:
        """A store from `dynamodb://TABLE?region=...&endpoint_url=...&shards=N&ttl_days=...&records_per_tx=N`;
        keyword arguments override or complete it (`retry_policy=`, `client=`)."""
        settings = parse_url(url)
        arguments: dict[str, Any] = {
            "region": settings.region,
            "endpoint_url": settings.endpoint_url,
            "shards": settings.shards,
            "retention": settings.retention,
            "records_per_transaction": settings.records_per_transaction,
            "retry_policy": retry.RetryPolicy.for_deadline(settings.deadline_s),
        }
        arguments.update(overrides)
        return cls(settings.table, **arguments)

    def __repr__(self) -> str:
        return f"DynamoDBStore(table={self.table!r}, region={self.region!r}, shards={self.shards})"

    # ------------------------------------------------------------------------------------------------- table

    def create_table(self) -> None:
        """Creates the table (key schema, GSIs, on-demand billing), waits until it is active, and enables TTL."""
        retry.call(self.retry_policy, "CreateTable", lambda: self.client.create_table(**table_definition(self.table)))
        self.client.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 2, "MaxAttempts": 60})
        self._enable_ttl()

    def ensure_table(self) -> str:
        """Creates the table if it is missing, checks its schema if it exists, makes sure TTL is on; returns a
        human-readable summary. Raises `SchemaMismatch` when an existing table has other keys or indexes."""
        created = False
        try:
            description = self.client.describe_table(TableName=self.table)["Table"]
        except ClientError as error:
            if retry.error_code(error) != "ResourceNotFoundException":
                raise
            try:
                self.create_table()
                created = True
            except ClientError as race:
                if retry.error_code(race) != "ResourceInUseException":  # another `ledger init` got there first
                    raise
            description = self.client.describe_table(TableName=self.table)["Table"]
        if description.get("TableStatus") != "ACTIVE":
            self.client.get_waiter("table_exists").wait(
                TableName=self.table, WaiterConfig={"Delay": 2, "MaxAttempts": 60}
            )
        self._check_schema(description)
        ttl_enabled_now = self._enable_ttl()
        return self._summary(description, created=created, ttl_enabled_now=ttl_enabled_now)

    def _enable_ttl(self) -> bool:
        """Turns TTL on for `expires_at` unless it already is (DynamoDB refuses to enable it twice)."""
        status = self.client.describe_time_to_live(TableName=self.table)["TimeToLiveDescription"]
        if status.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and status.get("AttributeName") == EXPIRES_AT:
            return False
        if status.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            raise SchemaMismatch(
                f"table {self.table} has TTL on attribute {status.get('AttributeName')!r}; "
                f"the ledger uses {EXPIRES_AT!r}"
            )
        self.client.update_time_to_live(
            TableName=self.table, TimeToLiveSpecification={"Enabled": True, "AttributeName": EXPIRES_AT}
        )
        return True

    def _check_schema(self, description: Mapping[str, Any]) -> None:
        problems = schema_problems(description, self.table)
        if problems:
            raise SchemaMismatch(f"table {self.table} is not a ledger table: " + "; ".join(problems))

    def _summary(self, description: Mapping[str, Any], *, created: bool, ttl_enabled_now: bool) -> str:
        billing = description.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
        where = f"region {self.region}" + (f", endpoint {self.endpoint_url}" if self.endpoint_url else "")
        state = "created" if created else "already exists, schema checked"
        lines = [
            f"DynamoDB ledger table {self.table} ({where}): {state}",
            f"  primary key: {PK} (HASH) + {SK} (RANGE); billing: {billing}",
            *(
                f"  GSI {index.name}: {index.attribute} (HASH) + {GSI_SK} (RANGE), projection ALL: {index.purpose}"
                for index in INDEXES
            ),
            f"  TTL on {EXPIRES_AT}: {'enabled now' if ttl_enabled_now else 'enabled'}; "
            f"retention: {self.retention.describe()}; running totals never expire",
            f"  write shards: {self.shards}",
        ]
        return "\n".join(lines)

    # ------------------------------------------------------------------------------------------------- write

    def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
        """Stores the records, each exactly once, with their running totals in the same transactions.

        All records are validated before anything is sent (`InvalidRecord`). Every error is one of the three classes
        of `ledger/store.py` (the table in `dynamodb_retry`), and the whole write keeps the policy's deadline. On
        `StoreUnavailable` or `RetryBatch` some groups may already be stored: writing the same records again is safe
        (they count as duplicates)."""
        self._check_open()
        deadline = self.retry_policy.deadline()
        unique: dict[tuple[str, str], LedgerRecord] = {}
        duplicates = 0
        conflicts: list[tuple[LedgerRecord, LedgerRecord]] = []  # (stored or first, refused)
        for record in records:
            first = unique.get(record.key)
            if first is None:
                unique[record.key] = record
                continue
            duplicates += 1  # the same identity twice in one batch: the second is a duplicate
            if not _same_content(first, record):
                conflicts.append((first, record))
        # A record already past its environment's TTL may be one DynamoDB has deleted while its running totals kept
        # its amount: storing it again would count it twice, so it is refused (like a replay of a pruned record).
        now = time.time()
        entries: list[_Entry] = []
        expired: list[LedgerRecord] = []
        for record in unique.values():
            expires_at = self.retention.expires_at(record)
            if expires_at is not None and expires_at <= now:
                expired.append(record)
            else:
                entries.append(self._entry(record))
        if expired:
            _log_expired_once(expired[0], self.retention)
        duplicates += len(expired)
        written = 0
        try:
            retries = self._register({entry.record.environment for entry in entries}, deadline)
            for group in self._groups(entries):
                group_written, group_duplicates, group_retries = self._commit(group, deadline, conflicts)
                written += group_written
                duplicates += group_duplicates
                retries += group_retries
            retries += self._api_keys.register(self, (entry.record for entry in entries), deadline)
        except retry.Refused as error:
            if len(entries) == 1:
                key = entries[0].record.key
                raise InvalidRecord(f"record {key[0]}/{key[1]}: {error}", key=key) from error
            raise RetryBatch(
                f"{error}; one of the {len(entries)} records cannot be stored: write them again split (one at a time "
                f"finds it); {written} were stored, they count as duplicates"
            ) from error
        except (StoreUnavailable, RetryBatch) as error:
            self._forget_registrations()
            progress = f"{written} of {len(entries)} records were stored before; writing them again is safe"
            if isinstance(error, RetryBatch):
                raise RetryBatch(f"{error} ({progress})") from error
            raise StoreUnavailable(f"{error} ({progress})", retry_after_s=error.retry_after_s) from error
        if conflicts:
            _log_conflict_once(*conflicts[0])
        return WriteResult(
            written=written, duplicates=duplicates, retries=retries, conflicts=len(conflicts), pruned=len(expired)
        )

    def _entry(self, record: LedgerRecord) -> _Entry:
        """The record's item, validated (`InvalidRecord` names the record and the reason): the ledger's bounds
        (`limits.py`), then what DynamoDB itself would refuse (key bytes, numbers, UTF-8: `dynamodb_schema`)."""
        try:
            limits.validate_record(record)
            validate(record)
        except ledger_store.InvalidRecord as error:
            # Raised as this module's InvalidRecord (a subclass, as before), always with the record's key.
            raise InvalidRecord(str(error), key=record.key) from None
        item = record_item(
            record,
            shard=shard_of(record.trace_id, record.span_id, self.shards),
            expires_at=self.retention.expires_at(record),
        )
        size = item_size(item)
        if size > MAX_ITEM_BYTES:
            raise InvalidRecord(
                f"record {record.trace_id}/{record.span_id} is {size} bytes; DynamoDB's limit is 400 KB",
                key=record.key,
            )
        return _Entry(record, item, size)

    def _groups(self, entries: Iterable[_Entry]) -> Iterator[_Group]:
        """Greedy grouping: up to `records_per_transaction` records, 100 actions and ~3.5 MB per transaction.

        Each group adds its totals to one shard chosen at random: any shard is correct (totals() sums them all),
        and merging a group's deltas per total item makes 25 records cost a handful of updates instead of 100."""
        group = self._new_group()
        for entry in entries:
            keys = {target[0] for target in _totals_targets(entry.record, group.totals_shard)}
            actions = len(group.entries) + 1 + len(group.totals_keys | keys)
            too_big = group.size + entry.size > MAX_TRANSACTION_BYTES * 7 // 8
            if group.entries and (
                len(group.entries) >= self.records_per_transaction or actions > MAX_TRANSACTION_ACTIONS or too_big
            ):
                yield group
                group = self._new_group()
                keys = {target[0] for target in _totals_targets(entry.record, group.totals_shard)}
            group.entries.append(entry)
            group.totals_keys |= keys
            group.size += entry.size
        if group.entries:
            yield group

    def _new_group(self) -> _Group:
        return _Group(totals_shard=self.retry_policy.rng.randrange(self.shards))

    def _transaction(self, entries: Sequence[_Entry], totals_shard: int) -> list[dict[str, Any]]:
        """The actions: every Put first (so a cancellation reason's index is the entry's index), then the totals."""
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": entry.item,
                    "ConditionExpression": "attribute_not_exists(PK)",
                    # A duplicate's stored item comes back with the cancellation (no extra read): a conflict, if
                    # its content differs, is counted rather than passed off as a replay.
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
            for entry in entries
        ]
        deltas: dict[tuple[str, str], _Delta] = {}
        for entry in entries:
            for key, environment, period, labels in _totals_targets(entry.record, totals_shard):
                delta = deltas.get(key)
                if delta is None:
                    delta = deltas[key] = _Delta(environment=environment, period=period, labels=labels)
                delta.add(entry.record)
        for (pk, sk), delta in deltas.items():
            try:
                actions.append({"Update": self._totals_update(pk, sk, delta)})
            except InvalidRecord as error:  # the group's sum, not one record: DynamoDB could not hold it either
                raise retry.Refused(str(error)) from error
        return actions

    def _totals_update(self, pk: str, sk: str, delta: _Delta) -> dict[str, Any]:
        names = {"#environment": "environment", "#period": "period", "#amount": "amount", "#calls": "calls",
                 "#unpriced": "unpriced_calls", "#unknown": "unknown_cost_calls"}  # fmt: skip
        values: dict[str, Any] = {
            ":environment": {"S": delta.environment},
            ":period": {"S": delta.period},
            ":amount": {"N": number_text(delta.amount, where="total amount")},
            ":calls": {"N": str(delta.calls)},
            ":unpriced": {"N": str(delta.unpriced_calls)},
            ":unknown": {"N": str(delta.unknown_cost_calls)},
        }
        sets = ["#environment = :environment", "#period = :period"]
        adds = ["#amount :amount", "#calls :calls", "#unpriced :unpriced", "#unknown :unknown"]
        for i, (name, value) in enumerate(delta.labels):
            names[f"#l{i}"] = name
            values[f":l{i}"] = {"S": value}
            sets.append(f"#l{i} = :l{i}")
        for i, name in enumerate(_TOKEN_FIELDS):
            names[f"#t{i}"] = name
            values[f":t{i}"] = {"N": str(delta.tokens[i])}
            adds.append(f"#t{i} :t{i}")
        return {
            "TableName": self.table,
            "Key": {PK: {"S": pk}, SK: {"S": sk}},
            "UpdateExpression": f"SET {', '.join(sets)} ADD {', '.join(adds)}",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def _commit(
        self, group: _Group, deadline: float, conflicts: list[tuple[LedgerRecord, LedgerRecord]]
    ) -> tuple[int, int, int]:
        """Commits one group; returns (written, duplicates, retries), and appends to `conflicts` the duplicates whose
        stored record has other content. See the module docs for the protocol; the errors are classified as in
        `dynamodb_retry` (`Refused` is turned into InvalidRecord/RetryBatch by `write`)."""
        pending = list(group.entries)
        duplicates = 0
        policy = self.retry_policy
        backoff = policy.start("TransactWriteItems", deadline)
        botocore_retries = 0
        # Reused when an attempt may have committed without us hearing it (a timeout, a 5xx, throttling): DynamoDB
        # recognises the token for 10 minutes and does not apply it twice.
        token = str(uuid.uuid4())
        while pending:
            retry.check_deadline(deadline, "TransactWriteItems", policy)
            actions = self._transaction(pending, group.totals_shard)
            try:
                response = self.client.transact_write_items(TransactItems=actions, ClientRequestToken=token)
            except ClientError as error:
                botocore_retries += retry.botocore_retries(error.response)
                if retry.error_code(error) != "TransactionCanceledException":
                    if not retry.is_transient(error):
                        raise retry.failure(error, "TransactWriteItems", policy) from error
                    backoff.wait(retry.describe(error))
                    continue
                reasons = retry.cancellation_reasons(error)
                stored = {i for i, code in enumerate(reasons[: len(pending)]) if code == "ConditionalCheckFailed"}
                if stored:
                    duplicates += len(stored)
                    conflicts += _conflicts(pending, stored, retry.cancellation_items(error))
                    pending = [entry for i, entry in enumerate(pending) if i not in stored]
                    token = str(uuid.uuid4())  # different actions: a new token
                    continue
                self._cancelled(reasons, backoff, error)
                # Nothing was applied: move the totals to another shard, away from the writer we collided with (or
                # the hot partition), which makes these new actions with a new token.
                group.totals_shard = policy.rng.randrange(self.shards)
                token = str(uuid.uuid4())
                continue
            except BotoCoreError as error:
                if not retry.is_transient(error):
                    raise retry.failure(error, "TransactWriteItems", policy) from error
                backoff.wait(retry.describe(error))
                continue
            botocore_retries += retry.botocore_retries(response)
            return len(pending), duplicates, backoff.retries + botocore_retries
        return 0, duplicates, backoff.retries + botocore_retries

    def _cancelled(self, reasons: Sequence[str], backoff: retry.Backoff, error: ClientError) -> None:
        """A cancellation without a duplicate: waits to retry it, or raises what the reasons mean."""
        others = {code for code in reasons if code not in ("None", "")}
        listed = ", ".join(sorted(others)) or "no reason given"
        if others & retry.INVALID_CANCELLATION_REASONS:
            raise retry.Refused(f"DynamoDB TransactWriteItems: transaction cancelled: {listed}") from error
        if not others <= retry.RETRYABLE_CANCELLATION_REASONS:
            raise StoreUnavailable(
                f"DynamoDB TransactWriteItems: transaction cancelled: {listed}",
                retry_after_s=self.retry_policy.retry_after_s,
            ) from error
        # Empty (no reason given) is treated as transient; only conflicts make it "this batch" when exhausted.
        backoff.wait(
            f"transaction cancelled: {listed}", conflict=bool(others) and others <= retry.CONFLICT_CANCELLATION_REASONS
        )

    def _register(self, environments: Iterable[str], deadline: float, *, force: bool = False) -> int:
        """Adds environments to the registry item, recording the largest shard count used: queries without an
        environment list environments from it, and every query fans out over that many shards (so lowering `shards`
        later never hides records written with more).

        Self-healing (the table may be deleted and recreated under a running store): an environment is registered
        again after `registry_refresh_s`, after any failed write (a missing table among the causes), and at once
        when a read through this store finds it missing (`force`). On the hot path that is a set lookup."""
        retries = 0
        now = time.monotonic()
        for environment in sorted(environments):
            marker = (environment, self.shards)
            with self._lock:
                registered_at = self._registered.get(marker)
            if not force and registered_at is not None and now - registered_at < self.registry_refresh_s:
                continue

            def register(environment: str = environment) -> dict[str, Any]:
                try:
                    return self.client.update_item(
                        TableName=self.table,
                        Key=registry_key(environment),
                        UpdateExpression="SET #environment = :environment, #shards = :shards",
                        ConditionExpression="attribute_not_exists(#shards) OR #shards < :shards",
                        ExpressionAttributeNames={"#environment": "environment", "#shards": "shards"},
                        ExpressionAttributeValues={
                            ":environment": {"S": environment},
                            ":shards": {"N": str(self.shards)},
                        },
                    )
                except ClientError as error:
                    if retry.error_code(error) == "ConditionalCheckFailedException":
                        return {}  # already registered with as many shards or more
                    raise

            _, call_retries = retry.call(
                self.retry_policy, "UpdateItem (environment registry)", register, deadline=deadline
            )
            retries += call_retries
            with self._lock:
                self._registered[marker] = time.monotonic()
        return retries

    def _forget_registrations(self) -> None:
        """After a failed write: the next write registers its environments again (the table may be new)."""
        with self._lock:
            self._registered.clear()
        self._api_keys.forget()

    # -------------------------------------------------------------------------------------------------- read

    def shared_api_keys(self, since: date | str) -> list[SharedApiKey]:
        """API keys (by fingerprint) written in more than one environment on or after the UTC day `since`, with
        those environments: one `Query` of the API key registry partition (`dynamodb_api_keys.py`)."""
        self._check_open()
        return KeyRegistry.shared(self._drain(_Read(None, API_KEYS_PK)), since)

    def environments(self) -> dict[str, int]:
        """Every environment ever written, with the largest shard count its records were written with.

        An environment this store wrote that the registry lacks (the table was recreated) is registered again now,
        so that its new records are visible to every reader from this read on."""
        self._check_open()
        items = self._drain(_Read(None, REGISTRY_PK))
        found = {item["environment"]["S"]: int(item["shards"]["N"]) for item in items}
        with self._lock:
            missing = {environment for environment, _ in self._registered if environment not in found}
        if missing:
            self._register(missing, self.retry_policy.deadline(), force=True)
            found.update(dict.fromkeys(missing, self.shards))
        return found

    def query(self, query: UsageQuery) -> Iterator[LedgerRecord]:
        """Matching records, oldest first (ties by trace and span id), streamed page by page."""
        self._check_open()
        reads = self._plan(query)
        # The first page of every partition is fetched in parallel now; later pages when the merge needs them.
        streams = [self._stream(read) for read in reads]
        return self._matching(heapq.merge(*streams, key=lambda item: item[GSI_SK]["S"]), query)

    def aggregate(self, query: UsageQuery, group_by: Sequence[str]) -> list[AggregateRow]:
        """Exact sums per group over the matching records, groups ordered by their values.

        DynamoDB has no GROUP BY, so the records are read (every partition in parallel) and grouped here; for a
        month's spend per environment or provider/model, `totals()` answers from the running totals instead."""
        unknown = [name for name in group_by if name not in GROUP_BY_FIELDS]
        if unknown:
            raise ValueError(f"cannot group by {', '.join(unknown)}; choose from {', '.join(GROUP_BY_FIELDS)}")
        self._check_open()
        groups: dict[tuple[str, ...], _Sums] = {}
        items = (item for items in self._pool.map(self._drain, self._plan(query)) for item in items)
        for record in self._matching(items, query):
            key = tuple(_group_value(record, name) for name in group_by)
            sums = groups.get(key)
            if sums is None:
                sums = groups[key] = _Sums()
            sums.add(record)
        return [groups[key].row(tuple(zip(group_by, key, strict=True))) for key in sorted(groups)]

    def totals(self, environment: str, period: str) -> Totals:
        """Running totals of an environment for a UTC day (`2026-11-22`) or month (`2026-11`): one strongly
        consistent `Query` per shard over the few total items, summed exactly. No record is read."""
        if not is_period(period):
            raise ValueError(f"a period is a day YYYY-MM-DD or a month YYYY-MM, got {period!r}")
        self._check_open()
        shards = self._shards_of(environment)
        reads = [_Read(None, totals_partition(environment, period, shard)) for shard in range(shards)]
        reads = [read for read in reads if len(read.partition.encode()) <= MAX_PARTITION_KEY_BYTES]
        amount, calls, unpriced, unknown = Decimal(0), 0, 0, 0
        by_provider_model: dict[tuple[str, str], Decimal] = {}
        by_team: dict[str, Decimal] = {}
        by_operation_type: dict[str, Decimal] = {}
        for items in self._pool.map(self._drain, reads):
            for item in items:
                value = Decimal(item["amount"]["N"])
                if item[SK]["S"] == TOTAL_ALL_SK:
                    amount = EXACT.add(amount, value)
                    calls += int(item["calls"]["N"])
                    unpriced += int(item["unpriced_calls"]["N"])
                    unknown += _unknown_cost_calls(item)
                elif "provider" in item:
                    key = (item["provider"]["S"], item["model"]["S"])
                    by_provider_model[key] = EXACT.add(by_provider_model.get(key, Decimal(0)), value)
                elif "team" in item:
                    team = item["team"]["S"]
                    by_team[team] = EXACT.add(by_team.get(team, Decimal(0)), value)
                elif "operation_type" in item:
                    operation_type = item["operation_type"]["S"]
                    by_operation_type[operation_type] = EXACT.add(
                        by_operation_type.get(operation_type, Decimal(0)), value
                    )
        return Totals(
            period=period,
            environment=environment,
            amount=_plain(amount),
            calls=calls,
            unpriced_calls=unpriced,
            by_provider_model=_plain_sums(by_provider_model),
            by_team=_plain_sums(by_team),
            by_operation_type=_plain_sums(by_operation_type),
            unknown_cost_calls=unknown,
        )

    def _shards_of(self, environment: str) -> int:
        """Shards to read for one environment: ours, or more if its records were ever written with more."""
        if len(registry_key(environment)[SK]["S"].encode()) > MAX_SORT_KEY_BYTES:
            return self.shards  # no record can be in such an environment (writes refuse it)
        response, _ = retry.call(
            self.retry_policy,
            "GetItem (environment registry)",
            lambda: self.client.get_item(TableName=self.table, Key=registry_key(environment), ConsistentRead=True),
        )
        item = response.get("Item")
        return max(self.shards, int(item["shards"]["N"])) if item else self.shards

    def _plan(self, query: UsageQuery) -> list[_Read]:
        """The partitions that hold every record the query can match: one index, every shard, every environment
        asked for. Environments come from the key: a partition of another environment is never read."""
        low, high = time_bounds(query.start_day, query.end_day)
        if low is not None and high is not None and low > high:
            return []  # an empty range (DynamoDB would refuse a BETWEEN with its bounds reversed)
        if query.trace_id is not None and not _TRACE_ID.match(query.trace_id.lower()):
            return []  # no stored record has such an id
        registry = self.environments()
        # An environment named by the query is read even when the registry lacks it (a table recreated under a
        # running writer, before the writer registers it again): N small reads instead of a silent empty answer.
        environments = [query.environment] if query.environment is not None else sorted(registry)
        reads: list[_Read] = []
        for environment in environments:
            if query.trace_id is not None:
                reads.append(_Read(None, trace_partition(environment, query.trace_id.lower())))
                continue
            shards = max(self.shards, registry.get(environment, 0))
            for index, value in _index_for(query):
                reads += [
                    _Read(index, index_partition(index, environment, value, shard), low, high)
                    for shard in range(shards)
                ]
        # A partition key longer than DynamoDB allows holds no record (writes refuse such keys): not asked at all.
        return [read for read in reads if len(read.partition.encode()) <= MAX_PARTITION_KEY_BYTES]

    def _stream(self, read: _Read) -> Iterator[dict[str, Any]]:
        first = self._pool.submit(self._page, read, None)

        def items() -> Iterator[dict[str, Any]]:
            page, next_key = first.result()
            if read.index is None:  # the table's trace partition is ordered by span id: put it in time order
                while next_key is not None:
                    more, next_key = self._page(read, next_key)
                    page += more
                page.sort(key=lambda item: item[GSI_SK]["S"])
            yield from page
            while next_key is not None:
                page, next_key = self._page(read, next_key)
                yield from page

        return items()

    def _drain(self, read: _Read) -> list[dict[str, Any]]:
        items, next_key = self._page(read, None)
        while next_key is not None:
            more, next_key = self._page(read, next_key)
            items += more
        return items

    def _page(self, read: _Read, start_key: dict[str, Any] | None) -> tuple[list[dict[str, Any]], Any]:
        names = {"#pk": read.index.attribute if read.index else PK}
        values: dict[str, Any] = {":pk": {"S": read.partition}}
        condition = "#pk = :pk"
        if read.low is not None or read.high is not None:
            names["#sk"] = GSI_SK
            if read.low is not None and read.high is not None:
                condition += " AND #sk BETWEEN :low AND :high"
                values.update({":low": {"S": read.low}, ":high": {"S": read.high}})
            elif read.low is not None:
                condition += " AND #sk >= :low"
                values[":low"] = {"S": read.low}
            else:
                condition += " AND #sk <= :high"
                values[":high"] = {"S": read.high}
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if read.index is not None:
            arguments["IndexName"] = read.index.name  # GSIs are eventually consistent (typically < 1 s)
        else:
            arguments["ConsistentRead"] = True
        if start_key is not None:
            arguments["ExclusiveStartKey"] = start_key
        response, _ = retry.call(self.retry_policy, "Query", lambda: self.client.query(**arguments))
        items = list(response.get("Items", []))
        if self.read_progress is not None and read.partition not in (REGISTRY_PK, API_KEYS_PK):  # records only
            self.read_progress(len(items))
        return items, response.get("LastEvaluatedKey")

    def _matching(self, items: Iterable[dict[str, Any]], query: UsageQuery) -> Iterator[LedgerRecord]:
        """Records of the items that match every filter and have not expired (DynamoDB deletes expired items
        lazily, typically within days, and until then they are still returned by reads)."""
        now = int(time.time())
        for item in items:
            expires = item.get(EXPIRES_AT)
            if expires is not None and int(expires["N"]) <= now:
                continue
            record = record_from_item(item)
            if _matches(record, query):
                yield record

    # --------------------------------------------------------------------------------------- the billed side
    # Where each item lives: `dynamodb_billed.py`. None of these items is in a record index or a running total.

    def replace_billed(self, pull: BilledPull) -> BilledWrite:
        """Replaces every line and usage row of `pull.source` on the days `pull.start_day`..`pull.end_day` with the
        pull's: one key-range `Query` per month of the window and kind (the source's old rows), then the new rows
        put and the rows the pull no longer has deleted (`BatchWriteItem`, retried like every call).

        Checked before anything is sent (`billed_bounds.validate_pull`: `ValueError`, `InvalidRecord`). Not one
        transaction (a window can hold thousands of rows): a reader during a replace may still see a row the
        provider dropped until its delete lands, never a doubled one (a key is one item). A replace that fails
        (`StoreUnavailable`) is repaired by running it again."""
        billed_bounds.validate_pull(pull)
        items = [dynamodb_billed.line_item(line) for line in pull.lines]
        items += [dynamodb_billed.usage_item(row) for row in pull.usage]
        self._check_open()
        months = _months(pull.start_day, pull.end_day)
        reads = [
            (dynamodb_billed.billed_partition(month, pull.source), *dynamodb_billed.day_range(kind, pull.start_day,
                                                                                              pull.end_day))
            for month in months
            for kind in (dynamodb_billed.LINE, dynamodb_billed.USAGE)
        ]  # fmt: skip
        with _refused_as_invalid():
            self._register_billed(pull.source, {item[PK]["S"].split("#")[1] for item in items})
            stored = {
                (item[PK]["S"], item[SK]["S"])
                for found in self._pool.map(lambda read: self._query(*read, keys_only=True), reads)
                for item in found
            }
            retry.batch_write(self.client, self.table, [{"PutRequest": {"Item": item}} for item in items],
                              self.retry_policy)  # fmt: skip
            gone = sorted(stored - {(item[PK]["S"], item[SK]["S"]) for item in items})
            deletes = [{"DeleteRequest": {"Key": {PK: {"S": pk}, SK: {"S": sk}}}} for pk, sk in gone]
            retry.batch_write(self.client, self.table, deletes, self.retry_policy)
        return BilledWrite(written=len(items), removed=len(gone))

    def write_billed(self, lines: Sequence[BilledLine]) -> BilledWrite:
        """Upserts lines by `BilledLine.key` (a key is one item: the latest figure wins, also within one call)."""
        lines = list(lines)
        billed_bounds.validate_lines(lines)
        unique = list({line.key: line for line in lines}.values())
        if not unique:
            return BilledWrite(written=0)
        puts = [{"PutRequest": {"Item": dynamodb_billed.line_item(line)}} for line in unique]
        self._check_open()
        with _refused_as_invalid():
            for source in sorted({line.source for line in unique}):
                months = {dynamodb_billed.month_of(line.day) for line in unique if line.source == source}
                self._register_billed(source, months)
            retry.batch_write(self.client, self.table, puts, self.retry_policy)
        return BilledWrite(written=len(unique))

    def billed_lines(self, query: BilledQuery) -> list[BilledLine]:
        """Stored lines matching `query`, by day, then source, account, line and provider: one `Query` per source
        and month holding any (the registry says which), never a `Scan`."""
        items = self._read_billed(query, dynamodb_billed.LINE)
        lines = [dynamodb_billed.from_item(BilledLine, item) for item in items]
        lines = [line for line in lines if _billed_match(line, query)]
        return sorted(lines, key=lambda line: (line.day, line.source, line.account, line.line, line.provider))

    def billed_usage(self, query: BilledQuery) -> list[BilledUsage]:
        """Stored usage rows matching `query`, by day, then source, account, model, tier, provider, provider_side."""
        items = self._read_billed(query, dynamodb_billed.USAGE)
        rows = [dynamodb_billed.from_item(BilledUsage, item) for item in items]
        rows = [row for row in rows if _billed_match(row, query)]
        return sorted(rows, key=lambda r: (r.day, r.source, r.account, r.model, r.tier, r.provider, r.provider_side))

    def write_reconciliation(self, run: RunRecord) -> None:
        """Stores a run and makes each of its days the latest verdict of its (provider, day, environment), unless a
        run that finished later is already stored for it (a conditional `Put` on `finished_at`, in transactions of
        up to `_DAYS_PER_TRANSACTION` days).

        The run's JSON is compressed into the run item, or beyond `RUN_CHUNK_BYTES` into chunk items written
        first (`dynamodb_billed`). A run written again under its `run_id` replaces the earlier one (its run item
        and chunks are deleted after the new ones are in place)."""
        billed_bounds.validate_run(run)
        payload = dynamodb_billed.compress(run_codec.encode_run(run))
        days = [dynamodb_billed.reconciled_item(day) for day in run.days]
        self._check_open()
        write = uuid.uuid4().hex[:16]
        chunks = dynamodb_billed.split(payload) if len(payload) > dynamodb_billed.RUN_CHUNK_BYTES else []
        head_key = {PK: {"S": dynamodb_billed.RUNS_PK},
                    SK: {"S": dynamodb_billed.run_sort_key(run.finished_at, run.run_id)}}  # fmt: skip
        head = {
            **head_key,
            "run_id": {"S": run.run_id},
            "finished_at": {"S": format_timestamp(run.finished_at)},
            "start_day": {"S": run.start_day.isoformat()},
            "end_day": {"S": run.end_day.isoformat()},
            "write": {"S": write},  # names the chunk items of this write
            "chunks": {"N": str(len(chunks))},
            "bytes": {"N": str(len(payload))},
        }
        if not chunks:
            head["document"] = {"B": payload}
        with _refused_as_invalid():
            chunk_puts = [
                {"PutRequest": {"Item": {**dynamodb_billed.chunk_key(run.run_id, write, i), "data": {"B": data}}}}
                for i, data in enumerate(chunks)
            ]
            retry.batch_write(self.client, self.table, chunk_puts, self.retry_policy)
            self._call("PutItem (reconciliation run)", lambda: self.client.put_item(TableName=self.table, Item=head))
            old = self._call(
                "PutItem (reconciliation run pointer)",
                lambda: self.client.put_item(
                    TableName=self.table,
                    Item={PK: {"S": dynamodb_billed.run_partition(run.run_id)},
                          SK: {"S": dynamodb_billed.RUN_POINTER_SK}, "head": head_key[SK], "write": {"S": write},
                          "chunks": {"N": str(len(chunks))}},
                    ReturnValues="ALL_OLD",
                ),
            ).get("Attributes")  # fmt: skip
            if old:  # the run was stored before: what that write left behind goes
                stale = [dynamodb_billed.chunk_key(run.run_id, old["write"]["S"], i)
                         for i in range(int(old["chunks"]["N"]))]  # fmt: skip
                if old["head"]["S"] != head_key[SK]["S"]:
                    stale.append({PK: head_key[PK], SK: old["head"]})
                retry.batch_write(self.client, self.table, [{"DeleteRequest": {"Key": key}} for key in stale],
                                  self.retry_policy)  # fmt: skip
            if days:
                self._register_reconciled({dynamodb_billed.month_of(day.day) for day in run.days})
                for start in range(0, len(days), _DAYS_PER_TRANSACTION):
                    self._put_latest(days[start : start + _DAYS_PER_TRANSACTION])

    def reconciled_days(self, query: BilledQuery) -> list[ReconciledDay]:
        """The latest verdict per (provider, day, environment) matching `query` (its `source` does not apply), by
        day, then provider and environment: one `Query` per month holding any."""
        if _nothing_matches(query):
            return []
        self._check_open()
        with _refused_as_invalid():
            _, months = self._billed_registry()
            low, high = dynamodb_billed.day_range(dynamodb_billed.DAY, query.start_day, query.end_day)
            reads = [(dynamodb_billed.reconciled_partition(month), low, high)
                     for month in sorted(months) if _in_months(month, query)]  # fmt: skip
            items = [item for found in self._pool.map(lambda read: self._query(*read), reads) for item in found]
        days = [dynamodb_billed.from_item(ReconciledDay, item) for item in items]
        days = [day for day in days if _billed_match(day, query, with_source=False)]
        return sorted(days, key=lambda day: (day.day, day.provider, day.environment))

    def reconciliation_runs(self, limit: int = 20) -> list[RunRecord]:
        """The latest `limit` runs by `finished_at`, newest first (ties by run id): the run items in descending key
        order, then the chunks of those kept in chunks."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be a whole number >= 0, got {limit!r}")
        self._check_open()
        heads: list[dict[str, Any]] = []
        seen: set[str] = set()
        start_key: Any = None
        with _refused_as_invalid():
            while len(heads) < limit:
                page, start_key = self._page_of(dynamodb_billed.RUNS_PK, start_key, descending=True, limit=limit)
                for item in page:
                    run_id = item["run_id"]["S"]
                    if run_id not in seen and len(heads) < limit:  # a run rewritten with another finished_at
                        seen.add(run_id)
                        heads.append(item)
                if start_key is None:
                    break
            return list(self._pool.map(self._run_of, heads))

    def _run_of(self, head: Mapping[str, Any]) -> RunRecord:
        run_id, chunks = head["run_id"]["S"], int(head["chunks"]["N"])
        if not chunks:
            data = [head["document"]["B"]]
        else:
            prefix = f"CHUNK#{head['write']['S']}#"
            found = self._query(dynamodb_billed.run_partition(run_id), prefix, prefix + "~")
            data = [item["data"]["B"] for item in found]
            if len(data) != chunks:
                raise StoreUnavailable(f"DynamoDB: reconciliation run {run_id!r} has {len(data)} of its {chunks} "
                                       "document chunks; write the run again")  # fmt: skip
        try:
            return run_codec.decode_run(dynamodb_billed.join(data))
        except (zlib.error, ValueError, KeyError) as error:
            raise StoreUnavailable(f"DynamoDB: reconciliation run {run_id!r} cannot be read back ({error}); "
                                   "write the run again") from error  # fmt: skip

    def _read_billed(self, query: BilledQuery, kind: str) -> list[dict[str, Any]]:
        if _nothing_matches(query):
            return []
        self._check_open()
        with _refused_as_invalid():
            sources, _ = self._billed_registry()
            if query.source is not None:
                sources = {query.source: sources.get(query.source, set())}
            low, high = dynamodb_billed.day_range(kind, query.start_day, query.end_day)
            reads = [(dynamodb_billed.billed_partition(month, source), low, high)
                     for source, months in sorted(sources.items())
                     for month in sorted(months) if _in_months(month, query)]  # fmt: skip
            return [item for found in self._pool.map(lambda read: self._query(*read), reads) for item in found]

    def _billed_registry(self) -> tuple[dict[str, set[str]], set[str]]:
        """The registry: each billing source with the months it has rows in, and the months of reconciled days."""
        sources: dict[str, set[str]] = {}
        reconciled: set[str] = set()
        for item in self._query(dynamodb_billed.REGISTRY_PK):
            months = set(item.get("months", {}).get("SS", []))
            if item[SK]["S"] == dynamodb_billed.RECONCILED_SK:
                reconciled = months
            else:
                sources[item["source"]["S"]] = months
        return sources, reconciled

    def _register_billed(self, source: str, months: set[str]) -> None:
        """Adds months to a source's registry item, before its rows are written (a reader never misses a row)."""
        self._add_months(dynamodb_billed.source_sort_key(source), months, source)

    def _register_reconciled(self, months: set[str]) -> None:
        self._add_months(dynamodb_billed.RECONCILED_SK, months, None)

    def _add_months(self, sort_key: str, months: set[str], source: str | None) -> None:
        if not months:
            return
        names = {"#months": "months"}
        values: dict[str, Any] = {":months": {"SS": sorted(months)}}
        update = "ADD #months :months"
        if source is not None:
            names["#source"] = "source"
            values[":source"] = {"S": source}
            update = "SET #source = :source " + update
        self._call(
            "UpdateItem (billed registry)",
            lambda: self.client.update_item(
                TableName=self.table,
                Key={PK: {"S": dynamodb_billed.REGISTRY_PK}, SK: {"S": sort_key}},
                UpdateExpression=update,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            ),
        )

    def _put_latest(self, items: Sequence[dict[str, Any]]) -> None:
        """Puts reconciled days in one transaction, each only if no later run's verdict is stored for its key; a
        day whose condition fails (a later run's verdict is there) is left out and the rest sent again."""
        policy = self.retry_policy
        backoff = policy.start("TransactWriteItems (reconciled days)")
        pending = list(items)
        token = str(uuid.uuid4())
        while pending:
            retry.check_deadline(backoff.deadline, "TransactWriteItems (reconciled days)", policy)
            actions = [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(#pk) OR #finished <= :finished",
                        "ExpressionAttributeNames": {"#pk": PK, "#finished": "finished_at"},
                        "ExpressionAttributeValues": {":finished": item["finished_at"]},
                    }
                }
                for item in pending
            ]
            try:
                self.client.transact_write_items(TransactItems=actions, ClientRequestToken=token)
                return
            except ClientError as error:
                if retry.error_code(error) != "TransactionCanceledException":
                    if not retry.is_transient(error):
                        raise retry.failure(error, "TransactWriteItems (reconciled days)", policy) from error
                    backoff.wait(retry.describe(error))
                    continue
                reasons = retry.cancellation_reasons(error)
                later = {i for i, code in enumerate(reasons[: len(pending)]) if code == "ConditionalCheckFailed"}
                if later:
                    pending = [item for i, item in enumerate(pending) if i not in later]
                else:
                    self._cancelled(reasons, backoff, error)
                token = str(uuid.uuid4())  # other actions, or a conflict: a new request
            except BotoCoreError as error:
                if not retry.is_transient(error):
                    raise retry.failure(error, "TransactWriteItems (reconciled days)", policy) from error
                backoff.wait(retry.describe(error))

    def _call(self, what: str, operation: Any) -> Any:
        return retry.call(self.retry_policy, what, operation)[0]

    def _query(self, partition: str, low: str | None = None, high: str | None = None, *,
               keys_only: bool = False) -> list[dict[str, Any]]:  # fmt: skip
        """Every item of a table partition, optionally with `SK` in [low, high]; strongly consistent, all pages."""
        items: list[dict[str, Any]] = []
        start_key: Any = None
        while True:
            page, start_key = self._page_of(partition, start_key, low=low, high=high, keys_only=keys_only)
            items += page
            if start_key is None:
                return items

    def _page_of(self, partition: str, start_key: Any, *, low: str | None = None, high: str | None = None,
                 keys_only: bool = False, descending: bool = False,
                 limit: int | None = None) -> tuple[list[dict[str, Any]], Any]:  # fmt: skip
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": PK},
            "ExpressionAttributeValues": {":pk": {"S": partition}},
            "ConsistentRead": True,
        }
        if low is not None and high is not None:
            arguments["KeyConditionExpression"] += " AND #sk BETWEEN :low AND :high"
            arguments["ExpressionAttributeNames"]["#sk"] = SK
            arguments["ExpressionAttributeValues"].update({":low": {"S": low}, ":high": {"S": high}})
        if keys_only:  # a replace needs the old rows' keys only
            arguments["ExpressionAttributeNames"]["#sk"] = SK
            arguments["ProjectionExpression"] = "#pk, #sk"
        if descending:
            arguments["ScanIndexForward"] = False
        if limit is not None:
            arguments["Limit"] = limit
        if start_key is not None:
            arguments["ExclusiveStartKey"] = start_key
        response = self._call("Query", lambda: self.client.query(**arguments))
        return list(response.get("Items", [])), response.get("LastEvaluatedKey")

    # ---------------------------------------------------------------------------------- remove an environment

    def remove_environment(self, environment: str) -> int:
        """Deletes one environment's record items, the running totals of their days and months, and its registry
        item; returns how many records went. For `otel-ai-cost doctor --write-test`'s reserved environment
        (`contract.DOCTOR_ENVIRONMENT`): totals are per environment, so no other environment's figure changes.

        The records are found through the `env-time` index (a `Query` per shard, never a `Scan`), which is
        eventually consistent: a record written a moment ago may be missed, so a caller that must see it gone
        reads it back (by trace id) and calls this again. Not one transaction (`BatchWriteItem`)."""
        self._check_open()
        shards = self._shards_of(environment)
        reads = [_Read(ENV_TIME, index_partition(ENV_TIME, environment, "", shard)) for shard in range(shards)]
        items = [item for page in self._pool.map(self._drain, reads) for item in page]
        records = len(items)
        periods = {record_from_item(item).day for item in items}
        periods |= {day[:7] for day in periods}
        totals = [_Read(None, totals_partition(environment, p, s)) for p in sorted(periods) for s in range(shards)]
        items += [item for page in self._pool.map(self._drain, totals) for item in page]
        deletes = [{"DeleteRequest": {"Key": {PK: item[PK], SK: item[SK]}}} for item in items]
        deletes.append({"DeleteRequest": {"Key": registry_key(environment)}})
        retry.batch_write(self.client, self.table, deletes, self.retry_policy)
        with self._lock:  # a later write of this store registers the environment again
            self._registered = {key: at for key, at in self._registered.items() if key[0] != environment}
        return records

    # ----------------------------------------------------------------------------------------------- repair

    def rebuild_totals(self, environment: str, month: str) -> int:
        """Recomputes the running totals of one environment and month from its stored records and replaces the
        old total items (`BatchWriteItem`: deletes, then puts in shard 0). A repair tool for a closed month with no
        writer running (concurrent writes during a rebuild would be missed), e.g. after restoring records from a
        backup. Records already deleted by TTL are no longer counted. Returns the number of total items written."""
        if not re.fullmatch(r"\d{4}-\d{2}", month):
            raise ValueError(f"a month is YYYY-MM, got {month!r}")
        self._check_open()
        shards = self._shards_of(environment)
        deltas: dict[tuple[str, str], _Delta] = {}
        year, number = int(month[:4]), int(month[5:])
        first, last = date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])
        for record in self.query(UsageQuery(environment=environment, start_day=first, end_day=last)):
            for key, env, period, labels in _totals_targets(record, 0):
                delta = deltas.get(key)
                if delta is None:
                    delta = deltas[key] = _Delta(environment=env, period=period, labels=labels)
                delta.add(record)
        periods = [month, *(f"{month}-{day:02d}" for day in range(1, last.day + 1))]
        old = [
            item
            for items in self._pool.map(
                self._drain, [_Read(None, totals_partition(environment, p, s)) for p in periods for s in range(shards)]
            )
            for item in items
        ]
        deletes = [{"DeleteRequest": {"Key": {PK: item[PK], SK: item[SK]}}} for item in old]
        puts = [{"PutRequest": {"Item": _total_item(pk, sk, delta)}} for (pk, sk), delta in deltas.items()]
        # Deletes first, in their own batches: one BatchWriteItem may not touch the same key twice.
        retry.batch_write(self.client, self.table, deletes, self.retry_policy)
        retry.batch_write(self.client, self.table, puts, self.retry_policy)
        return len(puts)

    # ------------------------------------------------------------------------------------------------ close

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._pool.shutdown(wait=True)
        close = getattr(self.client, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> DynamoDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("the DynamoDB store is closed")


def init_table(url: str) -> str:
    """Creates (or checks) the ledger table a `dynamodb://` URL names; returns a human-readable summary.

    Called by `otel-ai-cost ledger init`. Idempotent: running it again checks the schema and TTL."""
    store = DynamoDBStore.from_url(url)
    try:
        return store.ensure_table()
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------------- helpers


def _index_for(query: UsageQuery) -> list[tuple[Index, str]]:
    """The most selective index for a query (other filters are applied to what it returns)."""
    if query.job_id:
        return [(JOB_TIME, query.job_id)]
    if query.batch_id:
        return [(BATCH_TIME, query.batch_id)]
    if query.cicd_run_id:
        return [(CI_RUN_TIME, query.cicd_run_id)]
    if query.model:
        # "model" matches the response or the request model: the model index holds response-else-request, the
        # request-model index holds the request model of records whose response model differs. Disjoint.
        return [(MODEL_TIME, query.model), (REQUEST_MODEL_TIME, query.model)]
    return [(ENV_TIME, "")]


def _matches(record: LedgerRecord, query: UsageQuery) -> bool:
    """Every filter of the query (the same semantics as the SQLite store's WHERE clause)."""

    def day(value: Any) -> str:
        return value if isinstance(value, str) else value.strftime("%Y-%m-%d")

    if query.environment is not None and record.environment != query.environment:
        return False  # unreachable through the keys; checked anyway so isolation never rests on one mechanism
    if query.start_day is not None and record.day < day(query.start_day):
        return False
    if query.end_day is not None and record.day > day(query.end_day):
        return False
    if query.model:
        if query.model not in (record.response_model or record.request_model, record.request_model):
            return False
    elif query.model is not None and query.model not in (record.request_model, record.response_model):
        return False
    for name in ("service", "provider", "operation_type", "team", "job_id", "batch_id", "cicd_run_id"):
        wanted = getattr(query, name)
        if wanted is not None and getattr(record, name) != wanted:
            return False
    return query.trace_id is None or record.trace_id == query.trace_id.lower()


def _group_value(record: LedgerRecord, name: str) -> str:
    if name == "day":
        return record.day
    if name == "month":
        return record.month
    if name == "model":
        return record.response_model or record.request_model
    return str(getattr(record, name))


def _total_item(pk: str, sk: str, delta: _Delta) -> dict[str, Any]:
    item: dict[str, Any] = {
        PK: {"S": pk},
        SK: {"S": sk},
        "environment": {"S": delta.environment},
        "period": {"S": delta.period},
        "amount": {"N": number_text(delta.amount, where="total amount")},
        "calls": {"N": str(delta.calls)},
        "unpriced_calls": {"N": str(delta.unpriced_calls)},
        "unknown_cost_calls": {"N": str(delta.unknown_cost_calls)},
    }
    for name, value in delta.labels:
        item[name] = {"S": value}
    for name, value in zip(_TOKEN_FIELDS, delta.tokens, strict=True):
        item[name] = {"N": str(value)}
    return item


# What a replay of the same call repeats exactly: the money and the usage (as the SQLite store compares).
_CONTENT = (Record.AMOUNT, Record.COMPUTED_AMOUNT, *limits.COUNT_LIMITS, Record.PRICING_STATUS)
_logged_lock = threading.Lock()
_logged: set[str] = set()  # the warnings given once per process: "conflict", "expired"


def _first_time(warning: str) -> bool:
    with _logged_lock:
        if warning in _logged:
            return False
        _logged.add(warning)
        return True


def _unknown_cost_calls(item: Mapping[str, Any]) -> int:
    """The calls of unknown cost of a running-total item. An item an older version wrote has no such count, or one
    that began when this version first added to it; its unpriced calls are unknown too, so the larger of the two is
    a lower bound (exact for an item this version wrote whole). `rebuild_totals` makes a month's items exact."""
    unpriced = int(item["unpriced_calls"]["N"])
    counted = item.get("unknown_cost_calls")
    return unpriced if counted is None else max(unpriced, int(counted["N"]))


def _same_content(stored: LedgerRecord, new: LedgerRecord) -> bool:
    return all(getattr(stored, name) == getattr(new, name) for name in _CONTENT)  # Decimal("0.5") == Decimal("0.50")


def _conflicts(
    pending: Sequence[_Entry], stored: set[int], items: Sequence[Mapping[str, Any] | None]
) -> list[tuple[LedgerRecord, LedgerRecord]]:
    """(stored, refused) for each duplicate whose stored item (returned with the cancellation) has other content."""
    found = []
    for i in sorted(stored):
        item = items[i] if i < len(items) else None
        if not item:
            continue  # an endpoint that does not return the old item: a duplicate, as before
        try:
            old = record_from_item(item)
        except (KeyError, ValueError, TypeError):
            continue  # an item this version cannot read is not ours to judge
        if not _same_content(old, pending[i].record):
            found.append((old, pending[i].record))
    return found


def _log_expired_once(record: LedgerRecord, retention: Retention) -> None:
    """Warns about the first record of the process refused for being past its environment's TTL."""
    if not _first_time("expired"):
        return
    logger.warning(
        "otel-ai-cost ledger: record %s/%s of %s is dated %s, past its environment's TTL (%s days): refused, because "
        "DynamoDB may already have deleted it while its running totals keep its amount, so storing it again could "
        "count it twice. Such records are counted (WriteResult.pruned, as duplicates) and logged once per process; "
        "to import older history, give the environment a longer ttl_days",
        record.trace_id,
        record.span_id,
        record.environment,
        record.timestamp.date().isoformat(),
        retention.days(record.environment),
    )


def _log_conflict_once(stored: LedgerRecord, refused: LedgerRecord) -> None:
    """Warns about the first conflict of the process (key and amounts only); later ones are only counted."""
    if not _first_time("conflict"):
        return
    logger.warning(
        "otel-ai-cost ledger: record %s/%s is already stored with different content (stored amount %s, refused "
        "amount %s): the stored record is kept. Such conflicts are counted (WriteResult.conflicts) and logged once "
        "per process",
        stored.trace_id,
        stored.span_id,
        stored.amount,
        refused.amount,
    )


def _plain_sums(sums: Mapping[Any, Decimal]) -> dict[Any, Decimal]:
    return {key: _plain(value) for key, value in sorted(sums.items())}


def _plain(value: Decimal) -> Decimal:
    """Without trailing zeros and never in exponent form for whole numbers (1E+1 -> 10), as the SQLite store."""
    normalized = EXACT.normalize(value)
    return normalized.quantize(Decimal(1)) if normalized.as_tuple().exponent > 0 else normalized  # type: ignore[operator]


# ---------------------------------------------------------------------------------------------- billed helpers

_DAYS_PER_TRANSACTION = 25  # reconciled days per conditional transaction (DynamoDB allows 100 actions)


@contextmanager
def _refused_as_invalid() -> Iterator[None]:
    """What DynamoDB refuses as invalid on the billed side (the bounds should have caught it) is `InvalidRecord`."""
    try:
        yield
    except retry.Refused as error:
        raise InvalidRecord(str(error)) from error


def _months(start: date, end: date) -> list[str]:
    """Every month `YYYY-MM` from `start`'s to `end`'s (bounded: the billed bounds keep days within a century)."""
    months = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _nothing_matches(query: BilledQuery) -> bool:
    """An empty set of environments, or days in reverse order (DynamoDB refuses a BETWEEN with its bounds
    reversed): nothing to read."""
    return query.start_day > query.end_day or (query.environments is not None and not query.environments)


def _in_months(month: str, query: BilledQuery) -> bool:
    return query.start_day.strftime("%Y-%m") <= month <= query.end_day.strftime("%Y-%m")


def _billed_match(row: Any, query: BilledQuery, *, with_source: bool = True) -> bool:
    """The filters of `query` on one row (the key ranges already bound the days)."""
    if not query.start_day <= row.day <= query.end_day:
        return False
    if query.provider is not None and row.provider != query.provider:
        return False
    if with_source and query.source is not None and row.source != query.source:
        return False
    return query.environments is None or row.environment in query.environments
