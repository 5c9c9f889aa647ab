"""SKU ids of per-request APIs, and the SKU `track_request` prices an operation at when none is given.

A SKU id is what the catalog prices (`model:` of a `google_places` entry) and what goes into
`gen_ai.request.model`. Ids are the provider's SKU names in snake case.
"""

from __future__ import annotations

from otel_ai_cost.contract import Operation

GOOGLE_PLACES = "google_places"

# Places API (New). The field mask decides the SKU: the highest tier of any field requested.
PLACE_DETAILS_ESSENTIALS_IDS_ONLY = "place_details_essentials_ids_only"
PLACE_DETAILS_ESSENTIALS = "place_details_essentials"
PLACE_DETAILS_PRO = "place_details_pro"
PLACE_DETAILS_ENTERPRISE = "place_details_enterprise"
PLACE_DETAILS_ENTERPRISE_ATMOSPHERE = "place_details_enterprise_atmosphere"
TEXT_SEARCH_ESSENTIALS_IDS_ONLY = "text_search_essentials_ids_only"
TEXT_SEARCH_PRO = "text_search_pro"
TEXT_SEARCH_ENTERPRISE = "text_search_enterprise"
TEXT_SEARCH_ENTERPRISE_ATMOSPHERE = "text_search_enterprise_atmosphere"
NEARBY_SEARCH_PRO = "nearby_search_pro"
NEARBY_SEARCH_ENTERPRISE = "nearby_search_enterprise"
NEARBY_SEARCH_ENTERPRISE_ATMOSPHERE = "nearby_search_enterprise_atmosphere"
AUTOCOMPLETE_REQUESTS = "autocomplete_requests"
AUTOCOMPLETE_SESSION_USAGE = "autocomplete_session_usage"
PLACE_DETAILS_PHOTOS = "place_details_photos"

# The legacy Places API web services (what the `googlemaps` client calls). Place Details and Find Place bill a
# base SKU plus Contact and Atmosphere data SKUs by the fields asked for; the id names the combination.
LEGACY_PLACE_DETAILS = "legacy_place_details"  # basic data only
LEGACY_PLACE_DETAILS_CONTACT = "legacy_place_details_contact"
LEGACY_PLACE_DETAILS_ATMOSPHERE = "legacy_place_details_atmosphere"
LEGACY_PLACE_DETAILS_CONTACT_ATMOSPHERE = "legacy_place_details_contact_atmosphere"
LEGACY_FIND_PLACE_IDS_ONLY = "legacy_find_place_ids_only"
LEGACY_FIND_PLACE = "legacy_find_place"
LEGACY_FIND_PLACE_CONTACT = "legacy_find_place_contact"
LEGACY_FIND_PLACE_ATMOSPHERE = "legacy_find_place_atmosphere"
LEGACY_FIND_PLACE_CONTACT_ATMOSPHERE = "legacy_find_place_contact_atmosphere"
LEGACY_TEXT_SEARCH = "legacy_text_search"
LEGACY_NEARBY_SEARCH = "legacy_nearby_search"
LEGACY_AUTOCOMPLETE_PER_REQUEST = "legacy_autocomplete_per_request"
LEGACY_QUERY_AUTOCOMPLETE_PER_REQUEST = "legacy_query_autocomplete_per_request"
LEGACY_PLACE_PHOTO = "legacy_place_photo"

# track_request(provider, operation) without sku=: the SKU of the operation's most common use. Place Details,
# Text Search and Nearby Search default to Pro (a field mask with a display name, the usual case); pass sku=
# for any other field mask.
DEFAULT_SKUS: dict[tuple[str, str], str] = {
    (GOOGLE_PLACES, Operation.PLACE_DETAILS.value): PLACE_DETAILS_PRO,
    (GOOGLE_PLACES, Operation.TEXT_SEARCH.value): TEXT_SEARCH_PRO,
    (GOOGLE_PLACES, Operation.NEARBY_SEARCH.value): NEARBY_SEARCH_PRO,
    (GOOGLE_PLACES, Operation.AUTOCOMPLETE.value): AUTOCOMPLETE_REQUESTS,
    (GOOGLE_PLACES, Operation.PLACE_PHOTO.value): PLACE_DETAILS_PHOTOS,
}


def default_sku(provider: str, operation: str) -> str | None:
    """The SKU `track_request` uses when given none; None when the operation has no default."""
    return DEFAULT_SKUS.get((provider, operation))
