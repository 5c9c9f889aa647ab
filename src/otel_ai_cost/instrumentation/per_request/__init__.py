"""Cost tracking for paid per-request APIs (Google Places first): `track_request`.

APIs billed per request rather than per token (Google Places: Place Details, Text Search, ...) have no SDK we
patch for you (except the `googlemaps` client, see `otel_ai_cost.instrumentation.googlemaps`): mark the code that
makes the request, and each use becomes one client span priced per SKU from the catalog, with the same
attribution (`ai_usage_context`, baggage, CI resource) and the same metrics (`ai_cost.spend`,
`ai_cost.requests`, `gen_ai.client.operation.duration`) as the GenAI calls, recorded in the usage ledger too.

Usage::

    from otel_ai_cost.instrumentation.per_request import track_request

    @track_request("google_places", "place_details")             # SKU place_details_pro: $17 / 1000
    def details(place_id): ...

    @track_request("google_places", "text_search", sku="text_search_enterprise")
    async def search(query): ...

    with track_request("google_places", "text_search", sku="text_search_pro"):
        response = session.post("https://places.googleapis.com/v1/places:searchText", ...)

    async with track_request("google_places", "place_photo", count=3):   # 3 photo fetches, priced as 3
        ...

The span is named `{operation} {sku}` and carries `gen_ai.provider.name` (the provider, `google_places`),
`gen_ai.operation.name` (the operation), `gen_ai.request.model` (the SKU id: that is what is priced),
`ai_cost.amount` (USD, exact decimal), `ai_cost.pricing.status` and `ai_cost.usage.requests` (the count).

SKU: `sku=` names the SKU the request is billed at; for Places (New) the field mask decides it (the highest
tier of any field asked for), so pass the SKU your field mask implies. Without `sku=`, the operation's default
(`DEFAULT_SKUS`) is used:

======================  ==========================  ==============
operation               default SKU                 list price
======================  ==========================  ==============
``place_details``       ``place_details_pro``       $17 / 1000
``text_search``         ``text_search_pro``         $32 / 1000
``nearby_search``       ``nearby_search_pro``       $32 / 1000
``autocomplete``        ``autocomplete_requests``   $2.83 / 1000
``place_photo``         ``place_details_photos``    not in the shipped catalog (unpriced)
======================  ==========================  ==============

The other SKU ids are in `otel_ai_cost.instrumentation.per_request.skus`. An operation without a default and
without `sku=` (or a SKU the catalog does not price) gives `ai_cost.pricing.status=unpriced` and no amount,
never $0: add the price to your override file (`OTEL_AI_COST_PRICES_FILE`)::

    models:
      - {provider: google_places, model: place_details_photos, requests: {request: 7}}   # USD per 1000

Prices are the list prices of the first monthly volume band; the free monthly usage caps per SKU and the lower
prices of higher volume bands are not modelled (the figure is what the request costs once the free cap is used
up, at up to 100K requests a month). Negotiated discounts go in the override file.

Billing of failures: Google bills a request that returned a response. An exception raised in the tracked block
ends the span with status ERROR and `error.type` (the exception's class), is re-raised unchanged, and by default
records no spend (`ai_cost.pricing.status=no_usage`): most exceptions mean no billable response. Pass
`billed=True` where an exception follows a billed response (e.g. your code raised after a successful request),
or `billed=False` for a request that is not billed although it succeeded (a cache hit); inside a `with`, set
`request.billed` or `request.count` on the object it gives when this is only known there.

`count=N` (a non-negative int) prices the block as N billable requests of the SKU (N photo fetches, a page of
N details calls); 0 records the request unbilled. N is at most 1,000,000 (the ledger's per-call bound,
`ledger/limits.py`): a count beyond it, or one that is not a non-negative int, leaves the request `unpriced` with
`ai_cost.pricing.reason=malformed_usage` (logged once), never a guessed amount.

Providers: `track_request` uses the global tracer and meter providers, taken when it is first used (and the
usage ledger is wired with `attach_ledger`, as `otel_ai_cost.instrument()` does), unless `configure()` names
others. Decorated generators are not supported (the span would end when the generator is created). Our own
failures never reach your code: they are logged once and counted (`ai_cost.instrumentation.errors`).
"""

from __future__ import annotations

from otel_ai_cost.instrumentation.per_request.skus import DEFAULT_SKUS, GOOGLE_PLACES, default_sku
from otel_ai_cost.instrumentation.per_request.tracker import (
    TrackedRequest,
    configure,
    reset,
    track_request,
)

__all__ = [
    "DEFAULT_SKUS",
    "GOOGLE_PLACES",
    "TrackedRequest",
    "configure",
    "default_sku",
    "reset",
    "track_request",
]
