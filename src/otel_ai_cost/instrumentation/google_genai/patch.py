"""Wrappers on `google.genai.models.Models` / `AsyncModels`: one span per HTTP request to `generateContent` or
`streamGenerateContent`.

We wrap the SDK's private `_generate_content` and `_generate_content_stream` (sync and async), not the public
methods: the public `generate_content` / `generate_content_stream` may send several requests per call (automatic
function calling, automatic continuation) and return only the last response's usage, while each of those requests
is billed, and the long-context tier applies per request. `chats` sessions go through the same methods.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from opentelemetry import context as otel_context

from otel_ai_cost.budgets.quota import BudgetExceeded
from otel_ai_cost.contract import Operation
from otel_ai_cost.instrumentation.common.streams import _observed, _observed_async
from otel_ai_cost.instrumentation.google_genai import response_extractors as extract
from otel_ai_cost.instrumentation.google_genai.streams import GenerateContentStreamObserver
from otel_ai_cost.telemetry.errors import report_internal_error
from otel_ai_cost.telemetry.recorder import Call, Recorder

OPERATION = Operation.GENERATE_CONTENT.value


def start_call(recorder: Recorder, instance: Any, kwargs: dict[str, Any], stream: bool) -> tuple[Call, str | None]:
    """Starts the span of one request; returns it with the service tier the request asked for."""
    api_client = getattr(instance, "_api_client", None)
    address, port = extract.server_of(api_client)
    model = kwargs.get("model")
    config = kwargs.get("config")
    call = recorder.start(
        provider=extract.provider_of(api_client),
        operation=OPERATION,
        request_model=model if isinstance(model, str) and model else None,
        server_address=address,
        server_port=port,
        stream=stream,
        request_attributes=extract.request_attributes(config),
        api_key_fingerprint=recorder.key_fingerprints.of_client(api_client),  # `api_key`; None with ADC credentials
    )
    if call.captures_content:
        call.capture_input(kwargs.get("contents"))
    return call, extract.requested_service_tier(config)


def finish_response(call: Call, response: Any, requested_tier: str | None) -> None:
    metadata = getattr(response, "usage_metadata", None)
    if call.captures_content:
        call.capture_output(extract.output_messages(response))
    call.finish(
        extract.usage(metadata),
        response_model=extract.response_model(response),
        response_id=extract.response_id(response),
        finish_reasons=extract.finish_reasons(response),
        service_tier=extract.service_tier(metadata, requested_tier),
    )


def _fail(call: Call, error: BaseException) -> None:
    try:
        error_type = extract.error_type(error)
    except Exception:
        error_type = None
    call.finish(None, error=error, error_type=error_type)


def _begin(recorder: Recorder, instance: Any, kwargs: dict[str, Any], stream: bool) -> tuple[Call, str | None] | None:
    try:
        return start_call(recorder, instance, kwargs, stream)
    except BudgetExceeded:
        raise  # a quota blocked the call: nothing is sent
    except Exception as exc:
        report_internal_error("google_genai.start", exc)
        return None


def _done(call: Call, response: Any, requested_tier: str | None) -> None:
    try:
        finish_response(call, response, requested_tier)
    except Exception as exc:
        report_internal_error("google_genai.result", exc)
        call.finish(None)


def generate_content_wrapper(recorder: Recorder) -> Callable[..., Any]:
    """`Models._generate_content`: one request, one parsed response."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        plan = _begin(recorder, instance, kwargs, stream=False)
        if plan is None:
            return wrapped(*args, **kwargs)
        call, tier = plan
        token = otel_context.attach(call.context)
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(call, exc)
            raise
        finally:
            otel_context.detach(token)
        _done(call, response, tier)
        return response

    return wrapper


def async_generate_content_wrapper(recorder: Recorder) -> Callable[..., Any]:
    """`AsyncModels._generate_content`."""

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        plan = _begin(recorder, instance, kwargs, stream=False)
        if plan is None:
            return await wrapped(*args, **kwargs)
        call, tier = plan
        token = otel_context.attach(call.context)
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(call, exc)
            raise
        finally:
            otel_context.detach(token)
        _done(call, response, tier)
        return response

    return wrapper


def _observer(call: Call, tier: str | None) -> GenerateContentStreamObserver | None:
    try:
        return GenerateContentStreamObserver(call, tier)
    except Exception as exc:
        report_internal_error("google_genai.stream", exc)
        call.finish(None)
        return None


def generate_content_stream_wrapper(recorder: Recorder) -> Callable[..., Any]:
    """`Models._generate_content_stream`, a generator: the request is sent at the first `next()`, so the span
    starts there too (a stream never iterated sends nothing and records nothing)."""

    def observed(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Iterator[Any]:
        plan = _begin(recorder, instance, kwargs, stream=True)
        if plan is None:
            yield from wrapped(*args, **kwargs)
            return
        call, tier = plan
        try:
            chunks = wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(call, exc)
            raise
        observer = _observer(call, tier)
        if observer is None:
            yield from chunks
            return
        yield from _observed(chunks, observer)

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return observed(wrapped, instance, args, kwargs)

    return wrapper


def async_generate_content_stream_wrapper(recorder: Recorder) -> Callable[..., Any]:
    """`AsyncModels._generate_content_stream`: a coroutine that sends the request and returns an async generator
    of chunks (google-genai >= 1.x); older releases made it an async generator function itself."""

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        plan = _begin(recorder, instance, kwargs, stream=True)
        if plan is None:
            return await wrapped(*args, **kwargs)
        call, tier = plan
        token = otel_context.attach(call.context)
        try:
            chunks = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(call, exc)
            raise
        finally:
            otel_context.detach(token)
        observer = _observer(call, tier)
        if observer is None:
            return chunks
        try:
            observed = _observed_async(chunks, observer)
            # Never iterated: the span still ends when the generator is dropped (the event loop only finalizes
            # async generators that were started). Holds the observer, never the generator.
            weakref.finalize(observed, observer.on_end, False, None)
        except Exception as exc:
            report_internal_error("google_genai.stream", exc)
            call.finish(None)
            return chunks
        return observed

    async def legacy(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> AsyncIterator[Any]:
        plan = _begin(recorder, instance, kwargs, stream=True)
        chunks = wrapped(*args, **kwargs)
        observer = _observer(*plan) if plan is not None else None
        source = _observed_async(chunks, observer) if observer is not None else chunks
        try:
            async for chunk in source:
                yield chunk
        finally:
            await source.aclose()

    def dispatch(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if inspect.isasyncgenfunction(wrapped):
            return legacy(wrapped, instance, args, kwargs)
        return wrapper(wrapped, instance, args, kwargs)

    return dispatch
