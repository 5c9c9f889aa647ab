"""Which ledger store to use, from one URL-like setting.

The setting is the environment variable `OTEL_AI_COST_LEDGER` (or the `--ledger` option of the commands):

| value                                          | store                                                          |
|------------------------------------------------|----------------------------------------------------------------|
| unset or empty                                 | SQLite at the default location (below)                         |
| `sqlite:///abs/path/usage.db`                  | SQLite, absolute path (three slashes: empty host, then `/abs`) |
| `sqlite://relative/usage.db`                   | SQLite, relative to the current directory                      |
| `sqlite://~/ledger/usage.db`                   | SQLite, relative to the home directory                         |
| `dynamodb://TABLE?region=...&endpoint_url=...` | DynamoDB (`otel_ai_cost.ledger.dynamodb_store`, needs boto3)   |
| `none`                                         | no ledger: the in-process exporter is off                      |

When `OTEL_AI_COST_LEDGER` is unset (or empty) and `DYNAMODB_TABLE_NAME` is set (the legacy tracker's variable),
the ledger is that DynamoDB table: `dynamodb://$DYNAMODB_TABLE_NAME`, in the region of `AWS_REGION`, else
`AWS_DEFAULT_REGION` (else the AWS profile's), at the endpoint botocore configures (`AWS_ENDPOINT_URL_DYNAMODB`).
`OTEL_AI_COST_LEDGER` wins whenever it is set, `none` included. The name is used as it is: the legacy tracker's
environment suffix (`-development`, ...) is not appended, since one ledger table keeps environments apart by
itself. The table must be a ledger table (`otel-ai-cost ledger init`), not a legacy table of `AIUsageMetric` items
(read those with `otel-ai-cost import legacy-dynamodb`).

Note the SQLite rule: the path is the URL with `sqlite://` removed, so `sqlite:///var/x.db` is `/var/x.db`.
(SQLAlchemy reads three slashes as relative; here three slashes mean an absolute path, as a file URL would.)

The default location is `$XDG_DATA_HOME/otel-ai-cost/usage.db`, or `~/.local/share/otel-ai-cost/usage.db` when
`XDG_DATA_HOME` is unset (or not absolute, as the XDG specification requires).

Writers (the instrumentation's exporter, `record`, `import`, `ledger serve`, `ledger init`) create the ledger on
first use. Readers (`report`, `jobs show`, `budgets check`) open it with `create=False`: a ledger that does not
exist (a mistyped path or table name) raises `LedgerNotFound` naming it, and nothing is created, no file, no
directory, no table. A SQLite file that exists but is not a ledger (another program's database, an empty or a
text file) is refused the same way, untouched.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from otel_ai_cost.contract import Env
from otel_ai_cost.ledger.store import LedgerStore, StoreUnavailable

__all__ = [
    "DISABLED",
    "LEDGER_ENV",
    "LedgerConfigError",
    "LedgerDisabled",
    "LedgerNotFound",
    "configured_origin",
    "configured_url",
    "default_ledger_path",
    "default_ledger_url",
    "is_disabled",
    "open_store",
    "sqlite_path",
    "store_url",
]

# Until contract.Env carries it (Env.LEDGER): the ledger URL.
LEDGER_ENV = Env.LEDGER
XDG_DATA_HOME = "XDG_DATA_HOME"
DISABLED = "none"
# Lambda and most CI runners set AWS_REGION; the AWS CLI and SDK profiles use AWS_DEFAULT_REGION (the legacy order).
_REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
_DYNAMODB_MODULE = "otel_ai_cost.ledger.dynamodb_store"


class LedgerConfigError(ValueError):
    """The ledger URL is not one we understand (the message names where it came from and what is accepted)."""


class LedgerNotFound(LedgerConfigError):
    """A read found no ledger where the URL points (the message names the file or table); nothing was created."""


class LedgerDisabled(LedgerConfigError):
    """The ledger is turned off (`OTEL_AI_COST_LEDGER=none`)."""


def default_ledger_path() -> Path:
    """Where the embedded ledger lives when nothing is configured."""
    data_home = os.environ.get(XDG_DATA_HOME, "")
    base = Path(data_home) if data_home and os.path.isabs(data_home) else Path.home() / ".local" / "share"
    return base / "otel-ai-cost" / "usage.db"


def default_ledger_url() -> str:
    return f"sqlite://{default_ledger_path()}"


def configured_url() -> str:
    """The ledger URL in effect: `OTEL_AI_COST_LEDGER`, else the table `DYNAMODB_TABLE_NAME` names, else the
    default SQLite file."""
    return os.environ.get(LEDGER_ENV, "").strip() or _legacy_table_url() or default_ledger_url()


def configured_origin() -> str:
    """Where `configured_url()` comes from, for messages: `OTEL_AI_COST_LEDGER`, `DYNAMODB_TABLE_NAME`, or the
    default ledger."""
    if os.environ.get(LEDGER_ENV, "").strip():
        return LEDGER_ENV
    if _legacy_table_url():
        return f"the ledger of {Env.DYNAMODB_TABLE_NAME}"
    return f"the default ledger ({LEDGER_ENV} unset)"


def _legacy_table_url() -> str | None:
    """`dynamodb://TABLE[?region=R]` from `DYNAMODB_TABLE_NAME` and `AWS_REGION`/`AWS_DEFAULT_REGION`; None when
    the name is unset or blank. The name is not checked here: `open_store` refuses a bad one, naming it."""
    table = os.environ.get(Env.DYNAMODB_TABLE_NAME, "").strip()
    if not table:
        return None
    region = next((v.strip() for v in (os.environ.get(n, "") for n in _REGION_VARIABLES) if v.strip()), "")
    # Quoted: a name with "/", "?" or "#" stays the table name, which the store then refuses, naming it.
    return f"dynamodb://{quote(table, safe='')}" + (f"?{urlencode({'region': region})}" if region else "")


def is_disabled(url: str | None = None) -> bool:
    """True when the ledger is turned off (`none`, any case)."""
    return (configured_url() if url is None else url).strip().lower() == DISABLED


def open_store(url: str | None = None, *, origin: str | None = None, create: bool = True) -> LedgerStore:
    """Opens the store named by `url` (default: `configured_url()`).

    `origin` names where the URL came from, for error messages (default: `OTEL_AI_COST_LEDGER` when `url` is
    None, else "the ledger URL"). Raises `LedgerDisabled` for `none` and `LedgerConfigError` for a URL it cannot
    use; errors of the store itself (`StoreUnavailable`, a missing boto3) propagate.

    `create=False` is for reads: a ledger that does not exist raises `LedgerNotFound` instead of being created
    (see the module documentation).
    """
    if url is None:
        url = configured_url()
        if not origin:  # say whether the URL was configured (and by which variable) or is the default
            origin = configured_origin()
    origin = origin or "the ledger URL"
    url = url.strip()
    if url.lower() == DISABLED:
        raise LedgerDisabled(f"the ledger is disabled ({origin}={DISABLED})")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        from otel_ai_cost.ledger.sqlite_store import SQLiteStore

        path = sqlite_path(url, origin=origin)
        if not create:
            _check_sqlite_ledger(path, _where(origin, url))
        return SQLiteStore(path)
    if scheme == "dynamodb":
        # Imported only when asked for: it needs boto3, which the embedded default does not.
        try:
            module = importlib.import_module(_DYNAMODB_MODULE)
        except ImportError as exc:
            raise LedgerConfigError(
                f"{origin}={url!r} asks for DynamoDB, which needs boto3: pip install boto3 ({exc})"
            ) from exc
        try:
            store = module.DynamoDBStore.from_url(url)
        except ValueError as exc:  # the store's own URL checks (table name, parameters)
            raise LedgerConfigError(f"{origin}={url!r}: {exc}") from exc
        if not create:
            try:
                _check_dynamodb_table(store, _where(origin, url))
            except BaseException:
                store.close()
                raise
        return store
    raise LedgerConfigError(
        f"{origin}={url!r} is not a ledger URL; use sqlite:///ABSOLUTE/PATH.db, sqlite://RELATIVE/PATH.db, "
        f"dynamodb://TABLE?region=REGION, or {DISABLED} to turn the ledger off"
    )


def sqlite_path(url: str, *, origin: str = "the ledger URL") -> Path:
    """The file of a `sqlite://` URL (see the module documentation for the rule)."""
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise LedgerConfigError(f"{origin}={url!r}: a sqlite URL takes no query or fragment")
    raw = url.split("://", 1)[1]
    if not raw:
        raise LedgerConfigError(f"{origin}={url!r} names no file; e.g. sqlite:///var/lib/otel-ai-cost/usage.db")
    if raw.startswith("//"):  # sqlite:////abs/path (the SQLAlchemy spelling of an absolute path)
        raw = raw[1:]
    path = Path(raw).expanduser()
    if path.name in ("", ".", "..") or str(raw).endswith("/"):
        raise LedgerConfigError(f"{origin}={url!r} names a directory, not a file")
    return path


def _where(origin: str, url: str) -> str:
    """Where a URL came from, for messages: `--ledger='sqlite:///x.db'`, or the default ledger's description."""
    return origin if origin.startswith("the default ledger") else f"{origin}={url!r}"


def _check_sqlite_ledger(path: Path, where: str) -> None:
    """Raises `LedgerNotFound` unless `path` is an existing otel-ai-cost ledger file; reads only, creates nothing.

    The file is opened read-only (`mode=ro`), so a missing file is never created, and another program's database
    never gains the ledger's tables: a ledger has a schema version (`PRAGMA user_version` >= 1, set when the store
    creates its tables); any other SQLite file has 0."""
    if not path.exists():
        missing = next((p for p in path.parents if not p.exists() and p.parent.exists()), None)
        beside = f" (nor does its directory {missing})" if missing is not None else ""
        raise LedgerNotFound(
            f"no ledger at {path}: the file does not exist{beside} ({where}). A read creates nothing: check the "
            "path. A ledger is created by the first recorded call, by `otel-ai-cost record`, or by "
            "`otel-ai-cost ledger init --ledger URL`."
        )
    if not path.is_file():
        raise LedgerNotFound(f"no ledger at {path}: it is not a file ({where})")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:  # locked, unreadable: the file may well be a ledger
        raise StoreUnavailable(f"cannot read the ledger {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:  # "file is not a database"
        raise LedgerNotFound(f"{path} is not an otel-ai-cost ledger ({where}): {exc}") from exc
    if version < 1:
        raise LedgerNotFound(f"{path} is not an otel-ai-cost ledger ({where}): it has no ledger tables")


def _check_dynamodb_table(store: Any, where: str) -> None:
    """Raises `LedgerNotFound` when the store's table does not exist (the store itself never creates one on open;
    this turns the first read's "unavailable" into a clear answer). Other errors are the store's, unavailable."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        store.client.describe_table(TableName=store.table)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise LedgerNotFound(
                f"no ledger table {store.table} in region {store.region}: the table does not exist ({where}). A read "
                f"creates nothing: check the table name, or create it with `otel-ai-cost ledger init --ledger URL`."
            ) from exc
        raise StoreUnavailable(f"DynamoDB DescribeTable {store.table}: {exc}") from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(f"DynamoDB DescribeTable {store.table}: {exc}") from exc


def store_url(store: object) -> str:
    """Where a store is, as a person reads it in a message or a log: its ledger URL (`sqlite:///abs/usage.db`,
    `dynamodb://TABLE?region=R`), never a Python repr. The usage file alone (`TRACK_TO_FILE=true` with the ledger
    off) is named by its path."""
    usage_file = getattr(store, "usage_file", None)
    if isinstance(usage_file, Path):
        return f"the usage file {usage_file}"
    path = getattr(store, "path", None)
    if isinstance(path, (str, Path)):
        return f"sqlite://{Path(path)}"
    table = getattr(store, "table", None)
    if isinstance(table, str):
        region = getattr(store, "region", None)
        return f"dynamodb://{table}" + (f"?region={region}" if region else "")
    inner = getattr(store, "store", None)  # a store wrapping another one
    if inner is not None and inner is not store:
        return store_url(inner)
    return type(store).__name__
