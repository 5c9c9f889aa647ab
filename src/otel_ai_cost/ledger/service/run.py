"""Running the service in the foreground until SIGTERM or SIGINT, then shutting down gracefully (exit status 0)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from otel_ai_cost.ledger.service.app import LedgerService


def run_until_signalled(service: LedgerService, on_ready: Callable[[LedgerService], None] | None = None) -> int:
    """Starts the service, blocks until SIGTERM/SIGINT, drains in-flight requests, closes the store. Returns the
    exit status: 0 after a clean drain, 1 when requests were still in flight at the drain timeout.

    Must run in the main thread (signal handlers). The accept loop runs in its own thread, so the signal handler
    only sets an event: calling `shutdown()` from the handler would wait for the loop it interrupted.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        service.start()
        if on_ready is not None:
            on_ready(service)
        while not stop.wait(0.5):  # a timed wait, so signals are handled promptly on every platform
            pass
        return 0 if service.shutdown() else 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
