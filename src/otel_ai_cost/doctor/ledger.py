"""The ledger a process would write to: where it is, that it exists (or can be created), its schema, and that a
write and a query are allowed, each tried for real.

The URL is resolved as the instrumentation resolves it (`ledger.open_store.configured_url`: `OTEL_AI_COST_LEDGER`,
else `DYNAMODB_TABLE_NAME`, else the default SQLite file). Nothing here changes the ledger:

- SQLite: the file is read read-only (`mode=ro`) for its schema version; the write is a table created inside a
  transaction that is rolled back, the query one `SELECT`. A missing file is not created: its nearest existing
  directory must be writable, as the first call would create it there.
- DynamoDB: `DescribeTable` and `DescribeTimeToLive` (keys, the six indexes of `dynamodb_schema.py`, TTL on
  `expires_at`); the write is a `TransactWriteItems` of one `Put` and one `Update` (what a recorded call sends)
  and an `UpdateItem` of the environment registry, every one conditioned on an item that never exists, so DynamoDB
  checks the permissions and then refuses the condition; the query is a `Query` of the table and of the `env-time`
  index and a `GetItem`, what `report` and `budgets check` send. A denied call (`AccessDeniedException`) names
  the IAM action it needs.

The four checks share one look at the ledger per doctor run (`reset()` forgets it).
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otel_ai_cost.contract import DOCTOR_ENVIRONMENT, Env
from otel_ai_cost.doctor.checks import Result, Status

__all__ = [
    "LEDGER",
    "LEDGER_QUERY",
    "LEDGER_SCHEMA",
    "LEDGER_WRITE",
    "QUERY_PERMISSIONS",
    "WRITE_PERMISSIONS",
    "check_ledger",
    "check_ledger_query",
    "check_ledger_schema",
    "check_ledger_write",
    "reset",
]

LEDGER = "ledger"
LEDGER_SCHEMA = "ledger.schema"
LEDGER_WRITE = "ledger.write"
LEDGER_QUERY = "ledger.query"

# The IAM actions of the DynamoDB ledger (docs/operations.md): a recorded call's write, and the readers' queries.
WRITE_PERMISSIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem")
QUERY_PERMISSIONS = ("dynamodb:Query", "dynamodb:GetItem", "dynamodb:DescribeTable")

_ACTION_IN_MESSAGE = re.compile(r"perform:\s*(dynamodb:\w+)")
# A key no ledger item ever has: every probe write is conditioned on it existing, so nothing is ever written.
_PROBE_PK = f"ENV#{DOCTOR_ENVIRONMENT}#DOCTOR#probe"


@dataclass
class _Look:
    """What one look at the ledger found; each check reports its part."""

    url: str
    origin: str
    kind: str  # "sqlite", "dynamodb", "none", "bad"
    ledger: Result | None = None
    schema: Result | None = None
    write: Result | None = None
    query: Result | None = None
    details: list[str] = field(default_factory=list)


def reset() -> None:
    """Forget the last look (each doctor run looks again)."""
    _look.cache_clear()


def check_ledger() -> Result:
    """The ledger URL in effect, where it came from, and that the ledger exists or can be created."""
    look = _look()
    assert look.ledger is not None
    return look.ledger


def check_ledger_schema() -> Result:
    """SQLite: a ledger file of a schema this version reads. DynamoDB: keys, indexes and TTL."""
    return _part(_look(), "schema", LEDGER_SCHEMA)


def check_ledger_write() -> Result:
    """A write is allowed: tried for real, changing nothing."""
    return _part(_look(), "write", LEDGER_WRITE)


def check_ledger_query() -> Result:
    """A query is allowed: tried for real."""
    return _part(_look(), "query", LEDGER_QUERY)


def _part(look: _Look, attribute: str, name: str) -> Result:
    found: Result | None = getattr(look, attribute)
    if found is not None:
        return found
    why = "the ledger is off" if look.kind == "none" else f"the ledger cannot be used (see {LEDGER})"
    return Result(name, Status.SKIP, f"not checked: {why}")


@functools.lru_cache(maxsize=1)
def _look() -> _Look:
    from otel_ai_cost.ledger.open_store import DISABLED, configured_origin, configured_url

    url, origin = configured_url(), configured_origin()
    lowered = url.strip().lower()
    if lowered == DISABLED:
        from otel_ai_cost.ledger.jsonl_file_store import tracks_to_file, usage_file_from_env

        look = _Look(url, origin, "none")
        where = f"only to the usage file {usage_file_from_env()}" if tracks_to_file() else "only to the exported spans"
        look.ledger = Result(
            LEDGER,
            Status.WARN,
            f"{origin}={DISABLED}: the in-process ledger is off; calls are recorded {where} and metrics",
            fix=f"unset {Env.LEDGER} (the default SQLite file) or set it to a sqlite:/// or "
            "dynamodb:// URL, unless a collector or the ledger service records the calls",
        )
        return look
    if lowered.startswith("sqlite://"):
        return _sqlite(_Look(url, origin, "sqlite"))
    if lowered.startswith("dynamodb://"):
        return _dynamodb(_Look(url, origin, "dynamodb"))
    look = _Look(url, origin, "bad")
    store = _open(look)  # the store's own refusal, naming what is accepted
    if store is not None:  # a scheme this module does not know yet: the store opened, nothing more is checked
        store.close()
        look.ledger = Result(LEDGER, Status.WARN, f"{url} (from {origin}): opens; not checked further")
    return look


def _open(look: _Look) -> Any:
    """The store of the URL, as a writer opens it (nothing is created on open); None (and a failed `ledger`
    result) when the URL cannot be used."""
    from otel_ai_cost.ledger.open_store import open_store

    try:
        return open_store(look.url, origin=look.origin)
    except Exception as exc:
        look.ledger = Result(
            LEDGER,
            Status.FAIL,
            f"{exc}",
            fix=f"set {Env.LEDGER} to sqlite:///ABSOLUTE/PATH.db or dynamodb://TABLE?region=REGION (docs/ledger.md)",
        )
        return None


# -- SQLite -------------------------------------------------------------------------------------------------------


def _sqlite(look: _Look) -> _Look:
    from otel_ai_cost.ledger.open_store import LedgerConfigError, sqlite_path

    try:
        path = sqlite_path(look.url, origin=look.origin)
    except LedgerConfigError as exc:
        look.ledger = Result(LEDGER, Status.FAIL, str(exc), fix=f"set {Env.LEDGER}=sqlite:///ABSOLUTE/PATH.db")
        return look
    where = f"sqlite://{path} (from {look.origin})"
    if not path.exists():
        _sqlite_missing(look, path, where)
        return look
    if not path.is_file():
        look.ledger = Result(
            LEDGER,
            Status.FAIL,
            f"{where}: {path} is not a file",
            fix=f"point {Env.LEDGER} at a file, e.g. sqlite://{path / 'usage.db'}",
        )
        return look
    look.ledger = Result(LEDGER, Status.OK, f"{where}: the file exists")
    _sqlite_schema(look, path)
    if look.schema is not None and look.schema.status is Status.FAIL:
        look.write = Result(
            LEDGER_WRITE, Status.SKIP, f"not checked: not a ledger this version uses (see {LEDGER_SCHEMA})"
        )
        look.query = Result(
            LEDGER_QUERY, Status.SKIP, f"not checked: not a ledger this version uses (see {LEDGER_SCHEMA})"
        )
        return look
    _sqlite_write(look, path)
    _sqlite_query(look, path)
    return look


def _sqlite_missing(look: _Look, path: Path, where: str) -> None:
    existing = next((p for p in path.parents if p.exists()), None)
    if existing is not None and existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        look.ledger = Result(
            LEDGER,
            Status.OK,
            f"{where}: does not exist yet; the first recorded call creates it (in {existing}, writable)",
        )
        skip = "the ledger file does not exist yet (the first recorded call creates it)"
        look.schema = Result(LEDGER_SCHEMA, Status.SKIP, f"not checked: {skip}")
        look.write = Result(LEDGER_WRITE, Status.OK, f"{existing} is writable: the file can be created")
        look.query = Result(LEDGER_QUERY, Status.SKIP, f"not checked: {skip}")
        return
    look.ledger = Result(
        LEDGER,
        Status.FAIL,
        f"{where}: does not exist and cannot be created: {existing} is not a writable directory",
        fix=f"create {path.parent} writable by the user the process runs as, or set {Env.LEDGER} "
        "to a writable sqlite:///ABSOLUTE/PATH.db (on AWS Lambda: a dynamodb:// ledger)",
    )


def _sqlite_schema(look: _Look, path: Path) -> None:
    from otel_ai_cost.ledger.sqlite_store import SCHEMA_VERSION

    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        look.schema = Result(
            LEDGER_SCHEMA,
            Status.FAIL,
            f"{path} cannot be read as a SQLite file: {exc}",
            fix=f"point {Env.LEDGER} at an otel-ai-cost ledger file (or a new path); move this "
            "file away if it is not one",
        )
        return
    if version < 1 or "records" not in tables:
        look.schema = Result(
            LEDGER_SCHEMA,
            Status.FAIL,
            f"{path} is a SQLite file but not an otel-ai-cost ledger (it has no ledger tables)",
            fix=f"point {Env.LEDGER} at another path: the ledger never writes into another program's database",
        )
        return
    if version > SCHEMA_VERSION:
        look.schema = Result(
            LEDGER_SCHEMA,
            Status.FAIL,
            f"{path} has schema version {version}, newer than this otel-ai-cost's {SCHEMA_VERSION}",
            fix="upgrade otel-ai-cost in this environment to the version that wrote the file",
        )
        return
    later = "" if version == SCHEMA_VERSION else f" (the first write migrates it to {SCHEMA_VERSION})"
    look.schema = Result(LEDGER_SCHEMA, Status.OK, f"an otel-ai-cost ledger, schema version {version}{later}")


def _sqlite_write(look: _Look, path: Path) -> None:
    """A write inside a transaction that is rolled back: SQLite answers as it would to a recorded call."""
    fix = (
        f"make {path} and its directory {path.parent} writable by the user the process runs as (the ledger "
        f"also writes {path.name}-wal and {path.name}-shm beside it), or set {Env.LEDGER} to a writable "
        "sqlite:///ABSOLUTE/PATH.db"
    )
    if not os.access(path.parent, os.W_OK | os.X_OK):
        look.write = Result(LEDGER_WRITE, Status.FAIL, f"the directory {path.parent} is not writable", fix=fix)
        return
    try:
        conn = sqlite3.connect(path, timeout=5, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("CREATE TABLE otel_ai_cost_doctor_probe (x)")
            finally:
                conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if "locked" in str(exc) or "busy" in str(exc):  # another writer holds the lock (for 5 s): not a set-up fault
            look.write = Result(
                LEDGER_WRITE,
                Status.WARN,
                f"{path} was locked by another writer for 5 s: {exc}",
                fix="run the doctor again; if it stays locked, look for a process stuck in a write",
            )
            return
        look.write = Result(LEDGER_WRITE, Status.FAIL, f"{path} cannot be written: {exc}", fix=fix)
        return
    look.write = Result(LEDGER_WRITE, Status.OK, f"{path} is writable (a write tried and rolled back)")


def _sqlite_query(look: _Look, path: Path) -> None:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            calls = int(conn.execute("SELECT count(*) FROM records").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        look.query = Result(
            LEDGER_QUERY,
            Status.FAIL,
            f"{path} cannot be queried: {exc}",
            fix=f"make {path} readable by the user the process runs as",
        )
        return
    look.query = Result(LEDGER_QUERY, Status.OK, f"{calls} records readable")


# -- DynamoDB -----------------------------------------------------------------------------------------------------


def _dynamodb(look: _Look) -> _Look:
    store = _open(look)
    if store is None:
        return look
    try:
        _dynamodb_checks(look, store)
    finally:
        store.close()
    return look


def _dynamodb_checks(look: _Look, store: Any) -> None:
    where = f"table {store.table} in region {store.region}" + (
        f" at {store.endpoint_url}" if store.endpoint_url else ""
    )
    init = f"otel-ai-cost ledger init --ledger '{look.url}'"
    failure = _call(lambda: store.client.describe_table(TableName=store.table), "DescribeTable", store, where)
    if isinstance(failure, _Failure):
        if failure.code == "ResourceNotFoundException":
            look.ledger = Result(
                LEDGER,
                Status.FAIL,
                f"{where} (from {look.origin}): the table does not exist",
                fix=f"create it: {init} (or correct the table name and region in {Env.LEDGER})",
            )
        else:
            look.ledger = failure.result(LEDGER, f"{where} (from {look.origin})")
        return
    description = failure["Table"]
    status = description.get("TableStatus", "?")
    look.ledger = Result(
        LEDGER,
        Status.OK if status == "ACTIVE" else Status.WARN,
        f"{where} (from {look.origin}): the table exists, {status}",
        fix="" if status == "ACTIVE" else "wait until the table is ACTIVE",
    )
    look.schema = _dynamodb_schema(store, description, where, init)
    look.write = _dynamodb_write(store, where)
    look.query = _dynamodb_query(store, where)


def _dynamodb_schema(store: Any, description: dict[str, Any], where: str, init: str) -> Result:
    from otel_ai_cost.ledger.dynamodb_schema import EXPIRES_AT, INDEXES, schema_problems

    problems = schema_problems(description, store.table)
    present = description.get("GlobalSecondaryIndexes", [])
    statuses = {gsi["IndexName"]: gsi.get("IndexStatus", "ACTIVE") for gsi in present}
    details = [f"index {index.name}: {statuses[index.name]}" for index in INDEXES if index.name in statuses]
    if problems:
        return Result(
            LEDGER_SCHEMA,
            Status.FAIL,
            f"{where} is not a ledger table: " + "; ".join(problems),
            fix="use a table made by otel-ai-cost ledger init (a legacy AIUsageMetric table is imported "
            "with otel-ai-cost import legacy-dynamodb, not written to)",
            details=tuple(details),
        )
    ttl = _call(lambda: store.client.describe_time_to_live(TableName=store.table), "DescribeTimeToLive", store, where)
    if isinstance(ttl, _Failure):
        return ttl.result(LEDGER_SCHEMA, f"{where}: keys and indexes as expected; TTL")
    status = ttl.get("TimeToLiveDescription", {})
    state, attribute = status.get("TimeToLiveStatus"), status.get("AttributeName")
    indexes = f"keys and the {len(INDEXES)} indexes as expected"
    if state in ("ENABLED", "ENABLING") and attribute == EXPIRES_AT:
        return Result(
            LEDGER_SCHEMA, Status.OK, f"{indexes}; TTL on {EXPIRES_AT} {state.lower()}", details=tuple(details)
        )
    if state in ("ENABLED", "ENABLING"):
        return Result(
            LEDGER_SCHEMA,
            Status.FAIL,
            f"{indexes}; but TTL is on {attribute!r}, not {EXPIRES_AT!r}",
            fix=f"turn TTL off and run {init} (it turns TTL on for {EXPIRES_AT})",
            details=tuple(details),
        )
    return Result(
        LEDGER_SCHEMA,
        Status.WARN,
        f"{indexes}; TTL is off: records never expire (no retention)",
        fix=f"{init} turns TTL on for {EXPIRES_AT}",
        details=tuple(details),
    )


def _dynamodb_write(store: Any, where: str) -> Result:
    """A recorded call's `TransactWriteItems` (a Put and an Update) and the registry's `UpdateItem`, each on an item
    that never exists and conditioned on it existing: the permissions are checked, nothing is written."""
    from otel_ai_cost.ledger.dynamodb_schema import PK, REGISTRY_PK, SK

    table = store.table
    exists = {"ConditionExpression": "attribute_exists(#pk)", "ExpressionAttributeNames": {"#pk": PK}}

    def transaction() -> Any:
        return store.client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {PK: {"S": _PROBE_PK}, SK: {"S": "SPAN#probe"}}, **exists}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {PK: {"S": _PROBE_PK}, SK: {"S": "ALL"}},
                        "UpdateExpression": "ADD calls :zero",
                        "ExpressionAttributeValues": {":zero": {"N": "0"}},
                        **exists,
                    }
                },
            ]
        )

    def registry() -> Any:
        return store.client.update_item(
            TableName=table,
            Key={PK: {"S": REGISTRY_PK}, SK: {"S": "DOCTOR#probe"}},
            UpdateExpression="SET shards = :zero",
            ExpressionAttributeValues={":zero": {"N": "0"}},
            **exists,
        )

    for what, call, refused in (
        ("TransactWriteItems", transaction, "TransactionCanceledException"),
        ("UpdateItem", registry, "ConditionalCheckFailedException"),
    ):
        outcome = _call(call, what, store, where, expected=refused)
        if isinstance(outcome, _Failure):
            return outcome.result(LEDGER_WRITE, f"a write to {where}")
    return Result(
        LEDGER_WRITE,
        Status.OK,
        f"a recorded call's write is allowed ({', '.join(WRITE_PERMISSIONS)}: TransactWriteItems and "
        "UpdateItem tried, conditioned so that nothing was written)",
    )


def _dynamodb_query(store: Any, where: str) -> Result:
    from otel_ai_cost.ledger.dynamodb_schema import ENV_TIME, PK, REGISTRY_PK, SK, index_partition, registry_key

    table = store.table
    calls: list[tuple[str, Callable[[], Any]]] = [
        (
            "Query",
            lambda: store.client.query(
                TableName=table,
                KeyConditionExpression="#pk = :pk",
                ExpressionAttributeNames={"#pk": PK},
                ExpressionAttributeValues={":pk": {"S": REGISTRY_PK}},
                ConsistentRead=True,
                Limit=1,
            ),
        ),
        (
            "Query",
            lambda: store.client.query(
                TableName=table,
                IndexName=ENV_TIME.name,
                KeyConditionExpression="#pk = :pk",
                ExpressionAttributeNames={"#pk": ENV_TIME.attribute},
                ExpressionAttributeValues={":pk": {"S": index_partition(ENV_TIME, DOCTOR_ENVIRONMENT, "", 0)}},
                Limit=1,
            ),
        ),
        (
            "GetItem",
            lambda: store.client.get_item(
                TableName=table,
                Key=registry_key(DOCTOR_ENVIRONMENT),
                ConsistentRead=True,
                ProjectionExpression="#sk",
                ExpressionAttributeNames={"#sk": SK},
            ),
        ),
    ]
    for what, call in calls:
        outcome = _call(call, what, store, where)
        if isinstance(outcome, _Failure):
            return outcome.result(LEDGER_QUERY, f"a query of {where}")
    return Result(
        LEDGER_QUERY,
        Status.OK,
        f"queries are allowed ({', '.join(QUERY_PERMISSIONS)}: the table and its {ENV_TIME.name} index "
        "queried, the environment registry read)",
    )


@dataclass(frozen=True)
class _Failure:
    """A DynamoDB call that did not answer as hoped."""

    operation: str
    code: str
    message: str
    action: str  # the IAM action named by the error (or the operation's own)
    table: str
    region: str

    def result(self, name: str, what: str) -> Result:
        if self.code == "AccessDeniedException":
            return Result(
                name,
                Status.FAIL,
                f"{what}: {self.operation} denied: {self.action} is not allowed",
                fix=f"allow {self.action} on arn:aws:dynamodb:{self.region}:ACCOUNT:table/{self.table} and "
                f"its indexes (table/{self.table}/index/*) for the role the process runs as; the "
                f"ledger needs {', '.join(WRITE_PERMISSIONS + QUERY_PERMISSIONS)}",
                details=(self.message,),
            )
        if self.code in (
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "ExpiredTokenException",
            "NoCredentialsError",
        ):
            return Result(
                name,
                Status.FAIL,
                f"{what}: {self.operation}: the AWS credentials are refused or missing ({self.code})",
                fix="give the process AWS credentials (a role, AWS_PROFILE, or AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY) for the account of the table",
                details=(self.message,),
            )
        return Result(
            name,
            Status.FAIL,
            f"{what}: {self.operation} failed: {self.code}: {self.message}",
            fix="check the region and endpoint of the dynamodb:// URL and that DynamoDB is reachable from here",
            details=(self.message,),
        )


def _call(operation: Callable[[], Any], what: str, store: Any, where: str, *, expected: str = "") -> Any:
    """The response of one real call, or a `_Failure`; `expected` is an error code that means success here (a
    condition refused after the permissions were checked)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return operation()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", exc))
        if code and code == expected:
            return {}
        named = _ACTION_IN_MESSAGE.search(message)
        action = named.group(1) if named else f"dynamodb:{what}"
        return _Failure(what, code, message, action, store.table, store.region)
    except BotoCoreError as exc:  # no credentials, no connection, a timeout
        return _Failure(what, type(exc).__name__, str(exc), f"dynamodb:{what}", store.table, store.region)
