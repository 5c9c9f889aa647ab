"""Anthropic routes: `messages` (and `beta.messages`, same endpoint) priced; `count_tokens` is free and ignored."""

from __future__ import annotations

from typing import Any

from otel_ai_cost.contract import GenAI, Operation
from otel_ai_cost.instrumentation.anthropic import response_extractors as extract
from otel_ai_cost.instrumentation.common.routes import request_body, start_call
from otel_ai_cost.telemetry.recorder import Call, Recorder


def _provider(client: Any) -> str:
    # Bedrock and Vertex clients say who they are; everything else is Anthropic's API.
    return getattr(client, "_gen_ai_provider_name", None) or "anthropic"


class MessagesRoute:
    operation = Operation.CHAT.value

    def start(self, recorder: Recorder, client: Any, options: Any, stream: bool) -> tuple[Call, Any]:
        return start_call(recorder, client, _provider, self.operation, request_body(options), stream), options

    def finish(self, call: Call, message: Any) -> None:
        if call.captures_content:
            call.capture_output(extract.output_messages(getattr(message, "content", None)))
        usage = getattr(message, "usage", None)
        stop_reason = getattr(message, "stop_reason", None)
        request_id = getattr(message, "_request_id", None)  # the SDK keeps the `request-id` header here
        call.finish(
            extract.message_usage(usage),
            response_model=getattr(message, "model", None),
            response_id=getattr(message, "id", None),
            finish_reasons=[stop_reason] if stop_reason else None,
            service_tier=extract.service_tier(usage),
            extra_attributes={GenAI.ANTHROPIC_REQUEST_ID: request_id} if isinstance(request_id, str) else None,
        )

    def stream_observer(self, call: Call) -> MessageStreamObserver:
        return MessageStreamObserver(call)


class MessageStreamObserver:
    __slots__ = ("call", "message_id", "model", "stop_reason", "usage")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.usage: extract.StreamUsage | None = None
        self.model: str | None = None
        self.message_id: str | None = None
        self.stop_reason: str | None = None

    def on_item(self, event: Any) -> bool:
        self.call.chunk_received()
        kind = getattr(event, "type", None)
        if kind == "message_start":
            message = event.message
            self.model, self.message_id = message.model, message.id
            self.usage = extract.StreamUsage()
            self.usage.update(message.usage)
        elif kind == "message_delta":
            if self.usage is None:
                self.usage = extract.StreamUsage()
            self.usage.update(event.usage)
            self.stop_reason = getattr(event.delta, "stop_reason", None) or self.stop_reason
        return True

    def on_end(self, completed: bool, error: BaseException | None) -> None:
        if self.call.ended:
            return
        usage = self.usage
        self.call.finish(
            extract.message_usage(usage) if usage is not None else None,
            response_model=self.model,
            response_id=self.message_id,
            finish_reasons=[self.stop_reason] if self.stop_reason else None,
            service_tier=extract.service_tier(usage),
            error=error,
            partial=not completed and error is None,
        )


class AnthropicAdapter:
    def __init__(self) -> None:
        import anthropic
        from anthropic import _response

        self.stream_types = (anthropic.Stream,)
        self.async_stream_types = (anthropic.AsyncStream,)
        self.raw_response_types = (_response.APIResponse, _response.AsyncAPIResponse)
        self._messages = MessagesRoute()

    def route_for(self, options: Any) -> Any:
        if options is None or options.method.lower() != "post":
            return None
        return self._messages if options.url == "/v1/messages" else None
