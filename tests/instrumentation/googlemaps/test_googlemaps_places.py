"""The real `googlemaps.Client` against a local server answering the legacy Places API's JSON shapes.

Priced from the shipped catalog's legacy price list (USD per 1000): Place Details or Find Place 17, plus Contact
Data 3 and Atmosphere Data 5 by the fields asked for; Text Search and Nearby Search 32 plus both data SKUs (40);
autocomplete and query autocomplete 2.83; photo 7; Find Place by ID only free.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import googlemaps
import googlemaps.client
import pytest

from otel_ai_cost import ai_usage_context
from otel_ai_cost.instrumentation.googlemaps import GoogleMapsCostInstrumentor
from otel_ai_cost.instrumentation.googlemaps.skus import OPERATIONS, sku_for
from otel_ai_cost.pricing.catalog import load_catalog

KEY = "AIzaSyTEST-secret-key-0123456789abcdef"

BODIES = {
    "/maps/api/place/details/json": {"status": "OK", "result": {"place_id": "ChIJ1", "name": "Cafe"}},
    "/maps/api/place/findplacefromtext/json": {"status": "OK", "candidates": [{"place_id": "ChIJ1"}]},
    "/maps/api/place/textsearch/json": {"status": "OK", "results": [{"place_id": "ChIJ1"}]},
    "/maps/api/place/nearbysearch/json": {"status": "OK", "results": [{"place_id": "ChIJ2"}]},
    "/maps/api/place/autocomplete/json": {"status": "OK", "predictions": [{"description": "Cafe"}]},
    "/maps/api/place/queryautocomplete/json": {"status": "OK", "predictions": [{"description": "pizza"}]},
}


class _Handler(BaseHTTPRequestHandler):
    denied = False

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        assert parse_qs(url.query)["key"] == [KEY]
        if url.path == "/maps/api/place/photo":
            body, kind = b"\x89PNG fake image", "image/png"
        elif self.denied:
            body = json.dumps({"status": "REQUEST_DENIED", "error_message": "key invalid"}).encode()
            kind = "application/json"
        else:
            body, kind = json.dumps(BODIES[url.path]).encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def gmaps(server, telemetry):
    """A client instrumented by `otel_ai_cost.instrument()` (the telemetry fixture), with the shipped prices."""
    _Handler.denied = False
    return googlemaps.Client(key=KEY, base_url=server, retry_over_query_limit=False)


def _only(telemetry):
    span = telemetry.span()
    for value in span.attributes.values():
        assert KEY not in str(value)
    assert KEY not in span.name
    return span


def _check(span, operation, sku, amount):
    a = span.attributes
    assert span.name == f"{operation} {sku}"
    assert a["gen_ai.provider.name"] == "google_places"
    assert a["gen_ai.operation.name"] == operation
    assert a["gen_ai.request.model"] == sku
    assert a["server.address"] == "127.0.0.1"
    assert a["ai_cost.pricing.status"] == "priced"
    assert Decimal(a["ai_cost.amount"]) == amount


@pytest.mark.parametrize(
    ("fields", "sku", "amount"),
    [
        (["name", "place_id"], "legacy_place_details", Decimal("0.017")),
        (["name", "website"], "legacy_place_details_contact", Decimal("0.020")),
        (["rating"], "legacy_place_details_atmosphere", Decimal("0.022")),
        (None, "legacy_place_details_contact_atmosphere", Decimal("0.025")),
    ],
)
def test_place_details_sku_follows_the_fields(gmaps, telemetry, fields, sku, amount):
    with ai_usage_context(job_id="job-maps"):
        result = gmaps.place("ChIJ1", fields=fields)
    assert result["result"]["name"] == "Cafe"
    span = _only(telemetry)
    _check(span, "place_details", sku, amount)
    assert span.attributes["ai_cost.job.id"] == "job-maps"
    [spend] = telemetry.points("ai_cost.spend")
    assert spend.value == pytest.approx(float(amount))


def test_search_autocomplete_find_and_photo(gmaps, telemetry):
    assert gmaps.places(query="cafe")["results"][0]["place_id"] == "ChIJ1"
    assert gmaps.places_nearby(location=(48.85, 2.35), radius=500)["results"][0]["place_id"] == "ChIJ2"
    assert gmaps.places_autocomplete("caf")[0]["description"] == "Cafe"
    assert gmaps.places_autocomplete_query("pizza near")[0]["description"] == "pizza"
    assert gmaps.find_place("Cafe", "textquery")["candidates"][0]["place_id"] == "ChIJ1"
    assert gmaps.find_place("Cafe", "textquery", fields=["name"])["candidates"]
    assert b"".join(gmaps.places_photo("photo-ref", max_width=100)) == b"\x89PNG fake image"

    got = [
        (s.attributes["gen_ai.operation.name"], s.attributes["gen_ai.request.model"], s.attributes["ai_cost.amount"])
        for s in telemetry.spans()
    ]
    assert [(op, sku, Decimal(amount)) for op, sku, amount in got] == [
        ("text_search", "legacy_text_search", Decimal("0.040")),
        ("nearby_search", "legacy_nearby_search", Decimal("0.040")),
        ("autocomplete", "legacy_autocomplete_per_request", Decimal("0.00283")),
        ("query_autocomplete", "legacy_query_autocomplete_per_request", Decimal("0.00283")),
        ("find_place", "legacy_find_place_ids_only", Decimal("0")),
        ("find_place", "legacy_find_place", Decimal("0.017")),
        ("place_photo", "legacy_place_photo", Decimal("0.007")),
    ]
    for span in telemetry.spans():
        for value in span.attributes.values():
            assert KEY not in str(value)
    [spend] = [
        p for p in telemetry.points("ai_cost.spend") if p.attributes["gen_ai.request.model"] == "legacy_place_photo"
    ]
    assert spend.value == pytest.approx(0.007)


def test_an_api_error_is_reraised_with_an_error_span_and_no_spend(gmaps, telemetry):
    _Handler.denied = True
    with pytest.raises(googlemaps.exceptions.ApiError) as raised:
        gmaps.places(query="cafe")
    assert raised.value.status == "REQUEST_DENIED"
    span = _only(telemetry)
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "ApiError"
    assert span.attributes["ai_cost.pricing.status"] == "no_usage"
    assert telemetry.points("ai_cost.spend") == []


def test_a_client_side_error_passes_through(gmaps, telemetry):
    with pytest.raises(ValueError, match="max_width or max_height"):
        gmaps.places_photo("photo-ref")
    assert telemetry.span().attributes["error.type"] == "ValueError"


def test_uninstrument_restores_the_client_methods(server, telemetry):
    instrumentor = GoogleMapsCostInstrumentor()
    instrumentor.uninstrument()  # undo the telemetry fixture's `instrument()`
    originals = {m: getattr(googlemaps.client.Client, m) for m in OPERATIONS}
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    assert all(getattr(googlemaps.client.Client, m) is not originals[m] for m in OPERATIONS)
    instrumentor.uninstrument()
    assert all(getattr(googlemaps.client.Client, m) is originals[m] for m in OPERATIONS)

    googlemaps.Client(key=KEY, base_url=server).places(query="cafe")
    assert telemetry.spans() == []


def test_a_price_override_reprices_a_legacy_sku(server, telemetry, tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  - {provider: google_places, model: legacy_text_search, requests: {request: 32}}\n")
    instrumentor = GoogleMapsCostInstrumentor()
    instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        price_catalog=load_catalog(prices),
    )
    try:
        googlemaps.Client(key=KEY, base_url=server).places(query="cafe")
    finally:
        instrumentor.uninstrument()
    assert Decimal(_only(telemetry).attributes["ai_cost.amount"]) == Decimal("0.032")


def test_sku_for_positional_and_string_fields():
    assert sku_for("place", "name,formatted_phone_number") == "legacy_place_details_contact"
    assert sku_for("find_place", ["place_id"]) == "legacy_find_place_ids_only"
    assert sku_for("find_place", ["opening_hours", "rating"]) == "legacy_find_place_contact_atmosphere"
    assert sku_for("places_photo") == "legacy_place_photo"


def test_fields_given_positionally_decide_the_sku(gmaps, telemetry):
    gmaps.place("ChIJ1", None, ["rating"])  # place(place_id, session_token, fields)
    assert telemetry.span().attributes["gen_ai.request.model"] == "legacy_place_details_atmosphere"
