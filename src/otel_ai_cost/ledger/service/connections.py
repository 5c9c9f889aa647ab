"""The ledger service's connection limits: who gets a connection, how long each phase of a request may take, and how
many body bytes may be buffered at once.

`ConnectionTable` admits a new connection only within the caps (`max_connections` in all, `max_connections_per_client`
per client address). At a cap, the connection that has waited longest for its next request (an idle keep-alive
connection, or one that never sent a byte) is closed to make room, so idle sockets never lock anyone out. When
every connection is busy, a few reserved slots (`health_slots`) admit a connection that may only ask `/healthz`;
beyond those, the new connection is answered 503 at once. `sweep()`, run by the accept loop, closes connections past
their phase's deadline: a request head not complete `header_timeout_s` after its first byte (slowloris) or after the
connection opened, an idle keep-alive connection after `idle_timeout_s`, a body still arriving `body_timeout_s` (plus
a grace second: the handler answers 408 itself first) after its head.

`ByteBudget` bounds the body bytes buffered by all requests together: a request reserves each chunk it receives and
gives everything back when it ends; a request that finds the budget spent is answered 503 (retried by the sender).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import logging
import socket
import threading
import time
from dataclasses import dataclass, field

logger = logging.getLogger("otel_ai_cost.ledger.service")

_BODY_GRACE_S = 1.0  # the handler answers 408 at the body deadline; the sweep closes the socket a little later


class Phase(enum.Enum):
    WAITING = "waiting"  # for the first byte of the next request: may be evicted
    HEAD = "head"  # the request head is arriving
    BODY = "body"  # the body is arriving
    BUSY = "busy"  # the request is being processed or answered


class Admission(enum.Enum):
    FULL = "full"  # any request
    HEALTH_ONLY = "health-only"  # a reserved slot: `/healthz` only, then closed
    REFUSED = "refused"


@dataclass(eq=False)
class Connection:
    sock: socket.socket
    client: str
    admission: Admission
    phase: Phase = Phase.WAITING
    since: float = field(default_factory=time.monotonic)  # start of the current phase
    deadline: float | None = None
    closed_by_server: bool = False  # evicted or past its deadline: the handler must not act on what it reads


@dataclass(frozen=True)
class Limits:
    max_connections: int
    max_connections_per_client: int
    health_slots: int
    header_timeout_s: float
    body_timeout_s: float
    idle_timeout_s: float


class ConnectionTable:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._open: dict[socket.socket, Connection] = {}
        self._last_sweep = 0.0
        # Counted under the lock; exposed on /metrics (ai_cost_ledger_connections_*_total, see LedgerService.start).
        self.evicted = 0  # idle connections closed at a cap to make room
        self.timed_out = 0  # closed past their phase's deadline
        self.refused = 0  # answered 503 at once: no slot left, reserved ones included

    def admit(self, sock: socket.socket, client: str) -> Connection:
        """A table entry for a new connection; its `admission` says what it may do."""
        limits = self.limits
        with self._lock:
            full = [c for c in self._open.values() if c.admission is Admission.FULL]
            mine = [c for c in full if c.client == client]
            admission = Admission.FULL
            if len(mine) >= limits.max_connections_per_client and not self._evict(mine):
                admission = Admission.HEALTH_ONLY
            elif len(full) >= limits.max_connections and not self._evict(full):
                admission = Admission.HEALTH_ONLY
            if admission is Admission.HEALTH_ONLY:
                reserved = sum(1 for c in self._open.values() if c.admission is Admission.HEALTH_ONLY)
                if reserved >= limits.health_slots:
                    self.refused += 1
                    return Connection(sock, client, Admission.REFUSED)
            connection = Connection(sock, client, admission, deadline=time.monotonic() + limits.header_timeout_s)
            self._open[sock] = connection
            return connection

    def _evict(self, candidates: list[Connection]) -> bool:
        """Closes the connection that has waited longest for a request; False when none is waiting."""
        waiting = [c for c in candidates if c.phase is Phase.WAITING]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c.since)
        self._close(oldest)
        self.evicted += 1
        return True

    def enter(self, connection: Connection, phase: Phase, first_request: bool = False) -> None:
        """Moves a connection to a phase, with that phase's deadline."""
        now = time.monotonic()
        limits = self.limits
        deadlines = {
            Phase.WAITING: limits.header_timeout_s if first_request else limits.idle_timeout_s,
            Phase.HEAD: limits.header_timeout_s,
            Phase.BODY: limits.body_timeout_s + _BODY_GRACE_S,
            Phase.BUSY: None,
        }
        timeout = deadlines[phase]
        with self._lock:
            if phase is Phase.WAITING and first_request and connection.phase is Phase.WAITING:
                # Admitted at accept: its wait (the eviction order) and its head deadline started then, not when its
                # handler thread happened to be scheduled.
                return
            if phase is Phase.HEAD and connection.phase is Phase.WAITING and first_request:
                timeout = max(0.0, (connection.deadline or now) - now)  # the head's clock started at accept
            connection.phase, connection.since = phase, now
            connection.deadline = None if timeout is None else now + timeout

    def remove(self, connection: Connection) -> None:
        with self._lock:
            self._open.pop(connection.sock, None)

    def sweep(self, interval_s: float = 0.2) -> None:
        """Closes every connection past its deadline (at most every `interval_s`; the accept loop calls it often)."""
        now = time.monotonic()
        if now - self._last_sweep < interval_s:
            return
        self._last_sweep = now
        with self._lock:
            late = [c for c in self._open.values() if c.deadline is not None and c.deadline < now]
            for connection in late:
                self._close(connection)
                self.timed_out += 1

    def _close(self, connection: Connection) -> None:
        """Shuts the socket down (its handler thread sees end-of-file and ends) and forgets the connection."""
        connection.closed_by_server = True
        self._open.pop(connection.sock, None)
        try:
            connection.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def sockets(self) -> list[socket.socket]:
        with self._lock:
            return list(self._open)


class BudgetSpent(Exception):
    """The body bytes buffered by all requests together reached the budget."""


class ByteBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    def take(self, amount: int) -> None:
        with self._lock:
            if self._used + amount > self.limit:
                raise BudgetSpent(f"{self._used} of {self.limit} body bytes are buffered")
            self._used += amount

    def give_back(self, amount: int) -> None:
        with self._lock:
            self._used -= amount

    @property
    def used(self) -> int:
        return self._used


_LARGE_REQUEST_BYTES = 1024 * 1024  # after a request this large, freed memory is handed back to the system
_trim: object = None


def release_memory(request_bytes: int) -> None:
    """After a large request, asks glibc to return freed memory to the system (`malloc_trim`): otherwise a burst of
    large requests leaves the process at its peak size. A no-op on other C libraries."""
    global _trim
    if request_bytes < _LARGE_REQUEST_BYTES:
        return
    if _trim is None:
        _trim = _load_malloc_trim() or False
    if _trim:
        _trim(0)  # type: ignore[operator]


def _load_malloc_trim() -> object:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return getattr(libc, "malloc_trim", None)
    except OSError:
        return None
