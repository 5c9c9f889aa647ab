"""The tracked and the billed cost as a FinOps FOCUS 1.2 cost-and-usage dataset: `otel-ai-cost export focus`.

```python
from otel_ai_cost.exports.focus import focus_dataset, read_ledger, write_focus

tracked, billed = read_ledger(store, date(2026, 1, 1), date(2026, 1, 31))
dataset = focus_dataset(tracked, billed, start_day=date(2026, 1, 1), end_day=date(2026, 1, 31))
write_focus(dataset, Path("january.parquet"))          # or .csv; the format follows the suffix
```

One row per tracked group (UTC day, provider, model, environment, service, team, tier: `TRACKED_GROUP_BY`) and one
per billed line. `x_CostSource` says which: `tracked` (our estimate, usage times prices) or `billed` (the
provider's bill). docs/focus.md is the user's guide: the columns, and how to import the file into Vantage or Datadog.

**Never counted twice.** `BilledCost` (and `EffectiveCost`, `ListCost`, `ContractedCost`, always equal to it: no
commitment discounts) holds a row's figure only where that figure is the one that counts for its provider and
period; elsewhere it is 0 and `x_CountedInBilledCost` is false, with the figure in `x_Amount` and what counts
instead in `x_SupersededBy`. What counts, per provider:
- a monthly figure (an invoice entered by hand, `BilledLine.period` "month") counts for its whole month, when the
  window covers that month (else it is left out, and said in `FocusDataset.notes`);
- otherwise, per UTC day, the bill of ONE source, the first present in `reconcile.compare.SOURCE_PRECEDENCE`
  (the admin APIs, then an invoice, then a dashboard figure), as `otel-ai-cost reconcile` chooses it;
- otherwise, with no bill for the day, the tracked estimate.
So summing `BilledCost` gives the bill where there is one and the estimate where there is none, each day once.

**Unknown cost is never $0.** A tracked row with calls of unknown cost (unpriced, streams cut before their usage)
has `x_UnknownCostCalls` > 0 and `x_CostIsLowerBound` true: its amount is the priced calls' sum, a lower bound, and
its `ChargeDescription` says so.

**Exact money.** CSV cells are the exact decimal text (always with a decimal point, so that readers that infer
types read every Decimal column as a decimal, never as an integer); Parquet columns are `decimal128(38, 18)`,
never floats: a value that does not fit exactly is an error, never rounded.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from otel_ai_cost.contract import CURRENCY, RecordSource
from otel_ai_cost.ledger.store import EXACT_SUMS, AggregateRow, BilledQuery, UsageQuery
from otel_ai_cost.reconcile.billed import BilledLine
from otel_ai_cost.reconcile.compare import MANUAL_BILLED_SOURCES, SOURCE_PRECEDENCE

if TYPE_CHECKING:
    from otel_ai_cost.ledger.store import LedgerStore

__all__ = [
    "COLUMNS",
    "FOCUS_VERSION",
    "FORMATS",
    "TRACKED_GROUP_BY",
    "FocusColumn",
    "FocusDataset",
    "csv_text",
    "decimal_text",
    "focus_dataset",
    "format_of",
    "read_ledger",
    "write_csv",
    "write_focus",
    "write_parquet",
]

FOCUS_VERSION = "1.2"
FORMATS = ("csv", "parquet")
# The tracked side is read with these (`LedgerStore.aggregate`): one FOCUS row per group.
TRACKED_GROUP_BY = ("day", "provider", "model", "environment", "service", "team", "pricing_tier", "record_source",
                    "cost_source")  # fmt: skip
TRACKED = "tracked"
BILLED = "billed"
PARQUET_DECIMAL_PRECISION = 38
PARQUET_DECIMAL_SCALE = 18  # 18 decimal places and 20 integer digits: every real price and total fits exactly

Value = str | Decimal | datetime | int | bool | None


@dataclass(frozen=True, slots=True)
class FocusColumn:
    name: str
    kind: str  # string, decimal, datetime, json (a serialized JSON object), integer, boolean


def _columns(kind: str, names: str) -> list[FocusColumn]:
    return [FocusColumn(name, kind) for name in names.split()]


# FOCUS 1.2 columns, alphabetical, then ours (`x_`), as the spec's column handling asks. The mandatory ones all;
# of the conditional and recommended ones, those an AI API's charges have and the ledger can fill truthfully.
_FOCUS_COLUMNS = {
    "BilledCost": "decimal",
    "BillingAccountId": "string",
    "BillingAccountName": "string",
    "BillingCurrency": "string",
    "BillingPeriodEnd": "datetime",
    "BillingPeriodStart": "datetime",
    "ChargeCategory": "string",
    "ChargeClass": "string",
    "ChargeDescription": "string",
    "ChargeFrequency": "string",
    "ChargePeriodEnd": "datetime",
    "ChargePeriodStart": "datetime",
    "ConsumedQuantity": "decimal",
    "ConsumedUnit": "string",
    "ContractedCost": "decimal",
    "EffectiveCost": "decimal",
    "InvoiceIssuerName": "string",
    "ListCost": "decimal",
    "PricingCategory": "string",
    "PricingQuantity": "decimal",
    "PricingUnit": "string",
    "ProviderName": "string",
    "PublisherName": "string",
    "ServiceCategory": "string",
    "ServiceName": "string",
    "ServiceSubcategory": "string",
    "SubAccountId": "string",
    "SubAccountName": "string",
    "Tags": "json",
}
_TOKEN_COLUMNS = ("x_InputTokens", "x_CacheReadInputTokens", "x_CacheWriteInputTokens", "x_OutputTokens",
                  "x_ReasoningOutputTokens")  # fmt: skip
COLUMNS: tuple[FocusColumn, ...] = (
    *(FocusColumn(name, kind) for name, kind in _FOCUS_COLUMNS.items()),
    *_columns("string", "x_CostSource"),
    *_columns("boolean", "x_CountedInBilledCost"),
    *_columns("string", "x_SupersededBy"),
    *_columns("decimal", "x_Amount"),
    *_columns("boolean", "x_CostIsLowerBound"),
    *_columns("integer", "x_UnknownCostCalls x_Calls"),
    *_columns("string", "x_GenAIProviderName x_Model x_TokenClass x_ServiceTier x_BillingSource"),
    *_columns("boolean", "x_BillFinal x_BillLineParsed"),
    *_columns("integer", " ".join(_TOKEN_COLUMNS)),
)
COST_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")


@dataclass(frozen=True)
class FocusDataset:
    """The rows (column name -> value, in `COLUMNS` order) and what the caller should tell the user."""

    rows: list[dict[str, Value]]
    notes: list[str] = field(default_factory=list)

    @property
    def tracked_rows(self) -> int:
        return sum(1 for row in self.rows if row["x_CostSource"] == TRACKED)

    @property
    def billed_rows(self) -> int:
        return sum(1 for row in self.rows if row["x_CostSource"] == BILLED)

    @property
    def billed_cost(self) -> Decimal:
        """The sum of `BilledCost`: each provider's bill where there is one, the tracked estimate elsewhere."""
        total = Decimal(0)
        for row in self.rows:
            cost = row["BilledCost"]
            assert isinstance(cost, Decimal)
            total = EXACT_SUMS.add(total, cost)
        return total


# --- who sells what ------------------------------------------------------------------------------------------

AI = "AI and Machine Learning"
GENERATIVE_AI = "Generative AI"


@dataclass(frozen=True)
class _Party:
    provider: str  # ProviderName and InvoiceIssuerName: who sells the service and invoices it
    service: str  # ServiceName
    category: str = AI
    subcategory: str = GENERATIVE_AI
    hosts_others: bool = False  # serves other publishers' models (Bedrock, Vertex AI): PublisherName from the model


_PARTIES: dict[str, _Party] = {
    "openai": _Party("OpenAI", "OpenAI API"),
    "anthropic": _Party("Anthropic", "Claude API"),
    "aws.bedrock": _Party("AWS", "Amazon Bedrock", hosts_others=True),
    "gcp.gemini": _Party("Google", "Gemini API"),
    "gcp.vertex_ai": _Party("Google Cloud", "Vertex AI", hosts_others=True),
    "gcp.gen_ai": _Party("Google", "Gemini API"),
    "google_places": _Party("Google", "Places API", category="Web", subcategory="Other (Web)"),
    "x_ai": _Party("xAI", "xAI API"),
    "perplexity": _Party("Perplexity", "Perplexity API"),
    "openrouter": _Party("OpenRouter", "OpenRouter API", hosts_others=True),
    "azure.ai.openai": _Party("Microsoft", "Azure OpenAI", hosts_others=True),
    "azure.ai.inference": _Party("Microsoft", "Azure AI Inference", hosts_others=True),
    "deepseek": _Party("DeepSeek", "DeepSeek API"),
    "groq": _Party("Groq", "GroqCloud", hosts_others=True),
    "mistral_ai": _Party("Mistral AI", "Mistral AI API"),
    "cohere": _Party("Cohere", "Cohere API"),
}
# The model's maker, by a word of the model's name ("us.anthropic.claude-3-haiku-20240307-v1:0", "meta-llama/...").
_PUBLISHERS = (("anthropic", "Anthropic"), ("claude", "Anthropic"), ("openai", "OpenAI"), ("gpt", "OpenAI"),
               ("o1", "OpenAI"), ("o3", "OpenAI"), ("o4", "OpenAI"), ("meta", "Meta"), ("llama", "Meta"),
               ("amazon", "Amazon"), ("nova", "Amazon"), ("titan", "Amazon"), ("mistral", "Mistral AI"),
               ("mixtral", "Mistral AI"), ("cohere", "Cohere"), ("ai21", "AI21 Labs"), ("google", "Google"),
               ("gemini", "Google"), ("gemma", "Google"), ("deepseek", "DeepSeek"), ("x-ai", "xAI"),
               ("grok", "xAI"), ("qwen", "Alibaba"), ("moonshot", "Moonshot AI"))  # fmt: skip


def _party(provider: str) -> _Party:
    # A provider we have no entry for is named by its `gen_ai.provider.name`: never a guess.
    return _PARTIES.get(provider) or _Party(provider, provider)


def _publisher(provider: str, model: str) -> str:
    party = _party(provider)
    if party.hosts_others:
        for word in re.split(r"[./:@\s]", model.lower()):
            for prefix, publisher in _PUBLISHERS:
                if word.startswith(prefix):
                    return publisher
    return party.provider


# --- the rows --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tracked:
    day: date
    provider: str
    model: str
    tier: str
    tags: dict[str, str]
    row: AggregateRow


def focus_dataset(
    tracked: Sequence[AggregateRow], billed: Sequence[BilledLine], *, start_day: date, end_day: date
) -> FocusDataset:
    """The FOCUS rows of the UTC days `start_day`..`end_day` (inclusive).

    `tracked`: `LedgerStore.aggregate` rows grouped by (at least) day and provider, ideally by `TRACKED_GROUP_BY`;
    dashboard and invoice figures that older versions kept as ledger records (`record_source` manual or import,
    `cost_source` dashboard or invoice) are billed figures, exported as billed rows. `billed`: the stored billed
    lines. Rows of days outside the window are left out."""
    if start_day > end_day:
        raise ValueError(f"the window starts ({start_day}) after it ends ({end_day})")
    entries, legacy = _tracked_entries(tracked, start_day, end_day)
    notes: list[str] = []
    day_lines: list[BilledLine] = []
    month_lines: list[BilledLine] = []
    for line in [*billed, *legacy]:
        if line.period == "month":
            first, after = _month_bounds(line.day)
            if start_day <= first and after - timedelta(days=1) <= end_day:
                month_lines.append(line)
            elif first <= end_day and start_day < after:
                notes.append(f"the {line.source} figure of {line.provider} for {first:%Y-%m} is left out: the window "
                             f"{start_day}..{end_day} covers only part of that month")  # fmt: skip
        elif start_day <= line.day <= end_day:
            day_lines.append(line)

    by_month: dict[tuple[str, str], str] = {}
    for line in month_lines:
        key = (line.provider, f"{line.day:%Y-%m}")
        by_month[key] = _first(by_month.get(key), line.source)
    by_day: dict[tuple[str, date], str] = {}
    for line in day_lines:
        key = (line.provider, line.day)
        by_day[key] = _first(by_day.get(key), line.source)

    def counting(provider: str, day: date) -> str | None:
        """The billing source whose figure counts for the provider's day (None: the tracked estimate)."""
        return by_month.get((provider, f"{day:%Y-%m}")) or by_day.get((provider, day))

    rows = [_tracked_row(entry, counting(entry.provider, entry.day)) for entry in entries]
    for line in day_lines:
        month_source = by_month.get((line.provider, f"{line.day:%Y-%m}"))
        chosen = month_source or by_day[(line.provider, line.day)]
        counted = month_source is None and chosen == line.source  # every line of the chosen source counts
        rows.append(_billed_row(line, None if counted else chosen))
    for line in month_lines:
        chosen = by_month[(line.provider, f"{line.day:%Y-%m}")]
        rows.append(_billed_row(line, None if chosen == line.source else chosen))
    rows.sort(key=_order)
    return FocusDataset(rows=rows, notes=notes)


def _first(current: str | None, candidate: str) -> str:
    """Of two billing sources, the one whose figure counts (`SOURCE_PRECEDENCE`; unknown ones after, by name)."""
    if current is None:
        return candidate

    def rank(source: str) -> tuple[int, str]:
        known = source in SOURCE_PRECEDENCE
        return (SOURCE_PRECEDENCE.index(source) if known else len(SOURCE_PRECEDENCE), source)

    return min(current, candidate, key=rank)


def _tracked_entries(
    rows: Iterable[AggregateRow], start_day: date, end_day: date
) -> tuple[list[_Tracked], list[BilledLine]]:
    entries: list[_Tracked] = []
    legacy: list[BilledLine] = []
    for row in rows:
        group = dict(row.group)
        if "day" not in group or "provider" not in group:
            raise ValueError(f"tracked rows must be grouped by day and provider at least, got {sorted(group)}")
        day = date.fromisoformat(group["day"])
        if not start_day <= day <= end_day:
            continue
        by_hand = group.get("record_source") in (RecordSource.MANUAL.value, RecordSource.IMPORT.value)
        if by_hand and group.get("cost_source") in MANUAL_BILLED_SOURCES:
            legacy.append(
                BilledLine(
                    provider=group["provider"],
                    day=day,
                    source=group["cost_source"],
                    line=f"ledger record ({group.get('model') or 'all models'})",
                    amount=row.amount,
                    model=group.get("model", ""),
                    environment=group.get("environment", ""),
                )
            )
            continue
        tags = {key: group[key] for key in ("environment", "service", "team") if group.get(key)}
        entries.append(_Tracked(day, group["provider"], group.get("model", ""), group.get("pricing_tier", ""), tags,
                                row))  # fmt: skip
    return entries, legacy


def _month_bounds(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _common(provider: str, model: str, start: date, end: date) -> dict[str, Value]:
    """The columns every row of `provider` has, for a charge of the UTC days `start`..`end` (exclusive)."""
    party = _party(provider)
    month_start, month_end = _month_bounds(start)
    return {
        "BillingAccountId": provider,
        "BillingAccountName": f"{party.provider} account",
        "BillingCurrency": CURRENCY,
        "BillingPeriodStart": _midnight(month_start),
        "BillingPeriodEnd": _midnight(month_end),
        "ChargeClass": None,
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodStart": _midnight(start),
        "ChargePeriodEnd": _midnight(end),
        "InvoiceIssuerName": party.provider,
        "ProviderName": party.provider,
        "PublisherName": _publisher(provider, model),
        "ServiceCategory": party.category,
        "ServiceName": party.service,
        "ServiceSubcategory": party.subcategory,
        "x_GenAIProviderName": provider,
        "x_Model": model or None,
    }


def _costs(amount: Decimal, counted: bool) -> dict[str, Value]:
    counted_amount = amount if counted else Decimal(0)
    return {
        **dict.fromkeys(COST_COLUMNS, counted_amount),
        "x_Amount": amount,
        "x_CountedInBilledCost": counted,
    }


_MILLION = 6  # PricingUnit "1000000 Tokens": the AI price lists' unit


def _quantities(quantity: Decimal | int | None, unit: str) -> dict[str, Value]:
    """ConsumedQuantity/Unit and PricingQuantity/Unit; null when the bill gives no quantity."""
    if quantity is None:
        return dict.fromkeys(("ConsumedQuantity", "ConsumedUnit", "PricingQuantity", "PricingUnit"))
    amount = Decimal(quantity)
    if unit == "Tokens":
        per_million = amount.scaleb(-_MILLION, context=EXACT_SUMS)  # exact: EXACT_SUMS traps any rounding
        return {"ConsumedQuantity": amount, "ConsumedUnit": unit, "PricingQuantity": per_million,
                "PricingUnit": "1000000 Tokens"}  # fmt: skip
    return {"ConsumedQuantity": amount, "ConsumedUnit": unit, "PricingQuantity": amount, "PricingUnit": unit}


def _tracked_row(entry: _Tracked, superseded_by: str | None) -> dict[str, Value]:
    row = entry.row
    tokens = row.input_tokens + row.output_tokens  # semconv: input includes cache, output includes reasoning
    described = f"Tracked estimate: {entry.model or '(no model)'}, {row.calls} calls"
    if row.unknown_cost_calls:
        described += f", {row.unknown_cost_calls} of unknown cost (the amount is a lower bound)"
    if superseded_by:
        described += f"; the {superseded_by} bill counts instead"
    values: dict[str, Value] = {
        **_common(entry.provider, entry.model, entry.day, entry.day + timedelta(days=1)),
        **_costs(row.amount, superseded_by is None),
        **(_quantities(tokens, "Tokens") if tokens else _quantities(row.calls, "Requests")),
        "ChargeCategory": "Usage",
        "ChargeDescription": described,
        "PricingCategory": "Standard",
        "SubAccountId": None,
        "SubAccountName": None,
        "Tags": _json(entry.tags),
        "x_CostSource": TRACKED,
        "x_SupersededBy": superseded_by,
        "x_CostIsLowerBound": row.unknown_cost_calls > 0,
        "x_UnknownCostCalls": row.unknown_cost_calls,
        "x_Calls": row.calls,
        "x_TokenClass": None,
        "x_ServiceTier": entry.tier or None,
        "x_BillingSource": None,
        "x_BillFinal": None,
        "x_BillLineParsed": None,
        "x_InputTokens": row.input_tokens,
        "x_CacheReadInputTokens": row.cache_read_input_tokens,
        "x_CacheWriteInputTokens": row.cache_write_input_tokens,
        "x_OutputTokens": row.output_tokens,
        "x_ReasoningOutputTokens": row.reasoning_output_tokens,
    }
    return {column.name: values[column.name] for column in COLUMNS}


_UNITS = {"token": "Tokens", "tokens": "Tokens", "request": "Requests", "requests": "Requests", "call": "Requests",
          "calls": "Requests", "second": "Seconds", "seconds": "Seconds", "minute": "Minutes", "minutes": "Minutes",
          "hour": "Hours", "hours": "Hours", "image": "Images", "images": "Images"}  # fmt: skip


def _billed_row(line: BilledLine, superseded_by: str | None) -> dict[str, Value]:
    if line.period == "month":
        start, end = _month_bounds(line.day)
    else:
        start, end = line.day, line.day + timedelta(days=1)
    usage = line.amount >= 0  # a negative line is a credit (FOCUS: ConsumedQuantity only on Usage rows)
    described = line.line + (f" ({line.note})" if line.note else "")
    if superseded_by:
        described += f"; the {superseded_by} bill counts instead"
    unit = _UNITS.get(line.unit.strip().lower(), line.unit.strip() or "Units")
    tags = {"environment": line.environment} if line.environment else {}
    values: dict[str, Value] = {
        **_common(line.provider, line.model, start, end),
        **_costs(line.amount, superseded_by is None),
        **_quantities(line.quantity if usage else None, unit),
        "ChargeCategory": "Usage" if usage else "Credit",
        "ChargeDescription": described,
        "PricingCategory": "Standard" if usage else None,
        "SubAccountId": line.account or None,
        "SubAccountName": line.account or None,
        "Tags": _json(tags),
        "x_CostSource": BILLED,
        "x_SupersededBy": superseded_by,
        "x_CostIsLowerBound": False,
        "x_UnknownCostCalls": None,
        "x_Calls": None,
        "x_TokenClass": line.token_class or None,
        "x_ServiceTier": line.tier or None,
        "x_BillingSource": line.source,
        "x_BillFinal": line.final,
        "x_BillLineParsed": line.parsed,
        **dict.fromkeys(_TOKEN_COLUMNS),
    }
    return {column.name: values[column.name] for column in COLUMNS}


def _json(tags: Mapping[str, str]) -> str | None:
    return json.dumps(dict(sorted(tags.items())), separators=(",", ":"), ensure_ascii=False) if tags else None


def _order(row: Mapping[str, Value]) -> tuple[str, ...]:
    keys = ("ChargePeriodStart", "x_GenAIProviderName", "x_CostSource", "x_BillingSource", "SubAccountId",
            "ChargeDescription", "x_Model", "Tags", "x_ServiceTier", "x_TokenClass")  # fmt: skip
    return tuple("" if row[key] is None else str(row[key]) for key in keys)


# --- the ledger ------------------------------------------------------------------------------------------------


def read_ledger(store: LedgerStore, start_day: date, end_day: date) -> tuple[list[AggregateRow], list[BilledLine]]:
    """What `focus_dataset` takes, from a ledger: the tracked groups and the billed lines of the window, every
    environment."""
    tracked = store.aggregate(UsageQuery(start_day=start_day, end_day=end_day), list(TRACKED_GROUP_BY))
    return tracked, store.billed_lines(BilledQuery(start_day=start_day, end_day=end_day))


# --- the files -------------------------------------------------------------------------------------------------


def format_of(path: Path) -> str | None:
    """The format a file name asks for (`.csv`, `.parquet`/`.pq`), or None."""
    return {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(path.suffix.lower())


def write_focus(dataset: FocusDataset, path: Path, fmt: str | None = None) -> None:
    """Writes the dataset to `path` in `fmt` (default: from the suffix), atomically: a failed export leaves any
    previous file as it was, never half a file."""
    fmt = fmt or format_of(path)
    if fmt not in FORMATS:
        raise ValueError(f"cannot tell the format of {str(path)!r}: name it .csv or .parquet, or give the format")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if fmt == "csv":
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
                write_csv(dataset, stream)
        else:
            os.close(descriptor)
            write_parquet(dataset, Path(temporary))
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_csv(dataset: FocusDataset, stream: TextIO) -> None:
    """RFC 4180 CSV, a header row of column names; null is an empty cell."""
    writer = csv.writer(stream)
    writer.writerow([column.name for column in COLUMNS])
    for row in dataset.rows:
        writer.writerow([_text(row[column.name]) for column in COLUMNS])


def csv_text(dataset: FocusDataset) -> str:
    stream = io.StringIO()
    write_csv(dataset, stream)
    return stream.getvalue()


def _text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def decimal_text(value: Decimal) -> str:
    """The exact value in plain notation with a decimal point (`12` -> `12.0`, `-0` -> `0.0`): FOCUS numeric format
    (no exponent sign, no thousands separators), read as a decimal by readers that infer types."""
    if value.is_zero():
        value = value.copy_abs()
    text = format(value, "f")
    return text if "." in text else f"{text}.0"


def write_parquet(dataset: FocusDataset, path: Path) -> None:
    """Parquet with typed columns: decimal128(38, 18) money and quantities, UTC timestamps, int64 counts, booleans,
    strings (Tags as its JSON text). Needs pyarrow (`pip install 'otel-ai-cost[focus]'`)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:
        raise RuntimeError("Parquet needs pyarrow: pip install 'otel-ai-cost[focus]' (or export .csv)") from error
    types = {
        "string": pa.string(),
        "json": pa.string(),
        "decimal": pa.decimal128(PARQUET_DECIMAL_PRECISION, PARQUET_DECIMAL_SCALE),
        "datetime": pa.timestamp("ms", tz="UTC"),  # Parquet has no seconds unit
        "integer": pa.int64(),
        "boolean": pa.bool_(),
    }
    arrays = []
    for column in COLUMNS:
        values = [row[column.name] for row in dataset.rows]
        try:
            arrays.append(pa.array(values, type=types[column.kind]))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise ValueError(
                f"{column.name}: a value does not fit Parquet decimal128({PARQUET_DECIMAL_PRECISION}, "
                f"{PARQUET_DECIMAL_SCALE}) exactly (more than {PARQUET_DECIMAL_SCALE} decimal places or "
                f"{PARQUET_DECIMAL_PRECISION - PARQUET_DECIMAL_SCALE} integer digits); export CSV, which keeps "
                f"any exact value ({error})"
            ) from None
    metadata = {"focus_version": FOCUS_VERSION, "generator": f"otel-ai-cost {_version()}"}
    table = pa.Table.from_arrays(arrays, names=[column.name for column in COLUMNS]).replace_schema_metadata(metadata)
    pq.write_table(table, str(path))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("otel-ai-cost")
    except PackageNotFoundError:
        return "unknown"
