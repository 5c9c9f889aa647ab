"""The one wrapper both SDKs share: around the client's `request()`, the single door every API call passes.

Wrapping `request()` (rather than each resource method) catches every way of making a call the same way:
`create`, the `stream()` and `parse()` helpers, `with_raw_response`, `with_streaming_response`, and the beta
resources. The SDK's retries happen inside `request()`, so a call counts once however often it was retried.
What an SDK returns is handed back untouched: a parsed model, the SDK's own `Stream` object (observed, see
`streams.py`), or a raw response whose `parse()` is observed.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from opentelemetry import context as otel_context

from otel_ai_cost.budgets.quota import BudgetExceeded
from otel_ai_cost.instrumentation.common.streams import StreamObserver, observe_async_stream, observe_stream
from otel_ai_cost.telemetry.errors import report_internal_error
from otel_ai_cost.telemetry.recorder import Call, Recorder


class Route(Protocol):
    """How one endpoint's calls are read. Implementations are pure adapters over SDK objects."""

    def start(self, recorder: Recorder, client: Any, options: Any, stream: bool) -> tuple[Call, Any]:
        """Starts the call's span; returns it with the options to send (possibly amended)."""
        ...

    def finish(self, call: Call, response: Any) -> None:
        """Records a complete, parsed response."""
        ...

    def stream_observer(self, call: Call) -> StreamObserver: ...


class SdkAdapter(Protocol):
    stream_types: tuple[type, ...]
    async_stream_types: tuple[type, ...]
    raw_response_types: tuple[type, ...]

    def route_for(self, options: Any) -> Route | None: ...


def _begin(
    recorder: Recorder, adapter: SdkAdapter, client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Call, Route, tuple[Any, ...], dict[str, Any]] | None:
    options = args[1] if len(args) > 1 else kwargs.get("options")
    route = adapter.route_for(options)
    if route is None:
        return None
    call, options = route.start(recorder, client, options, bool(kwargs.get("stream")))
    if len(args) > 1:
        args = (args[0], options, *args[2:])
    else:
        kwargs = {**kwargs, "options": options}
    return call, route, args, kwargs


def _fail(call: Call, error: BaseException) -> None:
    call.finish(None, error=error)


def _handle_result(adapter: SdkAdapter, route: Route, call: Call, result: Any) -> Any:
    try:
        if isinstance(result, adapter.stream_types):
            return observe_stream(result, route.stream_observer(call))
        if isinstance(result, adapter.async_stream_types):
            return observe_async_stream(result, route.stream_observer(call))
        if isinstance(result, adapter.raw_response_types):
            _observe_raw_response(adapter, route, call, result)
            return result
        route.finish(call, result)
    except Exception as exc:
        report_internal_error("request.result", exc)
        call.finish(None)
    return result


def _observe_raw_response(adapter: SdkAdapter, route: Route, call: Call, raw: Any) -> None:
    """`with_raw_response` / `with_streaming_response`: the call is recorded when the caller parses the body."""
    parse = raw.parse

    def handle(parsed: Any) -> Any:
        return _handle_result(adapter, route, call, parsed)

    if inspect.iscoroutinefunction(parse):

        async def parse_async(*a: Any, **kw: Any) -> Any:
            return handle(await parse(*a, **kw))

        raw.__dict__["parse"] = parse_async
    else:

        def parse_sync(*a: Any, **kw: Any) -> Any:
            return handle(parse(*a, **kw))

        raw.__dict__["parse"] = parse_sync
    # Never parsed: what is known (no usage) is still recorded when the response is dropped.
    weakref.finalize(raw, call.finish, None, partial=True)


def sync_request_wrapper(recorder: Recorder, adapter: SdkAdapter) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            plan = _begin(recorder, adapter, instance, args, kwargs)
        except BudgetExceeded:
            raise  # a quota blocked the call: nothing is sent
        except Exception as exc:
            report_internal_error("request.start", exc)
            plan = None
        if plan is None:
            return wrapped(*args, **kwargs)
        call, route, args, kwargs = plan
        token = otel_context.attach(call.context)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(call, exc)
            raise
        finally:
            otel_context.detach(token)
        return _handle_result(adapter, route, call, result)

    return wrapper


def async_request_wrapper(recorder: Recorder, adapter: SdkAdapter) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            plan = _begin(recorder, adapter, instance, args, kwargs)
        except BudgetExceeded:
            raise  # a quota blocked the call: nothing is sent
        except Exception as exc:
            report_internal_error("request.start", exc)
            plan = None
        if plan is None:
            return await wrapped(*args, **kwargs)
        call, route, args, kwargs = plan
        token = otel_context.attach(call.context)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(call, exc)
            raise
        finally:
            otel_context.detach(token)
        return _handle_result(adapter, route, call, result)

    return wrapper
