"""Internal failures: caught, logged once per component, and counted, so the host call never notices."""

from __future__ import annotations

import logging
import threading
from collections import Counter

logger = logging.getLogger("otel_ai_cost")

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def report_internal_error(component: str, exc: BaseException | None = None) -> None:
    """Record that `component` failed inside the instrumentation. Never raises."""
    try:
        with _lock:
            _counts[component] += 1
            first = _counts[component] == 1
        if first:
            logger.warning(
                "otel-ai-cost: internal error in %s; the instrumented call is unaffected "
                "(further errors here are counted in ai_cost.instrumentation.errors, not logged)",
                component,
                exc_info=exc,
            )
    except Exception:  # pragma: no cover - logging itself failed; nothing left to do safely
        pass


def internal_error_counts() -> dict[str, int]:
    """Errors so far, by component (what the `ai_cost.instrumentation.errors` counter reports)."""
    with _lock:
        return dict(_counts)


def reset_internal_errors() -> None:
    with _lock:
        _counts.clear()
