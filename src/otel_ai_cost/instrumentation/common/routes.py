"""Pieces every SDK route shares: reading the request, starting the call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_ai_cost.contract import GenAI
from otel_ai_cost.telemetry.recorder import AttributeValue, Call, Recorder


def request_body(options: Any) -> Mapping[str, Any]:
    body = getattr(options, "json_data", None)
    return body if isinstance(body, Mapping) else {}


def server_of(client: Any) -> tuple[str | None, int | None]:
    url = client.base_url
    return url.host or None, url.port


def start_call(
    recorder: Recorder,
    client: Any,
    provider: str,
    operation: str,
    body: Mapping[str, Any],
    stream: bool,
    extra: Mapping[str, AttributeValue] | None = None,
) -> Call:
    model = body.get("model")
    address, port = server_of(client)
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
    )
    messages = body.get("messages", body.get("input"))
    if messages is not None:
        call.capture_input(messages)
    return call
