"""Observing an SDK stream without changing what the caller gets.

Both SDKs' `Stream`/`AsyncStream` read items from `self._iterator`, and their helpers (`chat.completions.stream()`,
`messages.stream()`) consume the same object. We replace that iterator with one that feeds an observer, so the
caller keeps the very object (and type) the SDK returned and sees exactly its items, unless the observer
withholds an item that only exists because we asked for it (the injected `include_usage` chunk).

A stream that is abandoned still ends its span: on `close()`, when the iterator is closed (`break` followed by
garbage collection), and when a never-read stream is garbage-collected.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

from otel_ai_cost.telemetry.errors import report_internal_error


class StreamObserver(Protocol):
    def on_item(self, item: Any) -> bool:
        """Looks at one item; returns False to withhold it from the caller. Must never raise."""
        ...

    def on_end(self, completed: bool, error: BaseException | None) -> None:
        """Called exactly once: completed=False means abandoned or failed. Idempotent, never raises."""
        ...


def observe_stream(stream: Any, observer: StreamObserver) -> Any:
    """Route a sync SDK stream's items through `observer`; returns `stream` itself."""
    original: Iterator[Any] = stream._iterator
    stream.__dict__["_iterator"] = _observed(original, observer)
    _end_on_close(stream, observer, is_async=False)
    return stream


def observe_async_stream(stream: Any, observer: StreamObserver) -> Any:
    """Route an async SDK stream's items through `observer`; returns `stream` itself."""
    original: AsyncIterator[Any] = stream._iterator
    stream.__dict__["_iterator"] = _observed_async(original, observer)
    _end_on_close(stream, observer, is_async=True)
    return stream


def _end_on_close(stream: Any, observer: StreamObserver, *, is_async: bool) -> None:
    # `close()` ends the span at once. The replacement holds the stream weakly: a strong reference from the
    # stream's own __dict__ would make a cycle, leaving every stream (and its response) to the cycle collector.
    close = type(stream).close
    stream_ref = weakref.ref(stream)

    if is_async:

        async def aclose() -> None:
            try:
                if (target := stream_ref()) is not None:
                    await close(target)
            finally:
                observer.on_end(False, None)

        stream.__dict__["close"] = aclose
    else:

        def sync_close() -> None:
            try:
                if (target := stream_ref()) is not None:
                    close(target)
            finally:
                observer.on_end(False, None)

        stream.__dict__["close"] = sync_close
    # Never read, or dropped mid-way: the span ends when the stream is collected. The callback holds the
    # observer only, never the stream.
    weakref.finalize(stream, observer.on_end, False, None)


def _observed(iterator: Iterator[Any], observer: StreamObserver) -> Iterator[Any]:
    completed = False
    error: BaseException | None = None
    try:
        for item in iterator:
            if _safe_on_item(observer, item):
                yield item
        completed = True
    except GeneratorExit:
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        observer.on_end(completed, error)


async def _observed_async(iterator: AsyncIterator[Any], observer: StreamObserver) -> AsyncIterator[Any]:
    completed = False
    error: BaseException | None = None
    try:
        async for item in iterator:
            if _safe_on_item(observer, item):
                yield item
        completed = True
    except GeneratorExit:
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        observer.on_end(completed, error)


def _safe_on_item(observer: StreamObserver, item: Any) -> bool:
    try:
        return observer.on_item(item)
    except Exception as exc:
        report_internal_error("stream.observe", exc)
        return True
