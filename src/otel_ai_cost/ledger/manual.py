"""Spend that no SDK call shows: manual entries (`otel-ai-cost record`) and `usage.jsonl` imports.

A subscription, or any spend no call shows and no bill covers: recorded as ledger records marked
`record_source=manual` (or `import`), with the figure's origin in `cost_source` (`subscription`, or the `source` of
an imported line). A figure read off a provider's dashboard or invoice (`source` `dashboard` or `invoice`) is what
the provider BILLED: `import_usage_file` stores such lines as billed lines (`otel_ai_cost.reconcile.manual`), the
side `reconcile` compares the records with, never as spend.

**Identity from content.** A manual or imported record has no span, so its (`trace_id`, `span_id`) is derived
from its content: the SHA-256 of the record's canonical JSON (every field but the ids), first 32 hex digits the
trace id, next 16 the span id. Recording the same entry twice, or importing the same file (or a file sharing
lines with an earlier one) again, changes nothing: the store sees the same identity and counts it once.

**The `usage.jsonl` format** (one JSON object per line; blank lines are skipped):

| key | required | meaning |
|-----|----------|---------|
| `timestamp` | yes | ISO 8601 with a timezone (`2026-01-30T14:00:00Z`), or a UTC day (`2026-01-30`) |
| `service` | yes | the provider: `openai`, `anthropic`, ... |
| `cost_usd` | unless tokens and model are given | the amount in USD, read exactly (`45.23` stays 45.23) |
| `source` | no | where the figure comes from: `dashboard`, `invoice`, ... (default `import`) |
| `model` | no | the model |
| `tokens_input`, `tokens_output` (or `input_tokens`, `output_tokens`) | no | token counts |
| `environment` | no | default: the current deployment environment (`ENVIRONMENT`, CI, else `development`) |
| `note` | no | free text |
| `currency` | no | must be `USD` |

A line with tokens and a model but no `cost_usd` is priced from the catalog, exactly like an instrumented call;
if the catalog has no price it is recorded as *unpriced* (its cost unknown, never zero). Unknown keys are an
error (a misspelt `cost_usd` must not import as a free call).

**Bounds** (a line beyond one is a `file:line:` error): a line is at most `MAX_LINE_CHARS` characters; an amount
is plain decimal notation (no `1_000`, `NaN`, `Infinity`; `otel_ai_cost.decimal_text`); the amount, token counts,
texts and timestamp are held to the ledger's record bounds (`otel_ai_cost.ledger.limits`: at most 10,000,000 USD
per entry, 10**9 tokens per count, a time from 2000 to 2100, 200 characters per name, 2,000 for a note), and every
record is checked against all of them (`limits.check_record`) before anything is written. JSON nested too
deeply to read is an error of its line, not a crash.

**What "the same entry" is.** `record` without `--date` records the entry on today's UTC day (00:00 UTC), not at
the current instant: the same figure recorded twice on a day is one entry. The identity covers the day (or the
instant given), the amount (by value: 45.230 is 45.23), provider, model, environment, source and note; any of
them different makes another entry.

**Archive lines** (`otel-ai-cost export jsonl`, `otel_ai_cost.exports.jsonl`): a line holding `schema_version` and
`trace_id` is a whole ledger record (`LedgerRecord.to_dict()`), read back without loss by `archive_record`: its own
identity (never one derived from content), every field as it was, amounts as exact decimal text. Its keys are the
record's fields (and the derived `day`, which must agree with the timestamp); an unknown key, a missing identity,
a value of the wrong type or one beyond the ledger's bounds is an error of its line. `--environment` does not apply
to them (a record names its environment), and a record from a dashboard or invoice entry stays a record. A file
may mix both kinds of line. An archive line may be up to `MAX_ARCHIVE_LINE_CHARS` characters (the longest a record
at every bound makes).

**All or nothing, then in batches.** Every line is validated before anything is written; a bad line fails the
whole file with `file:line: what is wrong`. The valid records are then written `IMPORT_BATCH` at a time, with
progress reported after each batch. If the ledger becomes unavailable partway, `ImportInterrupted` says how many
of how many records were written; re-running the same import is safe (the records already written are
recognised by their identity and change nothing). A record the store itself refuses (`InvalidRecord`) is
rejected alone with its line and reason, and the rest are stored. Ctrl-C while writing raises `ImportCancelled`
(a KeyboardInterrupt) with the same counts: each batch is one store transaction (or, on DynamoDB, transactions of
records with their running totals), so the ledger holds whole records with their totals, and re-running is safe.
"""

from __future__ import annotations

import hashlib
import json
import re
import time as clock
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple

from otel_ai_cost.contract import CostSource, PricingStatus, Record, RecordSource
from otel_ai_cost.decimal_text import parse_decimal
from otel_ai_cost.ledger import limits
from otel_ai_cost.ledger.isolation import write_isolating
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.store import LedgerStore, StoreUnavailable
from otel_ai_cost.when import NoTimezoneError, parse_when

__all__ = [
    "IMPORT_BATCH",
    "MANUAL_SERVICE",
    "MANUAL_SOURCES",
    "MAX_ARCHIVE_LINE_CHARS",
    "MAX_ENTRY_AMOUNT",
    "MAX_LINE_CHARS",
    "MAX_TEXT_CHARS",
    "MAX_TOKENS",
    "ImportCancelled",
    "ImportInterrupted",
    "ImportResult",
    "UsageFileError",
    "archive_record",
    "content_identity",
    "import_usage_file",
    "is_archive_line",
    "manual_record",
    "parse_usage_lines",
    "read_usage_file",
]

MANUAL_SOURCES = ("dashboard", "invoice", "subscription")
# Figures read off a provider's bill: stored as billed lines (`otel_ai_cost.reconcile.manual`), never as spend.
BILLED_SOURCES = ("dashboard", "invoice")
MANUAL_SERVICE = "manual"  # the `service` of records that no instrumented service produced
_IMPORT_SOURCE = "import"
_MAX_PROBLEMS_SHOWN = 20
IMPORT_BATCH = 500  # records per store write of an import: progress after each, and a failure loses no more
MAX_LINE_CHARS = 65_536  # one usage.jsonl line
# One archive line: a record at every text bound (about 30,000 characters), each character escaped (6 characters
# for a control character) still fits.
MAX_ARCHIVE_LINE_CHARS = 262_144
_ARCHIVE_LINE_START = '{"trace_id":'  # how `archive_line` begins: only such a line may be longer
MAX_ENTRY_AMOUNT = limits.MAX_AMOUNT_USD  # USD per entry (the ledger's bound per record)
MAX_TOKENS = limits.MAX_TOKENS  # per token count of one line
# Longest text per key of a usage.jsonl line (`record`'s options are the same fields): the bound of the record
# field each key fills.
MAX_TEXT_CHARS = {
    "service": limits.TEXT_LIMITS[Record.PROVIDER],
    "model": limits.TEXT_LIMITS[Record.REQUEST_MODEL],
    "source": limits.TEXT_LIMITS[Record.COST_SOURCE],
    "environment": limits.TEXT_LIMITS[Record.ENVIRONMENT],
    "note": limits.TEXT_LIMITS[Record.NOTE],
    "currency": len("USD"),
}
ProgressCallback = Callable[[int, int], None]  # (records done, records in the file)

_TOKEN_KEYS = {
    "tokens_input": "input_tokens",
    "tokens_output": "output_tokens",
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
}
_KNOWN_KEYS = {"timestamp", "service", "cost_usd", "source", "model", "environment", "note", "currency", *_TOKEN_KEYS}


_NOT_CONTENT = {Record.TRACE_ID, Record.SPAN_ID, Record.DAY, Record.SCHEMA_VERSION}  # not part of the identity


class UsageFileError(ValueError):
    """A usage file with bad lines; `problems` holds (line number, what is wrong). Nothing was imported."""

    def __init__(self, path: str, problems: Sequence[tuple[int, str]]) -> None:
        self.path = path
        self.problems = list(problems)
        shown = [f"{path}:{line}: {problem}" for line, problem in self.problems[:_MAX_PROBLEMS_SHOWN]]
        if len(self.problems) > _MAX_PROBLEMS_SHOWN:
            shown.append(f"... and {len(self.problems) - _MAX_PROBLEMS_SHOWN} more bad lines")
        super().__init__("\n".join(shown) + "\nnothing was imported")


@dataclass(frozen=True, slots=True)
class ImportResult:
    new: int  # records written now
    already_recorded: int  # records whose identity was already in the ledger (or repeated in the file)
    rejected: tuple[tuple[int, str], ...] = ()  # (line, reason) of records the store refused (InvalidRecord)
    billed: int = 0  # lines whose source is dashboard or invoice: stored as billed figures, not as spend


class ImportInterrupted(Exception):
    """The ledger became unavailable partway through an import: `done` of `total` records were written (`new`
    of them new) before it. Re-running the same import is safe: what was written changes nothing."""

    def __init__(self, path: str, progress: ImportResult, total: int, cause: Exception) -> None:
        self.path, self.total, self.cause = path, total, cause
        self.new, self.already_recorded = progress.new, progress.already_recorded
        self.rejected = progress.rejected
        self.done = progress.new + progress.already_recorded + len(progress.rejected)
        rejected = f", {len(self.rejected)} rejected" if self.rejected else ""
        super().__init__(
            f"{path}: stopped after {self.done} of {total} records ({self.new} new, {self.already_recorded} "
            f"already recorded{rejected}): the ledger is unavailable: {cause}\n"
            "re-running the same import is safe: the records already written are recognised and change nothing"
        )


class ImportCancelled(KeyboardInterrupt):
    """Ctrl-C while an import was writing: `done` of `total` records were written (`new` of them new) before it.
    The ledger is consistent (whole batches, each with its running totals) and re-running the same import is
    safe. A KeyboardInterrupt, so a caller that does not know it stops as on any Ctrl-C."""

    def __init__(self, path: str, progress: ImportResult, total: int) -> None:
        self.path, self.total = path, total
        self.new, self.already_recorded, self.rejected = progress.new, progress.already_recorded, progress.rejected
        self.done = progress.new + progress.already_recorded + len(progress.rejected)
        rejected = f", {len(self.rejected)} rejected" if self.rejected else ""
        super().__init__(
            f"{path}: interrupted after {self.done} of {total} records ({self.new} new, {self.already_recorded} "
            f"already recorded{rejected}); the ledger is consistent.\n"
            "re-running the same import is safe: the records already written are recognised and change nothing"
        )


def content_identity(record: LedgerRecord) -> tuple[str, str]:
    """(trace_id, span_id) derived from every field but the ids: the SHA-256 of the canonical JSON."""
    content = {k: v for k, v in record.to_dict().items() if k not in _NOT_CONTENT}
    if content.get(Record.COMPUTED_AMOUNT) is None:  # a field added later: absent, identities stay as they were
        content.pop(Record.COMPUTED_AMOUNT, None)
    for added in (Record.API_KEY_FINGERPRINT, Record.CALL_SITE):  # the same for the fields of schema version 5
        if not content.get(added):
            content.pop(added, None)
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return digest[:32], digest[32:48]


def _with_identity(record: LedgerRecord) -> LedgerRecord:
    trace_id, span_id = content_identity(record)
    return replace(record, trace_id=trace_id, span_id=span_id)


def manual_record(
    *,
    provider: str,
    amount: Decimal | str | int,
    model: str = "",
    environment: str | None = None,
    when: datetime | date | str | None = None,
    note: str = "",
    source: str = "dashboard",
    service: str = MANUAL_SERVICE,
) -> LedgerRecord:
    """A manual entry (`record_source=manual`) with its content-derived identity.

    `when`: a timezone-aware datetime, a day (recorded at 00:00 UTC), or their ISO text; default today's UTC day,
    so that the same entry recorded twice on a day is one entry (see the module documentation).
    `environment`: default the current deployment environment. Raises ValueError with what is wrong.
    """
    if not provider.strip():
        raise ValueError("the provider must not be empty")
    if source not in MANUAL_SOURCES:
        raise ValueError(f"source must be one of {', '.join(MANUAL_SOURCES)}, got {source!r}")
    value = _amount(amount)
    timestamp = limits.check_timestamp("date", _when(datetime.now(timezone.utc).date() if when is None else when))
    entry = _with_identity(
        LedgerRecord(
            trace_id="",
            span_id="",
            timestamp=timestamp,
            environment=environment or _current_environment(),
            service=service,
            provider=provider.strip(),
            request_model=model.strip(),
            amount=value,
            cost_source=source,
            pricing_status=PricingStatus.PRICED.value,
            record_source=RecordSource.MANUAL.value,
            note=note,
        )
    )
    limits.check_record(entry)  # OutOfBounds is a ValueError: the caller's "what is wrong"
    return entry


def parse_usage_lines(
    lines: Sequence[str], *, path: str = "<usage>", environment: str | None = None
) -> list[LedgerRecord]:
    """Validates every line, then returns one record per non-blank line; raises `UsageFileError` listing
    every bad line (so nothing from a file with a bad line is ever half-imported)."""
    return [line.record for line in _numbered_records(lines, path=path, environment=environment)]


class _Line(NamedTuple):
    number: int
    record: LedgerRecord
    archived: bool  # an archive line: the record as it was, never a billed figure


def _numbered_records(lines: Sequence[str], *, path: str, environment: str | None) -> list[_Line]:
    """One `_Line` per non-blank line, every line validated first (see `parse_usage_lines`)."""
    default_environment = environment or _current_environment()
    records: list[_Line] = []
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = _parse_line(line)
            archived = is_archive_line(data)
            record = archive_record(data) if archived else _with_identity(_priced(_validate(data, default_environment)))
            limits.check_record(record)  # every bound of the ledger, stated once, before anything is written
            records.append(_Line(number, record, archived))
        except ValueError as exc:  # limits.OutOfBounds is one
            problems.append((number, str(exc)))
        except Exception as exc:  # whatever one line does, it is that line's error, not a crash
            problems.append((number, f"cannot read this line ({type(exc).__name__}: {exc})"))
    if problems:
        raise UsageFileError(path, problems)
    return records


def read_usage_file(path: str | Path, *, environment: str | None = None) -> list[LedgerRecord]:
    """The records of a `usage.jsonl` file (see the module documentation), all lines validated first."""
    return [line.record for line in _read_numbered(path, environment=environment)]


def _read_numbered(path: str | Path, *, environment: str | None) -> list[_Line]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageFileError(str(path), [(text_line(exc), "not UTF-8 text")]) from exc
    return _numbered_records(text.splitlines(), path=str(path), environment=environment)


def import_usage_file(
    store: LedgerStore,
    path: str | Path,
    *,
    environment: str | None = None,
    batch_size: int = IMPORT_BATCH,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Imports a `usage.jsonl` file, `batch_size` records per store write; importing it again changes nothing.

    Raises `UsageFileError` (a bad line: nothing written), `ImportInterrupted` (the ledger failed partway) or
    `ImportCancelled` (Ctrl-C while writing). `on_progress(done, total)` is called after each batch. Records the
    store refuses are in `rejected`. Archive lines (`otel-ai-cost export jsonl`) keep their own identity.
    """
    lines = _read_numbered(path, environment=environment)
    billed = [line.record for line in lines if _is_billed(line)]
    if billed:  # the billed side of the comparison (`otel_ai_cost.reconcile.manual`), never tracked spend
        from otel_ai_cost.reconcile.manual import billed_line_of

        store.write_billed([billed_line_of(record) for record in billed])
    numbered = [(line.number, line.record) for line in lines if not _is_billed(line)]
    new = already = 0
    rejected: list[tuple[int, str]] = []
    for start in range(0, len(numbered), max(1, batch_size)):
        batch = numbered[start : start + max(1, batch_size)]
        try:
            written, duplicates, refused = _write_batch(store, batch)
        except StoreUnavailable as exc:
            progress = ImportResult(new, already, tuple(rejected))
            raise ImportInterrupted(str(path), progress, len(numbered), exc) from exc
        except KeyboardInterrupt as interrupt:  # the batch's transaction was rolled back (or commits whole)
            raise ImportCancelled(str(path), ImportResult(new, already, tuple(rejected)), len(numbered)) from interrupt
        new, already, rejected = new + written, already + duplicates, rejected + refused
        if on_progress is not None:
            try:
                on_progress(start + len(batch), len(numbered))
            except KeyboardInterrupt as interrupt:  # after the batch: it is counted
                progress = ImportResult(new, already, tuple(rejected))
                raise ImportCancelled(str(path), progress, len(numbered)) from interrupt
    return ImportResult(new=new, already_recorded=already, rejected=tuple(rejected), billed=len(billed))


def _is_billed(line: _Line) -> bool:
    """A usage.jsonl line read off a dashboard or invoice; an archived record stays a record, whatever its source."""
    return not line.archived and line.record.cost_source in BILLED_SOURCES


def _write_batch(
    store: LedgerStore, batch: Sequence[tuple[int, LedgerRecord]]
) -> tuple[int, int, list[tuple[int, str]]]:
    """(new, duplicates, rejected lines) of one batch: a record the store can never hold is rejected alone
    (`ledger/isolation.py`); StoreUnavailable rises."""
    line_of = {record.key: line for line, record in batch}
    outcome = write_isolating(store, [record for _, record in batch], sleep=clock.sleep)
    refused = [(line_of[record.key], f"the ledger refused this record: {error}") for record, error in outcome.rejected]
    return outcome.written, outcome.duplicates, sorted(refused)


def text_line(exc: UnicodeDecodeError) -> int:
    """The 1-based line of an undecodable byte."""
    return exc.object[: exc.start].count(b"\n") + 1


# -- validation ---------------------------------------------------------------------------------------------


def _parse_line(line: str) -> dict[str, Any]:
    """One line's JSON object, numbers exact (never binary floats); ValueError saying what is wrong."""
    limit = MAX_ARCHIVE_LINE_CHARS if line.startswith(_ARCHIVE_LINE_START) else MAX_LINE_CHARS
    if len(line) > limit:
        raise ValueError(f"the line is longer than {limit:,} characters ({len(line):,})")
    try:
        data = json.loads(line, parse_float=_json_float, parse_int=_json_int, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ValueError("nested too deeply to be a usage line (JSON beyond the parser's recursion limit)") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _validate(data: Mapping[str, Any], default_environment: str) -> dict[str, Any]:
    """The fields of a `usage.jsonl` line (the seeds' format)."""
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; accepted: {', '.join(sorted(_KNOWN_KEYS))}")

    fields: dict[str, Any] = {}
    if "timestamp" not in data:
        raise ValueError("missing 'timestamp'")
    fields["timestamp"] = limits.check_timestamp("timestamp", _when(data["timestamp"], key="timestamp"))
    fields["provider"] = _text(data, "service", required=True)
    fields["model"] = _text(data, "model")
    fields["source"] = _text(data, "source") or _IMPORT_SOURCE
    fields["environment"] = _text(data, "environment") or default_environment
    fields["note"] = _text(data, "note")
    currency = _text(data, "currency")
    if currency and currency != "USD":
        raise ValueError(f"currency must be USD, got {currency!r}")
    tokens: dict[str, int] = {}
    for key, name in _TOKEN_KEYS.items():
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key} must be a non-negative integer, got {_shown(value)}")
            if value > MAX_TOKENS:
                raise ValueError(f"{key} must be at most {MAX_TOKENS:,}, got {value}")
            if name in tokens:
                raise ValueError(f"{key} repeats another key's token count")
            tokens[name] = value
    fields["tokens"] = tokens
    if "cost_usd" in data:
        fields["amount"] = _amount(data["cost_usd"], key="cost_usd")
    elif not tokens:
        raise ValueError("no 'cost_usd' and no token counts: nothing to record")
    elif not fields["model"]:
        raise ValueError("token counts without 'cost_usd' need a 'model' to be priced")
    return fields


# -- archive lines (`otel-ai-cost export jsonl`) ------------------------------------------------------------

_RECORD_FIELDS = {f.name for f in dataclass_fields(LedgerRecord)}
_ARCHIVE_KEYS = _RECORD_FIELDS | {Record.DAY}
_ARCHIVE_REQUIRED = (Record.TRACE_ID, Record.SPAN_ID, Record.SCHEMA_VERSION, Record.TIMESTAMP, Record.ENVIRONMENT,
                     Record.SERVICE, Record.PROVIDER)  # fmt: skip
_PLAIN_DECIMAL = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def is_archive_line(data: Mapping[str, Any]) -> bool:
    """True for a line of an archive (`otel-ai-cost export jsonl`): a whole record, known by `schema_version` and
    `trace_id`, which no `usage.jsonl` line has."""
    return Record.SCHEMA_VERSION in data and Record.TRACE_ID in data


def archive_record(data: Mapping[str, Any]) -> LedgerRecord:
    """The record of an archive line, exactly as it was exported: its own identity, every field, amounts as the
    exact decimal text. Raises ValueError (what is wrong) for an unknown or missing key, a value of the wrong type
    or one beyond the ledger's bounds (`limits.check_record`, which the caller applies)."""
    unknown = sorted(set(data) - _ARCHIVE_KEYS)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(unknown)} in an archive line (a ledger record's fields only; written by a "
            "newer otel-ai-cost?)"
        )
    missing = [key for key in _ARCHIVE_REQUIRED if key not in data]
    if missing:
        raise ValueError(f"an archive line without {', '.join(missing)}")
    values = {key: value for key, value in data.items() if key in _RECORD_FIELDS}
    values[Record.TIMESTAMP] = _archived_timestamp(data[Record.TIMESTAMP])
    for key in (Record.AMOUNT, Record.COMPUTED_AMOUNT):
        values[key] = _archived_amount(key, data.get(key))
    if Record.DURATION_MS in data:
        values[Record.DURATION_MS] = _archived_duration(data[Record.DURATION_MS])
    if Record.TAGS in data and not isinstance(data[Record.TAGS], dict):
        raise ValueError(f"tags must be a JSON object of texts, got {_shown(data[Record.TAGS])}")
    for key, value in values.items():  # the rest are texts and counts: `limits.check_record` says which is wrong
        if value is None and key not in (Record.AMOUNT, Record.COMPUTED_AMOUNT):
            raise ValueError(f"{key} must not be null")
    record = LedgerRecord(**values)
    day = data.get(Record.DAY)
    if day is not None and day != record.day:
        raise ValueError(f"day {_shown(day)} is not the UTC day of the timestamp ({record.day})")
    return record


def _archived_timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"timestamp must be ISO 8601 text, got {_shown(value)}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp is not an ISO 8601 time: {_shown(value)}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp must include a timezone, got {_shown(value)}")
    return limits.check_timestamp(Record.TIMESTAMP, parsed.astimezone(timezone.utc))


def _archived_amount(key: str, value: Any) -> Decimal | None:
    """Exact decimal text as written (`0.10` stays `0.10`), or null; a JSON number is read exactly too."""
    if value is None:
        return None
    if isinstance(value, Decimal) or (isinstance(value, int) and not isinstance(value, bool)):
        return Decimal(value)
    if not isinstance(value, str) or not _PLAIN_DECIMAL.fullmatch(value):
        raise ValueError(f'{key} must be exact decimal text (e.g. "0.000027") or null, got {_shown(value)}')
    return Decimal(value)


def _archived_duration(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ValueError(f"duration_ms must be a number, got {_shown(value)}")
    return limits.check_duration_ms(Record.DURATION_MS, float(value))  # the float the record had: repr round-trips


def _priced(fields: Mapping[str, Any]) -> LedgerRecord:
    tokens: dict[str, int] = fields["tokens"]
    amount = fields.get("amount")
    cost_source = fields["source"]
    status = PricingStatus.PRICED.value
    version = tier = ""
    if "amount" not in fields:  # usage only: price it as the instrumentation would
        from otel_ai_cost.pricing.catalog import default_catalog
        from otel_ai_cost.pricing.usage import Usage

        quote = default_catalog().quote(fields["provider"], fields["model"], Usage(**tokens), at=fields["timestamp"])
        amount, status, version, tier = quote.amount, quote.status.value, quote.version, quote.tier
        cost_source = CostSource.LOCAL.value
    return LedgerRecord(
        trace_id="",
        span_id="",
        timestamp=fields["timestamp"],
        environment=fields["environment"],
        service=MANUAL_SERVICE,
        provider=fields["provider"],
        request_model=fields["model"],
        input_tokens=tokens.get("input_tokens", 0),
        output_tokens=tokens.get("output_tokens", 0),
        amount=amount,
        cost_source=cost_source,
        pricing_status=status,
        pricing_version=version,
        pricing_tier=tier,
        record_source=RecordSource.IMPORT.value,
        note=fields["note"],
    )


def _text(data: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise ValueError(f"missing {key!r}")
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValueError(f"{key} must be a non-empty string, got {_shown(value)}")
    return _bounded_text(key, value.strip())


def _bounded_text(key: str, text: str) -> str:
    limit = MAX_TEXT_CHARS[key]
    if len(text) > limit:
        raise ValueError(f"{key} is longer than {limit} characters ({len(text):,})")
    return text


def _amount(value: Any, *, key: str = "amount") -> Decimal:
    """An exact, bounded, non-negative amount: a Decimal, an int, or decimal text (never a binary float), by
    value, not spelling: 45.230 and 45.23 are the same entry (and the same identity)."""
    return parse_decimal(value, maximum=MAX_ENTRY_AMOUNT, what=key)


def _json_float(text: str) -> Decimal:
    """A JSON number with a fraction or exponent, exactly (never through a binary float)."""
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent beyond what Decimal holds
        raise ValueError(f"a number beyond every bound of a usage line: {_shown(text)}") from None


def _json_int(text: str) -> int:
    """A JSON integer; one of more digits than any bound here is refused before Python converts it."""
    if len(text) > 40:
        raise ValueError(f"a number of {len(text):,} digits, beyond every bound of a usage line")
    return int(text)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _when(value: Any, *, key: str = "date") -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{key} must include a timezone, got {value.isoformat()}")
        return value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be an ISO 8601 text, got {_shown(value)}")
    try:
        return parse_when(value, naive_is_utc=False)
    except NoTimezoneError:
        raise ValueError(f"{key} must include a timezone (e.g. 2026-01-30T14:00:00Z), got {_shown(value)}") from None
    except ValueError:
        raise ValueError(f"{key} is not an ISO 8601 date or time: {_shown(value)}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _current_environment() -> str:
    from otel_ai_cost.attribution import detect_environment

    return detect_environment()
