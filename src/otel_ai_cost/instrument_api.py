"""`instrument()` / `uninstrument()`: the one-call way in, for programs not started by `opentelemetry-instrument`."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from otel_ai_cost.instrumentation.anthropic import AnthropicCostInstrumentor
from otel_ai_cost.instrumentation.common.instrumentor import SdkCostInstrumentor
from otel_ai_cost.instrumentation.openai import OpenAICostInstrumentor

logger = logging.getLogger("otel_ai_cost")

_INSTRUMENTORS: tuple[type[SdkCostInstrumentor], ...] = (OpenAICostInstrumentor, AnthropicCostInstrumentor)


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    **kwargs: Any,
) -> list[str]:
    """Instrument every supported AI SDK that is installed; returns the SDKs instrumented.

    Providers default to the global ones (set them first, or pass them). Calling it twice is harmless.
    """
    done = []
    for cls in _INSTRUMENTORS:
        try:
            importlib.import_module(cls.sdk_module)
        except ImportError:
            logger.debug("otel-ai-cost: %s is not installed; not instrumenting it", cls.sdk_module)
            continue
        instrumentor = cls()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, **kwargs)
        done.append(cls.sdk_module)
    return done


def uninstrument() -> None:
    """Restore every SDK exactly as it was."""
    for cls in _INSTRUMENTORS:
        instrumentor = cls()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
