"""What our two instrumentors share: patch an SDK's `request()` on its sync and async base clients."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from otel_ai_cost.instrumentation.common.request_patch import async_request_wrapper, sync_request_wrapper
from otel_ai_cost.telemetry.recorder import Recorder

logger = logging.getLogger("otel_ai_cost")


class SdkCostInstrumentor(BaseInstrumentor):
    """Base for one SDK. Subclasses name the SDK and build its adapter."""

    sdk_module: str  # e.g. "openai"
    requirement: str  # e.g. "openai >= 3.0"

    def instrumentation_dependencies(self) -> Collection[str]:
        return (self.requirement,)

    def _adapter(self) -> Any:
        raise NotImplementedError

    def _instrument(self, **kwargs: Any) -> None:
        base_client = importlib.import_module(f"{self.sdk_module}._base_client")
        # The usage ledger, wired here too so that `opentelemetry-instrument` (which loads this instrumentor by
        # entry point, without `instrument()`) gets it; idempotent. Lazy import: instrument_api imports this module.
        from otel_ai_cost.instrument_api import attach_ledger

        recorder = Recorder(
            tracer_provider=attach_ledger(kwargs.get("tracer_provider"), owner=self.sdk_module),
            meter_provider=kwargs.get("meter_provider"),
            catalog=kwargs.get("price_catalog"),
        )
        adapter = self._adapter()
        wrap_function_wrapper(base_client, "SyncAPIClient.request", sync_request_wrapper(recorder, adapter))
        wrap_function_wrapper(base_client, "AsyncAPIClient.request", async_request_wrapper(recorder, adapter))

    def _uninstrument(self, **kwargs: Any) -> None:
        from otel_ai_cost.instrument_api import detach_ledger

        base_client = importlib.import_module(f"{self.sdk_module}._base_client")
        unwrap(base_client.SyncAPIClient, "request")
        unwrap(base_client.AsyncAPIClient, "request")
        detach_ledger(self.sdk_module)
