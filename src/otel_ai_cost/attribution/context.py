"""Who spent it: `ai_usage_context` attaches attribution to every AI call made inside it."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import TypeVar

from otel_ai_cost.attribution.baggage import (
    _attach,
    _current_baggage_attributes,
    _detach,
    _raw_baggage,
    attribute_name,
)

__all__ = ["AttributeValue", "UsageContext", "ai_usage_context", "current_attributes"]

_logger = logging.getLogger(__name__)

AttributeValue = str | bool | int | float
_F = TypeVar("_F", bound=Callable[..., object])

_EMPTY: Mapping[str, AttributeValue] = MappingProxyType({})


class UsageContext:
    """What `with ai_usage_context(...) as usage:` gives you.

    `usage.attributes` is the read-only mapping of span attributes this context puts on every AI call made
    inside it: its own values merged over those of the enclosing contexts. Baggage is not included; call
    `current_attributes()` for everything a call made right now would carry.
    """

    __slots__ = ("_baggage_token", "_merged", "_owner", "_parent", "_token", "attributes")

    def __init__(self, attributes: Mapping[str, AttributeValue], parent: UsageContext | None, owner: object) -> None:
        self.attributes: Mapping[str, AttributeValue] = attributes
        self._parent = parent
        self._owner = owner
        self._token: Token[UsageContext | None] | None = None
        self._baggage_token: object = None
        # (baggage attributes, attributes merged with them): one cached entry; replaced as a whole.
        self._merged: tuple[object, Mapping[str, AttributeValue]] = (None, attributes)

    def __repr__(self) -> str:
        return f"UsageContext({dict(self.attributes)!r})"


_CURRENT: ContextVar[UsageContext | None] = ContextVar("otel_ai_cost.ai_usage_context", default=None)


def current_attributes() -> Mapping[str, AttributeValue]:
    """The attribution span attributes for a call made now: the active `ai_usage_context` values merged over
    the allow-listed W3C Baggage values (the context wins, key by key). Empty outside any context.

    Read-only. Called by the instrumentation on every API call, so it returns precomputed mappings.
    """
    usage = _CURRENT.get()
    bag = _raw_baggage()
    if not bag:
        return _EMPTY if usage is None else usage.attributes
    from_baggage = _current_baggage_attributes(bag)
    if usage is None:
        return from_baggage
    if not from_baggage:
        return usage.attributes
    cached_baggage, merged = usage._merged
    if cached_baggage is not from_baggage:
        merged = MappingProxyType({**from_baggage, **usage.attributes})
        usage._merged = (from_baggage, merged)
    return merged


def _attribute_value(value: object) -> AttributeValue:
    return value if isinstance(value, (str, bool, int, float)) else str(value)


class ai_usage_context:
    """Attribute the AI calls made inside a block (or a function) to an operation, job, batch, team or user.

    As a context manager::

        with ai_usage_context(operation_type="batch_processing", batch_id=batch.id, team="receipts",
                              receipt_count=len(batch)) as usage:
            for receipt in batch:
                client.chat.completions.create(...)   # span carries ai_cost.batch.id, ai_cost.team, ...

    As a decorator, on plain and on `async` functions (each call gets its own context)::

        @ai_usage_context(operation_type="nightly_report", job_id="report-2024-01-15")
        async def build_report(): ...

    Keywords become span attributes on every instrumented call made inside:

    ==================  ======================================
    ``operation_type``  ``ai_cost.operation_type``
    ``job_id``          ``ai_cost.job.id``
    ``batch_id``        ``ai_cost.batch.id``
    ``team``            ``ai_cost.team``
    ``user_id``         ``ai_cost.user.id``
    any other ``k``     ``ai_cost.tag.k`` (``receipt_count`` -> ``ai_cost.tag.receipt_count``)
    ==================  ======================================

    Values that are `str`, `bool`, `int` or `float` are kept as they are; anything else is converted with
    `str()`; `None` is ignored (so it never clears a value set by an enclosing context).

    Nesting merges: an inner context adds to the outer one and wins for the keys it sets; leaving it restores
    the outer values. `usage.attributes` (the object bound by ``as``) shows the merged result.

    Concurrency: the context lives in a `contextvars.ContextVar`, like OpenTelemetry's own context.

    - asyncio: a task created inside the block (`asyncio.create_task`, `gather`) inherits the context; sibling
      tasks never see each other's contexts. `asyncio.to_thread` carries the context into its thread.
    - threads: a new thread, and a `ThreadPoolExecutor` / `loop.run_in_executor` worker, starts *without* the
      submitting thread's context. To carry it over, submit through a copied context:
      ``executor.submit(contextvars.copy_context().run, fn, *args)``.

    Propagation to other services: with ``propagate=True`` the context also writes its allow-listed values
    (default: ``team``, ``job_id``, ``batch_id``, ``operation_type``; see `otel_ai_cost.attribution.baggage`)
    into W3C Baggage for the duration of the block, so the standard propagator sends them with outgoing
    requests and the downstream service attributes its own AI calls the same way. Off by default: baggage is
    sent with *every* outgoing request an instrumented HTTP client makes, third-party APIs included.

    Only instrumented calls made while the block runs are attributed. Generator functions cannot be decorated
    (their body runs after the decorated call returns); use the ``with`` form inside them instead.
    """

    __slots__ = ("_attributes", "_propagate")

    def __init__(
        self,
        operation_type: str | None = None,
        *,
        job_id: object = None,
        batch_id: object = None,
        team: object = None,
        user_id: object = None,
        propagate: bool = False,
        **tags: object,
    ) -> None:
        named = {
            "operation_type": operation_type,
            "job_id": job_id,
            "batch_id": batch_id,
            "team": team,
            "user_id": user_id,
        }
        self._attributes: dict[str, AttributeValue] = {
            attribute_name(key): _attribute_value(value)
            for key, value in (*named.items(), *tags.items())
            if value is not None
        }
        self._propagate = propagate

    def __repr__(self) -> str:
        return f"ai_usage_context({self._attributes!r})"

    def _enter(self) -> UsageContext:
        parent = _CURRENT.get()
        merged = {**parent.attributes, **self._attributes} if parent is not None else dict(self._attributes)
        usage = UsageContext(MappingProxyType(merged), parent, self)
        usage._token = _CURRENT.set(usage)
        if self._propagate:
            usage._baggage_token = _attach(usage.attributes)
        return usage

    @staticmethod
    def _exit(usage: UsageContext) -> None:
        if usage._baggage_token is not None:
            _detach(usage._baggage_token)  # type: ignore[arg-type]
        try:
            _CURRENT.reset(usage._token)  # type: ignore[arg-type]
        except ValueError:
            # Left from another context than it was entered in (a generator resumed elsewhere): restore the
            # parent rather than break the caller.
            _logger.debug("otel-ai-cost: ai_usage_context exited in a different context than it was entered")
            _CURRENT.set(usage._parent)

    def __enter__(self) -> UsageContext:
        return self._enter()

    def __exit__(self, *exc_info: object) -> None:
        # The usage context to close is the current one of *this* thread/task, so one instance can be entered
        # concurrently by several tasks or threads without them sharing any state.
        usage = _CURRENT.get()
        if usage is None or usage._owner is not self:
            _logger.debug("otel-ai-cost: ai_usage_context exited out of order; ignored")
            return
        self._exit(usage)

    def __call__(self, func: _F) -> _F:
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(
                "ai_usage_context cannot decorate a generator function; "
                "use `with ai_usage_context(...)` inside it instead"
            )
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: object, **kwargs: object) -> object:
                usage = self._enter()
                try:
                    return await func(*args, **kwargs)
                finally:
                    self._exit(usage)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: object, **kwargs: object) -> object:
            usage = self._enter()
            try:
                return func(*args, **kwargs)
            finally:
                self._exit(usage)

        return wrapper  # type: ignore[return-value]
