"""Cost instrumentation for the `googlemaps` client (4.10+): its Places methods, priced per legacy Places SKU.

Every call of `googlemaps.Client.place`, `find_place`, `places` (Text Search), `places_nearby`,
`places_autocomplete`, `places_autocomplete_query` and `places_photo` becomes one client span (provider
`google_places`), priced per request like `track_request` (the same code path: see
`otel_ai_cost.instrumentation.per_request`), with the same attribution, metrics and ledger record.

Usage::

    from otel_ai_cost.instrumentation.googlemaps import GoogleMapsCostInstrumentor

    GoogleMapsCostInstrumentor().instrument()  # or: otel_ai_cost.instrument(), or opentelemetry-instrument

These methods call the legacy Places API web services, so they are priced with the legacy SKUs
(`gen_ai.request.model`):

=============================  ==========================================================================
method                         SKU
=============================  ==========================================================================
``place``                      ``legacy_place_details`` + ``_contact`` / ``_atmosphere`` / both, by the
                               Contact and Atmosphere data fields in ``fields`` (no ``fields``: all data)
``find_place``                 ``legacy_find_place_ids_only`` (no fields, or only ``place_id``), else
                               ``legacy_find_place`` + ``_contact`` / ``_atmosphere`` / both
``places``                     ``legacy_text_search``
``places_nearby``              ``legacy_nearby_search``
``places_autocomplete``        ``legacy_autocomplete_per_request`` (session pricing is not modelled)
``places_autocomplete_query``  ``legacy_query_autocomplete_per_request``
``places_photo``               ``legacy_place_photo``
=============================  ==========================================================================

The shipped catalog has no legacy Places prices yet (they could not be verified): these spans are `unpriced`
(never $0) until your override file (`OTEL_AI_COST_PRICES_FILE`) prices the SKU ids above, e.g.
``{provider: google_places, model: legacy_text_search, requests: {request: 32}}`` (USD per 1000).

A call that raises (`googlemaps.exceptions.ApiError` for a non-OK status, timeouts, transport errors) ends its
span with status ERROR and `error.type`, is re-raised unchanged, and records no spend. The API key is never
recorded: no URL and no request parameter goes on the span, only `server.address`/`server.port` of the
client's base URL. Other `googlemaps` methods (geocoding, directions, ...) are not instrumented.

The entry-point name is `ai_cost_googlemaps`.
"""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from otel_ai_cost.instrumentation.common.instrumentor import CostInstrumentor
from otel_ai_cost.instrumentation.googlemaps.skus import OPERATIONS, sku_for
from otel_ai_cost.instrumentation.per_request.skus import GOOGLE_PLACES
from otel_ai_cost.instrumentation.per_request.tracker import run_tracked
from otel_ai_cost.telemetry.errors import report_internal_error
from otel_ai_cost.telemetry.recorder import Recorder


class GoogleMapsCostInstrumentor(CostInstrumentor):
    sdk_module = "googlemaps"
    requirement = "googlemaps >= 4.10"

    def _patch(self, recorder: Recorder) -> None:
        for method in OPERATIONS:
            wrap_function_wrapper("googlemaps.client", f"Client.{method}", _wrapper(recorder, method))

    def _unpatch(self) -> None:
        from googlemaps.client import Client

        for method in OPERATIONS:
            unwrap(Client, method)


def _wrapper(recorder: Recorder, method: str) -> Any:
    operation = OPERATIONS[method]

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            sku: str | None = sku_for(method, _argument(method, args, kwargs, "fields"))
            address, port = _server(instance)
        except Exception as exc:
            report_internal_error("googlemaps.request", exc)
            sku, address, port = None, None, None
        return run_tracked(
            recorder,
            GOOGLE_PLACES,
            operation,
            sku,
            wrapped,
            args,
            kwargs,
            server_address=address,
            server_port=port,
        )

    return wrapper


def _argument(method: str, args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
    """`name`'s value in a call of `Client.<method>(*args, **kwargs)` (args without the client)."""
    if name in kwargs:
        return kwargs[name]
    from googlemaps import places

    parameters = list(inspect.signature(getattr(places, method)).parameters)  # (client, ...)
    if name in parameters:
        index = parameters.index(name) - 1
        if 0 <= index < len(args):
            return args[index]
    return None


def _server(client: Any) -> tuple[str | None, int | None]:
    """Host and port of the client's base URL (never its path or query, where a key could be)."""
    parts = urlsplit(str(getattr(client, "base_url", "") or ""))
    return parts.hostname, parts.port


__all__ = ["GoogleMapsCostInstrumentor"]
