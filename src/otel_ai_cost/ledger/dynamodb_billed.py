"""Where the billed side lives in the DynamoDB ledger table: keys, the item codec, and run documents in chunks.

The store (`dynamodb_store.py`) decides when to read and write; this module says where each item is. The kinds
of item, beside the records' (`dynamodb_schema.py`), all in the same table:

| item             | PK                                  | SK                                   |
|------------------|-------------------------------------|--------------------------------------|
| billed line      | `BILLED#{YYYY-MM}#{source}`         | `LINE#{day}#{digest of the key}`     |
| billed usage     | `BILLED#{YYYY-MM}#{source}`         | `USAGE#{day}#{digest of the key}`    |
| billed registry  | `BILLED#REGISTRY`                   | `SOURCE#{source}` / `RECONCILED`     |
| reconciled day   | `RECONCILED#{YYYY-MM}`              | `DAY#{day}#{digest of the key}`      |
| run              | `RECONCILE#RUNS`                    | `RUN#{finished_at}#{run_id}`         |
| run pointer      | `RECONCILE#RUN#{run_id}`            | `HEAD`                               |
| run chunk        | `RECONCILE#RUN#{run_id}`            | `CHUNK#{write}#{index:04d}`          |

**Why these partitions.** A billing source's pull replaces its rows of a window of days: its rows of a month are
one partition, ordered by day, so a replace reads exactly its old rows with one key-range `Query` per month of the
window (two: lines and usage) and writes with `BatchWriteItem`. A read of a day range is a `Query` per source and
month; which sources and months hold anything is in the small registry partition (`SOURCE#{source}` with the set of
its `months`, `RECONCILED` with the months of reconciled days), read first, so a read never guesses partitions and
never `Scan`s. The identity of a row is its dataclass `key`; the sort key holds its day (for ranges) and a
SHA-256 digest of the whole key (so keys of any allowed length fit the 1,024-byte sort-key limit).

**Kept out of tracked spend.** None of these items has a `GSISK` or `GSI*PK` attribute, so no record index holds
them, and no partition key starts with `ENV#` or is `ENVIRONMENTS`: `query()`, `aggregate()`, `totals()` and the
environment registry never see billed money.

**Run documents.** A run (its window, days and `document`, `run_codec` JSON) is zlib-compressed into a Binary
attribute of the run item when that is at most `RUN_CHUNK_BYTES` (350,000 bytes: an item's limit is 400 KB);
beyond, it is split into chunk items of `RUN_CHUNK_BYTES` under the run's own partition, written before the run
item that names them (`chunks`, `write`), so a reader that finds the run item finds every chunk. The only refusal
is the JSON bound of `billed_bounds.MAX_RUN_DOCUMENT_BYTES` (64 MiB, at most 192 chunks).

**Numbers.** Amounts, quantities and counts are DynamoDB Numbers written as exact decimal text
(`dynamodb_schema.number_text`: at most 38 significant digits, which the billed bounds guarantee for billed
amounts; a reconciled day's sum beyond 38 digits is refused), read back with `Decimal(text)`, exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from otel_ai_cost.ledger.dynamodb_schema import PK, SK, escape, number_text
from otel_ai_cost.ledger.record import format_timestamp, parse_timestamp
from otel_ai_cost.reconcile.billed import BilledLine, BilledUsage
from otel_ai_cost.reconcile.runs import ReconciledDay

__all__ = [
    "DAY",
    "LINE",
    "RECONCILED_SK",
    "REGISTRY_PK",
    "RUNS_PK",
    "RUN_CHUNK_BYTES",
    "RUN_POINTER_SK",
    "USAGE",
    "billed_partition",
    "chunk_key",
    "compress",
    "day_range",
    "from_item",
    "join",
    "line_item",
    "month_of",
    "reconciled_item",
    "reconciled_partition",
    "run_partition",
    "run_sort_key",
    "source_sort_key",
    "split",
    "to_item",
    "usage_item",
]

REGISTRY_PK = "BILLED#REGISTRY"
RECONCILED_SK = "RECONCILED"
RUNS_PK = "RECONCILE#RUNS"
RUN_POINTER_SK = "HEAD"
RUN_CHUNK_BYTES = 350_000
LINE = "LINE"
USAGE = "USAGE"
DAY = "DAY"

Shape = TypeVar("Shape", BilledLine, BilledUsage, ReconciledDay)


def month_of(day: date) -> str:
    return day.strftime("%Y-%m")


def billed_partition(month: str, source: str) -> str:
    return f"BILLED#{month}#{escape(source)}"


def source_sort_key(source: str) -> str:
    return f"SOURCE#{escape(source)}"


def reconciled_partition(month: str) -> str:
    return f"RECONCILED#{month}"


def run_sort_key(finished_at: datetime, run_id: str) -> str:
    return f"RUN#{format_timestamp(finished_at)}#{escape(run_id)}"


def run_partition(run_id: str) -> str:
    return f"RECONCILE#RUN#{escape(run_id)}"


def chunk_key(run_id: str, write: str, index: int) -> dict[str, Any]:
    return {PK: {"S": run_partition(run_id)}, SK: {"S": f"CHUNK#{write}#{index:04d}"}}


def day_range(kind: str, start: date, end: date) -> tuple[str, str]:
    """Inclusive sort-key bounds of the items of `kind` (LINE, USAGE, DAY) on the days `start`..`end`."""
    return f"{kind}#{start.isoformat()}#", f"{kind}#{end.isoformat()}#~"  # "~" sorts after every hex digit


def _sort_key(kind: str, row: BilledLine | BilledUsage | ReconciledDay) -> str:
    digest = hashlib.sha256(json.dumps(list(row.key), ensure_ascii=False).encode()).hexdigest()[:32]
    return f"{kind}#{row.day.isoformat()}#{digest}"


def line_item(line: BilledLine) -> dict[str, Any]:
    return to_item(line, billed_partition(month_of(line.day), line.source), _sort_key(LINE, line))


def usage_item(row: BilledUsage) -> dict[str, Any]:
    return to_item(row, billed_partition(month_of(row.day), row.source), _sort_key(USAGE, row))


def reconciled_item(day: ReconciledDay) -> dict[str, Any]:
    return to_item(day, reconciled_partition(month_of(day.day)), _sort_key(DAY, day))


# -------------------------------------------------------------------------------------------------- item codec

# Every field of the billed shapes by its annotation: a field added later with one of these types is stored without
# a change here; one of another type fails at import, not silently.
_ENCODERS: dict[str, Any] = {
    "str": lambda v: {"S": v},
    "date": lambda v: {"S": v.isoformat()},
    "datetime": lambda v: {"S": format_timestamp(v)},
    "bool": lambda v: {"BOOL": v},
    "int": lambda v: {"N": str(v)},
    "int | None": lambda v: None if v is None else {"N": str(v)},
    "Decimal": lambda v: {"N": number_text(v)},
    "Decimal | None": lambda v: None if v is None else {"N": number_text(v)},
}
_DECODERS: dict[str, Any] = {
    "str": lambda a: a["S"],
    "date": lambda a: date.fromisoformat(a["S"]),
    "datetime": lambda a: parse_timestamp(a["S"]),
    "bool": lambda a: a["BOOL"],
    "int": lambda a: int(a["N"]),
    "int | None": lambda a: int(a["N"]),
    "Decimal": lambda a: Decimal(a["N"]),  # exact, whatever the context
    "Decimal | None": lambda a: Decimal(a["N"]),
}
_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {
    shape: tuple((f.name, str(f.type)) for f in dataclasses.fields(shape))
    for shape in (BilledLine, BilledUsage, ReconciledDay)
}
_unknown = {kind for fields in _FIELDS.values() for _, kind in fields} - set(_ENCODERS)
if _unknown:  # pragma: no cover - a new field type needs a codec entry
    raise TypeError(f"dynamodb_billed: no DynamoDB codec for field types {sorted(_unknown)}")


def to_item(row: BilledLine | BilledUsage | ReconciledDay, pk: str, sk: str) -> dict[str, Any]:
    """The row as a low-level item: every field under its own name (None ones left out), exact Numbers."""
    item: dict[str, Any] = {PK: {"S": pk}, SK: {"S": sk}}
    for name, kind in _FIELDS[type(row)]:
        value = _ENCODERS[kind](getattr(row, name))
        if value is not None:
            item[name] = value
    return item


def from_item(shape: type[Shape], item: Mapping[str, Any]) -> Shape:
    """Inverse of `to_item` (a field absent from the item takes its default: None, or a newer field's default)."""
    values = {name: _DECODERS[kind](item[name]) for name, kind in _FIELDS[shape] if name in item}
    return shape(**values)


# -------------------------------------------------------------------------------------------------- documents


def compress(payload: bytes) -> bytes:
    return zlib.compress(payload, 6)


def split(data: bytes) -> list[bytes]:
    """`data` in pieces of at most `RUN_CHUNK_BYTES`."""
    return [data[i : i + RUN_CHUNK_BYTES] for i in range(0, len(data), RUN_CHUNK_BYTES)] or [b""]


def join(chunks: Sequence[bytes]) -> bytes:
    """The run's JSON from its compressed pieces (zlib's checksum refuses a missing or mixed piece)."""
    return zlib.decompress(b"".join(chunks))
