"""OpenAI routes: which endpoints are calls worth pricing, and how each one's responses and streams are read."""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from otel_ai_cost.contract import Env, GenAI, Operation
from otel_ai_cost.instrumentation.common.routes import request_body, start_call
from otel_ai_cost.instrumentation.openai import response_extractors as extract
from otel_ai_cost.instrumentation.openai.provider import ProviderMap
from otel_ai_cost.pricing.usage import Usage
from otel_ai_cost.telemetry.recorder import Call, Recorder

ProviderOf = Callable[[Any], str]


class ChatCompletionsRoute:
    operation = Operation.CHAT.value

    def __init__(self, provider_of: ProviderOf) -> None:
        self.provider_of = provider_of
        self.inject_usage = os.environ.get(Env.INJECT_STREAM_USAGE, "true").strip().lower() != "false"

    def start(self, recorder: Recorder, client: Any, options: Any, stream: bool) -> tuple[Call, Any]:
        body = request_body(options)
        extra = {}
        tier = body.get("service_tier")
        if isinstance(tier, str):
            extra[GenAI.OPENAI_REQUEST_SERVICE_TIER] = tier
        call = start_call(recorder, client, self.provider_of, self.operation, body, stream, extra)
        injected = False
        if stream and self.inject_usage:
            stream_options = body.get("stream_options")
            if not isinstance(stream_options, dict) or "include_usage" not in stream_options:
                # Exact usage for a stream needs the final usage chunk; ask for it, and hide it from the caller.
                options.json_data = {
                    **body,
                    "stream_options": {**(stream_options or {}), "include_usage": True},
                }
                injected = True
        call.route_state = injected
        return call, options

    def finish(self, call: Call, response: Any) -> None:
        if call.captures_content:
            call.capture_output(extract.chat_output_messages(getattr(response, "choices", None)))
        tier = extract.service_tier(response)
        usage = getattr(response, "usage", None)
        call.finish(
            extract.chat_usage(usage),
            provider_cost=extract.provider_cost(call.provider, usage),
            response_model=getattr(response, "model", None),
            response_id=getattr(response, "id", None),
            finish_reasons=extract.chat_finish_reasons(getattr(response, "choices", None)),
            service_tier=tier,
            extra_attributes={GenAI.OPENAI_RESPONSE_SERVICE_TIER: tier} if tier else None,
        )

    def stream_observer(self, call: Call) -> ChatStreamObserver:
        return ChatStreamObserver(call, call.route_state is True)


class ChatStreamObserver:
    """Accumulates a chat stream: model, id, finish reasons, and the usage of its final chunk."""

    __slots__ = (
        "call",
        "finish_reasons",
        "hide_usage_chunk",
        "model",
        "provider_cost",
        "response_id",
        "service_tier",
        "usage",
    )

    def __init__(self, call: Call, hide_usage_chunk: bool) -> None:
        self.call = call
        self.hide_usage_chunk = hide_usage_chunk
        self.usage: Usage | None = None
        self.provider_cost: Decimal | None = None
        self.model: str | None = None
        self.response_id: str | None = None
        self.service_tier: str | None = None
        self.finish_reasons: list[str] = []

    def on_item(self, chunk: Any) -> bool:
        self.call.chunk_received()
        self.model = getattr(chunk, "model", None) or self.model
        self.response_id = getattr(chunk, "id", None) or self.response_id
        self.service_tier = extract.service_tier(chunk) or self.service_tier
        choices = getattr(chunk, "choices", None)
        for choice in choices or ():
            if getattr(choice, "finish_reason", None):
                self.finish_reasons.append(choice.finish_reason)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = extract.chat_usage(usage)
            self.provider_cost = extract.provider_cost(self.call.provider, usage)
            if self.hide_usage_chunk and not choices:
                return False  # the caller did not ask for this chunk
        return True

    def on_end(self, completed: bool, error: BaseException | None) -> None:
        if self.call.ended:
            return
        self.call.finish(
            self.usage,
            provider_cost=self.provider_cost,
            response_model=self.model,
            response_id=self.response_id,
            finish_reasons=self.finish_reasons,
            service_tier=self.service_tier,
            error=error,
            partial=not completed and error is None,
            extra_attributes={GenAI.OPENAI_RESPONSE_SERVICE_TIER: self.service_tier} if self.service_tier else None,
        )


class ResponsesRoute:
    operation = Operation.CHAT.value

    def __init__(self, provider_of: ProviderOf) -> None:
        self.provider_of = provider_of

    def start(self, recorder: Recorder, client: Any, options: Any, stream: bool) -> tuple[Call, Any]:
        body = request_body(options)
        return start_call(recorder, client, self.provider_of, self.operation, body, stream), options

    def finish(self, call: Call, response: Any) -> None:
        _finish_response(call, response, error=None, partial=False)

    def stream_observer(self, call: Call) -> ResponsesStreamObserver:
        return ResponsesStreamObserver(call)


def _finish_response(
    call: Call, response: Any, *, error: BaseException | None, partial: bool, error_type: str | None = None
) -> None:
    output = getattr(response, "output", None)
    if call.captures_content and output is not None:
        call.capture_output(getattr(response, "output_text", None))
    tier = extract.service_tier(response)
    usage = getattr(response, "usage", None)
    call.finish(
        extract.responses_usage(usage, output),
        provider_cost=extract.provider_cost(call.provider, usage),
        response_model=getattr(response, "model", None),
        response_id=getattr(response, "id", None),
        finish_reasons=extract.responses_finish_reasons(response),
        service_tier=tier,
        error=error,
        error_type=error_type,
        partial=partial,
        extra_attributes={GenAI.OPENAI_RESPONSE_SERVICE_TIER: tier} if tier else None,
    )


class ResponsesStreamObserver:
    """Usage arrives in the terminal event (`response.completed`, `.incomplete` or `.failed`)."""

    __slots__ = ("call", "error_type", "last_response")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.last_response: Any = None
        self.error_type: str | None = None

    def on_item(self, event: Any) -> bool:
        self.call.chunk_received()
        response = getattr(event, "response", None)
        if response is not None:
            self.last_response = response
        elif getattr(event, "type", None) == "error":
            # The SDK hands an `error` event to the caller instead of raising; the call still failed.
            self.error_type = getattr(event, "code", None) or "error"
        return True

    def on_end(self, completed: bool, error: BaseException | None) -> None:
        if self.call.ended:
            return
        response = self.last_response
        terminal = getattr(response, "status", None) in {"completed", "incomplete", "failed"}
        partial = not (completed and terminal) and error is None and self.error_type is None
        if response is None:
            self.call.finish(None, error=error, error_type=self.error_type, partial=partial)
        else:
            _finish_response(self.call, response, error=error, error_type=self.error_type, partial=partial)


class EmbeddingsRoute:
    operation = Operation.EMBEDDINGS.value

    def __init__(self, provider_of: ProviderOf) -> None:
        self.provider_of = provider_of

    def start(self, recorder: Recorder, client: Any, options: Any, stream: bool) -> tuple[Call, Any]:
        body = request_body(options)
        return start_call(recorder, client, self.provider_of, self.operation, body, stream), options

    def finish(self, call: Call, response: Any) -> None:
        usage = getattr(response, "usage", None)
        call.finish(
            extract.embeddings_usage(usage),
            provider_cost=extract.provider_cost(call.provider, usage),
            response_model=getattr(response, "model", None),
        )

    def stream_observer(self, call: Call) -> Any:  # embeddings never stream
        raise TypeError("embeddings do not stream")


class ImagesRoute:
    """`images.generate` (and `images.edit`): GPT Image models report token usage, image tokens apart; a stream's
    usage arrives in its `image_generation.completed` / `image_edit.completed` event."""

    operation = Operation.GENERATE_CONTENT.value

    def __init__(self, provider_of: ProviderOf) -> None:
        self.provider_of = provider_of

    def start(self, recorder: Recorder, client: Any, options: Any, stream: bool) -> tuple[Call, Any]:
        return start_call(recorder, client, self.provider_of, self.operation, request_body(options), stream), options

    def finish(self, call: Call, response: Any) -> None:
        usage = getattr(response, "usage", None)
        call.finish(extract.image_usage(usage), provider_cost=extract.provider_cost(call.provider, usage))

    def stream_observer(self, call: Call) -> UsageEventObserver:
        return UsageEventObserver(call, extract.image_usage)


class TranscriptionsRoute:
    """`audio.transcriptions.create`: token-billed models (gpt-4o-transcribe) report tokens, whisper-1 the seconds
    of audio it heard (priced per minute). `response_format="text"` returns a bare string: no usage."""

    operation = Operation.TRANSCRIPTION.value

    def __init__(self, provider_of: ProviderOf) -> None:
        self.provider_of = provider_of

    def start(self, recorder: Recorder, client: Any, options: Any, stream: bool) -> tuple[Call, Any]:
        return start_call(recorder, client, self.provider_of, self.operation, request_body(options), stream), options

    def finish(self, call: Call, response: Any) -> None:
        call.finish(extract.transcription_usage(getattr(response, "usage", None)))

    def stream_observer(self, call: Call) -> UsageEventObserver:
        return UsageEventObserver(call, extract.transcription_usage)


class UsageEventObserver:
    """A stream whose usage comes in the event that ends it (`*.completed`, `transcript.text.done`)."""

    __slots__ = ("call", "read_usage", "usage")

    def __init__(self, call: Call, read_usage: Callable[[Any], Usage | None]) -> None:
        self.call = call
        self.read_usage = read_usage
        self.usage: Usage | None = None

    def on_item(self, event: Any) -> bool:
        self.call.chunk_received()
        usage = getattr(event, "usage", None)
        if usage is not None:
            self.usage = self.read_usage(usage) or self.usage
        return True

    def on_end(self, completed: bool, error: BaseException | None) -> None:
        self.call.finish(self.usage, error=error, partial=not completed and error is None)


class OpenAIAdapter:
    """Maps an outgoing request to its route; everything else passes through unobserved."""

    def __init__(self) -> None:
        import openai
        from openai import _legacy_response, _response

        self.stream_types = (openai.Stream,)
        self.async_stream_types = (openai.AsyncStream,)
        self.raw_response_types = (
            _legacy_response.LegacyAPIResponse,
            _response.APIResponse,
            _response.AsyncAPIResponse,
        )
        providers = ProviderMap.from_environ(os.environ)

        def provider_of(client: Any) -> str:
            url = client.base_url
            return providers.provider_for(url.host or "", url.port, url.path)

        self._routes = {
            "/chat/completions": ChatCompletionsRoute(provider_of),
            "/responses": ResponsesRoute(provider_of),
            "/embeddings": EmbeddingsRoute(provider_of),
            "/images/generations": ImagesRoute(provider_of),
            "/images/edits": ImagesRoute(provider_of),
            "/audio/transcriptions": TranscriptionsRoute(provider_of),
        }

    def route_for(self, options: Any) -> Any:
        if options is None or options.method.lower() != "post":
            return None
        return self._routes.get(options.url)
