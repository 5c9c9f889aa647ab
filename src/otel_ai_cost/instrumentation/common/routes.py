"""Pieces every SDK route shares: reading the request, knowing the client's endpoint, starting the call."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any

from otel_ai_cost.contract import GenAI
from otel_ai_cost.telemetry.recorder import AttributeValue, Call, Recorder

Site = tuple[str, str | None, int | None]  # provider, server.address, server.port

# Per client: what its base URL says (parsed once, not per call). Weak, so clients are not kept alive.
_sites: weakref.WeakKeyDictionary[Any, tuple[object, Site]] = weakref.WeakKeyDictionary()


def request_body(options: Any) -> Mapping[str, Any]:
    body = getattr(options, "json_data", None)
    return body if isinstance(body, Mapping) else {}


def site_of(client: Any, provider_of: Callable[[Any], str]) -> Site:
    url = client.base_url
    cached = _sites.get(client)
    if cached is not None and cached[0] is url:  # the base URL can be reassigned on a client
        return cached[1]
    site = (provider_of(client), url.host or None, url.port)
    _sites[client] = (url, site)
    return site


def start_call(
    recorder: Recorder,
    client: Any,
    provider_of: Callable[[Any], str],
    operation: str,
    body: Mapping[str, Any],
    stream: bool,
    extra: Mapping[str, AttributeValue] | None = None,
) -> Call:
    provider, address, port = site_of(client, provider_of)
    model = body.get("model")
    attributes: dict[str, AttributeValue] = dict(extra) if extra else {}
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or body.get("max_output_tokens")
    if isinstance(max_tokens, int):
        attributes[GenAI.REQUEST_MAX_TOKENS] = max_tokens
    call = recorder.start(
        provider=provider,
        operation=operation,
        request_model=model if isinstance(model, str) else None,
        server_address=address,
        server_port=port,
        stream=stream,
        request_attributes=attributes,
        api_key_fingerprint=recorder.key_fingerprints.of_client(client),
    )
    if call.captures_content:
        call.capture_input(body.get("messages", body.get("input")))
    return call
