"""A reconciliation run as the ledger stores it: compact UTF-8 JSON, the same in every store.

```python
from otel_ai_cost.ledger.run_codec import decode_run, encode_run

payload = encode_run(run)            # bytes; InvalidRecord when the document is not JSON-ready or too large
assert decode_run(payload) == run    # days, amounts (exact, as text) and the document come back equal
```

The JSON is `{"run_id", "finished_at", "start_day", "end_day", "days": [...], "document": {...}}`. Amounts
(`tracked`, `billed`) are exact decimal text, never JSON numbers (a float would round them); times are UTC ISO
text with microseconds. `document` is stored as given: JSON-ready data only (`RunRecord.document`, i.e.
`Reconciliation.to_dict()`, already writes amounts as text). A value JSON cannot hold (a `Decimal`, a date, a NaN)
is refused with `InvalidRecord` rather than turned into something else silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from otel_ai_cost.ledger.billed_bounds import MAX_RUN_DOCUMENT_BYTES
from otel_ai_cost.ledger.record import format_timestamp, parse_timestamp
from otel_ai_cost.ledger.store import InvalidRecord
from otel_ai_cost.reconcile.runs import ReconciledDay, RunRecord

__all__ = ["day_from_dict", "day_to_dict", "decode_days", "decode_run", "encode_days", "encode_document", "encode_run"]


def day_to_dict(day: ReconciledDay) -> dict[str, Any]:
    return {
        "provider": day.provider,
        "day": day.day.isoformat(),
        "environment": day.environment,
        "tracked": format(day.tracked, "f"),
        "billed": None if day.billed is None else format(day.billed, "f"),
        "verdict": day.verdict,
        "run_id": day.run_id,
        "finished_at": format_timestamp(day.finished_at),
        "unknown_cost_calls": day.unknown_cost_calls,
        "final": day.final,
    }


def day_from_dict(data: dict[str, Any]) -> ReconciledDay:
    return ReconciledDay(
        provider=data["provider"],
        day=date.fromisoformat(data["day"]),
        environment=data["environment"],
        tracked=Decimal(data["tracked"]),
        billed=None if data["billed"] is None else Decimal(data["billed"]),
        verdict=data["verdict"],
        run_id=data["run_id"],
        finished_at=parse_timestamp(data["finished_at"]),
        unknown_cost_calls=int(data["unknown_cost_calls"]),
        final=bool(data["final"]),
    )


def encode_document(run_id: str, document: Any) -> str:
    """The document as compact JSON text; `InvalidRecord` when it is not JSON-ready or beyond the size bound."""
    if not isinstance(document, Mapping):
        raise InvalidRecord(f"reconciliation run {run_id!r}: document must be a mapping, got {type(document).__name__}")
    document = dict(document)
    try:
        text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise InvalidRecord(f"reconciliation run {run_id!r}: document is not JSON-ready data ({error})") from None
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidRecord(f"reconciliation run {run_id!r}: document holds text that is not valid Unicode") from None
    if size > MAX_RUN_DOCUMENT_BYTES:
        raise InvalidRecord(f"reconciliation run {run_id!r}: document is {size} bytes of JSON; at most "
                            f"{MAX_RUN_DOCUMENT_BYTES} are kept")  # fmt: skip
    return text


def encode_run(run: RunRecord) -> bytes:
    """The whole run (window, days, document) as compact UTF-8 JSON."""
    head = {
        "run_id": run.run_id,
        "finished_at": format_timestamp(run.finished_at),
        "start_day": run.start_day.isoformat(),
        "end_day": run.end_day.isoformat(),
    }
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))
    # The document is encoded (and checked) once, and joined in as it is.
    document = encode_document(run.run_id, run.document)
    return f'{text[:-1]},"days":{encode_days(run.days)},"document":{document}}}'.encode()


def encode_days(days: Sequence[ReconciledDay]) -> str:
    return json.dumps([day_to_dict(day) for day in days], ensure_ascii=False, separators=(",", ":"))


def decode_days(text: str) -> list[ReconciledDay]:
    return [day_from_dict(day) for day in json.loads(text)]


def decode_run(payload: bytes | str) -> RunRecord:
    data = json.loads(payload)
    return RunRecord(
        run_id=data["run_id"],
        finished_at=parse_timestamp(data["finished_at"]),
        start_day=date.fromisoformat(data["start_day"]),
        end_day=date.fromisoformat(data["end_day"]),
        days=[day_from_dict(day) for day in data["days"]],
        document=data["document"],
    )
