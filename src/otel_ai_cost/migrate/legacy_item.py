"""One legacy `AIUsageMetric` item (tnorlund/Portfolio's tracker) -> one ledger record, or why it cannot be one.

The items are read with DynamoDB's low-level client, so every attribute arrives as the tracker wrote it
(`AIUsageMetric.to_dynamodb_item`): `{"S": text}`, `{"N": "number text"}`, `{"M": {...}}` for `metadata`.
Numbers are read from their text, never through a binary float: `costUSD` `"0.000123456789"` is exactly
`Decimal("0.000123456789")`.

| legacy attribute | ledger field | rule |
|------------------|--------------|------|
| `requestId` (required) | `trace_id`, `span_id` | SHA-256 of the request id: re-importing an item changes nothing |
| `timestamp` (required) | `timestamp` | ISO 8601; a time without a zone is UTC (the tracker writes UTC) |
| `service` (required) | `provider` | `openai`, `anthropic`, `google_places`; any other name kept, lowercased |
| `model` | `request_model` | as written |
| `operation` | `operation` | `completion` -> `chat`, `embedding` -> `embeddings`; any other kept |
| `inputTokens`, `outputTokens` | `input_tokens`, `output_tokens` | no `inputTokens`: `totalTokens` - `outputTokens` |
| `totalTokens` | tag `legacy.total_tokens` | only when it disagrees with input + output |
| `costUSD` | `amount`, `pricing_status` | exact; absent (or NULL): `amount` None, `unpriced` (unknown, never $0) |
| `latencyMs` | `duration_ms` | |
| `userId`, `jobId`, `batchId` | `user_id`, `job_id`, `batch_id` | |
| `githubPR` | `vcs_change_id` | the pull request number as text |
| `error` | `outcome` `error`, `error_type`, tag `legacy.error` | `error_type`: the status in "Error code: 429" |
| `environment` | `environment` | see "Environment" below |
| `apiCalls` | tag `legacy.api_calls` | only when it is not 1 |
| `metadata` | `tags` | see "Tags" below; a few keys also fill fields (below) |

Every record gets `record_source` `legacy_import`, `cost_source` `legacy_tracker` (the figure is the tracker's own
computation) and the tag `legacy.request_id`. `service` (the ledger's: which service spent) is `--service`, else
the item's `metadata.service` (the tracker's auto-tag, `receipt-processing`), else `legacy-tracker`.

An `error` message without "Error code: NNN" (the SDKs' wording) gets `error_type` `legacy_error`.

**Environment**, first found wins: `--environment` (the operator's word for the whole table; use it when the
tracker detected environments wrongly, e.g. a Lambda without `ENVIRONMENT` that tagged itself `development`);
the item's own `environment` attribute (later versions of the entity write one); the table-name rule
(`environment_from_table`). Values are normalized: `dev` -> `development`, `prod` -> `production`, `stage` ->
`staging`, anything else lowercased as it is. An item with none of the three cannot be imported (reported).

**Tags** (`metadata`, bounded like every ledger record: `otel_ai_cost.ledger.limits`): each key becomes a tag of
the same name; a string stays as it is, a number is its exact text, a boolean `true`/`false`, a map or list its
compact JSON, NULL is left out. At most `limits.MAX_TAGS` (64) tags per record, the import's own `legacy.*` tags
first, then the metadata keys in sorted order; a key longer than `limits.MAX_TAG_KEY_CHARS` (100) is left out, a
value longer than `limits.MAX_TAG_VALUE_CHARS` (200) is cut to 199 characters and `…`. A record that lost
anything this way carries `legacy.tags_trimmed` = how many tags were cut or left out, and the import counts it.
`metadata.operation_type` fills `operation_type`; `ci_run_id`, `ci_workflow`, `ci_sha`, `ci_ref`, `ci_repository`
(the tracker's CI auto-tags) fill `cicd_run_id`, `cicd_pipeline_name`, `vcs_revision`, `vcs_ref_name` and
`vcs_repository_url` (`https://github.com/OWNER/NAME`); those keys are not repeated as tags.

**Cannot be imported** (`UnmappableItem`, with the item's `PK` and `SK`): no `requestId`, `timestamp` or `service`;
an attribute of the wrong DynamoDB type (`costUSD` as a string); a number that is not one (`"12.5"` tokens, a
negative cost); a value beyond the ledger's bounds (`limits.check_record`: a model name of 300 characters, a
time before 2000).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from otel_ai_cost.contract import LEGACY_OPERATIONS, Outcome, PricingStatus, Record, RecordSource
from otel_ai_cost.ledger import limits
from otel_ai_cost.ledger.record import LedgerRecord

__all__ = [
    "LEGACY_COST_SOURCE",
    "LEGACY_SERVICE",
    "LEGACY_TYPE",
    "TAG_API_CALLS",
    "TAG_ERROR",
    "TAG_REQUEST_ID",
    "TAG_TOTAL_TOKENS",
    "TAG_TRIMMED",
    "TYPE_ATTRIBUTE",
    "ItemKeys",
    "MappedItem",
    "MappingDefaults",
    "UnmappableItem",
    "environment_from_table",
    "is_legacy_metric",
    "item_keys",
    "legacy_identity",
    "map_item",
    "normalize_environment",
]

TYPE_ATTRIBUTE = "TYPE"
LEGACY_TYPE = "AIUsageMetric"
LEGACY_SERVICE = "legacy-tracker"  # the ledger `service` when neither --service nor the item names one
LEGACY_COST_SOURCE = "legacy_tracker"  # the amount is the legacy tracker's own computation

TAG_REQUEST_ID = "legacy.request_id"
TAG_API_CALLS = "legacy.api_calls"
TAG_TOTAL_TOKENS = "legacy.total_tokens"
TAG_ERROR = "legacy.error"
TAG_TRIMMED = "legacy.tags_trimmed"

_IDENTITY_PREFIX = b"otel-ai-cost legacy AIUsageMetric requestId\x00"
_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "google_places": "google_places"}
_OPERATIONS = {**LEGACY_OPERATIONS, **{ours: ours for ours in LEGACY_OPERATIONS.values()}}
_ENVIRONMENTS = {
    "dev": "development",
    "development": "development",
    "prod": "production",
    "production": "production",
    "stage": "staging",
    "staging": "staging",
}
# The tracker's auto-tags that have a ledger field of their own.
_PROMOTED = {
    "operation_type": Record.OPERATION_TYPE,
    "ci_run_id": Record.CICD_RUN_ID,
    "ci_workflow": Record.CICD_PIPELINE_NAME,
    "ci_sha": Record.VCS_REVISION,
    "ci_ref": Record.VCS_REF_NAME,
}
_METADATA_SERVICE = "service"
_METADATA_REPOSITORY = "ci_repository"
_GITHUB_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_ERROR_CODE = re.compile(r"\bError code: (\d{3})\b")
_ELLIPSIS = "…"
_QUOTED = 40


@dataclass(frozen=True, slots=True)
class ItemKeys:
    """An item's primary key, how a problem names the item (the tracker's `PK` and `SK`)."""

    pk: str
    sk: str

    def __str__(self) -> str:
        return f"PK={self.pk!r} SK={self.sk!r}"


class UnmappableItem(ValueError):
    """An `AIUsageMetric` item that cannot be a ledger record; `keys` names it, `reason` says what is wrong."""

    def __init__(self, keys: ItemKeys, reason: str) -> None:
        super().__init__(f"{keys}: {reason}")
        self.keys = keys
        self.reason = reason


@dataclass(frozen=True, slots=True)
class MappingDefaults:
    """What the command line decides for every item (see "Environment" in the module documentation)."""

    environment: str | None = None  # --environment: wins over the item's own
    table_environment: str | None = None  # the table-name rule: for items that name none
    service: str | None = None  # --service: wins over metadata.service


@dataclass(frozen=True, slots=True)
class MappedItem:
    record: LedgerRecord
    keys: ItemKeys
    tags_trimmed: int = 0  # metadata tags cut or left out to keep within the ledger's bounds


def is_legacy_metric(item: Mapping[str, Any]) -> bool:
    """Whether a raw item is one of the tracker's usage metrics (`TYPE` = `AIUsageMetric`)."""
    return item.get(TYPE_ATTRIBUTE) == {"S": LEGACY_TYPE}


def item_keys(item: Mapping[str, Any]) -> ItemKeys:
    """The item's `PK` and `SK` as text (whatever their type, for messages)."""
    return ItemKeys(_key_text(item.get("PK")), _key_text(item.get("SK")))


def legacy_identity(request_id: str) -> tuple[str, str]:
    """(trace_id, span_id) of the record of `request_id`: the same request id always gives the same record."""
    digest = hashlib.sha256(_IDENTITY_PREFIX + request_id.encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:32], digest[32:48]


def normalize_environment(value: str) -> str:
    """`dev`/`development` -> development, `prod`/`production` -> production, `stage`/`staging` -> staging;
    anything else lowercased as it is."""
    text = value.strip().lower()
    return _ENVIRONMENTS.get(text, text)


def environment_from_table(table: str) -> str | None:
    """The environment a per-stack table name says: the stack token after the table's base name
    (`ReceiptsTable-dev-abc123` -> development, `ReceiptsTable-prod-xyz789` -> production), normalized by
    `normalize_environment`; None for a name without one (`ReceiptsTable`)."""
    parts = table.strip().split("-")
    if len(parts) < 2 or not parts[1].strip():
        return None
    return normalize_environment(parts[1])


def map_item(item: Mapping[str, Any], defaults: MappingDefaults) -> MappedItem:
    """The ledger record of one `AIUsageMetric` item (see the module documentation); `UnmappableItem` if none."""
    keys = item_keys(item)
    try:
        return _map(item, keys, defaults)
    except (ValueError, TypeError, KeyError) as error:  # OutOfBounds is a ValueError
        raise UnmappableItem(keys, str(error)) from None


def _map(item: Mapping[str, Any], keys: ItemKeys, defaults: MappingDefaults) -> MappedItem:
    request_id = _required_text(item, "requestId")
    timestamp = _timestamp(_required_text(item, "timestamp"))
    provider_name = _required_text(item, "service").lower()
    trace_id, span_id = legacy_identity(request_id)

    input_tokens = _count(item, "inputTokens")
    output_tokens = _count(item, "outputTokens")
    total_tokens = _count(item, "totalTokens")
    api_calls = _count(item, "apiCalls")
    amount = _number(item, "costUSD")
    if amount is not None and amount < 0:
        raise ValueError(f"costUSD must not be negative, got {amount}")
    latency = _number(item, "latencyMs")
    if latency is not None and latency < 0:
        raise ValueError(f"latencyMs must not be negative, got {latency}")
    github_pr = _count(item, "githubPR")

    if input_tokens is None and total_tokens is not None:  # embeddings: the tracker stores the total only
        if total_tokens < (output_tokens or 0):
            raise ValueError(f"totalTokens {total_tokens} is less than outputTokens {output_tokens}")
        input_tokens = total_tokens - (output_tokens or 0)

    error = _text(item, "error")
    environment = _environment(item, defaults)
    metadata = _metadata(item)

    fields: dict[str, Any] = {}
    for key, field_name in _PROMOTED.items():
        value = _promotable(metadata, key, field_name)
        if value is not None:
            fields[field_name] = value
            del metadata[key]
    repository = _promotable(metadata, _METADATA_REPOSITORY, Record.VCS_REPOSITORY_URL)
    if repository is not None and _GITHUB_REPOSITORY.fullmatch(repository):
        fields[Record.VCS_REPOSITORY_URL] = f"https://github.com/{repository}"
        del metadata[_METADATA_REPOSITORY]
    service = defaults.service
    if not service:
        service = _promotable(metadata, _METADATA_SERVICE, Record.SERVICE)
        if service is not None:
            del metadata[_METADATA_SERVICE]
    service = service or LEGACY_SERVICE

    own: dict[str, str] = {TAG_REQUEST_ID: request_id}
    if api_calls is not None and api_calls != 1:
        own[TAG_API_CALLS] = str(api_calls)
    if total_tokens is not None and total_tokens != (input_tokens or 0) + (output_tokens or 0):
        own[TAG_TOTAL_TOKENS] = str(total_tokens)
    if error:
        own[TAG_ERROR] = error
    tags, trimmed = _bounded_tags(own, metadata)

    record = LedgerRecord(
        trace_id=trace_id,
        span_id=span_id,
        timestamp=timestamp,
        environment=environment,
        service=service,
        provider=_PROVIDERS.get(provider_name, provider_name),
        request_model=_text(item, "model") or "",
        operation=_operation(_text(item, "operation") or ""),
        input_tokens=input_tokens or 0,
        output_tokens=output_tokens or 0,
        amount=amount,
        cost_source=LEGACY_COST_SOURCE,
        pricing_status=(PricingStatus.PRICED if amount is not None else PricingStatus.UNPRICED).value,
        duration_ms=float(latency) if latency is not None else 0.0,
        outcome=(Outcome.ERROR if error else Outcome.SUCCESS).value,
        error_type=_error_type(error) if error else "",
        job_id=_text(item, "jobId") or "",
        batch_id=_text(item, "batchId") or "",
        user_id=_text(item, "userId") or "",
        tags=tags,
        vcs_change_id=str(github_pr) if github_pr is not None else "",
        record_source=RecordSource.LEGACY_IMPORT.value,
        **fields,
    )
    limits.check_record(record)  # OutOfBounds names the field and its bound
    return MappedItem(record, keys, trimmed)


# -- attributes -----------------------------------------------------------------------------------------------


def _attribute(item: Mapping[str, Any], name: str, kind: str) -> Any:
    """The value of attribute `name` of DynamoDB type `kind`; None when absent or NULL."""
    value = item.get(name)
    if value is None or (isinstance(value, Mapping) and value.get("NULL") is True):
        return None
    if not isinstance(value, Mapping) or kind not in value:
        found = next(iter(value), "?") if isinstance(value, Mapping) else type(value).__name__
        kinds = {"S": "a string (S)", "N": "a number (N)"}
        raise ValueError(f"{name} must be {kinds[kind]}, got {found} {_quote(_shown_value(value))}")
    return value[kind]


def _text(item: Mapping[str, Any], name: str) -> str | None:
    value = _attribute(item, name, "S")
    return None if value is None else str(value).strip()


def _required_text(item: Mapping[str, Any], name: str) -> str:
    value = _text(item, name)
    if not value:
        raise ValueError(f"no {name}" if value is None else f"{name} is empty")
    return value


def _number(item: Mapping[str, Any], name: str) -> Decimal | None:
    """An exact number from its DynamoDB text (never a float)."""
    text = _attribute(item, name, "N")
    if text is None:
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise ValueError(f"{name} is not a number: {_quote(text)}") from None
    if not value.is_finite():
        raise ValueError(f"{name} is not a finite number: {_quote(text)}")
    return value


def _count(item: Mapping[str, Any], name: str) -> int | None:
    value = _number(item, name)
    if value is None:
        return None
    if value != value.to_integral_value() or value < 0:
        raise ValueError(f"{name} must be a non-negative whole number, got {value}")
    if value > limits.MAX_TOKENS:  # every count here (tokens, calls, a PR number) fits this bound
        raise ValueError(f"{name} must be at most {limits.MAX_TOKENS:,}, got {value}")
    return int(value)


def _timestamp(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp is not an ISO 8601 time: {_quote(text)}") from None
    if parsed.tzinfo is None:  # the tracker writes datetime.now(timezone.utc); a naive time is UTC too
        parsed = parsed.replace(tzinfo=timezone.utc)
    return limits.check_timestamp(Record.TIMESTAMP, parsed.astimezone(timezone.utc))


def _environment(item: Mapping[str, Any], defaults: MappingDefaults) -> str:
    if defaults.environment:
        return normalize_environment(defaults.environment)
    own = _text(item, "environment")
    if own:
        return normalize_environment(own)
    if defaults.table_environment:
        return normalize_environment(defaults.table_environment)
    raise ValueError("no environment: the item names none and the table name has no stack token; pass --environment")


def _operation(name: str) -> str:
    return _OPERATIONS.get(name.lower(), name)


def _error_type(message: str) -> str:
    """A short, bounded error class: the HTTP status the SDKs put in their messages, else `legacy_error`."""
    found = _ERROR_CODE.search(message)
    return found.group(1) if found else "legacy_error"


# -- metadata -> tags -----------------------------------------------------------------------------------------


def _metadata(item: Mapping[str, Any]) -> dict[str, Any]:
    """`metadata`'s entries as plain values (exact number text); a `metadata` that is not a map is one entry."""
    value = item.get("metadata")
    if value is None or not isinstance(value, Mapping):
        return {}
    if "M" in value and isinstance(value["M"], Mapping):
        return {str(key): _plain(entry) for key, entry in value["M"].items()}
    plain = _plain(value)
    return {} if plain is None else {"metadata": plain}


def _plain(value: Any) -> Any:
    """A DynamoDB attribute value as JSON-ready data; numbers stay their exact text."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return str(value)
    ((kind, inner),) = value.items()
    if kind in ("S", "N"):
        return str(inner)
    if kind == "BOOL":
        return bool(inner)
    if kind == "NULL":
        return None
    if kind == "M":
        return {str(k): _plain(v) for k, v in inner.items()}
    if kind == "L":
        return [_plain(v) for v in inner]
    if kind in ("SS", "NS"):
        return [str(v) for v in inner]
    if kind == "B":
        return f"<{len(inner)} bytes>"
    if kind == "BS":
        return [f"<{len(v)} bytes>" for v in inner]
    return str(inner)


def _promotable(metadata: Mapping[str, Any], key: str, field_name: str) -> str | None:
    """A metadata string that fits the record field `field_name`; None leaves it a tag."""
    value = metadata.get(key)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return limits.check_text(field_name, value.strip())
    except limits.OutOfBounds:
        return None


def _tag_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _bounded_tags(own: Mapping[str, str], metadata: Mapping[str, Any]) -> tuple[dict[str, str], int]:
    """The record's tags within the ledger's bounds, and how many were cut or left out."""
    tags: dict[str, str] = {}
    trimmed = 0
    candidates = [*own.items(), *((key, metadata[key]) for key in sorted(metadata) if key not in own)]
    slots = limits.MAX_TAGS - 1  # one kept for TAG_TRIMMED
    for key, value in candidates:
        text = _tag_text(value)
        if text is None:
            continue  # NULL: nothing to keep
        if not key or len(key) > limits.MAX_TAG_KEY_CHARS or not _storable(key) or not _storable(text):
            trimmed += 1
            continue
        if len(tags) >= slots:
            trimmed += 1
            continue
        if len(text) > limits.MAX_TAG_VALUE_CHARS:
            text = text[: limits.MAX_TAG_VALUE_CHARS - 1] + _ELLIPSIS
            trimmed += 1
        tags[key] = text
    if trimmed:
        tags[TAG_TRIMMED] = str(trimmed)
    return tags, trimmed


def _storable(text: str) -> bool:
    try:
        limits.check_text("tag", text, max_chars=len(text))
    except limits.OutOfBounds:
        return False
    return True


def _key_text(value: Any) -> str:
    if isinstance(value, Mapping) and len(value) == 1:
        return str(next(iter(value.values())))
    return "" if value is None else str(value)


def _shown_value(value: Any) -> Any:
    if isinstance(value, Mapping) and len(value) == 1:
        return next(iter(value.values()))
    return value


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTED else text[: _QUOTED - 3] + "..."
