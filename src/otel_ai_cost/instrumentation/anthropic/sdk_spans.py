"""One span per recorded call: the anthropic SDK makes none of its own while a call we record is running.

The SDK decides per call whether to make its span by reading its client's `_tracer` property (`None`: no span,
and none of its tracing work). The property is wrapped: inside a call that carries our span (`CALL_IN_FLIGHT` in
the context, set by the request wrapper) it answers `None`; everywhere else, what it answered before.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context

from otel_ai_cost.telemetry.recorder import CALL_IN_FLIGHT

_original: Any = None  # the SDK's own property while ours is installed


def silence_sdk_spans_of_recorded_calls() -> None:
    global _original
    from anthropic._base_client import BaseClient

    current = BaseClient.__dict__.get("_tracer")
    if _original is not None or not isinstance(current, property) or current.fget is None:
        return  # already installed, or an SDK whose tracing we do not know: leave it as it is
    sdk_tracer = current.fget

    def _tracer(client: Any) -> Any:
        if otel_context.get_value(CALL_IN_FLIGHT):
            return None
        return sdk_tracer(client)

    _original = current
    BaseClient._tracer = property(_tracer, doc=current.__doc__)  # type: ignore[method-assign,assignment]


def restore_sdk_spans() -> None:
    global _original
    if _original is None:
        return
    from anthropic._base_client import BaseClient

    BaseClient._tracer = _original  # type: ignore[method-assign]
    _original = None
