"""Reading a legacy tracker table to the end, in parallel segments, resumably, into the ledger.

```python
client = legacy_client(region="us-east-1", endpoint_url=None, segments=4)
result = import_legacy_table(client, "ReceiptsTable-prod-xyz789", store, defaults=MappingDefaults(...),
                             segments=4, resume_file="legacy-import.json")
print(result.imported, result.already_present, result.not_imported)
```

**The Scan.** One paginated `Scan` per segment with `FilterExpression TYPE = AIUsageMetric` (the receipts, words
and jobs sharing the table are never returned), following `LastEvaluatedKey` until DynamoDB returns none. With
`segments` N > 1 the table is read as N parallel segments (`Segment`/`TotalSegments`), one thread each; pages are
mapped and written by the calling thread, one page at a time, so the ledger store is only ever used from one
thread. `page_size` is the Scan's `Limit` (items evaluated per request, before the filter; default DynamoDB's
1 MB pages). Throttling and 5xx answers are retried with backoff (`ledger/dynamodb_retry.py`); a table that keeps
failing stops the import with `LegacyImportInterrupted`.

**Identity makes re-runs safe.** Every record's identity comes from the item's `requestId`
(`legacy_item.legacy_identity`): importing a table again, whole or in part, writes nothing new; the result counts
those records as `already_present` (and, of those, `conflicts` whose stored content differs: kept as first
imported).

**Checkpoints make re-runs short.** With `resume_file`, the import keeps each segment's position (its last
`LastEvaluatedKey`, or "done") in that JSON file, saved (atomically: a new file renamed over the old) after
each page's records are written. An import stopped by Ctrl-C, a ledger outage or a failing table continues where
each segment stopped when run again with the same file: the page in flight is read again, and its records
already written are recognised. The file names its table and segment count: another table is refused, and the
segment count is the file's (another one given is refused). When every segment is done the file is removed, so
running again reads the whole table again (a no-op). Without `resume_file` nothing is kept: an interrupted import
starts over, just as safely.

**Nothing is dropped silently.** An item that cannot be a record (`legacy_item.UnmappableItem`) and a record the
ledger refuses (`store.InvalidRecord`, e.g. a cost of more than 24 decimal places in the DynamoDB ledger) are
counted and kept as `problems` with the item's PK and SK (the first `MAX_PROBLEMS_KEPT`; beyond that counted only);
the page still counts as read, so a resumed import does not report them again, but a full re-run does.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otel_ai_cost.ledger import dynamodb_retry as retry
from otel_ai_cost.ledger.isolation import write_isolating
from otel_ai_cost.ledger.manual import IMPORT_BATCH
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.store import LedgerStore, StoreUnavailable
from otel_ai_cost.migrate.legacy_item import (
    LEGACY_TYPE,
    TYPE_ATTRIBUTE,
    ItemKeys,
    MappingDefaults,
    UnmappableItem,
    is_legacy_metric,
    item_keys,
    map_item,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "MAX_PROBLEMS_KEPT",
    "MAX_SEGMENTS",
    "Checkpoint",
    "CheckpointError",
    "LegacyImportCancelled",
    "LegacyImportInterrupted",
    "LegacyImportResult",
    "LegacyTableError",
    "Problem",
    "ScanPage",
    "check_legacy_table",
    "import_legacy_table",
    "legacy_client",
    "scan_pages",
]

CHECKPOINT_FORMAT = "otel-ai-cost import legacy-dynamodb checkpoint"
CHECKPOINT_VERSION = 1
MAX_SEGMENTS = 64  # one thread each; DynamoDB allows more, but a table this command reads needs far fewer
MAX_PROBLEMS_KEPT = 10_000  # problems kept with their keys; beyond, counted only
SCAN_POLICY = retry.RetryPolicy.for_deadline(60.0, max_attempts=10)  # per Scan request
_QUEUE_PAGES_PER_SEGMENT = 2  # pages read ahead per segment while the ledger writes
_POLL_S = 0.2  # how often blocked queue operations look for a stop


class LegacyTableError(Exception):
    """The legacy table cannot be read (missing, access denied, unreachable, failing beyond the retries)."""


class CheckpointError(ValueError):
    """A resume file that is not one, or that belongs to another import (another table, segment count)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """An item that was not imported: its keys and why."""

    keys: ItemKeys
    reason: str

    def __str__(self) -> str:
        return f"{self.keys}: {self.reason}"


@dataclass
class LegacyImportResult:
    """What an import (this run) did."""

    scanned: int = 0  # AIUsageMetric items read
    imported: int = 0  # records new in the ledger
    already_present: int = 0  # records whose identity the ledger already had
    conflicts: int = 0  # of those, stored with other content (kept as first imported)
    unmappable: int = 0  # items that cannot be records
    refused: int = 0  # records the ledger refused
    tags_trimmed: int = 0  # records whose metadata was cut to the ledger's tag bounds
    pages: int = 0
    resumed: bool = False  # continued from a resume file's positions
    finished: bool = False  # every segment read to its end
    problems: list[Problem] = field(default_factory=list)

    @property
    def not_imported(self) -> int:
        return self.unmappable + self.refused

    def _problem(self, keys: ItemKeys, reason: str) -> None:
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(Problem(keys, reason))


class LegacyImportInterrupted(Exception):
    """The ledger or the legacy table failed partway; `result` is how far this run got. Re-running (with the same
    resume file, if one was given) continues safely."""

    def __init__(self, result: LegacyImportResult, cause: Exception, resume_file: Path | None) -> None:
        self.result, self.cause, self.resume_file = result, cause, resume_file
        super().__init__(f"stopped after {result.scanned} items ({_counts(result)}): {cause}\n{_rerun(resume_file)}")


class LegacyImportCancelled(KeyboardInterrupt):
    """Ctrl-C; `result` is how far this run got (every page counted was written and, with a resume file, saved)."""

    def __init__(self, result: LegacyImportResult, resume_file: Path | None) -> None:
        self.result, self.resume_file = result, resume_file
        super().__init__(f"interrupted after {result.scanned} items ({_counts(result)})\n{_rerun(resume_file)}")


def _counts(result: LegacyImportResult) -> str:
    return f"{result.imported} imported, {result.already_present} already present, {result.not_imported} not imported"


def _rerun(resume_file: Path | None) -> str:
    if resume_file is not None:
        return f"run the same command again to continue from {resume_file}: records already written change nothing"
    return "re-running is safe (records already written change nothing); pass --resume-file to continue, not restart"


# -- the client and the table ----------------------------------------------------------------------------------


def legacy_client(*, region: str | None, endpoint_url: str | None, segments: int = 1) -> Any:
    """A low-level DynamoDB client (numbers stay text) from the usual AWS configuration: credentials from the
    environment, profile or role; the region `region`, else the profile's or `AWS_DEFAULT_REGION`, else
    `AWS_REGION`; the endpoint `endpoint_url`, else `AWS_ENDPOINT_URL_DYNAMODB`/`AWS_ENDPOINT_URL` (botocore)."""
    import boto3

    session = boto3.session.Session()
    # botocore reads AWS_DEFAULT_REGION and the profile; AWS_REGION is what Lambda and most CI runners set.
    region = region or session.region_name or os.environ.get("AWS_REGION", "").strip()
    if not region:
        raise LegacyTableError("no AWS region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION)")
    config = retry.botocore_config(
        max_pool_connections=max(10, segments),
        connect_timeout_s=SCAN_POLICY.connect_timeout_s,
        read_timeout_s=SCAN_POLICY.read_timeout_s,
    )
    return session.client("dynamodb", region_name=region, endpoint_url=endpoint_url or None, config=config)


def check_legacy_table(client: Any, table: str) -> None:
    """Raises `LegacyTableError` unless `table` exists and can be described (before anything is written)."""
    from botocore.exceptions import BotoCoreError, ClientError

    where = f"in region {client.meta.region_name}"
    try:
        client.describe_table(TableName=table)
    except ClientError as error:
        if retry.error_code(error) == "ResourceNotFoundException":
            raise LegacyTableError(f"no table {table} {where}: check --table and the region/endpoint") from None
        raise LegacyTableError(f"cannot read table {table} {where}: {retry.describe(error)}") from None
    except BotoCoreError as error:
        raise LegacyTableError(f"cannot reach DynamoDB for table {table} {where}: {error}") from None


# -- checkpoints ---------------------------------------------------------------------------------------------


@dataclass
class SegmentPosition:
    last_key: dict[str, Any] | None = None  # where the next Scan of the segment starts (None: at its start)
    done: bool = False


@dataclass
class Checkpoint:
    """Each segment's position in the table; saved to `path` (None: kept in memory only)."""

    table: str
    segments: int
    positions: list[SegmentPosition]
    path: Path | None = None
    resumed: bool = False

    @classmethod
    def open(cls, path: str | Path | None, table: str, segments: int | None) -> Checkpoint:
        """The positions saved in `path` for `table`, or fresh ones (`segments`, default 1) when it does not exist."""
        if path is None or not Path(path).exists():
            count = segments or 1
            _check_segments(count)
            return cls(table, count, [SegmentPosition() for _ in range(count)], Path(path) if path else None)
        path = Path(path)
        data = _read_checkpoint(path)
        if data["table"] != table:
            raise CheckpointError(f"{path} is the resume file of table {data['table']}, not {table}: use another file")
        saved = data["segments"]
        if segments is not None and segments != saved:
            raise CheckpointError(
                f"{path} was written with --segments {saved}; continue with --segments {saved} (or leave it out), "
                "or delete the file to start over"
            )
        positions = [SegmentPosition(p.get("last_key"), bool(p.get("done"))) for p in data["positions"]]
        return cls(table, saved, positions, path, resumed=True)

    @property
    def pending(self) -> list[int]:
        return [n for n, position in enumerate(self.positions) if not position.done]

    def advance(self, segment: int, last_key: dict[str, Any] | None) -> None:
        """Segment `segment` has written everything before `last_key` (None: the segment is done)."""
        self.positions[segment] = SegmentPosition(last_key, last_key is None)
        self.save()

    def save(self) -> None:
        if self.path is None:
            return
        document = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "table": self.table,
            "segments": self.segments,
            "positions": [{"last_key": p.last_key, "done": p.done} for p in self.positions],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(partial, self.path)  # never half a file: an interruption leaves the old one or the new one

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _check_segments(segments: int) -> None:
    if not 1 <= segments <= MAX_SEGMENTS:
        raise ValueError(f"segments must be 1..{MAX_SEGMENTS}, got {segments}")


def _read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not a readable resume file: {error}") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a resume file of `import legacy-dynamodb`")
    if data.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} has resume-file version {data.get('version')!r}; this version reads 1")
    segments, positions = data.get("segments"), data.get("positions")
    valid = (
        isinstance(data.get("table"), str)
        and isinstance(segments, int)
        and 1 <= segments <= MAX_SEGMENTS
        and isinstance(positions, list)
        and len(positions) == segments
        and all(isinstance(p, dict) and isinstance(p.get("last_key"), (dict, type(None))) for p in positions)
    )
    if not valid:
        raise CheckpointError(
            f"{path} is a damaged resume file (table, segments or positions); delete it to start over"
        )
    return data


# -- the scan ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanPage:
    """One Scan response of one segment: its AIUsageMetric items and where the segment continues (None: done)."""

    segment: int
    items: list[dict[str, Any]]
    last_key: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class _Failed:
    segment: int
    error: BaseException


def scan_pages(
    client: Any, checkpoint: Checkpoint, *, page_size: int | None = None, policy: retry.RetryPolicy = SCAN_POLICY
) -> Iterator[ScanPage]:
    """Every page of the checkpoint's pending segments, each segment's in order (segments interleave). Raises
    `LegacyTableError` when a segment keeps failing. Closing the iterator stops the reading threads."""
    pending = checkpoint.pending
    if not pending:
        return
    pages: queue.Queue[ScanPage | _Failed] = queue.Queue(maxsize=_QUEUE_PAGES_PER_SEGMENT * len(pending))
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_scan_segment,
            args=(client, checkpoint, segment, page_size, policy, pages, stop),
            name=f"legacy-scan-{segment}",
            daemon=True,  # a thread blocked in a Scan never keeps the process alive after Ctrl-C
        )
        for segment in pending
    ]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            try:
                page = pages.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if isinstance(page, _Failed):
                raise _table_error(checkpoint, page)
            if page.last_key is None:
                running -= 1
            yield page
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=1.0)


def _scan_segment(
    client: Any,
    checkpoint: Checkpoint,
    segment: int,
    page_size: int | None,
    policy: retry.RetryPolicy,
    pages: queue.Queue[ScanPage | _Failed],
    stop: threading.Event,
) -> None:
    request: dict[str, Any] = {
        "TableName": checkpoint.table,
        "FilterExpression": "#type = :type",
        "ExpressionAttributeNames": {"#type": TYPE_ATTRIBUTE},
        "ExpressionAttributeValues": {":type": {"S": LEGACY_TYPE}},
    }
    if checkpoint.segments > 1:
        request.update(Segment=segment, TotalSegments=checkpoint.segments)
    if page_size:
        request["Limit"] = page_size
    key = checkpoint.positions[segment].last_key
    what = f"Scan {checkpoint.table}" + (f" segment {segment}" if checkpoint.segments > 1 else "")
    try:
        while not stop.is_set():
            if key:
                request["ExclusiveStartKey"] = key
            response, _ = retry.call(policy, what, functools.partial(client.scan, **request))
            key = response.get("LastEvaluatedKey") or None
            items = [item for item in response.get("Items", []) if is_legacy_metric(item)]
            if not _put(pages, ScanPage(segment, items, key), stop) or key is None:
                return
    except Exception as error:  # the calling thread raises it
        _put(pages, _Failed(segment, error), stop)


def _put(pages: queue.Queue[ScanPage | _Failed], page: ScanPage | _Failed, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            pages.put(page, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _table_error(checkpoint: Checkpoint, failed: _Failed) -> LegacyTableError:
    error = failed.error
    if isinstance(error, (StoreUnavailable, retry.Refused)):  # the retry layer's words name the request
        return LegacyTableError(f"reading {checkpoint.table} failed: {error}")
    return LegacyTableError(f"reading {checkpoint.table} failed: {type(error).__name__}: {error}")


# -- the import ----------------------------------------------------------------------------------------------


def import_legacy_table(
    client: Any,
    table: str,
    store: LedgerStore,
    *,
    defaults: MappingDefaults,
    segments: int | None = None,
    resume_file: str | Path | None = None,
    page_size: int | None = None,
    policy: retry.RetryPolicy = SCAN_POLICY,
    on_page: Callable[[LegacyImportResult], None] | None = None,
) -> LegacyImportResult:
    """Imports every AIUsageMetric item of `table` into `store` (see the module documentation).

    `on_page(result)` is called after each page is written (and its position saved). Raises `CheckpointError`
    (before reading anything), `LegacyImportInterrupted` (the ledger or the table failed) or
    `LegacyImportCancelled` (Ctrl-C); both carry how far the run got."""
    checkpoint = Checkpoint.open(resume_file, table, segments)
    result = LegacyImportResult(resumed=checkpoint.resumed)
    pages = scan_pages(client, checkpoint, page_size=page_size, policy=policy)
    try:
        for page in pages:
            _write_page(store, page, defaults, result)
            checkpoint.advance(page.segment, page.last_key)
            result.pages += 1
            if on_page is not None:
                on_page(result)
    except (StoreUnavailable, LegacyTableError) as error:
        raise LegacyImportInterrupted(result, error, checkpoint.path) from error
    except KeyboardInterrupt as interrupt:
        raise LegacyImportCancelled(result, checkpoint.path) from interrupt
    finally:
        pages.close()  # stops the reading threads
    result.finished = True
    checkpoint.remove()
    return result


def _write_page(store: LedgerStore, page: ScanPage, defaults: MappingDefaults, result: LegacyImportResult) -> None:
    """Maps and writes one page; StoreUnavailable rises (the page's position is then not saved)."""
    records: list[LedgerRecord] = []
    keys_of: dict[tuple[str, str], ItemKeys] = {}
    trimmed = 0
    for item in page.items:
        try:
            mapped = map_item(item, defaults)
        except UnmappableItem as error:
            result.unmappable += 1
            result._problem(error.keys, error.reason)
            continue
        records.append(mapped.record)
        keys_of[mapped.record.key] = mapped.keys
        trimmed += 1 if mapped.tags_trimmed else 0
    for start in range(0, len(records), IMPORT_BATCH):
        outcome = write_isolating(store, records[start : start + IMPORT_BATCH])
        result.imported += outcome.written
        result.already_present += outcome.duplicates
        result.conflicts += outcome.conflicts
        for record, error in outcome.rejected:
            result.refused += 1
            keys = keys_of.get(record.key, item_keys({}))
            result._problem(keys, f"the ledger refused the record: {error}")
    result.scanned += len(page.items)
    result.tags_trimmed += trimmed
