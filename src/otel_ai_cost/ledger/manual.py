"""Spend that no SDK call shows: manual entries (`otel-ai-cost record`) and `usage.jsonl` imports.

A provider dashboard figure, an invoice, a subscription: recorded as ledger records marked
`record_source=manual` (or `import`), with the figure's origin in `cost_source` (`dashboard`, `invoice`,
`subscription`, or the `source` of an imported line).

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

**All or nothing.** Every line is validated before anything is written; a bad line fails the whole file with
`file:line: what is wrong`, and the valid records of a file are written in one store write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timezone
from decimal import Context, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from otel_ai_cost.contract import CostSource, PricingStatus, Record, RecordSource
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.store import LedgerStore
from otel_ai_cost.when import NoTimezoneError, parse_when

__all__ = [
    "MANUAL_SERVICE",
    "MANUAL_SOURCES",
    "ImportResult",
    "UsageFileError",
    "content_identity",
    "import_usage_file",
    "manual_record",
    "parse_usage_lines",
    "read_usage_file",
]

MANUAL_SOURCES = ("dashboard", "invoice", "subscription")
MANUAL_SERVICE = "manual"  # the `service` of records that no instrumented service produced
_IMPORT_SOURCE = "import"
_MAX_PROBLEMS_SHOWN = 20

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


def content_identity(record: LedgerRecord) -> tuple[str, str]:
    """(trace_id, span_id) derived from every field but the ids: the SHA-256 of the canonical JSON."""
    content = {k: v for k, v in record.to_dict().items() if k not in _NOT_CONTENT}
    if content.get(Record.COMPUTED_AMOUNT) is None:  # a field added later: absent, identities stay as they were
        content.pop(Record.COMPUTED_AMOUNT, None)
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

    `when`: a timezone-aware datetime, a day (recorded at 00:00 UTC), or their ISO text; default now (UTC).
    `environment`: default the current deployment environment. Raises ValueError with what is wrong.
    """
    if not provider.strip():
        raise ValueError("the provider must not be empty")
    if source not in MANUAL_SOURCES:
        raise ValueError(f"source must be one of {', '.join(MANUAL_SOURCES)}, got {source!r}")
    value = _amount(amount)
    timestamp = datetime.now(timezone.utc) if when is None else _when(when)
    return _with_identity(
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


def parse_usage_lines(
    lines: Sequence[str], *, path: str = "<usage>", environment: str | None = None
) -> list[LedgerRecord]:
    """Validates every line, then returns one record per non-blank line; raises `UsageFileError` listing
    every bad line (so nothing from a file with a bad line is ever half-imported)."""
    default_environment = environment or _current_environment()
    parsed: list[tuple[int, dict[str, Any]]] = []
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parsed.append((number, _validate(line, default_environment)))
        except ValueError as exc:
            problems.append((number, str(exc)))
    if problems:
        raise UsageFileError(path, problems)
    records = []
    for number, fields in parsed:
        try:
            records.append(_with_identity(_priced(fields)))
        except ValueError as exc:  # pragma: no cover - _validate checks what _priced needs
            problems.append((number, str(exc)))
    if problems:
        raise UsageFileError(path, problems)
    return records


def read_usage_file(path: str | Path, *, environment: str | None = None) -> list[LedgerRecord]:
    """The records of a `usage.jsonl` file (see the module documentation), all lines validated first."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageFileError(str(path), [(text_line(exc), "not UTF-8 text")]) from exc
    return parse_usage_lines(text.splitlines(), path=str(path), environment=environment)


def import_usage_file(store: LedgerStore, path: str | Path, *, environment: str | None = None) -> ImportResult:
    """Imports a `usage.jsonl` file in one store write; importing it again changes nothing."""
    records = read_usage_file(path, environment=environment)
    if not records:
        return ImportResult(0, 0)
    result = store.write(records)
    return ImportResult(new=result.written, already_recorded=result.duplicates)


def text_line(exc: UnicodeDecodeError) -> int:
    """The 1-based line of an undecodable byte."""
    return exc.object[: exc.start].count(b"\n") + 1


# -- validation ---------------------------------------------------------------------------------------------


def _validate(line: str, default_environment: str) -> dict[str, Any]:
    try:
        data = json.loads(line, parse_float=Decimal, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; accepted: {', '.join(sorted(_KNOWN_KEYS))}")

    fields: dict[str, Any] = {}
    if "timestamp" not in data:
        raise ValueError("missing 'timestamp'")
    fields["timestamp"] = _when(data["timestamp"], key="timestamp")
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
                raise ValueError(f"{key} must be a non-negative integer, got {value!r}")
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
        raise ValueError(f"{key} must be a non-empty string, got {value!r}")
    return value.strip()


def _amount(value: Any, *, key: str = "amount") -> Decimal:
    """An exact, finite, non-negative amount: a Decimal, an int, or decimal text (never a binary float)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"{key} must be an exact decimal, got {value!r}")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{key} must be a number, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{key} must be a finite, non-negative number, got {value!r}")
    # By value, not spelling: 45.230 and 45.23 are the same entry (and the same identity). Enough precision
    # that normalizing never rounds.
    normalized = amount.normalize(Context(prec=len(amount.as_tuple().digits) + 2))
    return normalized.quantize(Decimal(1)) if normalized.as_tuple().exponent > 0 else normalized  # type: ignore[operator]


def _when(value: Any, *, key: str = "date") -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{key} must include a timezone, got {value.isoformat()}")
        return value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be an ISO 8601 text, got {value!r}")
    try:
        return parse_when(value, naive_is_utc=False)
    except NoTimezoneError:
        raise ValueError(f"{key} must include a timezone (e.g. 2026-01-30T14:00:00Z), got {value!r}") from None
    except ValueError:
        raise ValueError(f"{key} is not an ISO 8601 date or time: {value!r}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _current_environment() -> str:
    from otel_ai_cost.attribution import detect_environment

    return detect_environment()
