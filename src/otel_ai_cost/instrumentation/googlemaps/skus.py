"""Which legacy Places API SKU a `googlemaps` call is billed at: pure functions of its arguments."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from otel_ai_cost.contract import Operation
from otel_ai_cost.instrumentation.per_request import skus

# googlemaps.Client method -> (our operation name, how to find its SKU)
OPERATIONS: dict[str, str] = {
    "place": Operation.PLACE_DETAILS.value,
    "find_place": Operation.FIND_PLACE.value,
    "places": Operation.TEXT_SEARCH.value,
    "places_nearby": Operation.NEARBY_SEARCH.value,
    "places_autocomplete": Operation.AUTOCOMPLETE.value,
    "places_autocomplete_query": Operation.QUERY_AUTOCOMPLETE.value,
    "places_photo": Operation.PLACE_PHOTO.value,
}

_FIXED: dict[str, str] = {
    "places": skus.LEGACY_TEXT_SEARCH,
    "places_nearby": skus.LEGACY_NEARBY_SEARCH,
    "places_autocomplete": skus.LEGACY_AUTOCOMPLETE_PER_REQUEST,
    "places_autocomplete_query": skus.LEGACY_QUERY_AUTOCOMPLETE_PER_REQUEST,
    "places_photo": skus.LEGACY_PLACE_PHOTO,
}

_DETAILS = {
    (False, False): skus.LEGACY_PLACE_DETAILS,
    (True, False): skus.LEGACY_PLACE_DETAILS_CONTACT,
    (False, True): skus.LEGACY_PLACE_DETAILS_ATMOSPHERE,
    (True, True): skus.LEGACY_PLACE_DETAILS_CONTACT_ATMOSPHERE,
}
_FIND = {
    (False, False): skus.LEGACY_FIND_PLACE,
    (True, False): skus.LEGACY_FIND_PLACE_CONTACT,
    (False, True): skus.LEGACY_FIND_PLACE_ATMOSPHERE,
    (True, True): skus.LEGACY_FIND_PLACE_CONTACT_ATMOSPHERE,
}


def _field_sets(method: str) -> tuple[frozenset[str], frozenset[str]]:
    """The Contact and Atmosphere data fields of `place` or `find_place`, as the installed client lists them."""
    from googlemaps import places

    if method == "place":
        return frozenset(places.PLACES_DETAIL_FIELDS_CONTACT), frozenset(places.PLACES_DETAIL_FIELDS_ATMOSPHERE)
    return frozenset(places.PLACES_FIND_FIELDS_CONTACT), frozenset(places.PLACES_FIND_FIELDS_ATMOSPHERE)


def _fields(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [f.strip() for f in value.split(",") if f.strip()]
    if isinstance(value, Iterable):
        return [str(f) for f in value]
    return None


def sku_for(method: str, fields: Any = None) -> str:
    """The legacy SKU of one call of `googlemaps.Client.<method>` with this `fields` argument.

    Place Details without `fields` returns every field, so it bills Contact and Atmosphere data too. Find Place
    without `fields` (or with only `place_id`) is the free ID-only request.
    """
    fixed = _FIXED.get(method)
    if fixed is not None:
        return fixed
    names = _fields(fields)
    if method == "find_place" and (not names or set(names) <= {"place_id"}):
        return skus.LEGACY_FIND_PLACE_IDS_ONLY
    if names is None:  # place(): every field
        return skus.LEGACY_PLACE_DETAILS_CONTACT_ATMOSPHERE
    contact, atmosphere = _field_sets(method)
    key = (any(n in contact for n in names), any(n in atmosphere for n in names))
    return (_DETAILS if method == "place" else _FIND)[key]
