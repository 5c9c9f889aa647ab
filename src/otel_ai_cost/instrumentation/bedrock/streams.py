"""Observing botocore's response objects without changing what the caller gets.

`EventStream` (the `stream` of ConverseStream, the `body` of InvokeModelWithResponseStream): the caller keeps the
very object; its `__iter__` calls `self._parse_event(raw)` per message, so an instance attribute of that name sees
each parsed event (exactly what the caller gets, in order) and each in-stream error (`EventStreamError`), and
`_event_generator` (the raw messages) is wrapped to learn when the stream ended or broke.

`StreamingBody` (InvokeModel's `body`): its raw stream is replaced by a transparent proxy that keeps a copy of
the bytes as the caller reads them; the call is finished when the body has been read to its end.

Either way a call is finished once: when its final event or last byte arrives, when the stream ends or fails,
on `close()`, or when the object is garbage-collected unread (partial).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import wrapt

from otel_ai_cost.telemetry.errors import report_internal_error


class EventObserver(Protocol):
    def on_event(self, event: Any) -> None:
        """One parsed event, as the caller gets it. May raise (caught and reported)."""
        ...

    def on_end(self, completed: bool, error: BaseException | None) -> None:
        """Idempotent, never raises: completed=False means abandoned (error None) or failed."""
        ...


def observe_event_stream(stream: Any, observer: EventObserver) -> None:
    """Route a botocore `EventStream`'s events through `observer`; the caller keeps `stream` itself."""
    parse = type(stream)._parse_event
    stream_ref = weakref.ref(stream)

    def parse_event(event: Any) -> Any:
        target = stream_ref()
        try:
            parsed = parse(target, event)
        except BaseException as exc:  # an in-stream error event (EventStreamError) reaches the caller as is
            observer.on_end(False, exc)
            raise
        try:
            observer.on_event(parsed)
        except Exception as exc:
            report_internal_error("bedrock.stream.observe", exc)
        return parsed

    stream.__dict__["_parse_event"] = parse_event
    stream.__dict__["_event_generator"] = _watched(stream._event_generator, observer.on_end)
    _end_on_close(stream, observer.on_end)


def _watched(events: Iterator[Any], on_end: Callable[[bool, BaseException | None], None]) -> Iterator[Any]:
    completed = False
    error: BaseException | None = None
    try:
        yield from events
        completed = True
    except GeneratorExit:
        raise
    except BaseException as exc:  # the connection broke mid-stream
        error = exc
        raise
    finally:
        on_end(completed, error)


def _end_on_close(target: Any, on_end: Callable[[bool, BaseException | None], None]) -> None:
    # The replacement holds the object weakly: a strong reference from its own __dict__ would make a cycle.
    close = type(target).close
    target_ref = weakref.ref(target)

    def closing() -> None:
        try:
            if (obj := target_ref()) is not None:
                close(obj)
        finally:
            on_end(False, None)

    target.__dict__["close"] = closing
    weakref.finalize(target, on_end, False, None)  # never read, or dropped mid-way


class _TeeRaw(wrapt.ObjectProxy):  # type: ignore[misc]
    """The body's raw (urllib3) stream, keeping a copy of what is read; everything else passes through."""

    def __init__(self, raw: Any, expected: int | None, on_done: Callable[[bytes | None], None]) -> None:
        super().__init__(raw)
        self._self_parts: list[bytes] = []
        self._self_read = 0
        self._self_expected = expected
        self._self_on_done = on_done

    def read(self, *args: Any, **kwargs: Any) -> Any:
        chunk = self.__wrapped__.read(*args, **kwargs)
        try:
            if self._self_on_done is not None:
                amt = args[0] if args else kwargs.get("amt")
                if chunk:
                    self._self_parts.append(bytes(chunk))
                    self._self_read += len(chunk)
                expected = self._self_expected
                if amt is None or not chunk or (expected is not None and self._self_read >= expected):
                    self._self_finish(b"".join(self._self_parts))
        except Exception as exc:
            report_internal_error("bedrock.body.observe", exc)
        return chunk

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_finish(None)

    def _self_finish(self, data: bytes | None) -> None:
        on_done, self._self_on_done = self._self_on_done, None
        self._self_parts = []
        if on_done is not None:
            on_done(data)


def observe_body(body: Any, on_done: Callable[[bytes | None], None]) -> bool:
    """Have `on_done(bytes)` called when a `StreamingBody` has been read to its end, or `on_done(None)` when it is
    closed or dropped before that. False when `body` is not a StreamingBody this module knows how to watch."""
    raw = getattr(body, "_raw_stream", None)
    if raw is None or not hasattr(raw, "read"):
        return False
    length = getattr(body, "_content_length", None)
    try:
        expected = int(length) if length is not None else None
    except (TypeError, ValueError):
        expected = None
    tee = _TeeRaw(raw, expected, on_done)
    body._raw_stream = tee
    # Dropped unread: the callback holds `on_done` (via the tee's finish), never the body.
    weakref.finalize(body, tee._self_finish, None)
    return True
