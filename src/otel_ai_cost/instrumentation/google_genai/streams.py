"""Observing `generate_content_stream` without changing what the caller gets.

The SDK's private `_generate_content_stream` (one HTTP request, one SSE stream) yields `GenerateContentResponse`
chunks; every chunk carries `usage_metadata`, the last one the final totals and the finish reason. We hand the
SDK back a generator of the very same chunk objects (shared iteration helpers of `common/streams.py`) and finish
the call when the stream ends: completed, failed (the error ends the span with status ERROR), or abandoned (the
caller's `break`, `close()`, or garbage collection: the span ends with `ai_cost.usage.partial=true` and whatever
usage the chunks read so far reported, i.e. the prompt side the API reports on every chunk).
"""

from __future__ import annotations

from typing import Any

from otel_ai_cost.instrumentation.google_genai import response_extractors as extract
from otel_ai_cost.telemetry.errors import report_internal_error
from otel_ai_cost.telemetry.recorder import Call


class GenerateContentStreamObserver:
    """Remembers what the chunks say; finishes the call once (`on_end` is idempotent and never raises)."""

    __slots__ = ("call", "finish_reasons", "metadata", "model", "requested_tier", "response_id", "texts")

    def __init__(self, call: Call, requested_tier: str | None) -> None:
        self.call = call
        self.requested_tier = requested_tier
        self.metadata: Any = None
        self.model: str | None = None
        self.response_id: str | None = None
        self.finish_reasons: list[str] | None = None
        self.texts: dict[int, list[str]] | None = {} if call.captures_content else None

    def on_item(self, chunk: Any) -> bool:
        self.call.chunk_received()
        metadata = getattr(chunk, "usage_metadata", None)
        if metadata is not None:
            self.metadata = metadata
        self.model = extract.response_model(chunk) or self.model
        self.response_id = extract.response_id(chunk) or self.response_id
        self.finish_reasons = extract.finish_reasons(chunk) or self.finish_reasons
        if self.texts is not None:
            for index, message in enumerate(extract.output_messages(chunk) or ()):
                self.texts.setdefault(index, []).append(message["content"])
        return True

    def on_end(self, completed: bool, error: BaseException | None) -> None:
        if self.call.ended:
            return
        try:
            self._finish(completed, error)
        except Exception as exc:
            report_internal_error("google_genai.stream_end", exc)
            self.call.finish(None, error=error, partial=not completed and error is None)

    def _finish(self, completed: bool, error: BaseException | None) -> None:
        if self.texts:
            self.call.capture_output(
                [{"role": "assistant", "content": "".join(self.texts[i])} for i in sorted(self.texts)]
            )
        self.call.finish(
            extract.usage(self.metadata),
            response_model=self.model,
            response_id=self.response_id,
            finish_reasons=self.finish_reasons,
            service_tier=extract.service_tier(self.metadata, self.requested_tier),
            error=error,
            error_type=extract.error_type(error) if error is not None else None,
            partial=not completed and error is None,
        )
