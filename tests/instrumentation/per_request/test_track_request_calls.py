"""`track_request` as decorator and context manager, sync and async: one priced, attributed span per use.

Prices (USD per 1000 requests, Google Places API (New) list prices, first volume band):
  place_details_pro 17, text_search_pro 32, autocomplete_requests 2.83, text_search_essentials_ids_only 0
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from otel_ai_cost import ai_usage_context
from otel_ai_cost.instrumentation.per_request import configure, reset, track_request
from otel_ai_cost.telemetry.errors import internal_error_counts


@pytest.fixture
def places(telemetry):
    configure(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    yield telemetry
    reset()


class PlacesDown(RuntimeError):
    pass


def _assert_priced(span, operation, sku, amount):
    a = span.attributes
    assert span.name == f"{operation} {sku}"
    assert span.kind.name == "CLIENT"
    assert a["gen_ai.provider.name"] == "google_places"
    assert a["gen_ai.operation.name"] == operation
    assert a["gen_ai.request.model"] == sku
    assert a["ai_cost.pricing.status"] == "priced"
    assert Decimal(a["ai_cost.amount"]) == amount
    # A per-request SKU is all fee; a free one has none.
    assert Decimal(a.get("ai_cost.fee.request.amount", "0")) == amount
    assert a["ai_cost.currency"] == "USD"
    assert a["ai_cost.source"] == "local"
    assert "error.type" not in a
    assert span.status.status_code.name == "UNSET"


def test_sync_decorator_prices_the_default_place_details_sku(places):
    @track_request("google_places", "place_details")
    def details(place_id):
        return {"id": place_id}

    with ai_usage_context(job_id="job-7", team="geo"):
        assert details("ChIJ123") == {"id": "ChIJ123"}

    span = places.span()
    _assert_priced(span, "place_details", "place_details_pro", Decimal("0.017"))  # 17 / 1000
    assert span.attributes["ai_cost.job.id"] == "job-7"
    assert span.attributes["ai_cost.usage.requests"] == 1
    [spend] = places.points("ai_cost.spend")
    assert spend.value == pytest.approx(0.017)
    assert spend.attributes["gen_ai.provider.name"] == "google_places"
    assert spend.attributes["gen_ai.request.model"] == "place_details_pro"
    assert spend.attributes["ai_cost.team"] == "geo"
    [requests] = places.points("ai_cost.requests")
    assert requests.value == 1


def test_async_decorator_with_an_explicit_sku(places):
    @track_request("google_places", "text_search", sku="text_search_pro")
    async def search(query):
        await asyncio.sleep(0)
        return [query]

    with ai_usage_context(job_id="job-async"):
        assert asyncio.run(search("pizza")) == ["pizza"]

    span = places.span()
    _assert_priced(span, "text_search", "text_search_pro", Decimal("0.032"))
    assert span.attributes["ai_cost.job.id"] == "job-async"
    [spend] = places.points("ai_cost.spend")
    assert spend.value == pytest.approx(0.032)


def test_sync_context_manager(places):
    with ai_usage_context(job_id="job-cm"):
        with track_request("google_places", "autocomplete") as request:
            assert request.sku == "autocomplete_requests"

    span = places.span()
    _assert_priced(span, "autocomplete", "autocomplete_requests", Decimal("0.00283"))
    assert span.attributes["ai_cost.job.id"] == "job-cm"


def test_async_context_manager(places):
    async def main():
        with ai_usage_context(job_id="job-acm"):
            async with track_request("google_places", "text_search", sku="text_search_pro"):
                await asyncio.sleep(0)

    asyncio.run(main())
    span = places.span()
    _assert_priced(span, "text_search", "text_search_pro", Decimal("0.032"))
    assert span.attributes["ai_cost.job.id"] == "job-acm"


def test_a_free_sku_is_priced_at_zero(places):
    with track_request("google_places", "text_search", sku="text_search_essentials_ids_only"):
        pass
    _assert_priced(places.span(), "text_search", "text_search_essentials_ids_only", Decimal("0"))


def test_count_prices_n_requests(places):
    with track_request("google_places", "place_details", count=3):
        pass
    span = places.span()
    _assert_priced(span, "place_details", "place_details_pro", Decimal("0.051"))  # 3 x 17 / 1000
    assert span.attributes["ai_cost.usage.requests"] == 3
    [spend] = places.points("ai_cost.spend")
    assert spend.value == pytest.approx(0.051)


def test_count_set_inside_the_block(places):
    with track_request("google_places", "autocomplete") as request:
        request.count = 4
    assert Decimal(places.span().attributes["ai_cost.amount"]) == Decimal("0.01132")  # 4 x 2.83 / 1000


def test_an_exception_is_reraised_unchanged_with_an_error_span_and_no_spend(places):
    error = PlacesDown("503 from places.googleapis.com")

    @track_request("google_places", "place_details")
    def details():
        raise error

    with pytest.raises(PlacesDown) as raised:
        details()
    assert raised.value is error

    span = places.span()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "PlacesDown"
    assert span.attributes["ai_cost.pricing.status"] == "no_usage"
    assert "ai_cost.amount" not in span.attributes
    assert places.points("ai_cost.spend") == []
    [requests] = places.points("ai_cost.requests")
    assert requests.attributes["ai_cost.outcome"] == "error"


def test_async_exception_and_context_manager_exception(places):
    @track_request("google_places", "text_search")
    async def search():
        raise PlacesDown("boom")

    with pytest.raises(PlacesDown):
        asyncio.run(search())
    with pytest.raises(KeyError):
        with track_request("google_places", "nearby_search"):
            raise KeyError("x")

    spans = places.spans()
    assert [s.attributes["error.type"] for s in spans] == ["PlacesDown", "KeyError"]
    assert all(s.status.status_code.name == "ERROR" for s in spans)
    assert places.points("ai_cost.spend") == []


def test_billed_true_bills_a_request_that_raised_after_its_response(places):
    with pytest.raises(ValueError):
        with track_request("google_places", "place_details", billed=True):
            raise ValueError("bad JSON in a billed response")
    span = places.span()
    assert span.status.status_code.name == "ERROR"
    assert Decimal(span.attributes["ai_cost.amount"]) == Decimal("0.017")


def test_billed_false_records_no_spend(places):
    with track_request("google_places", "place_details") as request:
        request.billed = False  # served from our cache
    span = places.span()
    assert span.attributes["ai_cost.pricing.status"] == "no_usage"
    assert "ai_cost.amount" not in span.attributes


def test_an_unknown_sku_is_unpriced_never_zero(places):
    with track_request("google_places", "place_details", sku="place_details_platinum"):
        pass
    a = places.span().attributes
    assert a["gen_ai.request.model"] == "place_details_platinum"
    assert a["ai_cost.pricing.status"] == "unpriced"
    assert "ai_cost.amount" not in a
    assert places.points("ai_cost.spend") == []


def test_an_operation_without_default_sku_is_unpriced(places):
    with track_request("google_places", "geocode"):
        pass
    span = places.span()
    assert span.name == "geocode"
    assert "gen_ai.request.model" not in span.attributes
    assert span.attributes["ai_cost.pricing.status"] == "unpriced"


def test_a_bad_count_never_reaches_the_host_and_is_unpriced(places):
    # Bad input from the caller (more cases in tests/instrumentation/test_usage_bounds.py): the request happened,
    # its cost is unknown, and it is neither our internal error nor the host's.
    with track_request("google_places", "place_details", count=-1):
        result = 42
    assert result == 42
    span = places.span()
    assert span.attributes["ai_cost.pricing.status"] == "unpriced"
    assert span.attributes["ai_cost.pricing.reason"] == "malformed_usage"
    assert internal_error_counts().get("per_request.end") is None


def test_decorator_keeps_the_function_metadata_and_nests_inner_spans(places):
    @track_request("google_places", "place_details")
    def details(place_id: str) -> str:
        """Fetch details."""
        with places.tracer_provider.get_tracer("http").start_as_current_span("GET"):
            return place_id

    assert details.__name__ == "details"
    assert details.__doc__ == "Fetch details."
    details("x")
    ours = places.span()
    inner = next(s for s in places.spans_exporter.get_finished_spans() if s.name == "GET")
    assert inner.parent.span_id == ours.context.span_id


def test_without_configure_the_global_providers_are_used(monkeypatch):
    reset()
    try:
        with track_request("google_places", "place_details"):
            pass  # a proxy tracer when no global provider is set: nothing to assert but no failure
        assert internal_error_counts() == {}
    finally:
        reset()
