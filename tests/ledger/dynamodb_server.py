"""A real DynamoDB-API server on a free loopback port for the DynamoDB store's tests and benchmark.

moto's `ThreadedMotoServer` serves the DynamoDB JSON protocol over HTTP, so boto3 talks to it exactly as it talks
to AWS: tables, GSIs, TTL settings, conditions and `TransactWriteItems` are all exercised over the wire.

Three deliberate adjustments, about fidelity and cost:

* **Port 0.** The server binds port 0 and reports the port the kernel chose, so there is no window in which another
  process can take a port we probed as free.
* **One request at a time.** moto applies a transaction by deep-copying the table, applying the actions and, on a
  cancellation, *restoring the copy*, with no lock. Two concurrent requests can therefore undo each other's
  committed writes, something DynamoDB (serializable transactions, atomic item writes) never does. Requests are
  serialized here so the server behaves like DynamoDB for the concurrency tests; clients still send them from many
  threads at once. (Measured without it: 8 threads writing overlapping batches of 200 records left 195 records
  readable and 222 calls in the running totals.)
* **A snapshot of what a transaction touches.** Before a transaction, moto deep-copies the whole table once *per
  action*, to restore it if the transaction is cancelled: a 25-record transaction with 4 total items copied the
  table 29 times, so every write cost O(table size) and the benchmark measured `copy.deepcopy`. Here the snapshot
  is taken once, and deep-copies only the items the transaction names (the only ones it can change; the other
  items are shared, and the item dictionaries are copied so that new items do not appear in the snapshot). With
  requests serialized that restores exactly what moto's copy restores.
"""

from __future__ import annotations

import copy
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import moto.dynamodb.models as moto_dynamodb_models
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server

from otel_ai_cost.ledger.record import LedgerRecord

# Any non-empty credentials work against the test server; never real ones.
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"


class _OneAtATime:
    """WSGI middleware: runs each request (including reading its body and producing its response) under a lock."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


class _TransactionSnapshots:
    """Stands in for the `copy` module inside moto's DynamoDB backend: `deepcopy(table)` during a transaction
    returns one targeted snapshot of the table (see the module docs); everything else is copied as usual."""

    copy = staticmethod(copy.copy)

    def __init__(self) -> None:
        self.transact_items: list[dict[str, Any]] = []
        self.snapshots: dict[int, Table] = {}

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table) and self.transact_items:
            if id(value) not in self.snapshots:
                self.snapshots[id(value)] = _snapshot(value, self.transact_items)
            return self.snapshots[id(value)]
        return copy.deepcopy(value, memo)


def _snapshot(table: Table, transact_items: list[dict[str, Any]]) -> Table:
    """A copy of `table` that no action of `transact_items` can change."""
    snapshot = copy.copy(table)
    items: Any = defaultdict(dict)
    for hash_value, entry in table.items.items():
        items[hash_value] = dict(entry) if isinstance(entry, dict) else entry
    snapshot.items = items
    for action in transact_items:
        ((_, operation),) = action.items()
        if operation.get("TableName") != table.name:
            continue
        attributes = operation.get("Item") or operation.get("Key") or {}
        hash_value = DynamoType(attributes[table.hash_key_attr])
        current = table.items.get(hash_value)
        if current is None:
            continue
        if table.range_key_attr is None:
            items[hash_value] = copy.deepcopy(current)
        else:
            range_value = DynamoType(attributes[table.range_key_attr])
            if range_value in current:
                items[hash_value][range_value] = copy.deepcopy(current[range_value])
    return snapshot


_patch_lock = threading.Lock()
_patch_users = 0


def _patch_moto() -> None:
    """Installs the snapshot cache (reference-counted: several servers may run in one process)."""
    global _patch_users
    with _patch_lock:
        _patch_users += 1
        if _patch_users > 1 or not hasattr(moto_dynamodb_models, "copy"):
            return  # already installed, or a moto whose internals differ: correct, only slower
        snapshots = _TransactionSnapshots()
        backend = moto_dynamodb_models.DynamoDBBackend
        original = backend.transact_write_items

        def transact_write_items(self: Any, transact_items: Any) -> Any:
            snapshots.snapshots.clear()
            snapshots.transact_items = transact_items
            try:
                return original(self, transact_items)
            finally:
                snapshots.snapshots.clear()
                snapshots.transact_items = []

        transact_write_items.original = original  # type: ignore[attr-defined]
        backend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        moto_dynamodb_models.copy = snapshots  # type: ignore[assignment]


def _unpatch_moto() -> None:
    global _patch_users
    with _patch_lock:
        _patch_users -= 1
        backend = moto_dynamodb_models.DynamoDBBackend
        if _patch_users or not hasattr(backend.transact_write_items, "original"):
            return
        backend.transact_write_items = backend.transact_write_items.original  # type: ignore[attr-defined]
        moto_dynamodb_models.copy = copy  # type: ignore[assignment]


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request (errors are still reported)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LoopbackDynamoDB(ThreadedMotoServer):
    """`ThreadedMotoServer` on 127.0.0.1 and a kernel-chosen port, serializing requests (see the module docs)."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)

    def _server_entry(self) -> None:
        app = _OneAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, threaded=True, request_handler=_QuietHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    def start(self) -> None:
        _patch_moto()
        super().start()

    def stop(self) -> None:
        super().stop()
        _unpatch_moto()

    @property
    def endpoint_url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def client(self, **kwargs: Any) -> Any:
        """A plain boto3 DynamoDB client for this server (for assertions on the raw items)."""
        import boto3

        return boto3.client(
            "dynamodb", region_name=REGION, endpoint_url=self.endpoint_url, **FAKE_CREDENTIALS, **kwargs
        )

    def damage_totals(self, table: str, update: str) -> None:
        """Applies `update` (an UpdateExpression with `:x` = 5) to every running-total item: for the tests of
        `rebuild_totals`, which must put them right from the records."""
        raw = self.client()
        for item in raw.scan(TableName=table)["Items"]:
            if "#TOTAL#" in item["PK"]["S"]:
                raw.update_item(
                    TableName=table,
                    Key={"PK": item["PK"], "SK": item["SK"]},
                    UpdateExpression=update,
                    ExpressionAttributeValues={":x": {"N": "5"}},
                )


def start_server() -> LoopbackDynamoDB:
    """Starts a server; the caller stops it with `.stop()`."""
    server = LoopbackDynamoDB()
    server.start()
    return server


def fake_aws_environment(monkeypatch: Any) -> None:
    """Test credentials and region from the environment; no ~/.aws file is read (and no real account is used)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/otel-ai-cost-tests/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/otel-ai-cost-tests/credentials")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)


BASE_TIME = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)


def make_record(n: int, **fields: Any) -> LedgerRecord:
    """Record number `n`: unique identity, one minute after record n-1 (from 2026-11-22 10:00 UTC), priced."""
    values: dict[str, Any] = {
        "trace_id": f"{n:032x}",
        "span_id": f"{n + 1:016x}",
        "timestamp": BASE_TIME + timedelta(minutes=n),
        "environment": "production",
        "service": "receipts",
        "provider": "openai",
        "request_model": "gpt-4o",
        "response_model": "gpt-4o-2024-08-06",
        "operation": "chat",
        "input_tokens": 100,
        "output_tokens": 20,
        "amount": Decimal("0.000450000000000001"),
    }
    values.update(fields)
    return LedgerRecord(**values)
