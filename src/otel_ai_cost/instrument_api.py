"""`instrument()` / `uninstrument()`: the one-call way in, for programs not started by `opentelemetry-instrument`.

Both ways in (this one, and the instrumentors loaded by `opentelemetry-instrument`) also wire the usage ledger:
see `attach_ledger`.
"""

from __future__ import annotations

import importlib
import logging
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from otel_ai_cost.instrumentation.anthropic import AnthropicCostInstrumentor
from otel_ai_cost.instrumentation.bedrock import BedrockCostInstrumentor
from otel_ai_cost.instrumentation.common.instrumentor import CostInstrumentor
from otel_ai_cost.instrumentation.google_genai import GoogleGenAICostInstrumentor
from otel_ai_cost.instrumentation.googlemaps import GoogleMapsCostInstrumentor
from otel_ai_cost.instrumentation.openai import OpenAICostInstrumentor

if TYPE_CHECKING:
    from otel_ai_cost.ledger.exporter import LedgerBatchSpanProcessor, LedgerSpanExporter
    from otel_ai_cost.ledger.store import LedgerStore

logger = logging.getLogger("otel_ai_cost")

_INSTRUMENTORS: tuple[type[CostInstrumentor], ...] = (
    OpenAICostInstrumentor,
    AnthropicCostInstrumentor,
    BedrockCostInstrumentor,
    GoogleGenAICostInstrumentor,
    GoogleMapsCostInstrumentor,
)


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    **kwargs: Any,
) -> list[str]:
    """Instrument every supported AI SDK that is installed; returns the SDKs instrumented.

    Providers default to the global ones (set them first, or pass them). Calling it twice is harmless.
    `track_request` (per-request APIs) records through the same providers from then on.

    Every call is also recorded in the usage ledger (`OTEL_AI_COST_LEDGER`; by default a SQLite file under
    `~/.local/share/otel-ai-cost/`; `none` turns it off): see `attach_ledger`. When no SDK tracer provider is
    set at all, one is created and set as the global provider, so `otel_ai_cost.instrument()` alone is enough.
    `otel_ai_cost.flush()` flushes the providers given here too.

    `TRACK_AI_USAGE=false` (the legacy tracker's switch) turns it into a no-op: nothing is patched, nothing is
    recorded, and it returns []; a value that is neither true nor false raises ValueError naming it.
    """
    if not tracking_enabled(strict=True):
        return []
    from otel_ai_cost.flushing import remember_providers

    remember_providers(tracer_provider, meter_provider)
    available = []
    for cls in _INSTRUMENTORS:
        try:
            importlib.import_module(cls.sdk_module)
        except ImportError:
            logger.debug("otel-ai-cost: %s is not installed; not instrumenting it", cls.sdk_module)
            continue
        available.append(cls)
    if available:
        tracer_provider = attach_ledger(tracer_provider, meter_provider=meter_provider)
    done = []
    for cls in available:
        instrumentor = cls()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, **kwargs)
        done.append(cls.sdk_module)
    from otel_ai_cost.instrumentation import per_request

    per_request.configure(
        tracer_provider=tracer_provider, meter_provider=meter_provider, price_catalog=kwargs.get("price_catalog")
    )
    return done


_said_off = False


def tracking_enabled(*, strict: bool = False) -> bool:
    """False when `TRACK_AI_USAGE` turns tracking off (`false`, `0`, `no`, `off`), said once per process at debug
    level. A value that is neither true nor false raises ValueError when `strict` (`instrument()`); otherwise (the
    instrumentors `opentelemetry-instrument` loads, which must not break start-up) it is logged as a warning and
    turns tracking off, as the legacy tracker treated every value but `true`."""
    global _said_off
    from otel_ai_cost.contract import Env
    from otel_ai_cost.ledger.jsonl_file_store import read_switch

    try:
        if read_switch(Env.TRACK_AI_USAGE, default=True):
            return True
    except ValueError as exc:
        if strict:
            raise
        if not _said_off:
            logger.warning("otel-ai-cost: %s; tracking is off (nothing instrumented)", exc)
        _said_off = True
        return False
    if not _said_off:
        logger.debug("otel-ai-cost: %s=false: tracking is off; no SDK is instrumented, no call recorded",
                     Env.TRACK_AI_USAGE)  # fmt: skip
    _said_off = True
    return False


def uninstrument() -> None:
    """Restore every SDK exactly as it was (and stop recording into the ledger)."""
    from otel_ai_cost.instrumentation import per_request

    for cls in _INSTRUMENTORS:
        instrumentor = cls()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    per_request.reset()


# -- the in-process ledger exporter ------------------------------------------------------------------------


@dataclass
class _Attached:
    exporter: LedgerSpanExporter
    processor: LedgerBatchSpanProcessor
    owners: set[str] = field(default_factory=set)


_attached: weakref.WeakKeyDictionary[Any, _Attached] = weakref.WeakKeyDictionary()  # SDK provider -> its ledger
_owned_by: dict[str, weakref.ref[Any]] = {}  # instrumentor -> the provider it attached to
_wiring = threading.Lock()


def attach_ledger(
    tracer_provider: TracerProvider | None = None,
    *,
    owner: str | None = None,
    store: LedgerStore | None = None,
    meter_provider: MeterProvider | None = None,
) -> TracerProvider | None:
    """Adds the ledger exporter to the effective tracer provider, once per provider; returns that provider.

    The effective provider is `tracer_provider`, else the global one. If it is an SDK `TracerProvider`, a
    `LedgerBatchSpanProcessor(LedgerSpanExporter(store))` is added to it, `store` defaulting to `open_store()`
    (the `OTEL_AI_COST_LEDGER` setting). If no provider is passed and no global one is set (the API's proxy), an
    SDK provider is created (resource: `Resource.create()` plus the `ai_cost` detector), given the ledger, and set
    as the global provider. A provider of another kind (a no-op, a vendor's) is left alone. The exporter's
    counters (written, duplicates, lost, rejected, buffered) are reported as observable instruments of
    `meter_provider` (default: the global one; names in `contract.py`, `otel_ai_cost.ledger.*`).

    Nothing happens when `OTEL_AI_COST_LEDGER=none` (unless a `store` is given, or `TRACK_TO_FILE=true`: then the
    calls go to the usage file alone, `otel_ai_cost.ledger.jsonl_file_store`). Idempotent: calling it again
    for the same provider adds nothing (and resumes a ledger paused by `detach_ledger`). `owner` names the
    instrumentor that needs the ledger; `detach_ledger(owner)` releases it. Never raises: a ledger that cannot be
    opened (a read-only home directory, a bad URL) is logged and skipped, and the calls are still traced.

    Called by `instrument()` and by every instrumentor's `_instrument()`, so `opentelemetry-instrument` gets the
    same wiring.
    """
    try:
        return _attach(tracer_provider, owner, store, meter_provider)
    except Exception:  # the ledger must never break the host program's start-up
        logger.warning("otel-ai-cost: the usage ledger could not be set up; calls are not recorded", exc_info=True)
        return tracer_provider


def ledger_queue(tracer_provider: TracerProvider | None = None) -> LedgerBatchSpanProcessor | None:
    """The ledger processor `attach_ledger` gave the effective provider (None: no ledger). A recorder that takes
    it hands it each call's record directly (`emit_record`); from then on the processor reads no span of ours."""
    effective: Any = tracer_provider or trace.get_tracer_provider()
    with _wiring:
        attached = _attached.get(effective)
    if attached is None:
        return None
    attached.processor.take_records()
    return attached.processor


def detach_ledger(owner: str) -> None:
    """`owner` no longer needs the ledger; when no owner is left, its exporter is flushed and becomes inert (the
    SDK cannot remove a span processor). Never raises."""
    try:
        with _wiring:
            ref = _owned_by.pop(owner, None)
            provider = ref() if ref else None
            attached = _attached.get(provider) if provider is not None else None
            if attached is None:
                return
            attached.owners.discard(owner)
            if attached.owners:
                return
        attached.processor.force_flush()  # calls made before uninstrument() are still recorded
        attached.exporter.pause()
    except Exception:
        logger.warning("otel-ai-cost: detaching the usage ledger failed", exc_info=True)


def ledger_attachments() -> list[tuple[Any, LedgerBatchSpanProcessor]]:
    """(SDK tracer provider, its ledger span processor) for every provider `attach_ledger` wired (what
    `otel_ai_cost.flush()` flushes first), paused ones (`detach_ledger`) included: their buffered records count."""
    with _wiring:
        return [(provider, attached.processor) for provider, attached in list(_attached.items())]


def _attach(
    tracer_provider: TracerProvider | None,
    owner: str | None,
    store: LedgerStore | None,
    meter_provider: MeterProvider | None,
) -> Any:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    from otel_ai_cost.ledger.jsonl_file_store import tracks_to_file
    from otel_ai_cost.ledger.open_store import is_disabled

    if store is None and is_disabled() and not tracks_to_file():
        return tracer_provider
    with _wiring:
        effective: Any = tracer_provider or trace.get_tracer_provider()
        created = False
        if not isinstance(effective, SdkTracerProvider):
            if tracer_provider is not None or not isinstance(effective, trace.ProxyTracerProvider):
                logger.debug("otel-ai-cost: %r is not an SDK tracer provider; no ledger", effective)
                return tracer_provider
            effective, created = _new_global_provider(), True
        attached = _attached.get(effective)
        if attached is None:
            attached = _add_ledger(effective, store)
            if attached is None:
                return effective if created else tracer_provider
            _attached[effective] = attached
        else:
            if store is not None and store is not attached.exporter.store:
                store.close()  # already wired: the provider keeps the ledger it has
            attached.exporter.resume()
        attached.exporter.observe(meter_provider)
        if owner is not None:
            attached.owners.add(owner)
            _owned_by[owner] = weakref.ref(effective)
        return effective if created else tracer_provider


def _new_global_provider() -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    from otel_ai_cost.attribution import AICostResourceDetector

    # Resource.create() (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, the configured detectors) wins over ours,
    # as it would if the `ai_cost` detector were configured.
    provider = SdkTracerProvider(resource=AICostResourceDetector().detect().merge(Resource.create()))
    trace.set_tracer_provider(provider)
    current = trace.get_tracer_provider()  # another thread may have won the race: use whatever is global now
    if current is provider:
        logger.info("otel-ai-cost: no tracer provider was set; created one so the usage ledger records every call")
    return current


def _add_ledger(provider: Any, store: LedgerStore | None) -> _Attached | None:
    from otel_ai_cost.ledger.exporter import LedgerBatchSpanProcessor, LedgerSpanExporter
    from otel_ai_cost.ledger.jsonl_file_store import open_ledger_store
    from otel_ai_cost.ledger.open_store import LEDGER_ENV, store_url

    if store is None:
        try:
            store = open_ledger_store()  # the ledger, and the usage file beside it with TRACK_TO_FILE=true
        except Exception as exc:
            logger.warning(
                "otel-ai-cost: the usage ledger is off: %s (set %s to a writable sqlite:///PATH, or none)",
                exc,
                LEDGER_ENV,
            )
            return None
    exporter = LedgerSpanExporter(store)
    processor = LedgerBatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    logger.debug("otel-ai-cost: recording calls into %s", store_url(store))
    return _Attached(exporter, processor)
