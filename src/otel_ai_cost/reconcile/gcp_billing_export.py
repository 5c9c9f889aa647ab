"""Google's bill (Gemini API, Vertex AI, Places), from the Cloud Billing export in BigQuery, as `BilledLine`s.

Cloud Billing writes every charge of a billing account to the standard usage cost table
`PROJECT.DATASET.gcp_billing_export_v1_<BILLING ACCOUNT ID>` once the export is enabled (Billing > Billing export
> BigQuery export). This source runs one parameterised query over it (`google-cloud-bigquery`, the
`otel-ai-cost[gcp-billing]` extra): the start and end days are query parameters, never text in the SQL, and the table
name is checked (`[A-Za-z0-9_-]` parts, `project.dataset.table`) and backticked.

What it sums, per UTC day (`DATE(usage_start_time)`), service, SKU and project (`project.id`):

* `cost_type = 'regular'` rows only (tax, adjustments and rounding errors are not usage);
* the money net of credits: `SUM(cost) + SUM(credits.amount)` (credits are negative: free tier, promotions,
  committed-use discounts), summed in BigQuery as NUMERIC (`CAST(cost AS NUMERIC)`), so the client returns `Decimal`
  and no float ever adds up money;
* `usage.amount_in_pricing_units` (the SKU's pricing unit, `usage.pricing_unit`), as the line's quantity.

Days are UTC, like the ledger's. The Cloud console and the invoice count days in US-Pacific time, so a console
figure for one day can differ from this source's by the calls made between midnight UTC and midnight Pacific.
The export arrives late (it is loaded several times a day and a day's rows can come days later): the reconciliation
re-pulls the trailing days on every run and replaces what it stored; lines of today are `final=False`. Rows are
pruned on `_PARTITIONTIME` (from the day before `start_day`, since a row is exported after its usage) as well as on
`usage_start_time`; pass `prune_partitions=False` when `table` is a view, which has no `_PARTITIONTIME`.

Currency: the export is in the billing account's currency. A non-USD account is converted to USD with the export's
own `currency_conversion_rate` (Google's rate for the row: cost in USD = cost / rate), row by row in BigQuery as
NUMERIC (so each row's USD amount is rounded to NUMERIC's 9 decimal places); the pull then carries a note saying so.
A non-USD row without a usable rate is refused (`BillingCurrencyError`), never counted as $0.

Services and lines (`line` = `"SERVICE / SKU"`, `account` = the project id):

* `Gemini API` and `Generative Language API` (its older name) -> `gcp.gemini`; `Vertex AI` -> `gcp.vertex_ai`:
  the model and token class are read from the SKU text where it names them ("Generate content input token count
  Gemini 2.5 Flash short input text" -> `gemini-2.5-flash`, `input`; "Gemini 2.5 Flash GA Thinking Text Output -
  Predictions" -> `reasoning`; cached input -> `cache_read`; context-cache storage -> `cache_storage`; audio input ->
  `input_audio`; batch predictions -> tier `batch`; grounding -> `web_search`);
* services starting with `Places` (Places API, Places API (New)) -> `google_places`: the SKU is a per-request fee
  (`request`), its model the SKU id the instrumentation prices ("Place Details Pro" -> `place_details_pro`).

Other services of the account are not read. A line whose SKU text says no model or token class is kept with token
class `other` and `parsed=False`: it stays on the bill and is reported, never dropped.

Credentials: Google's Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, or `gcloud auth
application-default login`, or the workload's service account), with `bigquery.jobs.create` on the project that
runs the query (by default the table's) and `bigquery.tables.getData` on the export dataset. Rate limits and 5xx
are retried by the BigQuery client (exponential backoff), bounded by `RETRY_TIMEOUT` seconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, NamedTuple

from otel_ai_cost.contract import TokenType
from otel_ai_cost.instrumentation.per_request import skus
from otel_ai_cost.reconcile.billed import OTHER, AccountMap, BilledLine, BilledPull, MissingCredentials

__all__ = [
    "GEMINI",
    "PLACES",
    "RETRY_TIMEOUT",
    "VERTEX_AI",
    "BillingCurrencyError",
    "GCPBillingExport",
    "billing_query",
    "parse_sku",
    "provider_of",
    "quoted_table",
]

SOURCE = "gcp_billing_export"
GEMINI = "gcp.gemini"
VERTEX_AI = "gcp.vertex_ai"
PLACES = skus.GOOGLE_PLACES  # google_places, as the googlemaps instrumentation and track_request emit it
RETRY_TIMEOUT = 300.0  # seconds the BigQuery client keeps retrying one API call (its default is 600)

# service.description -> gen_ai.provider.name. Places services are matched by prefix (see provider_of).
SERVICES = {"Gemini API": GEMINI, "Generative Language API": GEMINI, "Vertex AI": VERTEX_AI}
PLACES_PREFIX = "Places"


class BillingCurrencyError(ValueError):
    """The export holds an amount that cannot be stated in USD (a non-USD row without a conversion rate)."""


def provider_of(service: str) -> str | None:
    """The `gen_ai.provider.name` a billing export service bills, or None for services this source ignores."""
    service = service.strip()
    if service in SERVICES:
        return SERVICES[service]
    if service.startswith(PLACES_PREFIX):
        return PLACES
    return None


# -- the table and the query ------------------------------------------------------------------------------------------

_TABLE_PART = re.compile(r"[A-Za-z0-9_-]+")


def quoted_table(table: str) -> str:
    """`project.dataset.table`, checked and backticked for the SQL; a surrounding pair of backticks is accepted.
    Anything else (other characters, a missing or extra part) is a ValueError: the name goes into the SQL text,
    so nothing but a table name may pass."""
    name = table.strip()
    if len(name) > 2 and name.startswith("`") and name.endswith("`"):
        name = name[1:-1]
    parts = name.split(".")
    if len(name) > 1024 or len(parts) != 3 or not all(_TABLE_PART.fullmatch(part) for part in parts):
        raise ValueError(
            f"the billing export table must be PROJECT.DATASET.TABLE of letters, digits, '_' and '-', got {table!r}"
        )
    return f"`{name}`"


def billing_query(table: str, *, prune_partitions: bool = True) -> str:
    """The SQL of a pull: parameters `@start_day`, `@end_day` (DATE, inclusive) and `@services` (ARRAY<STRING>)."""
    partitions = (
        "_PARTITIONTIME >= TIMESTAMP_SUB(TIMESTAMP(@start_day), INTERVAL 1 DAY)\n  AND " if prune_partitions else ""
    )
    # A row's amount in USD: as it is for USD rows, else divided by the row's own conversion rate (NULL when the
    # rate is missing or zero, which the `unconvertible` count makes an error instead of a smaller sum).
    usd = "IF(currency = 'USD', {value}, SAFE_DIVIDE({value}, CAST(NULLIF(currency_conversion_rate, 0) AS NUMERIC)))"
    cost = usd.format(value="CAST(cost AS NUMERIC)")
    credits = usd.format(value="IFNULL((SELECT SUM(CAST(c.amount AS NUMERIC)) FROM UNNEST(credits) AS c), 0)")
    return f"""SELECT
  DATE(usage_start_time) AS usage_day,
  service.description AS service_name,
  sku.description AS sku_name,
  IFNULL(project.id, '') AS project_id,
  SUM({cost}) AS cost_usd,
  SUM({credits}) AS credits_usd,
  SUM(CAST(usage.amount_in_pricing_units AS NUMERIC)) AS usage_amount,
  ANY_VALUE(usage.pricing_unit) AS usage_unit,
  STRING_AGG(DISTINCT currency, ',' ORDER BY currency) AS currencies,
  COUNTIF(currency != 'USD' AND (currency_conversion_rate IS NULL OR currency_conversion_rate = 0)) AS unconvertible
FROM {quoted_table(table)}
WHERE {partitions}usage_start_time >= TIMESTAMP(@start_day)
  AND usage_start_time < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
  AND cost_type = 'regular'
  AND (service.description IN UNNEST(@services) OR STARTS_WITH(service.description, '{PLACES_PREFIX}'))
GROUP BY usage_day, service_name, sku_name, project_id
ORDER BY usage_day, service_name, sku_name, project_id"""


# -- SKU text -------------------------------------------------------------------------------------------------------


class ParsedSku(NamedTuple):
    """What a SKU's text says; `parsed` False when it names no token class this source knows (class `other`)."""

    model: str
    token_class: str
    tier: str = ""  # batch, flex, priority; "" = standard
    parsed: bool = True


_NAME_WORDS = r"(?:Pro|Flash|Lite|Ultra|Nano|Image|Live|TTS|Preview)"
_GEMINI_MODEL = re.compile(rf"\bGemini\s+(\d+(?:\.\d+)*)((?:[\s-]+{_NAME_WORDS}\b)+)", re.IGNORECASE)
_PLACES_SKUS = frozenset(
    value for name, value in vars(skus).items() if name.isupper() and isinstance(value, str) and value != PLACES
)


def parse_sku(provider: str, sku: str) -> ParsedSku:
    """Model, token class and tier of a SKU description of `provider`'s service (see the module docs)."""
    if provider == PLACES:
        return _parse_places(sku)
    text = " ".join(sku.lower().split())
    match = _GEMINI_MODEL.search(sku)
    model = ""
    if match:
        words = [word.lower() for word in re.split(r"[\s-]+", match[2]) if word]
        model = "-".join(["gemini", match[1], *words])
    tier = next((tier for tier in ("batch", "flex", "priority") if tier in text), "")
    token_class = _token_class(text)
    if token_class is None:
        return ParsedSku(model, OTHER, tier, parsed=False)
    return ParsedSku(model, token_class, tier)


def _token_class(text: str) -> str | None:
    if "grounding" in text or "search quer" in text:
        return "web_search"
    if "cach" in text and ("storage" in text or "hour" in text):
        return "cache_storage"  # context-cache storage, billed per token-hour
    if "cach" in text:
        return TokenType.CACHE_READ.value
    if "thinking" in text or "reasoning" in text:
        return TokenType.REASONING.value
    if "output" in text:
        if "audio" in text:
            return TokenType.OUTPUT_AUDIO.value
        return (TokenType.OUTPUT_IMAGE if "image" in text else TokenType.OUTPUT).value
    if "input" in text or "prompt" in text:
        # Gemini prices text, image and video input alike; audio input has its own price.
        return (TokenType.INPUT_AUDIO if "audio" in text else TokenType.INPUT).value
    return None


def _parse_places(sku: str) -> ParsedSku:
    text = re.sub(r"^places(?:\s+api)?(?:\s*\(new\))?\s*[-:]?\s*", "", sku.strip(), flags=re.IGNORECASE)
    sku_id = "_".join(word for word in re.split(r"[^a-z0-9]+", text.lower()) if word)
    if sku_id in _PLACES_SKUS:
        return ParsedSku(sku_id, "request")
    return ParsedSku(sku_id, OTHER, parsed=False)


# -- the source -----------------------------------------------------------------------------------------------------


class GCPBillingExport:
    """Billing source for Gemini API, Vertex AI and Places: the Cloud Billing export table in BigQuery.

    `table`: the export's standard usage cost table (or a view of it), `project.dataset.gcp_billing_export_v1_XXXXXX`.
    `client`: a `google.cloud.bigquery.Client`; by default one with Application Default Credentials, running the
    query in the table's project. `account_map` maps GCP project ids to deployment environments. `today`: the current
    UTC day, or a function giving it (default: the clock). `prune_partitions`: False when `table` is a view (no
    `_PARTITIONTIME`). `retry`: a `google.api_core.retry.Retry` for the API calls (default: the BigQuery client's
    own, bounded to `RETRY_TIMEOUT` seconds).
    """

    name = SOURCE
    providers: tuple[str, ...] = (GEMINI, VERTEX_AI, PLACES)

    def __init__(
        self,
        table: str,
        *,
        client: Any = None,
        account_map: AccountMap | None = None,
        today: date | Callable[[], date] | None = None,
        prune_partitions: bool = True,
        retry: Any = None,
    ) -> None:
        self.table = quoted_table(table)[1:-1]
        self.sql = billing_query(self.table, prune_partitions=prune_partitions)
        self._client = client
        self.account_map = account_map or AccountMap()
        self._today = today
        self._retry = retry

    def today(self) -> date:
        if self._today is None:
            return datetime.now(timezone.utc).date()
        return self._today() if callable(self._today) else self._today

    @property
    def client(self) -> Any:
        """The BigQuery client, made on first use (Application Default Credentials, the table's project)."""
        if self._client is None:
            bigquery = _bigquery()
            from google.auth.exceptions import DefaultCredentialsError

            try:
                self._client = bigquery.Client(project=self.table.split(".")[0])
            except DefaultCredentialsError:
                raise MissingCredentials(
                    "no Google credentials for the billing export: set GOOGLE_APPLICATION_CREDENTIALS (a service "
                    "account key file) or run `gcloud auth application-default login`"
                ) from None
        return self._client

    def pull(self, start_day: date, end_day: date) -> BilledPull:
        """Every Gemini API, Vertex AI and Places line billed on the UTC days `start_day`..`end_day` (inclusive),
        every result page read. Raises `MissingCredentials` without Google credentials, `BillingCurrencyError` for
        an amount that cannot be stated in USD."""
        if end_day < start_day:
            raise ValueError(f"end_day {end_day} is before start_day {start_day}")
        today = self.today()
        last = min(end_day, today)  # nothing is billed after today
        if last < start_day:
            return BilledPull(source=SOURCE, start_day=start_day, end_day=end_day)
        bigquery = _bigquery()
        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter("start_day", "DATE", start_day),
                bigquery.ScalarQueryParameter("end_day", "DATE", last),
                bigquery.ArrayQueryParameter("services", "STRING", sorted(SERVICES)),
            ]
        )
        retry = self._retry if self._retry is not None else bigquery.DEFAULT_RETRY.with_timeout(RETRY_TIMEOUT)
        rows = self.client.query_and_wait(self.sql, job_config=config, retry=retry)
        lines: list[BilledLine] = []
        currencies: set[str] = set()
        pages = 0
        for page in rows.pages:
            pages += 1
            for row in page:
                line = self._line(row, start_day, last, today, currencies)
                if line is not None:
                    lines.append(line)
        notes = []
        foreign = sorted(currencies - {"USD"})
        if foreign:
            notes.append(
                f"The Google Cloud billing export is in {', '.join(foreign)}: its amounts were converted to USD with "
                "the export's currency_conversion_rate, row by row (rounded to 9 decimal places)."
            )
        lines.sort(key=lambda line: line.key)
        return BilledPull(SOURCE, start_day, end_day, lines=lines, notes=notes, requests=max(pages, 1))

    def _line(self, row: Any, start_day: date, last: date, today: date, currencies: set[str]) -> BilledLine | None:
        day, service, sku, project = (
            row["usage_day"],
            row["service_name"] or "",
            row["sku_name"] or "",
            row["project_id"] or "",
        )
        provider = provider_of(service)
        if provider is None or not isinstance(day, date) or not start_day <= day <= last:
            return None
        currencies.update(code for code in (row["currencies"] or "").split(",") if code)
        if row["unconvertible"]:
            raise BillingCurrencyError(
                f"{service} / {sku} on {day} is billed in {row['currencies']} without a currency_conversion_rate: "
                "its USD amount is unknown"
            )
        cost, credits, quantity = row["cost_usd"], row["credits_usd"], row["usage_amount"]
        for value, what in ((cost, "cost"), (credits, "credits"), (quantity, "usage amount")):
            if value is not None and not isinstance(value, Decimal):
                # A FLOAT64 column (a view that does not cast): refuse rather than add up binary fractions.
                raise TypeError(f"the billing query returned {what} as {type(value).__name__}, not NUMERIC")
        if cost is None:
            raise BillingCurrencyError(f"{service} / {sku} on {day} has no cost that can be stated in USD")
        parsed = parse_sku(provider, sku)
        return BilledLine(
            provider=provider,
            day=day,
            source=SOURCE,
            line=f"{service} / {sku}",
            amount=cost + (credits or Decimal(0)),
            account=project,
            model=parsed.model,
            token_class=parsed.token_class,
            tier=parsed.tier,
            quantity=quantity,
            unit=(row["usage_unit"] or "") if quantity is not None else "",
            environment=self.account_map.environment(provider, project),
            final=day < today,
            parsed=parsed.parsed,
        )


def _bigquery() -> Any:
    try:
        from google.cloud import bigquery
    except ImportError:
        raise ImportError(
            "the GCP billing export source needs google-cloud-bigquery: pip install 'otel-ai-cost[gcp-billing]'"
        ) from None
    return bigquery
