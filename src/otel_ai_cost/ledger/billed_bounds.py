"""Every bound on the billed side of the ledger (billed lines, billed usage, reconciliation runs), in one place.

Both stores check what they are given against these before anything is written, so a bad line never reaches a
table and the SQLite and DynamoDB ledgers accept exactly the same things:

```python
from otel_ai_cost.ledger import billed_bounds

billed_bounds.validate_pull(pull)    # ValueError: a line outside the window; InvalidRecord: a value beyond a bound
billed_bounds.validate_lines(lines)  # write_billed's lines
billed_bounds.validate_run(run)      # write_reconciliation's run
```

A value beyond a bound raises `store.InvalidRecord` (a `ValueError`) naming the line, the field and the bound;
a pull whose rows do not belong to it (another source, a day outside its window, the same key twice) raises a
plain `ValueError`. Either way nothing of that call is written.

**The bounds, and why.**

- Text fields (`provider`, `source`, `account`, `model`, `token_class`, `tier`, `unit`, `environment`, a run's
  `run_id`, a day's `verdict`) at most `limits.MAX_NAME_CHARS` = 200 characters, as the records' names; `line`
  (the bill's own text: an OpenAI line item, an AWS usage type, a GCP SKU description) at most
  `MAX_LINE_CHARS` = 1,000; `note` at most `limits.MAX_NOTE_CHARS` = 2,000. Every text valid Unicode without
  NUL. `provider` and `source` must not be empty.
- `day` a `datetime.date` (not a datetime) from 2000 to 2099, the records' years (`limits.MIN_TIMESTAMP`,
  `limits.MAX_TIMESTAMP`). `period` is `day` or `month`; a `month` line is stored on the month's first day.
- `amount` a finite `Decimal` with |amount| <= `limits.MAX_AMOUNT_USD` (10**7 USD per line and day; negative
  amounts are credits) and at most `limits.MAX_AMOUNT_DECIMAL_PLACES` = 30 decimal places: at most 37
  significant digits, within DynamoDB's 38. (Billed amounts are never added into the DynamoDB running totals, so
  the totals' 18-place bound does not apply to them.)
- `quantity` None or a finite `Decimal` with |quantity| <= `MAX_QUANTITY` = 10**18 and at most
  `MAX_QUANTITY_DECIMAL_PLACES` = 20 places (38 digits at most).
- Billed usage counts (tokens per class, `requests`) integers from 0 to `MAX_BILLED_TOKENS` = 10**15. A usage row
  is a whole day of an organization's model, not one call, so the records' per-call `limits.MAX_TOKENS` (10**9)
  would refuse real bills (a busy organization passes 10**9 input tokens a day on one model); 10**15 tokens a
  day is beyond any bill, and a month of rows at the bound still sums within 64 bits.
- A reconciliation run: `run_id` non-empty, `finished_at` timezone-aware within the records' years, `start_day`
  <= `end_day`; each day's `tracked` and `billed` finite with |value| <= `MAX_RECONCILED_USD` = 10**15 USD (a
  day's sum over many records and lines, so larger than one line's bound), `unknown_cost_calls` from 0 to
  2**63-1, one day per (provider, day, environment); `document` a mapping of JSON-ready data (what `json.dumps`
  writes without help: dicts, lists, text, integers, finite floats, booleans, None; amounts already as text) of
  at most `MAX_RUN_DOCUMENT_BYTES` = 64 MiB as compact UTF-8 JSON (`run_codec`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from otel_ai_cost.ledger import limits
from otel_ai_cost.ledger.limits import OutOfBounds
from otel_ai_cost.ledger.store import InvalidRecord
from otel_ai_cost.reconcile.billed import BilledLine, BilledPull, BilledUsage
from otel_ai_cost.reconcile.runs import ReconciledDay, RunRecord

__all__ = [
    "MAX_BILLED_TOKENS",
    "MAX_LINE_CHARS",
    "MAX_QUANTITY",
    "MAX_QUANTITY_DECIMAL_PLACES",
    "MAX_RECONCILED_USD",
    "MAX_RUN_DOCUMENT_BYTES",
    "PERIODS",
    "describe_key",
    "validate_line",
    "validate_lines",
    "validate_pull",
    "validate_run",
    "validate_usage",
]

MAX_LINE_CHARS = 1000
MAX_BILLED_TOKENS = 10**15
MAX_QUANTITY = Decimal(10**18)
MAX_QUANTITY_DECIMAL_PLACES = 20
MAX_RECONCILED_USD = Decimal(10**15)
MAX_RUN_DOCUMENT_BYTES = 64 * 1024 * 1024
PERIODS = ("day", "month")

_NAMES = ("provider", "source", "account", "model", "token_class", "tier", "unit", "environment")
_USAGE_NAMES = ("provider", "source", "account", "model", "tier", "environment")
_USAGE_COUNTS = ("input_tokens", "cache_read_input_tokens", "cache_write_5m_input_tokens",
                 "cache_write_1h_input_tokens", "output_tokens")  # fmt: skip
_QUOTED = 40


def describe_key(key: Iterable[Any]) -> str:
    """A row's key for a message: each part quoted and shortened (a line's text can be long)."""
    parts = []
    for part in key:
        text = repr(part)
        parts.append(text if len(text) <= _QUOTED else f"{text[:_QUOTED]}...")
    return "(" + ", ".join(parts) + ")"


def validate_line(line: BilledLine) -> None:
    """Raises `InvalidRecord` naming the line and the field for a billed line beyond a bound."""
    try:
        _check_line(line)
    except OutOfBounds as error:
        raise InvalidRecord(f"billed line {_key_of(line)}: {error}") from None


def validate_usage(row: BilledUsage) -> None:
    """Raises `InvalidRecord` naming the row and the field for a billed usage row beyond a bound."""
    try:
        _check_usage(row)
    except OutOfBounds as error:
        raise InvalidRecord(f"billed usage {_key_of(row)}: {error}") from None


def validate_lines(lines: Sequence[BilledLine]) -> None:
    """`write_billed`'s lines: each within the bounds. The same key twice is allowed (the later one wins)."""
    for line in lines:
        if not isinstance(line, BilledLine):
            raise InvalidRecord(f"write_billed takes BilledLine values, got {type(line).__name__}")
        validate_line(line)


def validate_pull(pull: BilledPull) -> None:
    """A pull the stores can replace its window with: its rows are of its source and inside its window, each key
    once (`ValueError` otherwise), and each row within the bounds (`InvalidRecord`)."""
    try:
        limits.check_text("source", pull.source)
    except OutOfBounds as error:
        raise InvalidRecord(f"billed pull: {error}") from None
    if not pull.source:
        raise InvalidRecord("billed pull: source must not be empty")
    for name in ("start_day", "end_day"):
        try:
            _check_day(name, getattr(pull, name))
        except OutOfBounds as error:
            raise InvalidRecord(f"billed pull of {pull.source!r}: {error}") from None
    if pull.start_day > pull.end_day:
        raise ValueError(f"billed pull of {pull.source!r}: start_day {pull.start_day} is after end_day {pull.end_day}")
    for kind, rows, validate in (("line", pull.lines, validate_line), ("usage row", pull.usage, validate_usage)):
        seen: set[tuple[Any, ...]] = set()
        expected = BilledLine if kind == "line" else BilledUsage
        for row in rows:
            if not isinstance(row, expected):
                raise InvalidRecord(f"billed pull of {pull.source!r}: a {kind} must be a {expected.__name__}, "
                                    f"got {type(row).__name__}")  # fmt: skip
            validate(row)
            if row.source != pull.source:
                raise ValueError(
                    f"billed pull of {pull.source!r}: {kind} {_key_of(row)} has source {row.source!r}; a pull "
                    f"replaces the rows of its own source only, so each of its rows must carry it"
                )
            if not pull.start_day <= row.day <= pull.end_day:
                raise ValueError(
                    f"billed pull of {pull.source!r}: {kind} {_key_of(row)} is outside the pull's days "
                    f"{pull.start_day}..{pull.end_day}"
                )
            if row.key in seen:
                raise ValueError(f"billed pull of {pull.source!r}: {kind} {_key_of(row)} is in the pull twice; "
                                 "a source merges its rows of one key before returning them")  # fmt: skip
            seen.add(row.key)


def validate_run(run: RunRecord) -> None:
    """Raises `InvalidRecord` for a run beyond a bound, `ValueError` for a day repeated in it. The document's own
    bounds (JSON-ready, size) are checked where it is encoded (`run_codec.encode_run`)."""
    try:
        _check_name("run_id", run.run_id)
        _check_time("finished_at", run.finished_at)
        _check_day("start_day", run.start_day)
        _check_day("end_day", run.end_day)
    except OutOfBounds as error:
        raise InvalidRecord(f"reconciliation run {run.run_id!r:.60}: {error}") from None
    if run.start_day > run.end_day:
        raise InvalidRecord(f"reconciliation run {run.run_id!r}: start_day {run.start_day} is after end_day "
                            f"{run.end_day}")  # fmt: skip
    seen: set[tuple[str, str, str]] = set()
    for day in run.days:
        if not isinstance(day, ReconciledDay):
            raise InvalidRecord(f"reconciliation run {run.run_id!r}: days must be ReconciledDay values, got "
                                f"{type(day).__name__}")  # fmt: skip
        try:
            _check_reconciled_day(day)
        except OutOfBounds as error:
            raise InvalidRecord(f"reconciliation run {run.run_id!r}, day {describe_key(day.key)}: {error}") from None
        if day.key in seen:
            raise ValueError(f"reconciliation run {run.run_id!r}: day {describe_key(day.key)} is in the run twice")
        seen.add(day.key)


# ------------------------------------------------------------------------------------------------------ checks


def _key_of(row: BilledLine | BilledUsage) -> str:
    try:
        return describe_key(row.key)
    except (AttributeError, TypeError):  # a day that is not a date
        return describe_key((row.provider, row.day, row.source))


def _check_line(line: BilledLine) -> None:
    for name in _NAMES:
        _check_name(name, getattr(line, name))
    limits.check_text("line", line.line, MAX_LINE_CHARS)
    limits.check_text("note", line.note, limits.MAX_NOTE_CHARS)
    _check_required(line)
    _check_day("day", line.day)
    _check_amount("amount", line.amount, limits.MAX_AMOUNT_USD, limits.MAX_AMOUNT_DECIMAL_PLACES)
    if line.quantity is not None:
        _check_amount("quantity", line.quantity, MAX_QUANTITY, MAX_QUANTITY_DECIMAL_PLACES)
    _check_flag("final", line.final)
    _check_flag("parsed", line.parsed)
    limits.check_choice("period", line.period, PERIODS)
    if line.period == "month" and line.day.day != 1:
        raise OutOfBounds("day", f"of a line billing a month must be the month's first day, got {line.day}")


def _check_usage(row: BilledUsage) -> None:
    for name in _USAGE_NAMES:
        _check_name(name, getattr(row, name))
    _check_required(row)
    _check_day("day", row.day)
    for name in _USAGE_COUNTS:
        limits.check_count(name, getattr(row, name), MAX_BILLED_TOKENS)
    if row.requests is not None:
        limits.check_count("requests", row.requests, MAX_BILLED_TOKENS)
    _check_flag("provider_side", row.provider_side)
    _check_flag("final", row.final)


def _check_reconciled_day(day: ReconciledDay) -> None:
    _check_name("provider", day.provider)
    if not day.provider:
        raise OutOfBounds("provider", "must not be empty")
    _check_name("environment", day.environment)
    _check_name("verdict", day.verdict)
    _check_name("run_id", day.run_id)
    _check_day("day", day.day)
    _check_time("finished_at", day.finished_at)
    _check_amount("tracked", day.tracked, MAX_RECONCILED_USD, None)
    if day.billed is not None:
        _check_amount("billed", day.billed, MAX_RECONCILED_USD, None)
    limits.check_count("unknown_cost_calls", day.unknown_cost_calls, limits.INT64_MAX)
    _check_flag("final", day.final)


def _check_name(field: str, value: Any) -> None:
    limits.check_text(field, value, limits.MAX_NAME_CHARS)


def _check_required(row: BilledLine | BilledUsage) -> None:
    for name in ("provider", "source"):
        if not getattr(row, name):
            raise OutOfBounds(name, "must not be empty")


def _check_day(field: str, value: Any) -> None:
    if type(value) is not date:  # a datetime is a date too, but not a day
        raise OutOfBounds(field, f"must be a datetime.date, got {type(value).__name__}")
    if not limits.MIN_TIMESTAMP.year <= value.year < limits.MAX_TIMESTAMP.year:
        raise OutOfBounds(field, f"must be from {limits.MIN_TIMESTAMP.year} to {limits.MAX_TIMESTAMP.year - 1}, "
                                 f"got {value}")  # fmt: skip


def _check_time(field: str, value: Any) -> None:
    if not isinstance(value, datetime):
        raise OutOfBounds(field, f"must be a timezone-aware datetime, got {type(value).__name__}")
    limits.check_timestamp(field, value)


def _check_amount(field: str, value: Any, bound: Decimal, places: int | None) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise OutOfBounds(field, f"must be a finite Decimal, got {value!r:.60}")
    if value.copy_abs() > bound:  # copy_abs: no context, so no rounding
        raise OutOfBounds(field, f"must be from -{bound} to {bound}, got {value}")
    if places is not None and limits.decimal_places(value) > places:
        raise OutOfBounds(field, f"has more than {places} decimal places: {value}")


def _check_flag(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise OutOfBounds(field, f"must be True or False, got {value!r:.40}")
