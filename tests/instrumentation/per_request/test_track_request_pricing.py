"""Every Google Places SKU in the shipped catalog resolves to its list price (USD per 1000, first volume band)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from otel_ai_cost.contract import PricingStatus
from otel_ai_cost.instrumentation.per_request import DEFAULT_SKUS
from otel_ai_cost.pricing.catalog import load_catalog, shipped_price_file
from otel_ai_cost.pricing.usage import Usage

AT = datetime(2026, 11, 22, tzinfo=timezone.utc)

LIST_PRICES_PER_1000 = {
    "place_details_essentials_ids_only": "0",
    "place_details_essentials": "5",
    "place_details_pro": "17",
    "place_details_enterprise": "20",
    "place_details_enterprise_atmosphere": "25",
    "text_search_essentials_ids_only": "0",
    "text_search_pro": "32",
    "text_search_enterprise": "35",
    "text_search_enterprise_atmosphere": "40",
    "nearby_search_pro": "32",
    "nearby_search_enterprise": "35",
    "nearby_search_enterprise_atmosphere": "40",
    "place_details_photos": "7",
    "autocomplete_requests": "2.83",
    "autocomplete_session_usage": "0",
    # The legacy Places API: a base SKU plus the Contact (3) and Atmosphere (5) data SKUs it triggers.
    "legacy_place_details": "17",
    "legacy_place_details_contact": "20",
    "legacy_place_details_atmosphere": "22",
    "legacy_place_details_contact_atmosphere": "25",
    "legacy_find_place_ids_only": "0",
    "legacy_find_place": "17",
    "legacy_find_place_contact": "20",
    "legacy_find_place_atmosphere": "22",
    "legacy_find_place_contact_atmosphere": "25",
    "legacy_text_search": "40",
    "legacy_nearby_search": "40",
    "legacy_autocomplete_per_request": "2.83",
    "legacy_query_autocomplete_per_request": "2.83",
    "legacy_place_photo": "7",
}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.mark.parametrize(("sku", "per_thousand"), sorted(LIST_PRICES_PER_1000.items()))
def test_shipped_sku_costs_its_list_price_per_request(catalog, sku, per_thousand):
    quote = catalog.quote("google_places", sku, Usage(), at=AT)
    assert quote.status is PricingStatus.PRICED
    assert quote.amount == Decimal(per_thousand) / 1000


def test_the_shipped_places_skus_are_exactly_these():
    shipped = {e.model for e in shipped_price_file().models if e.provider == "google_places"}
    assert shipped == set(LIST_PRICES_PER_1000)


def test_default_skus_of_priced_operations():
    assert DEFAULT_SKUS[("google_places", "place_details")] == "place_details_pro"
    assert DEFAULT_SKUS[("google_places", "text_search")] == "text_search_pro"
    assert DEFAULT_SKUS[("google_places", "nearby_search")] == "nearby_search_pro"
    assert DEFAULT_SKUS[("google_places", "autocomplete")] == "autocomplete_requests"


def test_skus_without_a_price_stay_unpriced(catalog):
    for sku in ("legacy_find_current_place", "place_details_everything"):
        quote = catalog.quote("google_places", sku, Usage(), at=AT)
        assert quote.status is PricingStatus.UNPRICED
        assert quote.amount is None


def test_prices_start_with_the_2025_sku_structure(catalog):
    before = datetime(2025, 2, 28, tzinfo=timezone.utc)
    assert catalog.quote("google_places", "place_details_pro", Usage(), at=before).amount is None


def test_every_sku_the_instrumentation_can_name_is_priced(catalog):
    from otel_ai_cost.instrumentation.per_request import skus

    named = {
        value
        for name, value in vars(skus).items()
        if name.isupper() and isinstance(value, str) and name != "GOOGLE_PLACES"
    }
    assert named == set(LIST_PRICES_PER_1000)
