"""OpenAI's bill: the organization Costs API for the money, the Usage API for the token counts.

Needs an organization **admin key** (platform settings, Admin keys; an organization owner creates it), read from
`$OPENAI_ADMIN_KEY` or the file named by `$OPENAI_ADMIN_KEY_FILE` when the pull starts. Project and service-account
keys are refused by these endpoints. The key is only ever sent as the request's `Authorization` header: it is in
no message, log line or `repr` of this module. Install the `openai` extra.

What one `pull(start_day, end_day)` does, with the installed `openai` SDK (`client.admin.organization.usage`):

* `costs`: every daily bucket from 00:00 UTC of `start_day` to 00:00 UTC of the day after `end_day`, grouped by
  project and line item, 180 buckets a page, every page to the end. Each result is one `BilledLine`: its
  `amount.value` read from the response's JSON text as an exact `Decimal` (the SDK would parse it to a float),
  its line item read by `openai_line_items.parse_line_item` (a line it cannot read is kept, as `other`). Today's
  bucket is still filling: its lines are `final=False`, and the next run's pull replaces them.
* `completions` usage, grouped by model, project, batch and service tier: one `BilledUsage` per model, project
  and tier (`batch`, `flex`, `priority`, "" for standard). OpenAI's `input_tokens` includes cached and
  cache-write tokens, as `BilledUsage` counts them.

Rate limits (429) and server errors (5xx) are retried by the SDK itself, `max_retries` times, waiting what the
answer's `retry-after-ms` / `retry-after` says (up to 2 minutes; a longer wait is not retried) or else an
exponential backoff from 0.5 s to 8 s. `BilledPull.retries` counts the retries that preceded each page's answer;
a request still failing after them raises `OpenAIBillingError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import openai

from otel_ai_cost.ledger.store import EXACT_SUMS
from otel_ai_cost.pricing.tiers import STANDARD, tier_for
from otel_ai_cost.reconcile.billed import AccountMap, BilledLine, BilledPull, BilledUsage, admin_key
from otel_ai_cost.reconcile.openai_line_items import parse_line_item

__all__ = ["COSTS_PAGE_LIMIT", "USAGE_PAGE_LIMIT", "OpenAIBillingError", "OpenAICosts"]

PROVIDER = "openai"
ADMIN_KEY_VARIABLE = "OPENAI_ADMIN_KEY"
COSTS_PAGE_LIMIT = 180  # buckets a page: the Costs API's maximum
USAGE_PAGE_LIMIT = 31  # the Usage API's maximum for daily buckets
_MAX_PAGES = 10_000  # a server that keeps saying `has_more` is broken; stop rather than loop
_MAX_MESSAGE = 300
# Anything shaped like an OpenAI key (`sk-...`, `sk-admin-...`, masked `sk-...****abcd`) is cut from messages
# quoted from an error answer: OpenAI's 401 message echoes part of the key it refused.
_KEY_LIKE = re.compile(r"sk-[A-Za-z0-9_*.\-]{3,}")


class OpenAIBillingError(RuntimeError):
    """The Costs or Usage API could not be read (after the retries). The message says which request, the HTTP
    status and OpenAI's own reason; it never holds the admin key."""


class OpenAICosts:
    """The OpenAI billing source (`billed.BillingSource`): the Costs API for money, the Usage API for tokens.

    `client`: an `openai.OpenAI` to use (it must carry the admin key, `admin_api_key=`); by default one is built at
    the first pull with the key from `$OPENAI_ADMIN_KEY` / `$OPENAI_ADMIN_KEY_FILE` and `base_url` (None: the
    SDK's default, `$OPENAI_BASE_URL` or `https://api.openai.com/v1`). `max_retries` applies to either.
    `account_map` maps projects to deployment environments; `today` gives the current UTC day (whose bucket is
    still partial).
    """

    name = "openai_admin"
    providers = (PROVIDER,)

    def __init__(
        self,
        *,
        client: openai.OpenAI | None = None,
        base_url: str | None = None,
        max_retries: int = 5,
        account_map: AccountMap | None = None,
        today: Callable[[], date] | None = None,
        timeout: float = 60.0,
    ) -> None:
        if type(max_retries) is not int or max_retries < 0:
            raise ValueError("max_retries must be a non-negative integer")
        self._given = client
        self._client: openai.OpenAI | None = None
        self._base_url = base_url
        self._max_retries = max_retries
        self._accounts = account_map or AccountMap()
        self._today = today or _utc_today
        self._timeout = timeout

    def __repr__(self) -> str:
        where = str(self._given.base_url) if self._given is not None else self._base_url
        return f"OpenAICosts(base_url={where!r}, max_retries={self._max_retries})"

    def close(self) -> None:
        """Close the HTTP connections of the client this source built (a given client is the caller's)."""
        if self._client is not None and self._given is None:
            self._client.close()
        self._client = None

    # --- the pull ---------------------------------------------------------------------------------------------

    def pull(self, start_day: date, end_day: date) -> BilledPull:
        """Every cost line and usage row of the UTC days `start_day`..`end_day` (inclusive), every page read.

        Raises `billed.MissingCredentials` without an admin key, `OpenAIBillingError` when the API cannot be read.
        """
        if end_day < start_day:
            raise ValueError(f"end_day {end_day} is before start_day {start_day}")
        api = self._admin_client().admin.organization.usage.with_raw_response
        window = {"start_time": _midnight(start_day), "end_time": _midnight(end_day + timedelta(days=1))}
        today = self._today()
        counter = _Counter()
        notes: list[str] = []

        lines: dict[tuple[str, ...], BilledLine] = {}
        skipped: list[str] = []
        cost_pages = _pages(api.costs, "costs", counter, window, ["project_id", "line_item"], COSTS_PAGE_LIMIT)
        for day, result in _results(cost_pages, start_day, end_day):
            line = self._line(day, result, today)
            if line is None:
                skipped.append(str(result.get("line_item") if isinstance(result, Mapping) else result)[:80])
                continue
            lines[line.key] = _merge_lines(lines.get(line.key), line)
        if skipped:
            notes.append(
                f"{len(skipped)} OpenAI cost result(s) without a readable USD amount were left out (never "
                f"counted as $0): {', '.join(sorted(set(skipped))[:5])}"
            )

        usage: dict[tuple[Any, ...], BilledUsage] = {}
        bad_rows = 0
        usage_pages = _pages(
            api.completions, "usage/completions", counter, window,
            ["model", "project_id", "batch", "service_tier"], USAGE_PAGE_LIMIT,
        )  # fmt: skip
        for day, result in _results(usage_pages, start_day, end_day):
            row = self._usage_row(day, result, today)
            if row is None:
                bad_rows += 1
                continue
            usage[row.key] = _merge_usage(usage.get(row.key), row)
        if bad_rows:
            notes.append(f"{bad_rows} OpenAI usage result(s) without readable token counts were left out")

        return BilledPull(
            source=self.name,
            start_day=start_day,
            end_day=end_day,
            lines=tuple(lines.values()),
            usage=tuple(usage.values()),
            notes=tuple(notes),
            requests=counter.requests,
            retries=counter.retries,
        )

    def _line(self, day: date, result: Mapping[str, Any], today: date) -> BilledLine | None:
        amount_field = result.get("amount")
        if not isinstance(amount_field, Mapping):
            return None
        currency = amount_field.get("currency")
        if currency is not None and (not isinstance(currency, str) or currency.strip().lower() != "usd"):
            return None
        amount = _decimal(amount_field.get("value"))
        if amount is None:
            return None
        text = result.get("line_item")
        text = text if isinstance(text, str) else ""
        parsed = parse_line_item(text)
        account = _text(result.get("project_id"))
        quantity = _decimal(result.get("quantity"))
        return BilledLine(
            provider=PROVIDER,
            day=day,
            source=self.name,
            line=text,
            amount=amount,
            account=account,
            model=parsed.model,
            token_class=parsed.token_class,
            tier=parsed.tier,
            quantity=quantity,
            unit=_text(result.get("quantity_unit")) if quantity is not None else "",
            environment=self._accounts.environment(PROVIDER, account),
            final=day < today,
            parsed=parsed.parsed,
        )

    def _usage_row(self, day: date, result: Mapping[str, Any], today: date) -> BilledUsage | None:
        counts = [result.get(name) for name in ("input_tokens", "output_tokens")]
        counts += [result.get(name) or 0 for name in ("input_cached_tokens", "input_cache_write_tokens")]
        requests = result.get("num_model_requests")
        if not all(_count(n) for n in counts) or (requests is not None and not _count(requests)):
            return None
        account = _text(result.get("project_id"))
        return BilledUsage(
            provider=PROVIDER,
            day=day,
            source=self.name,
            model=_text(result.get("model")),
            account=account,
            tier=_usage_tier(result.get("batch"), result.get("service_tier")),
            input_tokens=counts[0],
            output_tokens=counts[1],
            cache_read_input_tokens=counts[2],
            # OpenAI's cache writes (30-minute and 12-hour retentions) have one price, which the instrumentation
            # records in the 5-minute class: the bill's count goes there too.
            cache_write_5m_input_tokens=counts[3],
            requests=requests,
            environment=self._accounts.environment(PROVIDER, account),
            final=day < today,
        )

    def _admin_client(self) -> openai.OpenAI:
        if self._client is None:
            if self._given is not None:
                self._client = self._given.with_options(max_retries=self._max_retries)
            else:
                key = admin_key(ADMIN_KEY_VARIABLE)  # raises MissingCredentials, naming the variables only
                # api_key "": OPENAI_API_KEY (a project key) is never sent; the admin endpoints take the admin key.
                self._client = openai.OpenAI(
                    api_key="",
                    admin_api_key=key,
                    base_url=self._base_url,
                    max_retries=self._max_retries,
                    timeout=self._timeout,
                )
        return self._client


# --- paging and errors ------------------------------------------------------------------------------------------


class _Counter:
    """HTTP requests made (retries included, as `BilledPull.requests` counts them) and how many were retries."""

    def __init__(self) -> None:
        self.requests = 0
        self.retries = 0

    def add(self, retries: int) -> None:
        self.requests += 1 + retries
        self.retries += retries


def _pages(
    call: Callable[..., Any],
    what: str,
    counter: _Counter,
    window: Mapping[str, int],
    group_by: list[str],
    limit: int,
) -> Iterator[Mapping[str, Any]]:
    """Every page of one listing, in order, each parsed with exact decimals."""
    page: str | None = None
    seen: set[str] = set()
    for _ in range(_MAX_PAGES):
        params: dict[str, Any] = {**window, "bucket_width": "1d", "group_by": group_by, "limit": limit}
        if page is not None:
            params["page"] = page
        try:
            raw = call(**params)
        except openai.APIStatusError as error:
            counter.add(_retries_of(error))
            raise OpenAIBillingError(_status_message(what, error)) from None
        except openai.APIConnectionError as error:
            counter.add(_retries_of(error))
            kind = "timed out" if isinstance(error, openai.APITimeoutError) else "could not connect"
            raise OpenAIBillingError(
                f"OpenAI {what}: {kind} ({_where(error)}) after {_retries_of(error)} retries"
            ) from None
        counter.add(int(getattr(raw, "retries_taken", 0) or 0))
        try:
            body = json.loads(raw.text, parse_float=Decimal)  # amounts exactly as written, never via float
        except ValueError:
            raise OpenAIBillingError(f"OpenAI {what}: the answer is not JSON") from None
        if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
            raise OpenAIBillingError(f"OpenAI {what}: the answer is not a page of buckets")
        yield body
        if body.get("has_more") is not True:
            return
        page = body.get("next_page")
        if not isinstance(page, str) or not page or page in seen:
            raise OpenAIBillingError(f"OpenAI {what}: `has_more` without a new `next_page`; the listing is incomplete")
        seen.add(page)
    raise OpenAIBillingError(f"OpenAI {what}: more than {_MAX_PAGES} pages; stopped")


def _results(
    pages: Iterator[Mapping[str, Any]], start_day: date, end_day: date
) -> Iterator[tuple[date, Mapping[str, Any]]]:
    """(UTC day, result) of every bucket of the window; buckets outside it (none, from OpenAI) are ignored."""
    for body in pages:
        for bucket in body["data"]:
            start = bucket.get("start_time") if isinstance(bucket, Mapping) else None
            results = bucket.get("results") if isinstance(bucket, Mapping) else None
            if type(start) is not int or not isinstance(results, list):
                raise OpenAIBillingError(
                    "OpenAI: a bucket without `start_time` or `results`; the listing is unreadable"
                )
            day = datetime.fromtimestamp(start, tz=timezone.utc).date()
            if not start_day <= day <= end_day:
                continue
            for result in results:
                if isinstance(result, Mapping):
                    yield day, result


def _retries_of(error: openai.APIError) -> int:
    """The retries the SDK made before giving up: the last attempt's `x-stainless-retry-count` header."""
    try:
        return int(error.request.headers.get("x-stainless-retry-count", "0"))
    except (AttributeError, ValueError):
        return 0


def _where(error: openai.APIError) -> str:
    try:
        url = error.request.url
        return f"{url.scheme}://{url.host}{':' + str(url.port) if url.port else ''}"  # no query, no credentials
    except AttributeError:
        return "the API"


def _status_message(what: str, error: openai.APIStatusError) -> str:
    status = error.status_code
    retries = _retries_of(error)
    body = error.body if isinstance(error.body, Mapping) else {}
    reason = body.get("message") if isinstance(body.get("message"), str) else ""
    reason = _KEY_LIKE.sub("sk-<redacted>", reason)[:_MAX_MESSAGE]
    if status in (401, 403):
        hint = f"the admin key was refused; set ${ADMIN_KEY_VARIABLE} to an organization admin key"
    elif status == 429 or status >= 500:
        again = f"still after {retries} retries" if retries else "not retried"
        hint = f"{'rate limited' if status == 429 else 'server error'}, {again}"
    else:
        hint = "refused"
    request_id = f", request id {error.request_id}" if error.request_id else ""
    return f"OpenAI {what}: HTTP {status} ({hint}{request_id}){': ' + reason if reason else ''}"


# --- values -------------------------------------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    """An exact decimal from what `json.loads(parse_float=Decimal)` gave (or a decimal string); None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (Decimal, int)):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() else None


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _usage_tier(batch: Any, service_tier: Any) -> str:
    """`batch` for Batch API usage, else the service tier (`flex`, `priority`); "" for standard."""
    if batch is True:
        return "batch"
    if not isinstance(service_tier, str) or not service_tier:
        return ""
    tier = tier_for(service_tier)
    if tier is None:  # a tier we do not know: kept as OpenAI names it, so the comparison can say so
        return service_tier.strip().lower()
    return "" if tier == STANDARD else tier


def _merge_lines(old: BilledLine | None, new: BilledLine) -> BilledLine:
    """Results with the same key (the API never sends two, but a day must not lose one): amounts add up."""
    if old is None:
        return new
    quantity = None if old.quantity is None or new.quantity is None else EXACT_SUMS.add(old.quantity, new.quantity)
    return replace(old, amount=EXACT_SUMS.add(old.amount, new.amount), quantity=quantity)


def _merge_usage(old: BilledUsage | None, new: BilledUsage) -> BilledUsage:
    """Rows whose tiers are one to us (`default`, `auto` and `scale` are all standard) add up."""
    if old is None:
        return new
    requests = None if old.requests is None or new.requests is None else old.requests + new.requests
    return replace(
        old,
        input_tokens=old.input_tokens + new.input_tokens,
        output_tokens=old.output_tokens + new.output_tokens,
        cache_read_input_tokens=old.cache_read_input_tokens + new.cache_read_input_tokens,
        cache_write_5m_input_tokens=old.cache_write_5m_input_tokens + new.cache_write_5m_input_tokens,
        requests=requests,
    )


def _midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def _utc_today() -> date:
    return datetime.now(timezone.utc).date()
