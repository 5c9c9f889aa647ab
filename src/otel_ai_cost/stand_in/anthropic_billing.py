"""Anthropic's cost report and usage report (Admin API), answered from the stand-in's billing book (to be built)."""

from __future__ import annotations

from collections.abc import Callable

from .billing_book import BillingBook, ServedUsage
from .scenario import Answer, RecordedRequest

BillingHandler = Callable[[RecordedRequest, BillingBook], Answer]
ROUTES: dict[str, BillingHandler] = {}


def served_usage(request: RecordedRequest, answer: Answer) -> ServedUsage | None:
    """The usage a successful model answer bills, or None."""
    return None
