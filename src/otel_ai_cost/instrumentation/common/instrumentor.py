"""What every cost instrumentor shares: a `Recorder` wired to the usage ledger, and the patching of HTTP SDKs.

`CostInstrumentor` is the base of every SDK's instrumentor (openai, anthropic, botocore, google-genai,
googlemaps): it builds the `Recorder` the SDK's wrappers hand their facts to. `SdkCostInstrumentor` adds the one
patch the Stainless-generated SDKs (`openai`, `anthropic`) need: their `request()` on the sync and async base
clients.
"""

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


class CostInstrumentor(BaseInstrumentor):
    """Base for one SDK. Subclasses name the SDK's module and requirement and patch it in `_patch`."""

    sdk_module: str  # the module whose presence means the SDK is installed, e.g. "openai", "google.genai"
    requirement: str  # e.g. "openai >= 3.0"

    def instrumentation_dependencies(self) -> Collection[str]:
        return (self.requirement,)

    def _instrument(self, **kwargs: Any) -> None:
        # The usage ledger, wired here too so that `opentelemetry-instrument` (which loads this instrumentor by
        # entry point, without `instrument()`) gets it; idempotent. Lazy import: instrument_api imports this module.
        from otel_ai_cost.instrument_api import attach_ledger, tracking_enabled

        if not tracking_enabled():  # TRACK_AI_USAGE=false: nothing patched, no ledger (said once, at debug level)
            return
        recorder = Recorder(
            tracer_provider=attach_ledger(kwargs.get("tracer_provider"), owner=self.sdk_module),
            meter_provider=kwargs.get("meter_provider"),
            catalog=kwargs.get("price_catalog"),
        )
        self._patch(recorder)

    def _uninstrument(self, **kwargs: Any) -> None:
        from otel_ai_cost.instrument_api import detach_ledger

        self._unpatch()
        detach_ledger(self.sdk_module)

    def _patch(self, recorder: Recorder) -> None:
        raise NotImplementedError

    def _unpatch(self) -> None:
        raise NotImplementedError


class SdkCostInstrumentor(CostInstrumentor):
    """For the Stainless SDKs: one wrapper on `request()` sees every call; the adapter picks the routes."""

    def _adapter(self) -> Any:
        raise NotImplementedError

    def _patch(self, recorder: Recorder) -> None:
        base_client = importlib.import_module(f"{self.sdk_module}._base_client")
        adapter = self._adapter()
        wrap_function_wrapper(base_client, "SyncAPIClient.request", sync_request_wrapper(recorder, adapter))
        wrap_function_wrapper(base_client, "AsyncAPIClient.request", async_request_wrapper(recorder, adapter))

    def _unpatch(self) -> None:
        base_client = importlib.import_module(f"{self.sdk_module}._base_client")
        unwrap(base_client.SyncAPIClient, "request")
        unwrap(base_client.AsyncAPIClient, "request")
