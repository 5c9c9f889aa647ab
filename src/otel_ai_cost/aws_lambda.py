"""AWS Lambda: `@traced` on a handler records every AI call it makes, and gets it out before the handler returns.

Lambda freezes the execution environment as soon as the handler returns, and may end it without notice: whatever
sits in a batch queue then (spans, metrics, ledger records) is lost. `traced` flushes before returning::

    import openai
    from otel_ai_cost.aws_lambda import traced

    client = openai.OpenAI()

    @traced
    def handler(event, context):
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        return {"statusCode": 200}

Per invocation, `traced`:

1. the first time in an execution environment, calls `otel_ai_cost.instrument()` unless one of our instrumentors
   is already on (you called `instrument()` at module level, or `opentelemetry-instrument` / the OTel Lambda layer
   loaded our entry points). It is deferred to the first invocation, so that providers your module sets up while
   it is imported are in place first. When no tracer provider is set at all, the one created for the ledger gets
   the function's resource: `service.name` = the function name (unless `OTEL_SERVICE_NAME` or
   `OTEL_RESOURCE_ATTRIBUTES` says otherwise), `cloud.provider`, `cloud.platform`, `cloud.region`, `faas.name`,
   `faas.version`, `faas.instance` (from the Lambda environment variables; as the OTel Lambda layer sets them).
2. puts `faas.invocation_id` (the context's `aws_request_id`) on our GenAI spans made during the invocation, so
   a call is found from the request id in the function's logs. It is a span attribute only: it never becomes a
   metric label (the metric labels are drawn from the attribution context, which it is not part of), and it is
   not a ledger field (the span's trace id is). Calls made in threads the handler starts carry it only if the
   thread runs in a copy of the handler's context (`contextvars.copy_context().run`), as for `ai_usage_context`.
3. calls `otel_ai_cost.flush()` in a `finally`, so also when the handler raises (its exception is re-raised
   unchanged; a flush never raises). The flush is bounded by `flush_timeout_s` (default 10 s) and by the time
   the invocation has left (`context.get_remaining_time_in_millis()`, less 100 ms for the runtime to send the
   response), so a hung collector or store can never turn a successful invocation into a Lambda timeout.

`@traced(flush_timeout_s=2)` sets the bound. `async def` handlers are wrapped too (for frameworks that run them in
their own event loop; the Lambda Python runtime itself calls handlers synchronously). `traced` opens no span of its
own: the invocation's span belongs to whoever traces the invocation.

**With the OTel Lambda layer** (`AWS_LAMBDA_EXEC_WRAPPER=/opt/otel-instrument`, whose
`opentelemetry-instrumentation-aws-lambda` wraps the handler named in `ORIG_HANDLER`): the layer's wrapper is the
outer one, around `traced`. It opens the invocation's SERVER span (with `faas.invocation_id`, `cloud.account.id`,
`cloud.resource_id`), calls the handler, ends its span, then force-flushes the global tracer provider and the
global meter provider (`OTEL_INSTRUMENTATION_AWS_LAMBDA_FLUSH_TIMEOUT`, 30 s). `traced` creates no span, so
there is no second invocation span; our GenAI spans are children of the layer's. Our flush runs first (inside
the layer's span): it writes the ledger's records and exports our spans and metrics; the layer's flush then
exports its SERVER span. Flushing twice is harmless (the second finds our queues empty; the ledger's idempotent
writes never count a record twice); it costs one more export request per invocation to the layer's local
collector. The layer's flush alone would also reach the ledger (its span processor sits on the global tracer
provider), but only after the layer's span has ended, with the layer's 30 s bound rather than the invocation's
remaining time, and without the explicit flush a handler run without the layer would lose its records.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import os
import threading
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar, overload

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from otel_ai_cost.contract import INSTRUMENTATION_SCOPE, Cloud, Faas
from otel_ai_cost.flushing import DEFAULT_TIMEOUT_S, flush

__all__ = ["DEFAULT_FLUSH_TIMEOUT_S", "FAAS_INVOCATION_ID", "traced"]

logger = logging.getLogger("otel_ai_cost")

# OTel semantic-convention names (FaaS, cloud), until contract.py carries them.
FAAS_INVOCATION_ID = Faas.INVOCATION_ID
FAAS_NAME = Faas.NAME
FAAS_VERSION = Faas.VERSION
FAAS_INSTANCE = Faas.INSTANCE
CLOUD_PROVIDER = Cloud.PROVIDER
CLOUD_PLATFORM = Cloud.PLATFORM
CLOUD_REGION = Cloud.REGION
SERVICE_NAME = "service.name"

DEFAULT_FLUSH_TIMEOUT_S = DEFAULT_TIMEOUT_S
_RESPONSE_MARGIN_S = 0.1  # left to the runtime to send the response before the invocation's deadline
_MIN_FLUSH_S = 0.001  # an invocation out of time still gets a (failing) flush rather than a skipped one

_H = TypeVar("_H", bound=Callable[..., Any])

_invocation_id: ContextVar[str | None] = ContextVar("otel_ai_cost.aws_lambda.invocation_id", default=None)
_setup_lock = threading.Lock()
_set_up = False
_tagged: weakref.WeakSet[Any] = weakref.WeakSet()  # tracer providers that have the invocation-id processor


@overload
def traced(handler: _H, /, *, flush_timeout_s: float = ...) -> _H: ...
@overload
def traced(handler: None = None, /, *, flush_timeout_s: float = ...) -> Callable[[_H], _H]: ...
def traced(handler: Any = None, /, *, flush_timeout_s: float = DEFAULT_FLUSH_TIMEOUT_S) -> Any:
    """Wrap a Lambda handler `(event, context)`: instrument once, tag our spans with `faas.invocation_id`, and
    flush before returning (see the module documentation). Use as `@traced` or `@traced(flush_timeout_s=...)`.

    Raises `ValueError` at decoration time for a `flush_timeout_s` that is not a positive number of seconds, and
    `TypeError` for something that is not callable."""
    _check_timeout(flush_timeout_s)
    if handler is None:
        return functools.partial(traced, flush_timeout_s=flush_timeout_s)
    if not callable(handler):
        raise TypeError(f"otel_ai_cost.aws_lambda.traced wraps a Lambda handler function, not {handler!r}")

    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def async_wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            token = _start_invocation(context)
            try:
                return await handler(event, context, *args, **kwargs)
            finally:
                _end_invocation(token, context, flush_timeout_s)

        return async_wrapper

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        token = _start_invocation(context)
        try:
            return handler(event, context, *args, **kwargs)
        finally:
            _end_invocation(token, context, flush_timeout_s)

    return wrapper


def _check_timeout(timeout_s: object) -> None:
    ok = isinstance(timeout_s, (int, float)) and not isinstance(timeout_s, bool) and math.isfinite(timeout_s)
    if not (ok and timeout_s > 0):  # type: ignore[operator]
        raise ValueError(
            f"otel_ai_cost.aws_lambda.traced: flush_timeout_s must be a positive number of seconds, not {timeout_s!r}"
        )


def _start_invocation(context: Any) -> Any:
    """Set up once per execution environment, then mark the invocation; never raises."""
    try:
        _set_up_once()
        request_id = getattr(context, "aws_request_id", None)
        return _invocation_id.set(request_id if isinstance(request_id, str) and request_id else None)
    except Exception as exc:  # the handler must run whatever happens here
        _report("aws_lambda.start", exc)
        return None


def _end_invocation(token: Any, context: Any, flush_timeout_s: float) -> None:
    try:
        if token is not None:
            _invocation_id.reset(token)
    except Exception as exc:
        _report("aws_lambda.end", exc)
    try:
        flush(timeout_s=_flush_budget(context, flush_timeout_s))
    except Exception as exc:  # flush() itself never raises; a `finally` must not replace the handler's outcome
        _report("aws_lambda.flush", exc)


def _flush_budget(context: Any, limit_s: float) -> float:
    """`limit_s`, or less when the invocation has less time left (less the response margin)."""
    try:
        remaining_ms = context.get_remaining_time_in_millis()
    except Exception:  # no Lambda context (a local call with None, a test double without it)
        return limit_s
    if not isinstance(remaining_ms, (int, float)) or isinstance(remaining_ms, bool):
        return limit_s
    return max(_MIN_FLUSH_S, min(limit_s, remaining_ms / 1000 - _RESPONSE_MARGIN_S))


# -- once per execution environment ----------------------------------------------------------------------------


def _set_up_once() -> None:
    global _set_up
    if _set_up:
        return
    with _setup_lock:
        if _set_up:
            return
        try:
            _instrument_unless_done()
            _tag_invocations()
        finally:
            _set_up = True  # one attempt per environment: a failure is reported, not retried on every call


def _instrument_unless_done() -> None:
    from otel_ai_cost import instrument_api

    if any(cls().is_instrumented_by_opentelemetry for cls in instrument_api._INSTRUMENTORS):
        return  # instrument() already ran, or opentelemetry-instrument loaded our instrumentors
    _provide_lambda_tracer_provider()
    instrument_api.instrument()


def _provide_lambda_tracer_provider() -> None:
    """When no tracer provider is set and the ledger is on, set the one `instrument()` would create, with the
    function's resource (`service.name`, `faas.*`, `cloud.*`)."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider

    from otel_ai_cost.attribution import AICostResourceDetector
    from otel_ai_cost.ledger.open_store import is_disabled

    if is_disabled() or not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return
    resource = AICostResourceDetector().detect().merge(Resource.create())
    configured = OTELResourceDetector().detect().attributes  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
    facts = {key: value for key, value in lambda_resource_attributes(os.environ).items() if key not in configured}
    trace.set_tracer_provider(TracerProvider(resource=resource.merge(Resource(facts))))


def lambda_resource_attributes(environ: Any) -> dict[str, str]:
    """The function's resource attributes from the Lambda runtime's environment variables (empty outside
    Lambda): what the OTel Lambda layer sets, plus `cloud.platform` and `service.name` = the function name."""
    name = environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if not name:
        return {}
    found = {
        SERVICE_NAME: name,
        FAAS_NAME: name,
        CLOUD_PROVIDER: "aws",
        CLOUD_PLATFORM: "aws_lambda",
        FAAS_VERSION: environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
        FAAS_INSTANCE: environ.get("AWS_LAMBDA_LOG_STREAM_NAME"),
        CLOUD_REGION: environ.get("AWS_REGION"),
    }
    return {key: value for key, value in found.items() if value}


class _InvocationIdProcessor(SpanProcessor):
    """Puts the current invocation's `faas.invocation_id` on our GenAI spans as they start."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        request_id = _invocation_id.get()
        if request_id is None:
            return
        try:
            scope = span.instrumentation_scope
            if scope is not None and scope.name == INSTRUMENTATION_SCOPE:
                span.set_attribute(FAAS_INVOCATION_ID, request_id)
        except Exception as exc:  # runs inside the host's span start: never let it fail
            _report("aws_lambda.invocation_id", exc)

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _tag_invocations() -> None:
    """Adds the invocation-id processor to every SDK tracer provider our spans may go through, once each."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from otel_ai_cost.flushing import remembered_tracer_providers
    from otel_ai_cost.instrument_api import ledger_attachments

    candidates = [trace.get_tracer_provider(), *remembered_tracer_providers()]
    candidates += [provider for provider, _ in ledger_attachments()]
    for provider in candidates:
        if isinstance(provider, TracerProvider) and provider not in _tagged:
            _tagged.add(provider)
            provider.add_span_processor(_InvocationIdProcessor())


def _report(component: str, exc: BaseException) -> None:
    from otel_ai_cost.telemetry.errors import report_internal_error

    report_internal_error(component, exc)
