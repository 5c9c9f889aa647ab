"""The connections the ledger service closes or turns away are counted on `/metrics` (issue 10, item 12): an
operator sees idle sockets evicted at the caps, heads or bodies past their timeouts, and connections refused when
even the reserved `/healthz` slots are taken. Real sockets on loopback against a real SQLite ledger."""

from __future__ import annotations

import re
import time

import requests
from test_service_limits import closed_within, connect, export_promptly, slow_upload, sockets

from otel_ai_cost import contract
from otel_ai_cost.ledger.service.connections import Phase

__all__ = ["sockets"]  # a fixture shared with test_service_limits

CONNECTION_COUNTERS = (
    contract.LEDGER_CONNECTIONS_EVICTED,
    contract.LEDGER_CONNECTIONS_TIMED_OUT,
    contract.LEDGER_CONNECTIONS_REFUSED,
)


def scrape(url: str) -> dict[str, int]:
    """The connection counters' values on /metrics (a missing one fails the test: it must always be there)."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    values = {}
    for metric in CONNECTION_COUNTERS:
        assert f"# TYPE {metric.name} counter" in text
        values[metric.name] = int(re.search(rf"^{metric.name} (\d+)$", text, flags=re.M).group(1))  # type: ignore[union-attr]
    return values


def wait_until(service, condition, seconds: float = 10.0) -> None:
    """Polls the service's connection table (a loaded machine may take a while to read a request head)."""
    deadline = time.monotonic() + seconds
    while not condition(dict(service._connections._open)):
        assert time.monotonic() < deadline, "the service did not reach the expected connection state"
        time.sleep(0.02)


def test_a_fresh_service_shows_every_connection_counter_at_zero(start_service):
    service = start_service()
    assert scrape(service.url) == {m.name: 0 for m in CONNECTION_COUNTERS}


def test_an_idle_connection_evicted_at_the_cap_is_counted(start_service, store, sockets):
    service = start_service(max_connections=3, max_connections_per_client=3)
    idle = [connect(service, sockets) for _ in range(3)]
    time.sleep(0.2)
    export_promptly(service, store)  # needs a slot: the longest-idle connection is closed for it
    assert closed_within(idle[0], 1.0)
    assert scrape(service.url)[contract.LEDGER_CONNECTIONS_EVICTED.name] >= 1


def test_a_request_head_past_the_header_timeout_is_counted(start_service, sockets):
    service = start_service(header_timeout_s=0.5)
    silent = connect(service, sockets)
    assert closed_within(silent, 3.0)
    assert scrape(service.url)[contract.LEDGER_CONNECTIONS_TIMED_OUT.name] == 1


def test_a_connection_refused_beyond_the_reserved_slots_is_counted(start_service, sockets):
    service = start_service(max_connections_per_client=1, health_slots=1, header_timeout_s=5)
    holders = [slow_upload(service, sockets)]  # the client's one connection, busy: nothing to evict
    wait_until(service, lambda c: [c.phase for c in c.values()] == [Phase.BODY])  # else it could be evicted
    holders.append(connect(service, sockets))  # takes the one reserved /healthz slot and holds it
    wait_until(service, lambda c: sorted(c.admission.value for c in c.values()) == ["full", "health-only"])
    refused = connect(service, sockets)
    assert closed_within(refused, 2.0)  # answered 503 at once and closed
    for sock in holders:
        sock.close()  # the scrape below comes from the same address: give its slots back
    time.sleep(0.2)
    assert scrape(service.url)[contract.LEDGER_CONNECTIONS_REFUSED.name] == 1
