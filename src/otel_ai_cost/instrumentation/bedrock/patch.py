"""The wrapper around `botocore.client.BaseClient._make_api_call`, the one door every boto3 call passes.

It lets everything through untouched except the four priced Bedrock Runtime operations (a dict lookup on the
operation name first, then the client's service name). botocore's retries happen inside the wrapped call, so a
call counts once however often it was retried. What botocore returns is handed back as is: the same dict, the
same `EventStream` (observed, see `streams.py`), the same `StreamingBody` (observed only when the token-count
headers are missing or content capture is on).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context

from otel_ai_cost.budgets.quota import BudgetExceeded
from otel_ai_cost.contract import Cloud, GenAI, Operation
from otel_ai_cost.instrumentation.bedrock import response_extractors as extract
from otel_ai_cost.instrumentation.bedrock.streams import observe_body, observe_event_stream
from otel_ai_cost.pricing.usage import Usage
from otel_ai_cost.telemetry.errors import report_internal_error
from otel_ai_cost.telemetry.recorder import AttributeValue, Call, Recorder

PROVIDER = "aws.bedrock"
SERVICE_NAME = "bedrock-runtime"
# Not in contract.py yet: the OTel semconv resource/span attribute for the cloud region serving the call.


CONVERSE = "Converse"
CONVERSE_STREAM = "ConverseStream"
INVOKE_MODEL = "InvokeModel"
INVOKE_MODEL_STREAM = "InvokeModelWithResponseStream"
_STREAMING = {CONVERSE: False, CONVERSE_STREAM: True, INVOKE_MODEL: False, INVOKE_MODEL_STREAM: True}

_sites: dict[str, tuple[str | None, int | None]] = {}  # endpoint URL -> (server.address, server.port)
_MAX_SITES = 256


def _site(endpoint_url: Any) -> tuple[str | None, int | None]:
    if not isinstance(endpoint_url, str):
        return None, None
    site = _sites.get(endpoint_url)
    if site is None:
        parts = urlsplit(endpoint_url)
        site = (parts.hostname, parts.port)
        if len(_sites) >= _MAX_SITES:
            _sites.clear()
        _sites[endpoint_url] = site
    return site


class _Plan:
    """One call in flight: its span, and what finishing it needs."""

    __slots__ = ("call", "operation", "region")

    def __init__(self, call: Call, operation: str, region: str | None) -> None:
        self.call = call
        self.operation = operation
        self.region = region

    def fail(self, error: BaseException) -> None:
        code = None
        try:
            code = extract.error_code(error)
        except Exception as exc:
            report_internal_error("bedrock.error", exc)
        self.call.finish(None, error=error, error_type=code, region=self.region)


def _start(recorder: Recorder, client: Any, operation_name: str, params: Mapping[str, Any]) -> _Plan:
    meta = client.meta
    region = meta.region_name if isinstance(meta.region_name, str) else None
    address, port = _site(meta.endpoint_url)
    model = extract.model_name(params.get("modelId"))
    operation = Operation.CHAT.value
    attributes: dict[str, AttributeValue] = {Cloud.REGION: region} if region else {}
    body: Mapping[str, Any] | None = None
    if operation_name in (CONVERSE, CONVERSE_STREAM):
        config = params.get("inferenceConfig")
        max_tokens = config.get("maxTokens") if isinstance(config, Mapping) else None
        if isinstance(max_tokens, int):
            attributes[GenAI.REQUEST_MAX_TOKENS] = max_tokens
    elif extract.is_embedding_model(model):
        operation = Operation.EMBEDDINGS.value
    call = recorder.start(
        provider=PROVIDER,
        operation=operation,
        request_model=model,
        server_address=address,
        server_port=port,
        stream=_STREAMING[operation_name],
        request_attributes=attributes,
    )
    if call.captures_content:
        if operation_name in (CONVERSE, CONVERSE_STREAM):
            call.capture_input(params.get("messages"))
        else:
            body = extract.parse_json(params.get("body"))
            call.capture_input(extract.request_input(body) if body is not None else None)
    return _Plan(call, operation_name, region)


def _finish(plan: _Plan, result: Any) -> None:
    """Finish the call from botocore's parsed response, or hand the response's stream/body to an observer."""
    call, operation = plan.call, plan.operation
    if not isinstance(result, Mapping):
        call.finish(None, region=plan.region)
        return
    if operation == CONVERSE:
        if call.captures_content:
            call.capture_output(extract.converse_output(result.get("output")))
        stop = result.get("stopReason")
        call.finish(
            extract.converse_usage(result.get("usage")),
            finish_reasons=[stop] if isinstance(stop, str) and stop else None,
            service_tier=extract.service_tier(result.get("serviceTier")),
            region=plan.region,
        )
    elif operation == CONVERSE_STREAM:
        observe_event_stream(result["stream"], ConverseStreamObserver(plan))
    elif operation == INVOKE_MODEL_STREAM:
        observe_event_stream(result["body"], InvokeStreamObserver(plan, _tier_header(result)))
    else:
        _finish_invoke(plan, result)


def _headers(result: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = result.get("ResponseMetadata")
    headers = metadata.get("HTTPHeaders") if isinstance(metadata, Mapping) else None
    return headers if isinstance(headers, Mapping) else {}


def _tier_header(result: Mapping[str, Any]) -> str | None:
    return extract.service_tier(result.get("serviceTier") or _headers(result).get(extract.SERVICE_TIER_HEADER))


def _finish_invoke(plan: _Plan, result: Mapping[str, Any]) -> None:
    call = plan.call
    header_usage = extract.header_usage(_headers(result))
    tier = _tier_header(result)
    if header_usage is not None and not call.captures_content:
        call.finish(header_usage, service_tier=tier, region=plan.region)  # the body is left alone
        return

    def on_done(data: bytes | None) -> None:
        try:
            body = extract.parse_json(data) if data is not None else None
            usage = header_usage or (extract.body_usage(body) if body is not None else None)
            response_id, reasons = extract.body_facts(body) if body is not None else (None, None)
            if body is not None and call.captures_content:
                call.capture_output([{"role": "assistant", "content": extract.body_text(body)}])
            call.finish(
                usage,
                response_id=response_id,
                finish_reasons=reasons,
                service_tier=tier,
                region=plan.region,
                partial=data is None and header_usage is None,
            )
        except Exception as exc:
            report_internal_error("bedrock.invoke.body", exc)
            call.finish(header_usage, region=plan.region)

    body = result.get("body")
    if isinstance(body, (bytes, bytearray)):
        on_done(bytes(body))
    elif not observe_body(body, on_done):
        call.finish(header_usage, service_tier=tier, region=plan.region)


class ConverseStreamObserver:
    """ConverseStream events: `metadata` (last) carries the usage, `messageStop` the stop reason."""

    __slots__ = ("plan", "stop_reason", "texts", "tier", "usage")

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.usage: Usage | None = None
        self.stop_reason: str | None = None
        self.tier: str | None = None
        self.texts: list[str] | None = [] if plan.call.captures_content else None

    def on_event(self, event: Any) -> None:
        self.plan.call.chunk_received()
        if not isinstance(event, Mapping):
            return
        metadata = event.get("metadata")
        if metadata is not None:
            self.usage = extract.converse_usage(metadata.get("usage"))
            self.tier = extract.service_tier(metadata.get("serviceTier"))
            self.on_end(True, None)  # the last event: the call is complete once its usage is known
            return
        stop = event.get("messageStop")
        if stop is not None:
            reason = stop.get("stopReason")
            self.stop_reason = reason if isinstance(reason, str) else self.stop_reason
        elif self.texts is not None:
            delta = (event.get("contentBlockDelta") or {}).get("delta") or {}
            if isinstance(delta.get("text"), str):
                self.texts.append(delta["text"])

    def on_end(self, completed: bool, error: BaseException | None) -> None:
        call = self.plan.call
        if call.ended:
            return
        try:
            if self.texts is not None:
                call.capture_output([{"role": "assistant", "content": "".join(self.texts)}])
        except Exception as exc:
            report_internal_error("bedrock.stream.capture", exc)
        _end(self.plan, self.usage, completed, error, [self.stop_reason] if self.stop_reason else None, self.tier)


class InvokeStreamObserver:
    """InvokeModelWithResponseStream `chunk` events: model JSON (base64 on the wire, bytes here), the last one
    with `amazon-bedrock-invocationMetrics`."""

    __slots__ = ("plan", "state", "tier")

    def __init__(self, plan: _Plan, tier: str | None) -> None:
        self.plan = plan
        self.tier = tier
        self.state = extract.StreamState()
        if plan.call.captures_content:
            self.state.texts = []

    def on_event(self, event: Any) -> None:
        self.plan.call.chunk_received()
        chunk = event.get("chunk") if isinstance(event, Mapping) else None
        data = extract.parse_json(chunk.get("bytes")) if isinstance(chunk, Mapping) else None
        if data is not None and self.state.update(data):
            self.on_end(True, None)

    def on_end(self, completed: bool, error: BaseException | None) -> None:
        call = self.plan.call
        if call.ended:
            return
        state = self.state
        try:
            if state.texts is not None:
                call.capture_output([{"role": "assistant", "content": "".join(state.texts)}])
        except Exception as exc:
            report_internal_error("bedrock.stream.capture", exc)
        _end(self.plan, state.usage(), completed, error, state.finish_reasons or None, self.tier, state.response_id)


def _end(
    plan: _Plan,
    usage: Usage | None,
    completed: bool,
    error: BaseException | None,
    finish_reasons: list[str] | None,
    tier: str | None,
    response_id: str | None = None,
) -> None:
    error_type = None
    if error is not None:
        try:
            error_type = extract.error_code(error)
        except Exception as exc:
            report_internal_error("bedrock.error", exc)
    plan.call.finish(
        usage,
        response_id=response_id,
        finish_reasons=finish_reasons,
        service_tier=tier,
        region=plan.region,
        error=error,
        error_type=error_type,
        partial=not completed and error is None,
    )


def make_api_call_wrapper(recorder: Recorder) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        plan = None
        operation_name = args[0] if args else kwargs.get("operation_name")
        if operation_name in _STREAMING:  # cheap first: almost every boto3 call stops here
            try:
                if instance.meta.service_model.service_name == SERVICE_NAME:
                    params = args[1] if len(args) > 1 else kwargs.get("api_params")
                    plan = _start(recorder, instance, operation_name, params if isinstance(params, Mapping) else {})
            except BudgetExceeded:
                raise  # a quota blocked the call: nothing is sent
            except Exception as exc:
                report_internal_error("bedrock.start", exc)
                plan = None
        if plan is None:
            return wrapped(*args, **kwargs)
        token = otel_context.attach(plan.call.context)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            plan.fail(exc)
            raise
        finally:
            otel_context.detach(token)
        try:
            _finish(plan, result)
        except Exception as exc:
            report_internal_error("bedrock.result", exc)
            plan.call.finish(None, region=plan.region)
        return result

    return wrapper
