"""The ledger service's connection table on its own: which connection makes room at a cap. Real socket pairs, no
server, so the order of events is the test's, not the scheduler's."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from otel_ai_cost.ledger.service.connections import Admission, ConnectionTable, Limits, Phase


@pytest.fixture
def pairs() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def server_side(pairs: list[socket.socket]) -> socket.socket:
    ours, theirs = socket.socketpair()
    pairs.extend((ours, theirs))
    return ours


def table(max_connections: int) -> ConnectionTable:
    return ConnectionTable(
        Limits(
            max_connections=max_connections,
            max_connections_per_client=max_connections,
            health_slots=1,
            header_timeout_s=10,
            body_timeout_s=10,
            idle_timeout_s=10,
        )
    )


def test_the_connection_accepted_first_is_evicted_first_whatever_order_its_thread_starts_in(pairs):
    # A regression: the handler threads' first WAITING restarted each connection's clock, so the eviction order
    # followed thread scheduling, and a connection accepted later could be closed before an older one (CI flake).
    connections = table(max_connections=2)
    first = connections.admit(server_side(pairs), "127.0.0.1")
    second = connections.admit(server_side(pairs), "127.0.0.1")
    connections.enter(second, Phase.WAITING, first_request=True)  # its thread happened to start first
    connections.enter(first, Phase.WAITING, first_request=True)
    third = connections.admit(server_side(pairs), "127.0.0.1")
    assert third.admission is Admission.FULL
    assert first.closed_by_server and not second.closed_by_server


def test_a_busy_connection_is_never_evicted(pairs):
    connections = table(max_connections=1)
    busy = connections.admit(server_side(pairs), "127.0.0.1")
    connections.enter(busy, Phase.BUSY)
    late = connections.admit(server_side(pairs), "127.0.0.1")
    assert late.admission is Admission.HEALTH_ONLY and not busy.closed_by_server
