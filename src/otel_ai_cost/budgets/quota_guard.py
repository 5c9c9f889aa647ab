"""The guard a recorder asks before each call (`admit`) and tells what each call cost (`spent`).

Which limits cover a call: those of the recorder's environment whose scope the call is in. A call's team, user, job
and operation type are the ones its ledger record gets: its attribution (`ai_usage_context`, baggage) over the
resource's (`OTEL_RESOURCE_ATTRIBUTES`, `USER_ID`). A limit of one team covers the calls of that team; a limit of
each team (`"*"`) covers each team apart, and not the calls without one.

A blocked call is not a call: nothing was sent, so it has no ledger record and no `ai_cost.requests` point. Its
span ends at once, with `error.type` `BudgetExceeded`, status error and `ai_cost.quota.blocked` (the limit's name);
the `ai_cost.quota.blocked` counter counts it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Status, StatusCode

from otel_ai_cost.budgets.config import (
    EACH,
    PERIOD_JOB,
    SCOPE_ENVIRONMENT,
    SCOPE_JOB,
    SCOPE_OPERATION_TYPE,
    SCOPE_TEAM,
    SCOPE_USER,
    QuotaLimit,
)
from otel_ai_cost.budgets.quota import BudgetExceeded
from otel_ai_cost.budgets.quota_book import Figure, Key, QuotaBook
from otel_ai_cost.contract import ERROR_TYPE, Attribution, PricingStatus, Quota, Record, Resource
from otel_ai_cost.ledger.service.metrics import PERIOD_DAY, PERIOD_MONTH
from otel_ai_cost.telemetry.errors import report_internal_error

if TYPE_CHECKING:
    from otel_ai_cost.telemetry.recorder import Call

__all__ = ["LimitGuard"]

logger = logging.getLogger("otel_ai_cost")

# limit scope -> (the call's attribution key, the record field the resource gives)
_SCOPE_SOURCES: dict[str, tuple[str, str]] = {
    SCOPE_TEAM: (Attribution.TEAM, Record.TEAM),
    SCOPE_USER: (Attribution.USER_ID, Record.USER_ID),
    SCOPE_JOB: (Attribution.JOB_ID, Record.JOB_ID),
    SCOPE_OPERATION_TYPE: (Attribution.OPERATION_TYPE, Record.OPERATION_TYPE),
}
_NO_USAGE = PricingStatus.NO_USAGE.value
_BLOCKED_TYPE = BudgetExceeded.__name__
_PERIOD_WORDS = {PERIOD_DAY: "today (UTC)", PERIOD_MONTH: "this month (UTC)", PERIOD_JOB: "by the job in all"}


class _Clock:
    """UTC day and month keys of a time, computed once per day."""

    def __init__(self) -> None:
        self._day_number = -1
        self._keys = ("", "")
        self._lock = threading.Lock()

    def keys(self, epoch_s: float) -> tuple[str, str]:
        day_number = int(epoch_s // 86400)
        if day_number != self._day_number:
            moment = datetime.fromtimestamp(day_number * 86400, tz=timezone.utc)
            with self._lock:
                self._keys = (moment.date().isoformat(), moment.strftime("%Y-%m"))
                self._day_number = day_number
        return self._keys


class LimitGuard:
    """The limits of one recorder's environment; `book` holds their figures (shared by the process's recorders).
    `blocked` and `warned` are the recorder's counters (`add(1, attributes)`), or None."""

    def __init__(
        self,
        book: QuotaBook,
        limits: Sequence[QuotaLimit],
        *,
        environment: str,
        resource_fields: Mapping[str, Any],
        blocked: Any = None,
        warned: Any = None,
        source: str = "the budgets file",
    ) -> None:
        self.book = book
        self.source = source
        self.limits = tuple(limits)
        self.environment = environment
        self._resource = {field: str(resource_fields.get(field) or "") for _, field in _SCOPE_SOURCES.values()}
        self._blocked = blocked
        self._warned = warned
        self._clock = _Clock()
        self._attributes = {
            limit.name: {Resource.DEPLOYMENT_ENVIRONMENT_NAME: environment, Quota.LIMIT: limit.name}
            for limit in self.limits
        }
        self._unknown_logged: set[str] = set()

    # -- the hook -------------------------------------------------------------------------------------------------

    def admit(self, call: Call) -> None:
        """Raises `BudgetExceeded` (the call's span ended as blocked) when a `block` limit would be passed."""
        try:
            blocked = self._check(call)
        except Exception as exc:  # the guard's own failure never stops a call
            report_internal_error("quota.admit", exc)
            return
        if blocked is not None:
            raise blocked

    def spent(self, call: Call, amount: Decimal | None) -> None:
        """Adds a finished call's cost to its scopes (`amount` None: unknown, counted apart). Never raises."""
        try:
            start_ns = getattr(call.span, "start_time", None)
            scopes = self._scopes(call, start_ns / 1e9 if isinstance(start_ns, int) else time.time())
            if amount is not None:
                self.book.remember_cost(call.provider, call.request_model, amount)
            if not scopes:
                return
            if amount is None and _cost_known_zero(call):
                return  # failed before any usage: nothing was billed
            self.book.add([key for key, _ in scopes], amount)
            if amount is None:
                self._log_unknown(call, scopes)
        except Exception as exc:
            report_internal_error("quota.spent", exc)

    # -- inside ---------------------------------------------------------------------------------------------------

    def _check(self, call: Call) -> BudgetExceeded | None:
        scopes = self._scopes(call, time.time())
        if not scopes:
            return None
        expected = self.book.expected(call.provider, call.request_model)
        figures = self.book.figures(scopes, expected)
        over = [
            (key, limit, figure)
            for (key, limit), figure in zip(scopes, figures, strict=True)
            if figure.spent >= limit.amount or figure.spent + expected > limit.amount
        ]
        for key, limit, figure in over:
            if limit.blocks:
                return self._block(call, key, limit, figure, expected)
        for key, limit, figure in over:
            self._warn(call, key, limit, figure, expected)
        return None

    def _scopes(self, call: Call, epoch_s: float) -> list[tuple[Key, QuotaLimit]]:
        day, month = self._clock.keys(epoch_s)
        attribution = call.attribution
        out = []
        for limit in self.limits:
            value = ""
            if limit.scope != SCOPE_ENVIRONMENT:
                attribute, field = _SCOPE_SOURCES[limit.scope]
                given = attribution.get(attribute)
                value = self._resource[field] if given is None else str(given)
                if not value or (limit.scope_value != EACH and value != limit.scope_value):
                    continue
            period = day if limit.period == PERIOD_DAY else "" if limit.period == PERIOD_JOB else month
            out.append(((limit.name, period, value), limit))
        return out

    def _block(self, call: Call, key: Key, limit: QuotaLimit, figure: Figure, expected: Decimal) -> BudgetExceeded:
        scope = self._describe(limit, key)
        error = BudgetExceeded(
            _message(limit, scope, figure, expected, call, self.source),
            limit=limit.name,
            spent=figure.spent,
            amount=limit.amount,
            scope=scope,
            unknown_cost_calls=figure.unknown_cost_calls,
        )
        span = call.span
        try:  # the span ends here: nothing was sent, so no usage, no ledger record, no request point
            call.ended = True
            span.set_attributes({ERROR_TYPE: _BLOCKED_TYPE, Quota.BLOCKED: limit.name})
            span.set_status(Status(StatusCode.ERROR, _BLOCKED_TYPE))
            span.end()
        except Exception as exc:
            report_internal_error("quota.block", exc)
        if self._blocked is not None:
            self._blocked.add(1, self._attributes[limit.name])
        return error

    def _warn(self, call: Call, key: Key, limit: QuotaLimit, figure: Figure, expected: Decimal) -> None:
        call.span.set_attribute(Quota.WARNED, limit.name)
        if self._warned is not None:
            self._warned.add(1, self._attributes[limit.name])
        if self.book.warn_once(key):
            logger.warning(
                "otel-ai-cost: %s; the call is sent (mode warn: logged once per scope, every such call is counted "
                "in ai_cost.quota.warned)",
                _message(limit, self._describe(limit, key), figure, expected, call, self.source, sent=True),
            )

    def _describe(self, limit: QuotaLimit, key: Key) -> str:
        """What a limit's scope covers, as a person reads it: `cicd, job_id=job-42`, `production`."""
        return limit.environment if limit.scope == SCOPE_ENVIRONMENT else f"{limit.environment}, {limit.scope}={key[2]}"

    def _log_unknown(self, call: Call, scopes: Sequence[tuple[Key, QuotaLimit]]) -> None:
        for _, limit in scopes:
            if limit.name in self._unknown_logged:
                continue
            self._unknown_logged.add(limit.name)  # bounded: one entry per limit of the budgets file
            logger.warning(
                "otel-ai-cost: usage quota %r: a %s call to %s had a cost that is unknown (unpriced, or without "
                "usage); it adds nothing to the limit's spend, which is from now on a lower bound (logged once per "
                "limit; BudgetExceeded says how many such calls there were)",
                limit.name,
                call.provider,
                call.request_model or call.operation,
            )


def _message(
    limit: QuotaLimit, scope: str, figure: Figure, expected: Decimal, call: Call, source: str, *, sent: bool = False
) -> str:
    spent, amount = _usd(figure.spent), _usd(limit.amount)
    text = f"usage quota {limit.name!r} ({scope}): {spent} spent {_PERIOD_WORDS[limit.period]}"
    if figure.unknown_cost_calls:
        calls = "1 call of unknown cost is" if figure.unknown_cost_calls == 1 else "calls of unknown cost are"
        if figure.unknown_cost_calls > 1:
            calls = f"{figure.unknown_cost_calls} {calls}"
        text += f" (a lower bound: {calls} not in it)"
    if figure.spent >= limit.amount:
        text += f", at or over its {amount} limit"
    else:
        model = call.request_model or call.operation
        text += f" of its {amount} limit; the last {model} call cost {_usd(expected)}, so this one would pass it"
    if sent:
        return text
    return f"{text}. The call was not sent (mode block; {source}, line {limit.line})"


def _usd(amount: Decimal) -> str:
    """`$0.0015`: exact, without the trailing zeros of the sums (`0.00150000`) and never in exponent notation."""
    return f"${format(amount.normalize() if amount else Decimal(0), 'f')}"


def _cost_known_zero(call: Call) -> bool:
    """A call that failed before the provider reported any usage (status no_usage, an error): $0, known."""
    return call.pricing_status == _NO_USAGE and call.error_type is not None
