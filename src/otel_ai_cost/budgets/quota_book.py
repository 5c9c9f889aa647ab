"""The spend so far of every limit scope, as this process knows it: the ledger's figure, read briefly cached, plus
this process's own calls since. One book per budgets file and ledger, shared by every recorder of the process (the
openai calls' spend counts against the limit the anthropic calls are checked with at once).

**The figure.** For each scope (a limit, its period, and the team, user or job it covers) the book keeps the
ledger's figure at its last read and the spend of this process's calls since then. Before a read, this process's
finished calls are written to the ledger (the SDK's flush of the ledger's queue), so the ledger's figure includes
them and nothing is counted twice. Where the ledger is not fed by this process (a collector writes it) the figure
is never lower than the first read plus every local call since, so a process never forgets its own spend.

**When the ledger is read.** A scope's figure is read again when it is older than the limit's `refresh_seconds`,
and at every call once the spend is within the margin of the limit: twice the larger of the largest call seen in
the scope and what the next call is expected to cost, plus twice what the other processes added between the last
two reads. A scope already at or over its limit is not read more often than `refresh_seconds` (a retry loop
against a blocked limit must not hammer the ledger). A ledger that cannot be read is logged once and asked again
after the refresh interval (at least a second); meanwhile the last figure and the local spend stand.

**The expected cost of a call** is what the previous call to the same provider and model cost in this process (0
before any): a limit stops the call that would likely pass it, not only the one after.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_ai_cost.budgets.config import QuotaLimit
from otel_ai_cost.budgets.quota_spend import LedgerReads, Spend
from otel_ai_cost.ledger.store import EXACT_SUMS, LedgerStore
from otel_ai_cost.telemetry.errors import report_internal_error

__all__ = ["Figure", "Key", "QuotaBook"]

logger = logging.getLogger("otel_ai_cost")

Key = tuple[str, str, str]  # (limit name, period key "2026-05-04" / "2026-05" / "" for a job, scope value)
_ZERO = Decimal(0)
MAX_SCOPES = 4096  # scopes kept (each job, each user...): the least recently used are forgotten, then read again
MAX_MODELS = 1024  # (provider, model) pairs whose last cost is remembered
MIN_RETRY_S = 1.0  # after a failed read, the ledger is not asked again sooner
FLUSH_TIMEOUT_MS = 5000


@dataclass(frozen=True, slots=True)
class Figure:
    spent: Decimal  # USD so far: a lower bound when unknown_cost_calls > 0
    unknown_cost_calls: int


class _Scope:
    """One scope's figures. `local` counts this process's spend since the scope was first seen; the ledger
    figures come with the value `local` had when they were read."""

    __slots__ = ("first", "first_local", "largest", "ledger", "ledger_unknown", "local", "local_at_read",
                 "local_unknown", "others", "read_at", "unknown_at_read", "warned")  # fmt: skip

    def __init__(self) -> None:
        self.read_at: float | None = None  # monotonic time of the last read; None: never read
        self.ledger = _ZERO  # the ledger's figure at the last read
        self.ledger_unknown = 0
        self.local = _ZERO
        self.local_unknown = 0
        self.local_at_read = _ZERO
        self.unknown_at_read = 0
        self.first: Decimal | None = None  # the first read's figure, and `local` then
        self.first_local = _ZERO
        self.largest = _ZERO  # the largest call seen in this scope
        self.others = _ZERO  # what other processes added between the last two reads
        self.warned = False  # warn mode: the first call over the limit was logged

    def figure(self) -> Figure:
        since_read = self.local - self.local_at_read
        spent = EXACT_SUMS.add(self.ledger, since_read)
        if self.first is not None:  # never less than the first read and every local call since
            spent = max(spent, EXACT_SUMS.add(self.first, self.local - self.first_local))
        unknown = max(self.ledger_unknown + self.local_unknown - self.unknown_at_read, self.local_unknown)
        return Figure(spent, unknown)


class QuotaBook:
    """The shared figures of one budgets file's limits. `open_store` opens the ledger (None: no ledger, limits hold
    per process); `clock` is monotonic seconds (a test's own clock)."""

    def __init__(
        self,
        open_store: Callable[[], LedgerStore] | None,
        *,
        where: str = "the ledger",
        clock: Callable[[], float] = time.monotonic,
        max_scopes: int = MAX_SCOPES,
    ) -> None:
        self._open_store = open_store
        self._where = where
        self._clock = clock
        self._max_scopes = max_scopes
        self._lock = threading.Lock()  # the figures: held briefly, never during a read
        self._io = threading.Lock()  # one read round at a time
        self._scopes: OrderedDict[Key, _Scope] = OrderedDict()
        self._costs: dict[tuple[str, str], Decimal] = {}
        self._ledgers: weakref.WeakSet[Any] = weakref.WeakSet()  # this process's ledger queues, flushed before reads
        self._store: LedgerStore | None = None
        self._retry_at = float("-inf")
        self._failures_logged = 0
        self.reads = 0  # read rounds made (what a test counts to see the cache at work)

    # -- what the guard asks ------------------------------------------------------------------------------------

    def attach_ledger(self, processor: Any) -> None:
        """A ledger queue this process's calls go through: flushed before each read, so the figure has them."""
        self._ledgers.add(processor)

    def expected(self, provider: str, model: str | None) -> Decimal:
        """What the next call to this model is expected to cost: the previous one's cost (0 before any)."""
        return self._costs.get((provider, model or ""), _ZERO)

    def figures(self, scopes: Sequence[tuple[Key, QuotaLimit]], expected: Decimal) -> list[Figure]:
        """The spend so far of each scope, reading the ledger first for those whose figure is stale or close to
        their limit (see the module documentation)."""
        now = self._clock()
        with self._lock:
            states = [self._scope(key) for key, _ in scopes]
            due = [
                (key, limit, state)
                for (key, limit), state in zip(scopes, states, strict=True)
                if self._due(state, limit, now, expected)
            ]
        if due and self._open_store is not None and now >= self._retry_at:
            self._read(due)
        with self._lock:
            return [state.figure() for state in states]

    def warn_once(self, key: Key) -> bool:
        """True the first time a scope goes over its `warn` limit (while the book remembers the scope)."""
        with self._lock:
            state = self._scope(key)
            first, state.warned = not state.warned, True
            return first

    def add(self, keys: Sequence[Key], amount: Decimal | None) -> None:
        """A local call finished in these scopes: `amount` USD, or None for a cost that is unknown."""
        with self._lock:
            for key in keys:
                state = self._scope(key)
                if amount is None:
                    state.local_unknown += 1
                    continue
                state.local = EXACT_SUMS.add(state.local, amount)
                if amount > state.largest:
                    state.largest = amount

    def remember_cost(self, provider: str, model: str | None, amount: Decimal) -> None:
        if len(self._costs) >= MAX_MODELS:
            self._costs.clear()
        self._costs[(provider, model or "")] = amount

    # -- inside ---------------------------------------------------------------------------------------------------

    def _scope(self, key: Key) -> _Scope:
        state = self._scopes.get(key)
        if state is None:
            state = self._scopes[key] = _Scope()
            if len(self._scopes) > self._max_scopes:
                self._scopes.popitem(last=False)
        else:
            self._scopes.move_to_end(key)
        return state

    @staticmethod
    def _due(state: _Scope, limit: QuotaLimit, now: float, expected: Decimal) -> bool:
        if state.read_at is None or now - state.read_at >= float(limit.refresh_seconds):
            return True
        figure = state.figure()
        if figure.spent >= limit.amount or figure.spent + expected > limit.amount:
            return False  # over it already: the figure only grows within a period, no need to ask sooner
        margin = 2 * (max(state.largest, expected) + state.others)
        return figure.spent + margin >= limit.amount

    def _read(self, due: list[tuple[Key, QuotaLimit, _Scope]]) -> None:
        with self._io:
            store = self._store_or_none()
            if store is None:
                return
            self._flush()
            with self._lock:  # what `local` held once this process's calls were in the ledger
                marks = [(state.local, state.local_unknown) for _, _, state in due]
            reads = LedgerReads(store)
            results: list[Spend | None] = []
            for key, limit, _ in due:
                try:
                    results.append(reads.spend(limit, key[1], key[2]))
                except Exception as exc:
                    self._failed(exc)
                    results.append(None)
            self.reads += 1
            now = self._clock()
            with self._lock:
                for (_, _, state), (local, unknown), spend in zip(due, marks, results, strict=True):
                    if spend is not None:
                        self._update(state, spend, local, unknown, now)

    @staticmethod
    def _update(state: _Scope, spend: Spend, local: Decimal, unknown: int, now: float) -> None:
        if state.read_at is not None:  # what the others added: the growth this process does not explain
            mine = local - state.local_at_read
            state.others = max(_ZERO, spend.amount - state.ledger - mine)
        state.read_at = now
        state.ledger = spend.amount
        state.ledger_unknown = spend.unknown_cost_calls or 0
        state.local_at_read = local
        state.unknown_at_read = unknown
        if state.first is None:
            state.first, state.first_local = spend.amount, local

    def _store_or_none(self) -> LedgerStore | None:
        if self._store is None and self._open_store is not None:
            try:
                self._store = self._open_store()
            except Exception as exc:
                self._failed(exc)
        return self._store

    def _flush(self) -> None:
        """Writes this process's finished calls to the ledger: the SDK's flush of each ledger queue only (the
        ledger processor's own `force_flush` would also retry records a failing store holds back, now, in the
        caller's thread, past the store's cooldown)."""
        for processor in list(self._ledgers):
            try:
                BatchSpanProcessor.force_flush(processor, FLUSH_TIMEOUT_MS)
            except Exception as exc:
                report_internal_error("quota.flush", exc)

    def _failed(self, exc: BaseException) -> None:
        self._retry_at = self._clock() + MIN_RETRY_S
        self._failures_logged += 1
        if self._failures_logged == 1:
            logger.warning(
                "otel-ai-cost: usage quotas cannot read %s (%s: %s); until it answers, each limit counts its last "
                "figure and this process's own calls (further failures are not logged)",
                self._where,
                type(exc).__name__,
                exc,
            )
