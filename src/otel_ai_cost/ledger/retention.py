"""How long each environment's records are kept: one rule for the DynamoDB TTL and `otel-ai-cost ledger prune`.

```python
from otel_ai_cost.ledger.retention import DEFAULT_RETENTION, Retention, parse_older_than

retention = Retention.parse("production:400,*:90")   # the DynamoDB URL's `ttl_days=`, and `ledger prune --ttl-days`
retention.days("production"), retention.days("cicd")  # (400, 90); None: kept for ever
parse_older_than("90d")                              # 90 (ValueError with a clear message for "90x")
```

The DynamoDB store sets each record's `expires_at` from it (`dynamodb_store.py`); `ledger prune` on a SQLite ledger
uses it for an environment when `--older-than` is not given, with `DEFAULT_RETENTION` unless `--ttl-days` says
otherwise. Pure Python: no AWS library is needed to read it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otel_ai_cost.ledger.record import LedgerRecord

__all__ = ["DEFAULT_RETENTION", "MAX_DAYS", "TTL_NEVER", "Retention", "parse_older_than"]

TTL_NEVER = 0  # `ttl_days=development:0`: records of that environment never expire
MAX_DAYS = 36500
# `ledger prune`'s per-environment days when neither `--older-than` nor `--ttl-days` is given (the TTL the DynamoDB
# docs recommend): production history for a year and a month of comparisons, every other environment 90 days.
DEFAULT_RETENTION = "production:400,*:90"

_OLDER_THAN = re.compile(r"(\d+)d")


@dataclass(frozen=True, slots=True)
class Retention:
    """TTL per environment, in days from the record's timestamp; `default_days` for the others (None: never)."""

    by_environment: Mapping[str, int] = field(default_factory=dict)
    default_days: int | None = None

    def days(self, environment: str) -> int | None:
        days = self.by_environment.get(environment, self.default_days)
        return None if days in (None, TTL_NEVER) else days

    def expires_at(self, record: LedgerRecord) -> int | None:
        days = self.days(record.environment)
        return None if days is None else int(record.timestamp.timestamp()) + days * 86400

    @classmethod
    def parse(cls, text: str) -> Retention:
        """`90` (every environment), or `production:400,development:30,*:90` (`*` = the others, 0 = never)."""
        text = text.strip()
        if re.fullmatch(r"\d+", text):
            return cls({}, _days(text, "ttl_days"))
        by_environment: dict[str, int] = {}
        default: int | None = None
        for part in text.split(","):
            name, sep, value = part.strip().rpartition(":")
            if not sep or not name:
                raise ValueError(f"ttl_days: expected ENVIRONMENT:DAYS or *:DAYS, got {part.strip()!r}")
            days = _days(value, f"ttl_days for {name}")
            if name == "*":
                default = days
            elif name in by_environment:
                raise ValueError(f"ttl_days: {name} given twice")
            else:
                by_environment[name] = days
        return cls(by_environment, default)

    def describe(self) -> str:
        def text(days: int | None) -> str:
            return "never expire" if days in (None, TTL_NEVER) else f"{days} days"

        parts = [f"{env}: {text(days)}" for env, days in sorted(self.by_environment.items())]
        parts.append(f"{'other environments' if parts else 'all environments'}: {text(self.default_days)}")
        return "; ".join(parts)


def parse_older_than(text: str) -> int:
    """`90d` -> 90: whole UTC days, 1 to `MAX_DAYS`. Raises ValueError saying what is expected."""
    match = _OLDER_THAN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"expected a number of whole days such as 90d, got {text!r}")
    days = _days(match[1], "--older-than")
    if days < 1:
        raise ValueError(f"expected at least 1d, got {text!r}")
    return days


def _days(value: str, what: str) -> int:
    if not re.fullmatch(r"\d+", value.strip()):
        raise ValueError(f"{what}: expected a whole number of days, got {value!r}")
    days = int(value)
    if days > MAX_DAYS:
        raise ValueError(f"{what}: {days} days is more than 100 years; use 0 for 'never expire'")
    return days
