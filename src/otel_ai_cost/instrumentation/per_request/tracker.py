"""`track_request`: one priced span per request to a per-request API, through the same `Recorder` as GenAI calls."""

from __future__ import annotations

import functools
import inspect
import reprlib
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from otel_ai_cost.budgets.quota import BudgetExceeded
from otel_ai_cost.contract import Cost
from otel_ai_cost.instrumentation.per_request.skus import default_sku
from otel_ai_cost.pricing.catalog import PriceCatalog
from otel_ai_cost.pricing.usage import MAX_REQUEST_COUNT, Usage
from otel_ai_cost.telemetry.errors import report_internal_error
from otel_ai_cost.telemetry.recorder import AttributeValue, Call, Recorder

F = TypeVar("F", bound=Callable[..., Any])


# -- the Recorder ------------------------------------------------------------------------------------------------

_lock = threading.Lock()
_recorder: Recorder | None = None


def configure(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    price_catalog: PriceCatalog | None = None,
) -> None:
    """Use these providers (default: the global ones) and catalog for `track_request` from now on.

    Optional: without it, the first tracked request builds the same from the global providers. Also wires the
    usage ledger (`attach_ledger`), as `instrument()` does.
    """
    global _recorder
    recorder = _build_recorder(tracer_provider, meter_provider, price_catalog)
    with _lock:
        _recorder = recorder


def reset() -> None:
    """Forget the configured Recorder; the next tracked request builds one from the global providers."""
    global _recorder
    with _lock:
        _recorder = None


def current_recorder() -> Recorder:
    global _recorder
    recorder = _recorder
    if recorder is None:
        with _lock:
            if _recorder is None:
                _recorder = _build_recorder(None, None, None)
            recorder = _recorder
    return recorder


def _build_recorder(
    tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None, catalog: PriceCatalog | None
) -> Recorder:
    from otel_ai_cost.instrument_api import attach_ledger  # lazy: instrument_api imports the SDK instrumentors

    return Recorder(tracer_provider=attach_ledger(tracer_provider), meter_provider=meter_provider, catalog=catalog)


# -- one tracked request -----------------------------------------------------------------------------------------


class TrackedRequest:
    """One request in flight: what `with track_request(...) as request:` gives.

    Set `request.count` (billable requests made) or `request.billed` (True/False: bill or not whatever the
    outcome) inside the block when they are only known there.
    """

    __slots__ = ("_call", "_token", "billed", "count", "sku")

    def __init__(
        self,
        recorder: Recorder,
        provider: str,
        operation: str,
        sku: str | None,
        count: int,
        billed: bool | None,
        attributes: Mapping[str, AttributeValue] | None,
        server_address: str | None = None,
        server_port: int | None = None,
    ) -> None:
        self.sku = sku
        self.count = count
        self.billed = billed
        self._call: Call | None = None
        self._token: object = None
        try:
            self._call = recorder.start(
                provider=provider,
                operation=operation,
                request_model=sku,
                server_address=server_address,
                server_port=server_port,
                stream=False,
                request_attributes=attributes,
            )
            self._token = otel_context.attach(self._call.context)  # spans made inside nest under ours
        except BudgetExceeded:
            raise  # a quota blocked the request: the block or function does not run
        except Exception as exc:
            report_internal_error("per_request.start", exc)

    def end(self, error: BaseException | None) -> None:
        """Price (unless not billed), complete and end the span. Never raises."""
        try:
            if self._token is not None:
                token, self._token = self._token, None
                otel_context.detach(token)  # type: ignore[arg-type]
            call = self._call
            if call is None:
                return
            billed = self.billed if self.billed is not None else error is None
            usage = request_usage(self.count) if billed else None
            known = usage is not None and usage.malformed is None
            call.finish(usage, error=error, extra_attributes={Cost.USAGE_REQUESTS: usage.requests} if known else None)
        except Exception as exc:
            report_internal_error("per_request.end", exc)
            call = self._call
            if call is not None and not call.ended:
                call.finish(None, error=error)


def request_usage(count: object) -> Usage | None:
    """The usage of `count` billable requests: None for 0 (nothing billed), and for a count that is not one (not
    an int, negative, or beyond the ledger's bound) a malformed usage, so the call is `unpriced` (reason
    `malformed_usage`, logged once by the recorder) and never priced from a number nobody could have meant."""
    if type(count) is int and 0 <= count <= MAX_REQUEST_COUNT:
        return Usage(requests=count) if count > 0 else None
    return Usage(malformed=f"count={reprlib.repr(count)}")


def run_tracked(
    recorder: Recorder,
    provider: str,
    operation: str,
    sku: str | None,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    count: int = 1,
    billed: bool | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    server_address: str | None = None,
    server_port: int | None = None,
) -> Any:
    """Call `func(*args, **kwargs)` as one tracked request; its result or exception passes through untouched."""
    tracked = TrackedRequest(recorder, provider, operation, sku, count, billed, attributes, server_address, server_port)
    try:
        result = func(*args, **kwargs)
    except BaseException as exc:
        tracked.end(exc)
        raise
    tracked.end(None)
    return result


class track_request:  # a function-like name: used as @track_request(...) and with track_request(...)
    """Track requests to a per-request API: a decorator (sync or async) or a context manager (`with`/`async with`).

    See the package docstring (`otel_ai_cost.instrumentation.per_request`) for the semantics.
    """

    def __init__(
        self,
        provider: str,
        operation: str,
        *,
        sku: str | None = None,
        count: int = 1,
        billed: bool | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        self.provider = provider
        self.operation = operation
        self.sku = sku if sku is not None else default_sku(provider, operation)
        self.count = count
        self.billed = billed
        self.attributes = dict(attributes) if attributes else None
        self._active: list[TrackedRequest] = []  # `with` blocks in progress on this object (nested ones stack)

    def _begin(self) -> TrackedRequest:
        try:
            from otel_ai_cost.instrument_api import tracking_enabled  # lazy: instrument_api imports this package

            if not tracking_enabled():  # the seeds' TRACK_AI_USAGE=false: nothing is recorded
                return _untracked(self.sku, self.count, self.billed)
            recorder = current_recorder()
        except Exception as exc:
            report_internal_error("per_request.recorder", exc)
            return _untracked(self.sku, self.count, self.billed)
        return TrackedRequest(
            recorder, self.provider, self.operation, self.sku, self.count, self.billed, self.attributes
        )

    # -- decorator --

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                tracked = self._begin()
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    tracked.end(exc)
                    raise
                tracked.end(None)
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            tracked = self._begin()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                tracked.end(exc)
                raise
            tracked.end(None)
            return result

        return wrapper  # type: ignore[return-value]

    # -- context manager --

    def __enter__(self) -> TrackedRequest:
        tracked = self._begin()
        self._active.append(tracked)
        return tracked

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._active:
            self._active.pop().end(exc)
        # returns None: an exception is never swallowed

    async def __aenter__(self) -> TrackedRequest:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def _untracked(sku: str | None, count: int, billed: bool | None) -> TrackedRequest:
    """A handle that records nothing (our Recorder could not be built)."""
    tracked = TrackedRequest.__new__(TrackedRequest)
    tracked.sku, tracked.count, tracked.billed = sku, count, billed
    tracked._call = None
    tracked._token = None
    return tracked
