"""Anthropic's bill: the Admin API's cost and usage reports, read with the `anthropic` SDK.

Set `ANTHROPIC_ADMIN_KEY` (an Admin API key, `sk-ant-admin...`, created by an organization admin in the Claude
Console) or `ANTHROPIC_ADMIN_KEY_FILE` (a file holding it). Then::

    source = AnthropicCostReport()
    pull = source.pull(date(2026, 11, 1), date(2026, 11, 30))

What is read (anthropic 2.x, `client.beta.organization.analytics`, beta header `analytics-usage-cost-2026-08-24`,
which the SDK sends itself):

- Money: `analytics.cost.list` (`GET /v1/organizations/analytics/cost`) in daily buckets, grouped by workspace,
  model, service tier, context window and inference region, fanned out by cost type and token type. That is the
  report that breaks cost out by workspace and tier; the legacy `analytics.cost_report` (`/cost_report`) cannot
  group by either and serves Claude Enterprise plans only. Amounts are decimal strings in cents: `"123.45"` is
  $1.2345, converted exactly. Each row is one `BilledLine`: `account` is the workspace ("" for the default
  workspace), `line` names the row's dimensions (`tokens, model=claude-sonnet-4-5,
  token_type=output_tokens, service_tier=standard, context_window=0-200k`), `token_class` the `TokenType` it
  bills (`web_search` and `code_execution` for those fees; anything else is kept as `other`, `parsed=False`).
- Tokens: `analytics.usage.list` (`GET /v1/organizations/analytics/usage`) grouped by workspace, model, service
  tier and API key, as `BilledUsage` rows. Anthropic's uncached input excludes cache reads and writes; here
  `input_tokens` includes them, like the ledger's records. Usage no API key authenticated (Workbench, the
  console) is summed apart, `provider_side=True`: our instrumentation cannot see it.
- Priority Tier: its cost is not in the cost report (it is billed under the Priority Tier commitment). A day whose
  usage shows priority-tier tokens without a priority cost line gets a sentence in `BilledPull.notes`, never a
  line: the comparison says so instead of calling the difference a discrepancy.

Today's lines and usage are `final=False` (the day is still running; data arrives within minutes). A range longer
than 31 days is read in 31-day windows (the API's limit), every page to the end. 429 and 5xx answers are retried
by the SDK itself (`max_retries`, default 5), which waits what `retry-after-ms` or `Retry-After` says and backs off
exponentially (0.5 s doubling, at most 8 s) when neither is sent; `BilledPull.requests` counts HTTP attempts and
`BilledPull.retries` the retries among them. A failure raises `AnthropicBillingError`, whose message never holds
the admin key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from otel_ai_cost.contract import TokenType
from otel_ai_cost.reconcile import billed
from otel_ai_cost.reconcile.billed import OTHER, BilledLine, BilledPull, BilledUsage

if TYPE_CHECKING:
    import anthropic

__all__ = ["ADMIN_KEY_VARIABLE", "AnthropicBillingError", "AnthropicCostReport"]

ADMIN_KEY_VARIABLE = "ANTHROPIC_ADMIN_KEY"
PROVIDER = "anthropic"
SOURCE = "anthropic_admin"
_WINDOW = timedelta(days=31)  # the reports' longest range
_MAX_PAGE = 1000  # the reports' largest `limit`
_MAX_PAGES = 10_000  # pages of one report window: far beyond any real bill (10 million rows)
# Dimensions of the cost rows: at most five, plus the two fan-outs, which do not count.
_COST_GROUP_BY = ["workspace_id", "model", "service_tier", "context_window", "inference_geo", "cost_type", "token_type"]
_USAGE_GROUP_BY = ["workspace_id", "model", "service_tier", "api_key_id"]
_TOKEN_TYPES = {
    "uncached_input_tokens": TokenType.INPUT.value,
    "output_tokens": TokenType.OUTPUT.value,
    "cache_read_input_tokens": TokenType.CACHE_READ.value,
    "cache_creation.ephemeral_5m_input_tokens": TokenType.CACHE_WRITE_5M.value,
    "cache_creation.ephemeral_1h_input_tokens": TokenType.CACHE_WRITE_1H.value,
}
_FEES = {"web_search": "web_search", "code_execution": "code_execution"}
_TIERS = {
    "standard": "standard",
    "batch": "batch",
    "flex": "flex",
    "flex_discount": "flex",
    "priority": "priority",
    "priority_on_demand": "priority",
}
_CENTS = re.compile(r"-?\d+(?:\.\d+)?")


class AnthropicBillingError(RuntimeError):
    """The Admin API refused or failed a report request (after the SDK's retries). Never holds the key."""


class _Attempts:
    """SDK middleware counting HTTP attempts and, of them, retries (the SDK runs it once per attempt)."""

    def __init__(self) -> None:
        self.requests = 0
        self.retries = 0

    def __call__(self, request: Any, call_next: Callable[[Any], Any]) -> Any:
        self.requests += 1
        if request.retries_taken:
            self.retries += 1
        return call_next(request)


class AnthropicCostReport:
    """`billed.BillingSource` for Anthropic's API bill (see the module docstring).

    `client` is an `anthropic.Anthropic` authenticated with an Admin API key; by default one is built from
    `$ANTHROPIC_ADMIN_KEY` (or `$ANTHROPIC_ADMIN_KEY_FILE`) on the first pull, with `base_url` (None: the SDK's
    own default, `$ANTHROPIC_BASE_URL` or api.anthropic.com). `max_retries` bounds the SDK's retries, on a given
    client too. `account_map` maps workspaces to deployment environments; `today` gives the current UTC day;
    `page_size` is the reports' `limit` (rows a page, at most 1000).
    """

    name = SOURCE
    providers = (PROVIDER,)

    def __init__(
        self,
        *,
        client: anthropic.Anthropic | None = None,
        base_url: str | None = None,
        max_retries: int = 5,
        account_map: billed.AccountMap | None = None,
        today: Callable[[], date] | None = None,
        page_size: int = _MAX_PAGE,
    ) -> None:
        if not 1 <= page_size <= _MAX_PAGE:
            raise ValueError(f"page_size must be from 1 to {_MAX_PAGE}, got {page_size}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self._client = client
        self._base_url = base_url
        self._max_retries = max_retries
        self._accounts = account_map or billed.AccountMap()
        self._today = today or (lambda: datetime.now(timezone.utc).date())
        self._page_size = page_size

    def __repr__(self) -> str:  # never the client (it holds the key)
        return f"AnthropicCostReport(base_url={self._base_url!r}, max_retries={self._max_retries})"

    def pull(self, start_day: date, end_day: date) -> BilledPull:
        """Everything billed on the UTC days `start_day`..`end_day` (inclusive). Raises `MissingCredentials`
        without a key, `AnthropicBillingError` when the API refuses or keeps failing."""
        if end_day < start_day:
            raise ValueError(f"end_day {end_day} is before start_day {start_day}")
        attempts = _Attempts()
        client = self._base_client().with_options(max_retries=self._max_retries).with_middleware(attempts)
        today = self._today()
        secret = str(getattr(client, "api_key", "") or "")
        lines: dict[tuple[date, str, str], BilledLine] = {}
        usage: dict[tuple[object, ...], BilledUsage] = {}
        analytics = client.beta.organization.analytics
        for start, end in _windows(start_day, end_day):
            window = {
                "starting_at": _iso(start),
                "ending_at": _iso(end),
                "time_bucket_width": "1d",
                "order_by": "time",
                "order": "asc",
                "limit": self._page_size,
            }
            for row in _read(analytics.cost.list, "cost", secret, group_by=_COST_GROUP_BY, **window):
                line = self._line(row, today)
                if start_day <= line.day <= end_day:
                    _merge_line(lines, line)
            for item in _read(analytics.usage.list, "usage", secret, group_by=_USAGE_GROUP_BY, **window):
                entry = self._usage(item, today)
                if start_day <= entry.day <= end_day:
                    _merge_usage(usage, entry)
        ordered_lines = sorted(lines.values(), key=lambda x: (x.day, x.account, x.line))
        ordered_usage = sorted(usage.values(), key=lambda u: (u.day, u.account, u.model, u.tier, u.provider_side))
        return BilledPull(
            source=SOURCE,
            start_day=start_day,
            end_day=end_day,
            lines=tuple(ordered_lines),
            usage=tuple(ordered_usage),
            notes=tuple(_priority_notes(ordered_lines, ordered_usage)),
            requests=attempts.requests,
            retries=attempts.retries,
        )

    # --- rows ---------------------------------------------------------------------------------------------

    def _base_client(self) -> anthropic.Anthropic:
        if self._client is None:
            key = billed.admin_key(ADMIN_KEY_VARIABLE)  # raises MissingCredentials naming the variables
            import anthropic  # only when the source is used

            # open_telemetry=False: a billing report is not a GenAI call; the SDK's own spans would only be noise.
            self._client = anthropic.Anthropic(
                api_key=key, base_url=self._base_url, max_retries=self._max_retries, open_telemetry=False
            )
        return self._client

    def _line(self, row: Any, today: date) -> BilledLine:
        day = _day(row.starting_at)
        group = row.group
        account = group.workspace_id or ""
        cost_type, token_type = group.cost_type, group.token_type
        token_class: str
        if cost_type == "tokens" and token_type in _TOKEN_TYPES:
            token_class, parsed = _TOKEN_TYPES[token_type], True
        elif cost_type in _FEES and token_type is None:
            token_class, parsed = _FEES[cost_type], True
        else:  # a cost type or token type this version does not know (session_usage, ...): kept, reported
            token_class, parsed = OTHER, False
        return BilledLine(
            provider=PROVIDER,
            day=day,
            source=SOURCE,
            line=_line_text(group),
            amount=_usd(row.cost.amount, row.cost.currency),
            account=account,
            model=group.model or "",
            token_class=token_class,
            tier=_tier(group.service_tier),
            environment=self._accounts.environment(PROVIDER, account),
            final=day < today,
            parsed=parsed,
        )

    def _usage(self, item: Any, today: date) -> BilledUsage:
        day = _day(item.starting_at)
        group, metrics = item.group, item.usage
        account = group.workspace_id or ""
        split = metrics.cache_creation
        write_5m = split.ephemeral_5m_input_tokens if split is not None else 0
        write_1h = split.ephemeral_1h_input_tokens if split is not None else 0
        read = metrics.cache_read_input_tokens
        return BilledUsage(
            provider=PROVIDER,
            day=day,
            source=SOURCE,
            model=group.model or "",
            account=account,
            tier=_tier(group.service_tier),
            # Anthropic's uncached input excludes the cache classes; the ledger's input total includes them.
            input_tokens=metrics.uncached_input_tokens + read + write_5m + write_1h,
            cache_read_input_tokens=read,
            cache_write_5m_input_tokens=write_5m,
            cache_write_1h_input_tokens=write_1h,
            output_tokens=metrics.output_tokens,
            requests=metrics.requests,
            provider_side=group.api_key_id is None,  # Workbench / console: no API key authenticated it
            environment=self._accounts.environment(PROVIDER, account),
            final=day < today,
        )


# --- helpers ----------------------------------------------------------------------------------------------


def _windows(start_day: date, end_day: date) -> Iterator[tuple[datetime, datetime]]:
    """[00:00 UTC start_day, 00:00 UTC end_day + 1) in windows of at most 31 days."""
    start = datetime.combine(start_day, time(0), tzinfo=timezone.utc)
    stop = datetime.combine(end_day + timedelta(days=1), time(0), tzinfo=timezone.utc)
    while start < stop:
        end = min(start + _WINDOW, stop)
        yield start, end
        start = end


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(moment: datetime) -> date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).date()


def _read(list_rows: Callable[..., Any], report: str, secret: str, **query: Any) -> Iterator[Any]:
    """Every row of every page, SDK errors made ours. A page that says `has_more` but hands back a cursor
    already followed would loop forever: that is an error, never a silently shortened bill."""
    import anthropic

    try:
        page = list_rows(**query)
        followed: set[str] = set()
        while True:
            yield from page.data or ()
            if not page.has_next_page():
                return
            cursor = str(page.next_page)
            if cursor in followed or len(followed) >= _MAX_PAGES:
                raise AnthropicBillingError(
                    f"Anthropic {report} report: page {len(followed) + 2} repeats a cursor or passes "
                    f"{_MAX_PAGES} pages; the listing is incomplete"
                )
            followed.add(cursor)
            page = page.get_next_page()
    except anthropic.APIStatusError as error:
        kind = f"{error.type}: " if error.type else ""
        detail = f"{kind}{error.api_message or 'no message'}"
        request_id = f" (request-id {error.request_id})" if error.request_id else ""
        message = f"Anthropic {report} report: HTTP {error.status_code}, {detail}{request_id}"
        raise AnthropicBillingError(_redact(message, secret)) from None
    except anthropic.APIError as error:  # connection failures, timeouts, unparseable answers
        message = f"Anthropic {report} report: {type(error).__name__}: {error}"
        raise AnthropicBillingError(_redact(message, secret)) from None


def _redact(text: str, secret: str) -> str:
    """The key out of a message that might echo it (an error body quoting the request)."""
    return text.replace(secret, "[admin key]") if secret else text


def _usd(cents: str, currency: str | None) -> Decimal:
    """A decimal string in cents as exact USD: the exponent moves by two, no rounding anywhere."""
    if (currency or "USD").upper() != "USD":  # "Currently always USD"
        raise AnthropicBillingError(f"Anthropic cost report: currency {currency!r}, expected USD")
    if not isinstance(cents, str) or not _CENTS.fullmatch(cents):
        raise AnthropicBillingError(f"Anthropic cost report: amount {cents!r} is not a decimal number of cents")
    sign, digits, exponent = Decimal(cents).as_tuple()
    assert isinstance(exponent, int)
    return Decimal((sign, digits, exponent - 2))


def _tier(service_tier: str | None) -> str:
    if service_tier is None:
        return ""
    return _TIERS.get(service_tier, service_tier)


def _line_text(group: Any) -> str:
    """The row's dimensions as text, unique within its day and workspace (the rows are unique by them)."""
    parts = [group.cost_type or "cost"]
    for name in ("model", "token_type", "service_tier", "context_window", "inference_geo"):
        value = getattr(group, name, None)
        if value is not None:
            parts.append(f"{name}={value}")
    return ", ".join(parts)


def _merge_line(lines: dict[tuple[date, str, str], BilledLine], line: BilledLine) -> None:
    """Rows are unique by their dimensions; should the API split one, its parts add up (never overwrite)."""
    key = (line.day, line.account, line.line)
    known = lines.get(key)
    lines[key] = line if known is None else replace(known, amount=known.amount + line.amount)


def _merge_usage(usage: dict[tuple[object, ...], BilledUsage], entry: BilledUsage) -> None:
    """One row per day, workspace, model, tier and side: the usage of every API key added up."""
    known = usage.get(entry.key)
    if known is None:
        usage[entry.key] = entry
        return
    requests = None if known.requests is None or entry.requests is None else known.requests + entry.requests
    usage[entry.key] = replace(
        known,
        input_tokens=known.input_tokens + entry.input_tokens,
        cache_read_input_tokens=known.cache_read_input_tokens + entry.cache_read_input_tokens,
        cache_write_5m_input_tokens=known.cache_write_5m_input_tokens + entry.cache_write_5m_input_tokens,
        cache_write_1h_input_tokens=known.cache_write_1h_input_tokens + entry.cache_write_1h_input_tokens,
        output_tokens=known.output_tokens + entry.output_tokens,
        requests=requests,
    )


@dataclass(frozen=True)
class _Priority:
    day: date
    account: str
    model: str


def _priority_notes(lines: Iterable[BilledLine], usage: Iterable[BilledUsage]) -> list[str]:
    """One sentence per day, workspace and model with priority-tier usage and no priority-tier cost line."""
    billed_priority = {_Priority(x.day, x.account, x.model) for x in lines if x.tier == "priority"}
    tokens: dict[_Priority, int] = {}
    for entry in usage:
        if entry.tier != "priority":
            continue
        key = _Priority(entry.day, entry.account, entry.model)
        tokens[key] = tokens.get(key, 0) + entry.input_tokens + entry.output_tokens
    notes = []
    for key in sorted(tokens, key=lambda k: (k.day, k.account, k.model)):
        if key in billed_priority or tokens[key] == 0:
            continue
        where = f" in workspace {key.account}" if key.account else ""
        notes.append(
            f"{key.day.isoformat()}: {tokens[key]:,} Priority Tier tokens of {key.model or 'an unnamed model'}{where} "
            "are in Anthropic's usage report but not in its cost report, which never bills Priority Tier "
            "(it is invoiced under the Priority Tier commitment); their cost is not a discrepancy."
        )
    return notes
