"""A hung DynamoDB: an endpoint that accepts connections and never answers. Every write (and read) must give up
with `StoreUnavailable` within its deadline, well before the shipped collector's exporter times out, so that the
ledger service answers 503 instead of leaving its client hanging."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dynamodb_server import REGION, make_record

from otel_ai_cost.ledger import dynamodb_retry as retry
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore, parse_url
from otel_ai_cost.ledger.store import StoreUnavailable, UsageQuery

COLLECTOR_CONFIG = Path(__file__).resolve().parents[2] / "collector" / "config.yaml"
SLACK_S = 1.0  # thread scheduling on a busy machine


pytestmark = pytest.mark.usefixtures("aws_environment")  # conftest.py: no real AWS credentials or config


class SilentServer:
    """Accepts TCP connections on a loopback port, reads what is sent, and never answers."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for connection in self.connections:
            connection.close()
        self._socket.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def hung_store(silent: SilentServer, deadline_s: float) -> DynamoDBStore:
    url = f"dynamodb://ledger?region={REGION}&endpoint_url=http://127.0.0.1:{silent.port}&deadline_s={deadline_s:g}"
    return DynamoDBStore.from_url(url)


@pytest.mark.parametrize("deadline_s", [1, 2])
def test_a_write_to_a_hung_endpoint_gives_up_within_its_deadline(silent: SilentServer, deadline_s: float) -> None:
    store = hung_store(silent, deadline_s)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=r"deadline|still failing") as raised:
            store.write([make_record(n) for n in range(1, 60)])
        elapsed = time.monotonic() - started
    finally:
        store.close()
    policy = store.retry_policy
    assert silent.connections  # it did reach the endpoint
    assert elapsed <= deadline_s + policy.connect_timeout_s + policy.read_timeout_s + SLACK_S
    assert raised.value.retry_after_s >= 1
    assert "0 of 59 records were stored" in str(raised.value)  # how far it got, and that a retry is safe


def test_reads_of_a_hung_endpoint_give_up_within_the_deadline_too(silent: SilentServer) -> None:
    store = hung_store(silent, 1)
    try:
        for read in (lambda: list(store.query(UsageQuery(environment="production"))),
                     lambda: store.totals("production", "2026-11")):  # fmt: skip
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                read()
            assert time.monotonic() - started <= 1 + 0.25 + 0.5 + SLACK_S
    finally:
        store.close()


def test_the_default_deadline_ends_before_the_collectors_exporter_gives_up() -> None:
    config = yaml.safe_load(COLLECTOR_CONFIG.read_text())
    timeout = config["exporters"]["otlp_http/ledger"]["timeout"]
    match = re.fullmatch(r"(\d+)s", timeout)
    assert match, timeout
    policy = retry.RetryPolicy()
    worst = policy.deadline_s + policy.connect_timeout_s + policy.read_timeout_s
    assert worst < int(match.group(1)) * 0.75  # room for decoding and answering the request
    assert parse_url("dynamodb://ledger").deadline_s == policy.deadline_s


def test_the_deadline_is_a_url_setting_with_bounds() -> None:
    assert parse_url("dynamodb://ledger?deadline_s=2.5").deadline_s == 2.5
    for bad in ("0", "-1", "abc", "301", "1e3"):
        with pytest.raises(ValueError, match="deadline_s"):
            parse_url(f"dynamodb://ledger?deadline_s={bad}")
    store = DynamoDBStore.from_url(f"dynamodb://ledger?region={REGION}&endpoint_url=http://127.0.0.1:9&deadline_s=4")
    try:
        config = store.client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (1, 2)  # one attempt fits the deadline
        assert config.retries["total_max_attempts"] == 1  # every retry is the store's, under the deadline
    finally:
        store.close()
