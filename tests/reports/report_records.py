"""Planted ledger records for the daily report's tests: `call(...)` makes one record, `Ledger` numbers them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

from otel_ai_cost.ledger.record import LedgerRecord

D = Decimal


@dataclass
class Ledger:
    """Makes records with distinct identities (trace and span ids from a counter)."""

    count: int = 0

    def call(self, day: date, amount: str | None = "1.00", *, hour: int = 12, **fields: Any) -> LedgerRecord:
        self.count += 1
        values: dict[str, Any] = {
            "environment": "production",
            "service": "api",
            "provider": "openai",
            "request_model": "gpt-4o",
            "operation_type": "chat",
            "input_tokens": 100,
            "output_tokens": 10,
            **fields,
        }
        if amount is None:
            values.setdefault("pricing_status", "unpriced")
        return LedgerRecord(
            trace_id=f"{self.count:032x}",
            span_id=f"{self.count:016x}",
            timestamp=datetime.combine(day, time(hour), tzinfo=timezone.utc),
            amount=None if amount is None else D(amount),
            **values,
        )
