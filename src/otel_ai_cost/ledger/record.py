"""One ledger record per call: what was spent, on what, for whom. No prompt content, no secrets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from otel_ai_cost.contract import RECORD_SCHEMA_VERSION, CostSource, Outcome, PricingStatus, RecordSource


# Not frozen: a frozen dataclass sets each of its 44 fields through `object.__setattr__`, which made building a
# record (once per call on the in-process ledger's path) cost 55 k instructions more, 40% of building it. A record is
# a value all the same: nothing changes one after it is built (`dataclasses.replace` makes a new one).
@dataclass(slots=True)
class LedgerRecord:
    """Field names are `contract.Record`'s values (a test holds them equal).

    Identity is (`trace_id`, `span_id`): writing the same record twice never counts twice. Manual and imported
    entries get deterministic ids derived from their content (see `manual.py`), so a re-import is a no-op.
    """

    trace_id: str  # 32 lowercase hex
    span_id: str  # 16 lowercase hex
    timestamp: datetime  # call start, timezone-aware UTC
    environment: str
    service: str
    provider: str
    request_model: str = ""
    response_model: str = ""
    operation: str = ""
    operation_type: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_5m_input_tokens: int = 0
    cache_write_1h_input_tokens: int = 0
    reasoning_output_tokens: int = 0
    web_search_requests: int = 0
    amount: Decimal | None = None  # None when unpriced: never a silent zero
    # Our catalog's figure for a call whose `amount` the provider reported (cost_source provider); None when not
    # computed (a locally priced call, a call the catalog could not price, a record older than the field).
    computed_amount: Decimal | None = None
    currency: str = "USD"
    cost_source: str = CostSource.LOCAL.value
    pricing_status: str = PricingStatus.PRICED.value
    pricing_version: str = ""
    pricing_tier: str = ""
    duration_ms: float = 0.0
    outcome: str = Outcome.SUCCESS.value
    error_type: str = ""
    job_id: str = ""
    batch_id: str = ""
    team: str = ""
    user_id: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    cicd_pipeline_name: str = ""
    cicd_run_id: str = ""
    cicd_run_url: str = ""
    cicd_task_name: str = ""
    vcs_repository_url: str = ""
    vcs_revision: str = ""
    vcs_ref_name: str = ""
    vcs_change_id: str = ""
    record_source: str = RecordSource.SPAN.value
    note: str = ""
    schema_version: int = RECORD_SCHEMA_VERSION
    # Which API key paid (`ai_cost.api_key.fingerprint`: 8 hex digits of a keyed hash, never the key); "" unknown.
    api_key_fingerprint: str = ""
    # Where an unattributed call of a strict environment was made (`path:line`, from `code.*`); "" otherwise.
    call_site: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.trace_id, self.span_id)

    @property
    def day(self) -> str:
        return format_timestamp(self.timestamp)[:-17]  # the UTC date of `2026-12-07T15:12:00.123456Z`

    @property
    def month(self) -> str:
        return self.day[:-3]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: Decimal as an exact string, time as ISO 8601 UTC with 'Z'."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = format_timestamp(value)
            elif isinstance(value, Decimal):
                value = format(value, "f")
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        out["day"] = self.day
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LedgerRecord:
        """Inverse of `to_dict` (unknown keys are ignored; `day` is derived, not read)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["timestamp"] = parse_timestamp(values["timestamp"])
        for name in ("amount", "computed_amount"):
            if values.get(name) not in (None, ""):
                values[name] = Decimal(str(values[name]))
            else:
                values[name] = None
        return cls(**values)


def format_timestamp(value: datetime) -> str:
    """`2026-12-07T15:12:00.123456Z`: UTC, always with microseconds (the ledger compares these as text)."""
    utc = value.astimezone(timezone.utc)
    if utc.year < 1000:  # isoformat pads the year to 4 digits, strftime does not: keep strftime's text
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"  # isoformat: a third of strftime's cost


def parse_timestamp(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
