"""Every bound on a ledger record, in one place: what a record may hold, so that no store ever overflows.

```python
from otel_ai_cost.ledger import limits

limits.validate_record(record)            # InvalidRecord("record <trace>/<span>: input_tokens ... at most ...")
limits.check_count("input_tokens", n)     # OutOfBounds (a ValueError) for one number at another edge
limits.check_text("request_model", name)
```

**Why these numbers.** The stores keep exact integer sums: SQLite sums micro-USD and token counts in signed 64-bit
integers (at most 9,223,372,036,854,775,807), per record, per daily-rollup row and in every report's `SUM`. The
bounds keep each record far enough below that limit that no realistic ledger's sums can reach it:

- tokens, per class per call, at most `MAX_TOKENS` = 10**9 (the largest context windows hold about 10**7): a token
  sum overflows only after 9.2 billion calls at the bound;
- `amount` and `computed_amount` per record at most `MAX_AMOUNT_USD` = 10**7 USD (= 10**13 micro-USD; a single
  API call costs well under $10,000, the cap leaves room for a manual entry of a large invoice, and a larger one
  is recorded as several entries): the micro-USD sums overflow only beyond 9.2 trillion USD in total, 922,337
  records at the bound, far beyond any real ledger. (A cap of 10**9 USD would overflow after 9,223 records.) At
  most `MAX_AMOUNT_DECIMAL_PLACES` = 30 decimal places (real prices need fewer than 15; 1E-1000 USD is garbage):
  every amount fits DynamoDB's 38 significant digits, and every sum of amounts is exact in the stores' bounded
  decimal contexts (SQLite: 400 digits). The DynamoDB store refuses amounts with more than 18 decimal places on
  top of this: its running totals are numbers of 38 digits too, and more places would stop a month's total from
  growing past 10**20 USD (`dynamodb_schema.MAX_AMOUNT_DECIMAL_PLACES`); real prices give fewer than 15;
- web-search requests at most `MAX_WEB_SEARCH_REQUESTS` = 10**6 per call; `duration_ms` finite, at most 7 days;
- `timestamp` from 2000-01-01 to 2100-01-01 UTC (a span start time of 2**63 ns, year 2262, is garbage, not a call);
- text fields at most `MAX_NAME_CHARS` = 200 characters (a model, provider, service, environment, team, job or
  batch id, ...; the longest real model names, Bedrock ARNs, are about 120): two of them and a few separators fit
  a DynamoDB partition key (2,048 bytes) even at 4 UTF-8 bytes per character; URLs `MAX_URL_CHARS` = 2,048;
  `note` `MAX_NOTE_CHARS` = 2,000; at most `MAX_TAGS` = 64 tags, keys of at most `MAX_TAG_KEY_CHARS` = 100 and
  values of at most `MAX_TAG_VALUE_CHARS` = 200 characters. Every text must be valid Unicode text (no lone
  surrogates, no NUL);
- `pricing_status` one of `PricingStatus`, `outcome` one of `Outcome`, `record_source` one of `RecordSource`,
  `currency` `USD` (the ledger sums in USD only); `cost_source` one of `CostSource` for a record derived from a
  span, and a name (the figure's origin: `dashboard`, `invoice`, an import's `source`) for manual and imported
  records.

Sums that could still exceed 64 bits (a ledger written before these bounds, or an adversary storing millions of
records at the bound) never turn into floats and never fail a report: see `sqlite_store.py`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Collection
from datetime import datetime, timezone
from decimal import Decimal
from operator import attrgetter
from typing import Any

from otel_ai_cost.contract import (
    CURRENCY,
    RECORD_SCHEMA_VERSION,
    CostSource,
    Outcome,
    PricingStatus,
    Record,
    RecordSource,
)
from otel_ai_cost.ledger.store import InvalidRecord

__all__ = [
    "COUNT_LIMITS",
    "INT64_MAX",
    "MAX_AMOUNT_DECIMAL_PLACES",
    "MAX_AMOUNT_USD",
    "MAX_DURATION_MS",
    "MAX_NAME_CHARS",
    "MAX_NOTE_CHARS",
    "MAX_TAGS",
    "MAX_TAG_KEY_CHARS",
    "MAX_TAG_VALUE_CHARS",
    "MAX_TIMESTAMP",
    "MAX_TOKENS",
    "MAX_URL_CHARS",
    "MAX_WEB_SEARCH_REQUESTS",
    "MIN_TIMESTAMP",
    "TEXT_LIMITS",
    "OutOfBounds",
    "check_amount",
    "check_choice",
    "check_count",
    "check_duration_ms",
    "check_record",
    "check_start_time_ns",
    "check_text",
    "check_timestamp",
    "decimal_places",
    "validate_record",
]

INT64_MAX = 2**63 - 1  # SQLite's INTEGER, and every SQL SUM over it

MAX_TOKENS = 10**9  # per token class, per call
MAX_WEB_SEARCH_REQUESTS = 10**6  # per call
MAX_AMOUNT_USD = Decimal(10**7)  # amount and computed_amount, per record
MAX_AMOUNT_DECIMAL_PLACES = 30
MAX_DURATION_MS = 7 * 24 * 3600 * 1000.0  # a week
MIN_TIMESTAMP = datetime(2000, 1, 1, tzinfo=timezone.utc)  # inclusive
MAX_TIMESTAMP = datetime(2100, 1, 1, tzinfo=timezone.utc)  # exclusive
_MIN_NS = int(MIN_TIMESTAMP.timestamp()) * 10**9
_MAX_NS = int(MAX_TIMESTAMP.timestamp()) * 10**9

MAX_NAME_CHARS = 200
MAX_URL_CHARS = 2048
MAX_NOTE_CHARS = 2000
MAX_TAGS = 64
MAX_TAG_KEY_CHARS = 100
MAX_TAG_VALUE_CHARS = 200

# The token (and request) counts of a record, and their bound.
COUNT_LIMITS: dict[str, int] = {
    Record.INPUT_TOKENS: MAX_TOKENS,
    Record.OUTPUT_TOKENS: MAX_TOKENS,
    Record.CACHE_READ_INPUT_TOKENS: MAX_TOKENS,
    Record.CACHE_WRITE_5M_INPUT_TOKENS: MAX_TOKENS,
    Record.CACHE_WRITE_1H_INPUT_TOKENS: MAX_TOKENS,
    Record.REASONING_OUTPUT_TOKENS: MAX_TOKENS,
    Record.WEB_SEARCH_REQUESTS: MAX_WEB_SEARCH_REQUESTS,
}
# Every free-text field of a record, and its length bound in characters (the enumerated ones are checked as
# choices besides). The ids have fixed formats, checked on their own.
TEXT_LIMITS: dict[str, int] = {
    **{
        name: MAX_NAME_CHARS
        for name in (
            Record.ENVIRONMENT,
            Record.SERVICE,
            Record.PROVIDER,
            Record.REQUEST_MODEL,
            Record.RESPONSE_MODEL,
            Record.OPERATION,
            Record.OPERATION_TYPE,
            Record.COST_SOURCE,
            Record.PRICING_VERSION,
            Record.PRICING_TIER,
            Record.ERROR_TYPE,
            Record.JOB_ID,
            Record.BATCH_ID,
            Record.TEAM,
            Record.USER_ID,
            Record.CICD_PIPELINE_NAME,
            Record.CICD_RUN_ID,
            Record.CICD_TASK_NAME,
            Record.VCS_REVISION,
            Record.VCS_REF_NAME,
            Record.VCS_CHANGE_ID,
            Record.API_KEY_FINGERPRINT,
        )
    },
    Record.CALL_SITE: MAX_URL_CHARS,
    Record.CICD_RUN_URL: MAX_URL_CHARS,
    Record.VCS_REPOSITORY_URL: MAX_URL_CHARS,
    Record.NOTE: MAX_NOTE_CHARS,
}
_CHOICES: dict[str, tuple[str, ...]] = {
    Record.PRICING_STATUS: tuple(s.value for s in PricingStatus),
    Record.OUTCOME: tuple(o.value for o in Outcome),
    Record.RECORD_SOURCE: tuple(s.value for s in RecordSource),
    Record.CURRENCY: (CURRENCY,),
}
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
_QUOTED = 40  # characters of a bad value quoted in a reason


class OutOfBounds(ValueError):
    """A value beyond its documented bound; the message names the field, the value (shortened) and the bound."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field


def check_count(field: str, value: Any, maximum: int = MAX_TOKENS) -> int:
    """A count (tokens, requests): an integer from 0 to `maximum`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise OutOfBounds(field, f"must be a non-negative integer of at most {maximum}, got {_quote(value)}")
    return value


def check_amount(field: str, value: Decimal) -> Decimal:
    """An amount in USD: finite, from 0 to `MAX_AMOUNT_USD`, with at most `MAX_AMOUNT_DECIMAL_PLACES` places."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise OutOfBounds(field, f"must be a finite decimal, got {_quote(value)}")
    if value < 0 or value > MAX_AMOUNT_USD:
        raise OutOfBounds(field, f"must be from 0 to {MAX_AMOUNT_USD} USD per record, got {_quote(value)}")
    exponent = value.as_tuple().exponent
    if (
        isinstance(exponent, int)
        and exponent < -MAX_AMOUNT_DECIMAL_PLACES
        and decimal_places(value) > (MAX_AMOUNT_DECIMAL_PLACES)
    ):
        raise OutOfBounds(field, f"has more than {MAX_AMOUNT_DECIMAL_PLACES} decimal places: {_quote(value)}")
    return value


def decimal_places(value: Decimal) -> int:
    """Significant decimal places of a finite Decimal (trailing zeros do not count), without rounding."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # NaN, Infinity
        raise ValueError(f"not a finite decimal: {value}")
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros)) if any(digits) else 0


def check_text(field: str, value: Any, max_chars: int | None = None) -> str:
    """A text of at most `max_chars` characters (default: the field's bound in `TEXT_LIMITS`, else
    `MAX_NAME_CHARS`), valid Unicode (storable as UTF-8), without NUL characters."""
    limit = max_chars if max_chars is not None else TEXT_LIMITS.get(field, MAX_NAME_CHARS)
    if not isinstance(value, str):
        raise OutOfBounds(field, f"must be text, got {type(value).__name__}")
    if len(value) > limit:
        raise OutOfBounds(field, f"has {len(value)} characters; at most {limit} are kept: {_quote(value)}")
    if "\x00" in value:
        raise OutOfBounds(field, "contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise OutOfBounds(field, "is not valid Unicode text (a lone surrogate)") from None
    return value


def check_choice(field: str, value: Any, choices: Collection[str]) -> str:
    """One of `choices`."""
    if value not in choices:
        raise OutOfBounds(field, f"must be one of {', '.join(choices)}, got {_quote(value)}")
    return str(value)


def check_timestamp(field: str, value: Any) -> datetime:
    """A timezone-aware time from `MIN_TIMESTAMP` (inclusive) to `MAX_TIMESTAMP` (exclusive)."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise OutOfBounds(field, f"must be a timezone-aware datetime, got {_quote(value)}")
    if not MIN_TIMESTAMP <= value < MAX_TIMESTAMP:
        raise OutOfBounds(field, f"must be from {MIN_TIMESTAMP.year} to {MAX_TIMESTAMP.year} (UTC), got {value}")
    return value


def check_start_time_ns(field: str, value: int) -> int:
    """A time in nanoseconds since the epoch, within the timestamp bounds (checked before any conversion)."""
    if not _MIN_NS <= value < _MAX_NS:
        raise OutOfBounds(
            field, f"{value} ns is outside {MIN_TIMESTAMP.year}..{MAX_TIMESTAMP.year} (UTC): not a real call time"
        )
    return value


def check_duration_ms(field: str, value: Any) -> float:
    """A duration in milliseconds: finite, from 0 to `MAX_DURATION_MS`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise OutOfBounds(field, f"must be a finite number of milliseconds, got {_quote(value)}")
    if not 0 <= value <= MAX_DURATION_MS:
        raise OutOfBounds(field, f"must be from 0 to {MAX_DURATION_MS:.0f} ms (7 days), got {value}")
    return float(value)


def check_record(record: Any) -> None:
    """Raises `OutOfBounds` for the first field of `record` (a `LedgerRecord`) beyond its bound.

    On the ingest hot path (twice per span: at the span edge and in the store), so every group of fields is tested
    with a cheap expression first, and checked one by one, for the precise reason, only when that test fails."""
    if not (type(record.trace_id) is str and _TRACE_ID.fullmatch(record.trace_id)):
        raise OutOfBounds(Record.TRACE_ID, f"must be 32 lowercase hex digits, got {_quote(record.trace_id)}")
    if not (type(record.span_id) is str and _SPAN_ID.fullmatch(record.span_id)):
        raise OutOfBounds(Record.SPAN_ID, f"must be 16 lowercase hex digits, got {_quote(record.span_id)}")
    timestamp = record.timestamp
    if not (isinstance(timestamp, datetime) and timestamp.tzinfo is not None and _in_time_range(timestamp)):
        check_timestamp(Record.TIMESTAMP, timestamp)
    texts = _TEXTS_OF(record)
    try:
        joined = "".join(texts)
    except TypeError:  # a value that is not text
        joined = "\x00"
    # Only URLs and the note may be longer. Texts that add up to at most MAX_NAME_CHARS are each within it: the
    # usual case, with no length taken per text.
    too_long = len(joined) > MAX_NAME_CHARS and max(map(len, texts)) > MAX_NAME_CHARS
    if too_long or not _plain_text(joined):
        for field, limit in TEXT_LIMITS.items():
            check_text(field, getattr(record, field), limit)
    if not record.environment:
        raise OutOfBounds(Record.ENVIRONMENT, "must not be empty")
    if _CHOSEN_OF(record) not in _VALID_CHOICES:
        for field, choices in _CHOICES.items():
            check_choice(field, getattr(record, field), choices)
    if record.record_source == _SPAN_SOURCE and record.cost_source not in _COST_SOURCES:
        check_choice(Record.COST_SOURCE, record.cost_source, _COST_SOURCES)
    counts = _COUNTS_OF(record)
    if not (set(map(type, counts)) == _INT_ONLY and min(counts) >= 0 and max(counts) <= MAX_TOKENS) or (
        record.web_search_requests > MAX_WEB_SEARCH_REQUESTS
    ):
        for field, maximum in COUNT_LIMITS.items():
            check_count(field, getattr(record, field), maximum)
    for field in (Record.AMOUNT, Record.COMPUTED_AMOUNT):
        value = getattr(record, field)
        if value is not None:
            check_amount(field, value)
    duration = record.duration_ms
    if not (type(duration) in (int, float) and 0 <= duration <= MAX_DURATION_MS):  # NaN fails the comparison
        check_duration_ms(Record.DURATION_MS, duration)
    if record.tags:
        _check_tags(record.tags)
    version = record.schema_version
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= RECORD_SCHEMA_VERSION:
        raise OutOfBounds(Record.SCHEMA_VERSION, f"must be from 1 to {RECORD_SCHEMA_VERSION}, got {_quote(version)}")


_TEXTS_OF = attrgetter(*TEXT_LIMITS)
_COUNTS_OF = attrgetter(*COUNT_LIMITS)
_INT_ONLY = {int}  # counts of exactly int: a bool is not a count
_CHOSEN_OF = attrgetter(*_CHOICES)
_VALID_CHOICES = frozenset(itertools.product(*_CHOICES.values()))  # every valid combination, precomputed
_SPAN_SOURCE = RecordSource.SPAN.value
_COST_SOURCES = tuple(s.value for s in CostSource)


def _in_time_range(value: datetime) -> bool:
    try:
        return MIN_TIMESTAMP <= value < MAX_TIMESTAMP
    except TypeError:
        return False


def _plain_text(text: str) -> bool:
    """No NUL and storable as UTF-8 (ASCII, the common case, without encoding it)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_record(record: Any) -> None:
    """Raises `store.InvalidRecord` (naming the record, the field and the bound) for a record beyond a bound."""
    try:
        check_record(record)
    except OutOfBounds as error:
        key = (getattr(record, "trace_id", ""), getattr(record, "span_id", ""))
        raise InvalidRecord(f"record {key[0]}/{key[1]}: {error}", key=key) from None


def _check_tags(tags: Any) -> None:
    if len(tags) > MAX_TAGS:
        raise OutOfBounds(Record.TAGS, f"has {len(tags)} tags; at most {MAX_TAGS} are kept")
    for key, value in tags.items():
        check_text(f"tag key {_quote(key)}", key, MAX_TAG_KEY_CHARS)
        if not key:
            raise OutOfBounds(Record.TAGS, "has an empty tag key")
        check_text(f"tag {_quote(key)}", value, MAX_TAG_VALUE_CHARS)


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTED else f"{text[:_QUOTED]}... ({len(text)} characters)"
