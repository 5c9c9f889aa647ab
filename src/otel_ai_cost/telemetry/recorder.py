"""One GenAI span per logical call, priced and attributed, plus its metric point.

`Recorder` holds what every call needs (tracer, metrics queue, price catalog, static attributes); `Call` is one
call in flight. The instrumentation only extracts facts from the SDK's objects and hands them here, so the
semantics (what is charged, what is counted, what goes on the span) live in one place for every SDK.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context, create_key, set_value
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from otel_ai_cost import __version__
from otel_ai_cost.attribution import current_attributes, detect_resource_attributes, metric_label_allowlist
from otel_ai_cost.contract import (
    CURRENCY,
    ERROR_TYPE,
    ERROR_TYPE_OTHER,
    INSTRUMENTATION_SCOPE,
    SCHEMA_URL,
    ApiKey,
    Attribution,
    Cost,
    CostSource,
    Env,
    GenAI,
    Outcome,
    PricingReason,
    PricingStatus,
    Record,
    Resource,
    Server,
)
from otel_ai_cost.ledger.from_call import call_record, resource_fields
from otel_ai_cost.pricing.aliases import model_aliases
from otel_ai_cost.pricing.catalog import PriceCatalog, default_catalog
from otel_ai_cost.pricing.quote import Quote
from otel_ai_cost.pricing.usage import Usage
from otel_ai_cost.telemetry.errors import report_internal_error
from otel_ai_cost.telemetry.key_fingerprint import KeyFingerprints
from otel_ai_cost.telemetry.metrics import CallPoint, CostMetrics, Labels, metrics_for
from otel_ai_cost.telemetry.strict_attribution import require_context, unattributed_attribution

AttributeValue = str | bool | int | float | Sequence[str]

logger = logging.getLogger("otel_ai_cost")

# Set in the context an instrumented SDK call runs in (`Call.context`): "this call already has our span".
CALL_IN_FLIGHT = create_key("otel_ai_cost.call_in_flight")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"true", "1", "yes", "span_only", "span_and_event"}


class Recorder:
    """What the calls of one instrumentor share. Built once, at `instrument()`."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        catalog: PriceCatalog | None = None,
    ) -> None:
        self.tracer = trace.get_tracer(INSTRUMENTATION_SCOPE, __version__, tracer_provider, schema_url=SCHEMA_URL)
        self.meter_provider = meter_provider  # None: the global one
        self.metrics: CostMetrics = metrics_for(meter_provider)
        self._catalog = catalog
        self.capture_content = _truthy(os.environ.get(Env.CAPTURE_MESSAGE_CONTENT))
        self.label_names = metric_label_allowlist(os.environ)
        self.model_aliases = model_aliases(os.environ)
        detected = detect_resource_attributes(os.environ)
        self.environment = _resource_attribute(tracer_provider, Resource.DEPLOYMENT_ENVIRONMENT_NAME) or detected.get(
            Resource.DEPLOYMENT_ENVIRONMENT_NAME, "development"
        )
        # When the SDK resource lacks what our detector finds (the detector is not enabled), the attributes go on
        # our spans instead, so a CI run's spend is attributable either way.
        self.span_fallback_attributes: dict[str, AttributeValue] = {
            k: v for k, v in detected.items() if _resource_attribute(tracer_provider, k) is None
        }
        # The in-process ledger's queue, when `attach_ledger` gave this provider one: each call hands it a record
        # built from the call's typed values (`ledger/from_call.py`) instead of the ledger re-reading the span.
        self.ledger = _ledger_queue(tracer_provider)
        self.record_fields = resource_fields(_resource_attributes(tracer_provider), self.span_fallback_attributes)
        self.quota = _quota_guard(self)  # usage quotas (`enforce:` in the budgets file); None when there are none
        # Strict attribution (`OTEL_AI_COST_REQUIRE_CONTEXT`), decided once: a process-wide operation type (on the
        # resource) attributes every call already.
        self.require_context = require_context(self.environment, os.environ) and not self.record_fields.get(
            Record.OPERATION_TYPE
        )
        self.key_fingerprints = KeyFingerprints(os.environ)  # ai_cost.api_key.fingerprint, once per key

    def metric_labels(self, point: CallPoint) -> Labels:
        """The allow-listed labels of a finished call (computed when metrics are drained, not on the hot path)."""
        known = {
            GenAI.PROVIDER_NAME: point.provider,
            GenAI.REQUEST_MODEL: point.model,
            GenAI.OPERATION_NAME: point.operation,
            Resource.DEPLOYMENT_ENVIRONMENT_NAME: self.environment,
        }
        return tuple(
            (name, str(known[name] if name in known else point.attribution.get(name, ""))) for name in self.label_names
        )

    @property
    def catalog(self) -> PriceCatalog:
        if self._catalog is None:
            self._catalog = default_catalog()
        return self._catalog

    def start(
        self,
        *,
        provider: str,
        operation: str,
        request_model: str | None,
        server_address: str | None,
        server_port: int | None,
        stream: bool,
        request_attributes: Mapping[str, AttributeValue] | None = None,
        api_key_fingerprint: str | None = None,
    ) -> Call:
        """Starts a call's span. Raises `BudgetExceeded` (the call finished as blocked) when a quota blocks it:
        the one exception the instrumentation lets through, so that no request is sent."""
        call = Call(
            self,
            provider,
            operation,
            request_model,
            server_address,
            server_port,
            stream,
            request_attributes,
            api_key_fingerprint,
        )
        if self.quota is not None:
            self.quota.admit(call)
        return call


def _resource_attributes(tracer_provider: TracerProvider | None) -> Mapping[str, Any]:
    provider = tracer_provider or trace.get_tracer_provider()
    resource = getattr(provider, "resource", None)
    return getattr(resource, "attributes", None) or {}


def _resource_attribute(tracer_provider: TracerProvider | None, key: str) -> Any:
    return _resource_attributes(tracer_provider).get(key)


def _quota_guard(recorder: Recorder) -> Any:
    try:
        from otel_ai_cost.budgets.quota import guard_for

        return guard_for(recorder)
    except Exception as exc:  # a bad budgets file must not break the host's start-up: logged and counted
        report_internal_error("quota.setup", exc)
        return None


def _ledger_queue(tracer_provider: TracerProvider | None) -> Any:
    from otel_ai_cost.instrument_api import ledger_queue  # lazy: instrument_api imports the instrumentors

    return ledger_queue(tracer_provider)


class Call:
    """One logical API call (all its retries, and the reading of its stream)."""

    __slots__ = (
        "_attribution",
        "_recorder",
        "_start_perf",
        "_started_at",
        "api_key_fingerprint",
        "ended",
        "error_type",
        "first_chunk_at",
        "operation",
        "pricing_status",
        "provider",
        "request_model",
        "route_state",
        "span",
    )

    def __init__(
        self,
        recorder: Recorder,
        provider: str,
        operation: str,
        request_model: str | None,
        server_address: str | None,
        server_port: int | None,
        stream: bool,
        request_attributes: Mapping[str, AttributeValue] | None,
        api_key_fingerprint: str | None = None,
    ) -> None:
        self._recorder = recorder
        self.api_key_fingerprint = api_key_fingerprint
        self.provider = provider
        self.operation = operation
        self.request_model = request_model
        self.ended = False
        self.pricing_status: str | None = None  # set when the call has finished (a PricingStatus value)
        self.error_type: str | None = None  # set when the call has finished, if it failed
        self.route_state: object = None  # whatever the SDK route needs to remember between start and finish
        self.first_chunk_at: float | None = None
        self._started_at = time.time_ns()
        self._start_perf = time.perf_counter()
        attributes: dict[str, AttributeValue] = {
            GenAI.OPERATION_NAME: operation,
            GenAI.PROVIDER_NAME: provider,
            **recorder.span_fallback_attributes,
        }
        if request_model:
            attributes[GenAI.REQUEST_MODEL] = request_model
        if server_address:
            attributes[Server.ADDRESS] = server_address
            if server_port:
                attributes[Server.PORT] = server_port
        if stream:
            attributes[GenAI.REQUEST_STREAM] = True
        if request_attributes:
            attributes.update(request_attributes)
        if api_key_fingerprint:
            attributes[ApiKey.FINGERPRINT] = api_key_fingerprint
        attribution = self._attribution = current_attributes()
        if recorder.require_context and Attribution.OPERATION_TYPE not in attribution:
            attribution = self._unattributed(attribution)
        if attribution:
            attributes.update(attribution)
        name = f"{operation} {request_model}" if request_model else operation
        self.span: Span = recorder.tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=attributes, start_time=self._started_at
        )

    def _unattributed(self, attribution: Mapping[str, AttributeValue]) -> Mapping[str, AttributeValue]:
        """A call with no operation type in a strict environment: `(unattributed)`, its call site, counted. Never
        raises (the call goes on with its own attribution if this fails)."""
        recorder = self._recorder
        try:
            attribution = self._attribution = unattributed_attribution(attribution, recorder.environment)
            recorder.metrics.count_unattributed(recorder.environment, self.provider)
        except Exception as exc:
            report_internal_error("recorder.strict_attribution", exc)
        return attribution

    @property
    def attribution(self) -> Mapping[str, AttributeValue]:
        """The call's attribution (`current_attributes()` at its start)."""
        return self._attribution

    @property
    def recorder(self) -> Recorder:
        return self._recorder

    @property
    def context(self) -> Context:
        """The context in which the SDK call runs: spans it makes nest under ours, and `CALL_IN_FLIGHT` tells an
        SDK patch that this call is already recorded (the anthropic SDK's own span is then not made)."""
        return set_value(CALL_IN_FLIGHT, True, trace.set_span_in_context(self.span))

    def chunk_received(self) -> None:
        if self.first_chunk_at is None:
            self.first_chunk_at = time.perf_counter()

    def capture_input(self, messages: object) -> None:
        if self._recorder.capture_content and messages is not None:
            self.span.set_attribute(GenAI.INPUT_MESSAGES, _to_json(messages))

    @property
    def captures_content(self) -> bool:
        return self._recorder.capture_content

    def capture_output(self, output: object) -> None:
        if self._recorder.capture_content and output is not None:
            self.span.set_attribute(GenAI.OUTPUT_MESSAGES, _to_json(output))

    def finish(
        self,
        usage: Usage | None,
        *,
        response_model: str | None = None,
        response_id: str | None = None,
        finish_reasons: Sequence[str] | None = None,
        service_tier: str | None = None,
        provider_cost: Decimal | None = None,
        region: str | None = None,
        error: BaseException | None = None,
        error_type: str | None = None,
        partial: bool = False,
        extra_attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        """Price the call, complete and end its span, and queue its metric point. Idempotent; never raises."""
        if self.ended:
            return
        self.ended = True
        try:
            self._finish(
                usage,
                response_model,
                response_id,
                finish_reasons,
                service_tier,
                provider_cost,
                region,
                error,
                error_type,
                partial,
                extra_attributes,
            )
        except Exception as exc:
            report_internal_error("recorder.finish", exc)
            try:
                if self.span.is_recording():  # failed before the span ended: mark it, so the ledger still records it
                    status = PricingStatus.NO_USAGE if usage is None else PricingStatus.UNPRICED
                    self.span.set_attribute(Cost.PRICING_STATUS, status.value)
                    if usage is not None:
                        self.span.set_attribute(Cost.PRICING_REASON, PricingReason.PRICING_ERROR.value)
                self.span.end()
            except Exception:
                pass

    def _finish(
        self,
        usage: Usage | None,
        response_model: str | None,
        response_id: str | None,
        finish_reasons: Sequence[str] | None,
        service_tier: str | None,
        provider_cost: Decimal | None,
        region: str | None,
        error: BaseException | None,
        error_type: str | None,
        partial: bool,
        extra_attributes: Mapping[str, AttributeValue] | None,
    ) -> None:
        duration = time.perf_counter() - self._start_perf
        span = self.span
        attributes: dict[str, AttributeValue] = {}
        if response_model:
            attributes[GenAI.RESPONSE_MODEL] = response_model
        if response_id:
            attributes[GenAI.RESPONSE_ID] = response_id
        if finish_reasons:
            attributes[GenAI.RESPONSE_FINISH_REASONS] = list(finish_reasons)
        if self.first_chunk_at is not None:
            attributes[GenAI.RESPONSE_TIME_TO_FIRST_CHUNK] = self.first_chunk_at - self._start_perf
        if extra_attributes:
            attributes.update(extra_attributes)

        amount: Decimal | None = None
        computed: Decimal | None = None
        source = CostSource.LOCAL.value
        version = tier = ""
        if usage is None:
            status = PricingStatus.NO_USAGE.value
        elif usage.malformed is not None:
            # The provider billed this call but its usage is unreadable: cost unknown, never a priced $0. Unless it
            # said what the call cost, which is then the amount whatever its token counts.
            _warn_malformed_once(self.provider, usage.malformed)
            status = PricingStatus.UNPRICED.value
            attributes[Cost.PRICING_REASON] = PricingReason.MALFORMED_USAGE.value
            if provider_cost is not None:
                amount, status, source = provider_cost, PricingStatus.PRICED.value, CostSource.PROVIDER.value
                del attributes[Cost.PRICING_REASON]
                attributes[Cost.AMOUNT] = format(amount, "f")
                attributes[Cost.CURRENCY] = CURRENCY
                attributes[Cost.SOURCE] = CostSource.PROVIDER.value
        else:
            attributes[GenAI.USAGE_INPUT_TOKENS] = usage.input_tokens
            attributes[GenAI.USAGE_OUTPUT_TOKENS] = usage.output_tokens
            if usage.cache_read_input_tokens:
                attributes[GenAI.USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_input_tokens
            if usage.cache_creation_input_tokens:
                attributes[GenAI.USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_creation_input_tokens
                attributes[Cost.USAGE_CACHE_CREATION_5M_INPUT_TOKENS] = usage.cache_write_5m_input_tokens
                attributes[Cost.USAGE_CACHE_CREATION_1H_INPUT_TOKENS] = usage.cache_write_1h_input_tokens
            if usage.reasoning_output_tokens:
                attributes[GenAI.USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_output_tokens
            if usage.web_search_requests:
                attributes[Cost.USAGE_WEB_SEARCH_REQUESTS] = usage.web_search_requests
            if (
                usage.image_input_tokens
                or usage.audio_input_tokens
                or usage.image_output_tokens
                or usage.audio_output_tokens
            ):
                # Rare (image and audio models): no per-call tuple for the text calls that are most of the traffic.
                for name, count in (
                    (Cost.USAGE_IMAGE_INPUT_TOKENS, usage.image_input_tokens),
                    (Cost.USAGE_AUDIO_INPUT_TOKENS, usage.audio_input_tokens),
                    (Cost.USAGE_IMAGE_OUTPUT_TOKENS, usage.image_output_tokens),
                    (Cost.USAGE_AUDIO_OUTPUT_TOKENS, usage.audio_output_tokens),
                ):
                    if count:
                        attributes[name] = count
            if usage.input_audio_seconds:
                attributes[Cost.USAGE_AUDIO_INPUT_SECONDS] = float(usage.input_audio_seconds)
            quote, reason = self._quote(usage, response_model, service_tier, region)
            status = quote.status.value
            if reason is not None:
                attributes[Cost.PRICING_REASON] = reason
            attributes[Cost.PRICING_VERSION] = version = quote.version
            components = quote.components
            if "web_search" in components:
                attributes[Cost.FEE_WEB_SEARCH_AMOUNT] = format(components["web_search"], "f")
            if "request" in components:
                attributes[Cost.FEE_REQUEST_AMOUNT] = format(components["request"], "f")
            attributes[Cost.PRICING_TIER] = tier = quote.tier
            amount = quote.amount
            if provider_cost is not None:
                if amount is not None:
                    computed = amount
                    attributes[Cost.COMPUTED_AMOUNT] = format(amount, "f")
                amount, source = provider_cost, CostSource.PROVIDER.value
                status = PricingStatus.PRICED.value
                attributes.pop(Cost.PRICING_REASON, None)
            if amount is not None:
                attributes[Cost.AMOUNT] = format(amount, "f")  # never "1.5E-7"
                attributes[Cost.CURRENCY] = CURRENCY
                attributes[Cost.SOURCE] = source
        attributes[Cost.PRICING_STATUS] = status
        if partial:
            attributes[Cost.USAGE_PARTIAL] = True

        if error is not None or error_type is not None:
            error_type = error_type or _error_type(error)
            attributes[ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR, _error_message(error)))
            outcome = Outcome.ERROR.value
        else:
            outcome = Outcome.PARTIAL.value if partial else Outcome.SUCCESS.value
        span.set_attributes(attributes)
        end_ns = time.time_ns()
        span.end(end_time=end_ns)
        recorder = self._recorder
        self.pricing_status, self.error_type = status, error_type
        if recorder.quota is not None:
            recorder.quota.spent(self, amount)
        if recorder.ledger is not None:
            self._record(
                end_ns, usage, response_model, amount, computed, source, status, version, tier, error_type, partial
            )

        recorder.metrics.record(
            CallPoint(
                recorder.metric_labels,
                self.provider,
                self.request_model or "",
                self.operation,
                self._attribution,
                span.get_span_context(),
                duration,
                error_type,
                outcome,
                status,
                amount,
                usage if usage is None or usage.malformed is None else None,  # unknown counts are not counted
            )
        )

    def _record(
        self,
        end_ns: int,
        usage: Usage | None,
        response_model: str | None,
        amount: Decimal | None,
        computed: Decimal | None,
        source: str,
        status: str,
        version: str,
        tier: str,
        error_type: str | None,
        partial: bool,
    ) -> None:
        """Hands the call's ledger record, built from these typed values, to the ledger's queue. Never raises."""
        try:
            recorder = self._recorder
            context = self.span.get_span_context()
            recorder.ledger.emit_record(  # type: ignore[union-attr]
                call_record(
                    trace_id=context.trace_id,
                    span_id=context.span_id,
                    start_time_ns=self._started_at,
                    end_time_ns=end_ns,
                    resource=recorder.record_fields,
                    attribution=self._attribution,
                    provider=self.provider,
                    operation=self.operation,
                    request_model=self.request_model or "",
                    response_model=response_model or "",
                    usage=usage if usage is None or usage.malformed is None else None,
                    amount=amount,
                    computed_amount=computed,
                    cost_source=source,
                    pricing_status=status,
                    pricing_version=version,
                    pricing_tier=tier,
                    error_type=error_type or "",
                    partial=partial,
                    api_key_fingerprint=self.api_key_fingerprint or "",
                )
            )
        except Exception as exc:
            report_internal_error("recorder.ledger", exc)

    def _quote(
        self, usage: Usage, response_model: str | None, service_tier: str | None, region: str | None
    ) -> tuple[Quote, str | None]:
        """The call's price and, when unpriced, why. Never raises: a failure is logged once, counted, and the call
        stays `unpriced` (reason `pricing_error`), so it still reaches the ledger."""
        catalog = self._recorder.catalog
        try:
            at = datetime.fromtimestamp(self._started_at // 1_000_000_000, tz=timezone.utc)
            asked = self.request_model
            priced_as = self._recorder.model_aliases.get(asked, asked) if asked else None
            model = response_model or priced_as or ""
            # A dated response id may be newer than the catalog while the name the caller asked for is known: that
            # is tried next, so only the model the call is finally priced as is warned about.
            fallback = priced_as if priced_as and priced_as != model else None
            quote = catalog.quote(
                self.provider, model, usage, at=at, service_tier=service_tier, region=region, warn=fallback is None
            )
            if quote.status is PricingStatus.UNPRICED and fallback:
                quote = catalog.quote(self.provider, fallback, usage, at=at, service_tier=service_tier, region=region)
        except Exception as exc:
            report_internal_error("recorder.finish", exc)
            return Quote.unpriced(_catalog_version(catalog)), PricingReason.PRICING_ERROR.value
        if quote.status is not PricingStatus.UNPRICED:
            return quote, None
        return quote, (quote.reason or PricingReason.NO_PRICE).value


def _catalog_version(catalog: PriceCatalog) -> str:
    try:
        return str(catalog.version)
    except Exception:
        return ""


_MAX_WARNED = 1024  # (provider, field) pairs warned about: bounded, the values come from responses
_warned_malformed: set[tuple[str, str]] = set()


def _warn_malformed_once(provider: str, problem: str) -> None:
    key = (provider, problem.split("=", 1)[0].split(" ", 1)[0])  # the field, not its value
    if key in _warned_malformed or len(_warned_malformed) >= _MAX_WARNED:
        return
    _warned_malformed.add(key)  # a race can log twice, never more often: no lock on this path
    logger.warning(
        "otel-ai-cost: %s reported usage that is not a token count (%s): its token counts are left out and, "
        "unless the provider stated the cost, the call is unpriced (ai_cost.pricing.reason=malformed_usage), "
        "never $0",
        provider,
        problem,
    )


def _error_type(error: BaseException | None) -> str:
    if error is None:
        return ERROR_TYPE_OTHER
    return type(error).__qualname__


def _error_message(error: BaseException | None) -> str | None:
    if error is None:
        return None
    # Status descriptions reach the backend: keep them short, and never echo a request (it may hold a key).
    return type(error).__name__


def _to_json(value: object) -> str:
    try:
        return json.dumps(value, default=lambda o: getattr(o, "model_dump", lambda: str(o))())
    except Exception:
        return str(value)
