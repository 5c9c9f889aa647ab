"""The DynamoDB single-table design of the ledger: keys, indexes, the table definition and the item codec.

Everything about *where* an item lives is here, so `docs/ledger.md` and the store cannot drift apart; the store
(`dynamodb_store.py`) only decides *when* to read and write. Kinds of item in the one table:

| item          | PK                                  | SK                     | GSI keys            |
|---------------|-------------------------------------|------------------------|---------------------|
| record        | `ENV#{env}#TRACE#{trace_id}`        | `SPAN#{span_id}`       | GSI1PK..GSI6PK, GSISK |
| running total | `ENV#{env}#TOTAL#{period}#S{shard}` | `ALL` / `PM#{p}#{m}` / `TEAM#{t}` / `OP#{o}` | none |
| environment   | `ENVIRONMENTS`                      | `ENV#{env}`            | none                |

The billed side's items (billed lines and usage, reconciled days, reconciliation runs) are laid out in
`dynamodb_billed.py`; none has a GSI key or a partition key starting with `ENV#`.

The record's primary key is its identity (the environment is a function of the span, so it adds nothing to the
identity but keeps the partition environment-scoped). Every GSI partition key is `ENV#{env}#...#S{shard}`: the
environment first (isolation), the write shard last (no hot partition). Free-text parts of keys are escaped so
that `#` is always a separator, which makes the environment of any key unambiguous. `validate` refuses a record
any of whose keys would exceed DynamoDB's byte limits (partition keys 2,048 bytes, sort keys 1,024) before anything
is sent, naming the field and the limit.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from typing import Any

from otel_ai_cost.contract import Record
from otel_ai_cost.ledger import store
from otel_ai_cost.ledger.record import LedgerRecord, format_timestamp, parse_timestamp

PK = "PK"
SK = "SK"
GSI_SK = "GSISK"  # the sort key of every GSI: "{timestamp}#{trace_id}#{span_id}", so index order is time order
EXPIRES_AT = "expires_at"  # the TTL attribute (epoch seconds); only record items carry it

REGISTRY_PK = "ENVIRONMENTS"
TOTAL_ALL_SK = "ALL"

# DynamoDB: 100 actions per TransactWriteItems, 25 requests per BatchWriteItem, 38 significant digits per Number.
MAX_TRANSACTION_ACTIONS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
MAX_BATCH_WRITE = 25
MAX_NUMBER_DIGITS = 38
# A running total is an ADD of amounts: its digits are the total's integer digits plus the most decimal places of
# any amount added to it. Within 38 digits, 24 places leave totals up to 10^14 USD; more places would make a large
# total unrepresentable, and every later write to it would be refused (ValidationException). 24, not fewer: a cost
# computed in floats, as the legacy tracker's were, has up to 17 significant digits, so any cost of 10^-8 USD or more
# (a one-token call) fits exactly (`str(1.4999999999999999e-05)`: 21 places).
MAX_AMOUNT_DECIMAL_PLACES = 24
MAX_ITEM_BYTES = 400 * 1024
# Key attribute values, in UTF-8 bytes: a partition key (the table's and every GSI's) and a sort key.
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
WIDEST_SHARD = 99  # the longest `#S{shard}` suffix a key can get (the store allows at most 100 shards)


@dataclass(frozen=True, slots=True)
class Index:
    """A GSI: its name, its partition-key attribute, and the key kind written between env and shard."""

    name: str
    attribute: str
    kind: str  # "" for the environment-wide index
    purpose: str


ENV_TIME = Index("env-time", "GSI1PK", "", "records of an environment by time (day ranges)")
MODEL_TIME = Index("model-time", "GSI2PK", "MODEL", "by model (the response model, else the request model)")
REQUEST_MODEL_TIME = Index(
    "request-model-time", "GSI3PK", "REQMODEL", "by request model, only when it differs from the response model"
)
JOB_TIME = Index("job-time", "GSI4PK", "JOB", "by job id")
BATCH_TIME = Index("batch-time", "GSI5PK", "BATCH", "by batch id")
CI_RUN_TIME = Index("ci-run-time", "GSI6PK", "CIRUN", "by CI pipeline run id")
INDEXES: tuple[Index, ...] = (ENV_TIME, MODEL_TIME, REQUEST_MODEL_TIME, JOB_TIME, BATCH_TIME, CI_RUN_TIME)

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_HEX = re.compile(r"^[0-9a-f]+$")


class InvalidRecord(store.InvalidRecord):
    """A record DynamoDB cannot store as it is (says which record and why); nothing of the batch was written."""


def escape(value: str) -> str:
    """Makes `#` a pure separator in keys: `%` -> `%25`, `#` -> `%23` (reversible, and a no-op for usual names)."""
    return value.replace("%", "%25").replace("#", "%23")


def shard_of(trace_id: str, span_id: str, shards: int) -> int:
    """The write shard of a record: stable across processes and versions (CRC-32, not Python's salted hash)."""
    return zlib.crc32(f"{trace_id}{span_id}".encode()) % shards


# ---------------------------------------------------------------------------------------------------------- keys


def record_key(environment: str, trace_id: str, span_id: str) -> dict[str, dict[str, str]]:
    return {PK: {"S": trace_partition(environment, trace_id)}, SK: {"S": f"SPAN#{span_id}"}}


def trace_partition(environment: str, trace_id: str) -> str:
    return f"ENV#{escape(environment)}#TRACE#{trace_id}"


def index_partition(index: Index, environment: str, value: str, shard: int) -> str:
    """The partition-key value of `index` for one environment, key value and shard."""
    middle = f"#{index.kind}#{escape(value)}" if index.kind else ""
    return f"ENV#{escape(environment)}{middle}#S{shard}"


def time_sort_key(record: LedgerRecord) -> str:
    return f"{format_timestamp(record.timestamp)}#{record.trace_id}#{record.span_id}"


def time_bounds(start_day: date | str | None, end_day: date | str | None) -> tuple[str | None, str | None]:
    """Inclusive GSISK bounds for UTC days: `2026-11-01T` .. `2026-11-30T~` (`~` sorts after every digit)."""
    low = f"{_day_text(start_day)}T" if start_day is not None else None
    high = f"{_day_text(end_day)}T~" if end_day is not None else None
    return low, high


def index_values(record: LedgerRecord) -> dict[Index, str]:
    """The GSIs a record appears in, with its key value in each (sparse: empty attribution = not indexed)."""
    model = record.response_model or record.request_model
    values: dict[Index, str] = {ENV_TIME: ""}
    if model:
        values[MODEL_TIME] = model
    if record.request_model and record.request_model != model:
        values[REQUEST_MODEL_TIME] = record.request_model
    if record.job_id:
        values[JOB_TIME] = record.job_id
    if record.batch_id:
        values[BATCH_TIME] = record.batch_id
    if record.cicd_run_id:
        values[CI_RUN_TIME] = record.cicd_run_id
    return values


def totals_partition(environment: str, period: str, shard: int) -> str:
    """Running totals of one environment and period (`YYYY-MM-DD` or `YYYY-MM`), one partition per shard."""
    return f"ENV#{escape(environment)}#TOTAL#{period}#S{shard}"


def totals_model_sort_key(provider: str, model: str) -> str:
    return f"PM#{escape(provider)}#{escape(model)}"


def totals_team_sort_key(team: str) -> str:
    return f"TEAM#{escape(team)}"


def totals_operation_type_sort_key(operation_type: str) -> str:
    return f"OP#{escape(operation_type)}"


def registry_key(environment: str) -> dict[str, dict[str, str]]:
    return {PK: {"S": REGISTRY_PK}, SK: {"S": f"ENV#{escape(environment)}"}}


def is_period(period: str) -> bool:
    return bool(_DAY.match(period) or _MONTH.match(period))


def _day_text(value: date | str) -> str:
    text = value if isinstance(value, str) else value.strftime("%Y-%m-%d")
    if not _DAY.match(text):
        raise ValueError(f"a day is YYYY-MM-DD, got {text!r}")
    return text


# ------------------------------------------------------------------------------------------------------- table


def table_definition(table_name: str) -> dict[str, Any]:
    """`CreateTable` arguments: on-demand billing, every GSI projecting ALL (a query never needs a second read)."""
    key_attributes = [PK, SK, GSI_SK, *(index.attribute for index in INDEXES)]
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in key_attributes],
        "KeySchema": [{"AttributeName": PK, "KeyType": "HASH"}, {"AttributeName": SK, "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.attribute, "KeyType": "HASH"},
                    {"AttributeName": GSI_SK, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in INDEXES
        ],
    }


def schema_problems(description: Mapping[str, Any], table_name: str) -> list[str]:
    """What makes a `DescribeTable` answer differ from `table_definition(table_name)` in what the store relies on:
    the primary key and every index's keys and ALL projection (empty: a ledger table). The store refuses such a
    table (`SchemaMismatch`) and `otel-ai-cost doctor` reports it, with the same words."""
    wanted = table_definition(table_name)
    problems = []
    if _key_schema(description.get("KeySchema")) != _key_schema(wanted["KeySchema"]):
        problems.append(f"primary key is {_key_schema(description.get('KeySchema'))}, expected PK (HASH) + SK (RANGE)")
    present = {gsi["IndexName"]: gsi for gsi in description.get("GlobalSecondaryIndexes", [])}
    for gsi in wanted["GlobalSecondaryIndexes"]:
        found = present.get(gsi["IndexName"])
        if found is None:
            problems.append(f"index {gsi['IndexName']} is missing")
        elif _key_schema(found.get("KeySchema")) != _key_schema(gsi["KeySchema"]):
            problems.append(f"index {gsi['IndexName']} has keys {_key_schema(found.get('KeySchema'))}")
        elif found.get("Projection", {}).get("ProjectionType") != "ALL":
            problems.append(f"index {gsi['IndexName']} does not project ALL attributes")
    return problems


def _key_schema(schema: Any) -> list[tuple[str, str]]:
    return sorted((entry["AttributeName"], entry["KeyType"]) for entry in schema or [])


# ------------------------------------------------------------------------------------------------- item codec

_INT_FIELDS = frozenset(
    {
        Record.SCHEMA_VERSION, Record.INPUT_TOKENS, Record.OUTPUT_TOKENS, Record.CACHE_READ_INPUT_TOKENS,
        Record.CACHE_WRITE_5M_INPUT_TOKENS, Record.CACHE_WRITE_1H_INPUT_TOKENS, Record.REASONING_OUTPUT_TOKENS,
        Record.WEB_SEARCH_REQUESTS,
    }
)  # fmt: skip
_DECIMAL_FIELDS = frozenset({Record.AMOUNT, Record.COMPUTED_AMOUNT})  # exact Numbers, absent when None
_FIELD_NAMES = tuple(f.name for f in fields(LedgerRecord))
_INT_BOUND = 10**MAX_NUMBER_DIGITS  # an integer DynamoDB holds has at most 38 digits
_KEY_OVERHEAD = 64  # bytes of a key besides its free-text parts: prefixes, separators, ids, period, shard


def validate(record: LedgerRecord) -> None:
    """Raises `InvalidRecord` for what DynamoDB would reject or what would break the key design."""
    where = f"record {record.trace_id}/{record.span_id}"
    if len(record.trace_id) != 32 or not _HEX.match(record.trace_id):
        raise InvalidRecord(f"{where}: trace_id must be 32 lowercase hex digits")
    if len(record.span_id) != 16 or not _HEX.match(record.span_id):
        raise InvalidRecord(f"{where}: span_id must be 16 lowercase hex digits")
    if not record.environment:
        raise InvalidRecord(f"{where}: environment is empty")
    if record.timestamp.tzinfo is None:
        raise InvalidRecord(f"{where}: timestamp must be timezone-aware")
    for name in _DECIMAL_FIELDS:
        value = getattr(record, name)
        if value is not None:
            number_text(value, where=f"{where}: {name}")
            if _decimal_places(value) > MAX_AMOUNT_DECIMAL_PLACES:
                raise InvalidRecord(
                    f"{where}: {name} has more than {MAX_AMOUNT_DECIMAL_PLACES} decimal places; DynamoDB's running "
                    f"totals keep {MAX_NUMBER_DIGITS} digits, so that totals up to 10^14 USD stay exact"
                )
    duration = record.duration_ms
    if duration != duration or duration in (float("inf"), float("-inf")) or (duration and abs(duration) < 1e-120):
        raise InvalidRecord(f"{where}: duration_ms must be finite (and 0 or at least 1e-120)")
    for key, value in record.tags.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise InvalidRecord(f"{where}: tags must map non-empty strings to strings")
        if not _is_utf8(key) or not _is_utf8(value):
            raise InvalidRecord(f"{where}: tags must be Unicode text (a lone surrogate cannot be UTF-8)")
    for name in _FIELD_NAMES:
        value = getattr(record, name)
        if isinstance(value, str):
            if not value.isascii() and not _is_utf8(value):  # ASCII (the usual case) is always UTF-8
                raise InvalidRecord(f"{where}: {name} is not Unicode text (a lone surrogate cannot be UTF-8)")
        elif name in _INT_FIELDS and not -_INT_BOUND < value < _INT_BOUND:
            raise InvalidRecord(f"{where}: {name} has more digits than DynamoDB's {MAX_NUMBER_DIGITS}")
    check_keys(record)


def _keys_surely_fit(record: LedgerRecord) -> bool:
    """A cheap sufficient test (the hot path): a character takes at most 4 bytes in a key (UTF-8, or `%23` for an
    escaped `#`), and no key has more than `_KEY_OVERHEAD` bytes besides its free-text parts."""
    environment = len(record.environment)
    in_partition = max(len(record.response_model), len(record.request_model), len(record.job_id),
                       len(record.batch_id), len(record.cicd_run_id))  # fmt: skip
    in_sort = max(len(record.provider) + len(record.response_model or record.request_model), len(record.team),
                  len(record.operation_type), environment)  # fmt: skip
    return (
        4 * (environment + in_partition) + _KEY_OVERHEAD <= MAX_PARTITION_KEY_BYTES
        and 4 * in_sort + _KEY_OVERHEAD <= MAX_SORT_KEY_BYTES
    )


def _decimal_places(value: Decimal) -> int:
    """Decimal places of a finite Decimal that are not trailing zeros, without any arithmetic (no context)."""
    _, digits, exponent = value.as_tuple()
    text = "".join(map(str, digits))
    trailing_zeros = len(text) - len(text.rstrip("0"))
    return max(0, -(int(exponent) + trailing_zeros)) if text.strip("0") else 0


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def record_keys(record: LedgerRecord) -> list[tuple[str, str, str, int]]:
    """Every key attribute value a write of the record sends, at its longest (the widest shard): (the record
    fields it is made of, the key attribute, its value, DynamoDB's limit in bytes). The record item's keys, its GSI
    keys, the keys of the running totals it adds to and of its environment's registry item."""
    partition, sort = MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES
    model = record.response_model or record.request_model
    index_fields = {ENV_TIME: "environment", MODEL_TIME: "environment, response_model or request_model",
                    REQUEST_MODEL_TIME: "environment, request_model", JOB_TIME: "environment, job_id",
                    BATCH_TIME: "environment, batch_id", CI_RUN_TIME: "environment, cicd_run_id"}  # fmt: skip
    keys = [("environment", PK, trace_partition(record.environment, record.trace_id), partition)]
    for index, value in index_values(record).items():
        keys.append((index_fields[index], index.attribute, index_partition(index, record.environment, value,
                                                                           WIDEST_SHARD), partition))  # fmt: skip
    keys += [
        ("environment", PK, totals_partition(record.environment, record.day, WIDEST_SHARD), partition),
        ("provider, response_model or request_model", SK, totals_model_sort_key(record.provider, model), sort),
        ("team", SK, totals_team_sort_key(record.team), sort),
        ("operation_type", SK, totals_operation_type_sort_key(record.operation_type), sort),
        ("environment", SK, registry_key(record.environment)[SK]["S"], sort),
    ]
    return keys


def check_keys(record: LedgerRecord) -> None:
    """Raises `InvalidRecord` naming the field and the limit when a key the record's write would send is longer
    than DynamoDB allows (it would answer `ValidationException` for the whole request)."""
    if _keys_surely_fit(record):
        return
    for names, attribute, value, limit in record_keys(record):
        size = len(value.encode())
        if size > limit:
            kind = "partition" if limit == MAX_PARTITION_KEY_BYTES else "sort"
            raise InvalidRecord(
                f"record {record.trace_id}/{record.span_id}: {names} too long for DynamoDB: key {attribute} "
                f"({kind} key) would be {size} bytes, limit {limit} bytes",
                key=(record.trace_id, record.span_id),
            )


def number_text(value: Decimal, *, where: str = "number") -> str:
    """A Decimal as DynamoDB Number text, exactly (plain notation); refuses what DynamoDB would round or reject."""
    if not value.is_finite():
        raise InvalidRecord(f"{where} must be finite, got {value}")
    # Significant digits of the exact value (not `normalize()`, which would round to the context's precision).
    digits = len("".join(map(str, value.as_tuple().digits)).strip("0")) or 1
    if digits > MAX_NUMBER_DIGITS:
        raise InvalidRecord(f"{where} has {digits} significant digits; DynamoDB keeps {MAX_NUMBER_DIGITS}")
    if value and not (Decimal("1E-130") <= abs(value) < Decimal("1E+126")):
        raise InvalidRecord(f"{where} is outside DynamoDB's range (1E-130 .. 9.99E+125)")
    return format(value, "f")


def record_item(record: LedgerRecord, *, shard: int, expires_at: int | None) -> dict[str, Any]:
    """The record as a low-level DynamoDB item (explicit `{"S": ...}`/`{"N": ...}`: no float ever, no rounding).

    Fields equal to "" (and empty tags, and a missing amount or computed amount) are left out: they cost write
    units and `from_dict` restores them as defaults. Other numbers are always written.
    """
    item: dict[str, Any] = record_key(record.environment, record.trace_id, record.span_id)
    sort_key = time_sort_key(record)
    item[GSI_SK] = {"S": sort_key}
    for index, value in index_values(record).items():
        item[index.attribute] = {"S": index_partition(index, record.environment, value, shard)}
    for name in _FIELD_NAMES:
        value = getattr(record, name)
        if name == Record.TIMESTAMP:
            item[name] = {"S": format_timestamp(value)}
        elif name in _DECIMAL_FIELDS:
            if value is not None:
                item[name] = {"N": number_text(value)}
        elif name == Record.DURATION_MS:
            item[name] = {"N": format(Decimal(repr(float(value))), "f")}
        elif name in _INT_FIELDS:
            item[name] = {"N": str(int(value))}
        elif name == Record.TAGS:
            if value:
                item[name] = {"M": {k: {"S": v} for k, v in value.items()}}
        elif value != "":
            item[name] = {"S": str(value)}
    if expires_at is not None:
        item[EXPIRES_AT] = {"N": str(expires_at)}
    return item


def record_from_item(item: Mapping[str, Any]) -> LedgerRecord:
    """Inverse of `record_item` (key and TTL attributes are ignored)."""
    values: dict[str, Any] = {}
    for name in _FIELD_NAMES:
        attribute = item.get(name)
        if attribute is None:
            continue
        if name == Record.TAGS:
            values[name] = {k: v["S"] for k, v in attribute["M"].items()}
        elif name in _DECIMAL_FIELDS:
            values[name] = Decimal(attribute["N"])  # Decimal(text) is exact whatever the context precision
        elif name == Record.DURATION_MS:
            values[name] = float(attribute["N"])
        elif name in _INT_FIELDS:
            values[name] = int(attribute["N"])
        else:
            values[name] = attribute["S"]
    values[Record.TIMESTAMP] = parse_timestamp(values[Record.TIMESTAMP])
    return LedgerRecord(**values)


def item_size(item: Mapping[str, Any]) -> int:
    """DynamoDB's size of an item in bytes (names + values; numbers approximated from their digits), for capacity
    arithmetic and for keeping transactions under 4 MB."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, payload),) = value.items()
    if kind == "S":
        return len(payload.encode())
    if kind == "N":
        return (len(payload.replace("-", "").replace(".", "").lstrip("0")) + 1) // 2 + 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in payload.items())
    return len(str(payload))
