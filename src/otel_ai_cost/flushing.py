"""`otel_ai_cost.flush()`: every call's ledger record, span and metrics out now, before the process freezes or ends.

OpenTelemetry batches: spans wait in a `BatchSpanProcessor` queue (up to `OTEL_BSP_SCHEDULE_DELAY`, 5 s), the
ledger's records in its own batch processor, metrics in the meter provider until the next export
(`OTEL_METRIC_EXPORT_INTERVAL`, 60 s). A process that ends normally loses nothing: the SDK's providers shut down
at interpreter exit (`atexit`) and export what is queued. A process that is frozen or killed loses the queues:

- an AWS Lambda execution environment, frozen after each invocation and ended without notice (use
  `otel_ai_cost.aws_lambda.traced`, which calls `flush()` before the handler returns);
- a process that leaves through `os._exit()` (a `multiprocessing` worker, a forked child) or is killed
  (SIGKILL, an out-of-memory kill, a job runner's hard timeout).

There, call `flush()` before the end::

    import otel_ai_cost

    otel_ai_cost.flush(timeout_s=5)   # True: everything was handed over in time

It uses the OTel SDK's own `force_flush`, in this order (the money first):

1. the in-process ledger's span processors (`attach_ledger`): their queued records, and any the exporter kept
   for a retry after a store failure, are written to the store;
2. the tracer providers: the one `instrument()` was given, every provider the ledger is attached to, and the
   global one (yours, `opentelemetry-instrument`'s, the OTel Lambda layer's, or the one `instrument()` created),
   each once: their span processors export what they hold;
3. the meter providers: the one `instrument()` was given and the global one; a collection drains the cost
   metrics and exports them (and the ledger's own counters, after its writes above).

A provider without `force_flush` (the API's no-op or proxy providers: nothing was configured) is skipped.

`timeout_s` bounds the whole flush: the steps run in a helper thread, and `flush()` returns `False` when they
have not finished in time (a ledger store or collector that hangs cannot hold the caller past it; the flush
goes on in that thread, and a frozen Lambda resumes it at the next invocation). It returns `True` when every
step reported success in time: the ledger's records are in the store (none is left buffered for a retry), and
the span and metric queues were handed to their exporters. The SDK's span processors report a drained queue
even when their exporter's request failed (the exporter logs that itself), so `True` proves delivery for the
ledger, not for a collector.

`flush()` never raises into the caller: an error inside a provider is caught, logged once per step and counted
in `ai_cost.instrumentation.errors` (as the rest of the instrumentation does), and makes the result `False`.
A step that does not flush everything (out of time, or a ledger store that refused the write: its records stay
buffered for the next flush) is logged once as a warning, and at debug level after that. A
`timeout_s` that is not a positive number of seconds is a programming error: `ValueError`, at once.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry import metrics, trace

__all__ = ["DEFAULT_TIMEOUT_S", "flush", "remember_providers", "remembered_tracer_providers"]

logger = logging.getLogger("otel_ai_cost")

DEFAULT_TIMEOUT_S = 10.0  # the SDK's own default for a meter provider's force_flush

_remembered_tracer_providers: weakref.WeakSet[Any] = weakref.WeakSet()
_remembered_meter_providers: weakref.WeakSet[Any] = weakref.WeakSet()
_remember_lock = threading.Lock()
_warned: set[str] = set()  # steps whose first failure to flush was logged as a warning


def remember_providers(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Flush these providers too (called by `instrument()` with the providers it was given; the global ones are
    always flushed). Weakly held: a provider the application drops is forgotten."""
    with _remember_lock:
        for provider, remembered in (
            (tracer_provider, _remembered_tracer_providers),
            (meter_provider, _remembered_meter_providers),
        ):
            if provider is not None:
                try:
                    remembered.add(provider)
                except TypeError:  # a provider that cannot be weakly referenced: the global one still is flushed
                    logger.debug("otel-ai-cost: %r cannot be remembered for flush()", provider)


def remembered_tracer_providers() -> list[Any]:
    """The tracer providers `instrument()` was given (still alive)."""
    with _remember_lock:
        return list(_remembered_tracer_providers)


def flush(timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """Export every queued ledger record, span and metric now; `True` when all of it was handed over within
    `timeout_s` seconds (see the module documentation for what is flushed, in which order, and what `True`
    proves). Never raises, except `ValueError` for a `timeout_s` that is not a positive number."""
    timeout = _checked_timeout(timeout_s)
    deadline = time.monotonic() + timeout
    outcome: list[bool] = []
    worker = threading.Thread(target=lambda: outcome.append(_run_steps(deadline)), name="otel-ai-cost-flush")
    worker.daemon = True  # a flush stuck on a hung endpoint must never keep the process alive
    try:
        worker.start()
    except RuntimeError:  # no new threads (interpreter shutdown): flush inline, bounded by the exporters' timeouts
        return _run_steps(deadline)
    worker.join(max(0.0, deadline - time.monotonic()))
    if outcome:
        return outcome[0]
    _not_flushed("flush", f"did not finish within {timeout:.3g} s (it goes on in the background)")
    return False


def _checked_timeout(timeout_s: object) -> float:
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)):
        raise ValueError(f"otel_ai_cost.flush: timeout_s must be a number of seconds, not {timeout_s!r}")
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError(f"otel_ai_cost.flush: timeout_s must be a positive, finite number of seconds, not {timeout_s}")
    return float(timeout_s)


def _run_steps(deadline: float) -> bool:
    """Runs every flush step in order while time is left; True when each returned True."""
    all_flushed = True
    for step, force_flush in _steps():
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            _not_flushed(step, "had no time left")
            return False
        if not _flush_one(step, force_flush, remaining_s):
            all_flushed = False
    return all_flushed


def _flush_one(step: str, force_flush: Callable[[int], object], remaining_s: float) -> bool:
    try:
        result = force_flush(max(1, int(remaining_s * 1000)))
    except Exception as exc:  # the caller (a handler's `finally`) must never see a flush error
        from otel_ai_cost.telemetry.errors import report_internal_error

        report_internal_error(f"flush.{step}", exc)
        return False
    if result is False:  # the SDK's providers answer a bool; some return None for "done"
        _not_flushed(step, f"did not flush everything within {remaining_s:.3g} s")
        return False
    return True


def _steps() -> list[tuple[str, Callable[[int], object]]]:
    """(step name, force_flush) for the ledger processors, then the tracer providers, then the meter providers."""
    from otel_ai_cost.instrument_api import ledger_attachments

    attachments = ledger_attachments()
    steps: list[tuple[str, Callable[[int], object]]] = [("ledger", p.force_flush) for _, p in attachments]
    with _remember_lock:
        tracer_providers = [*_remembered_tracer_providers, *(provider for provider, _ in attachments)]
        meter_providers = list(_remembered_meter_providers)
    tracer_providers.append(trace.get_tracer_provider())
    meter_providers.append(metrics.get_meter_provider())
    steps += [("tracer_provider", flush_) for flush_ in _force_flushes(tracer_providers)]
    steps += [("meter_provider", flush_) for flush_ in _force_flushes(meter_providers)]
    return steps


def _force_flushes(providers: list[Any]) -> list[Callable[[int], object]]:
    """Each distinct provider's `force_flush`, for those that have one."""
    seen: set[int] = set()
    found = []
    for provider in providers:
        force_flush = getattr(provider, "force_flush", None)
        if id(provider) in seen or not callable(force_flush):
            continue
        seen.add(id(provider))
        found.append(force_flush)
    return found


def _not_flushed(step: str, why: str) -> None:
    """A step (or the whole flush) did not flush everything: a warning the first time, debug after that."""
    level = logging.DEBUG if step in _warned else logging.WARNING
    _warned.add(step)
    logger.log(
        level,
        "otel-ai-cost: flush: %s %s; what it holds is lost if the process is frozen or ends now (the ledger keeps "
        "records its store refused for a retry; logged once, later ones at debug level)",
        step,
        why,
    )
