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

Note the SQLite rule: the path is the URL with `sqlite://` removed, so `sqlite:///var/x.db` is `/var/x.db`.
(SQLAlchemy reads three slashes as relative; here three slashes mean an absolute path, as a file URL would.)

The default location is `$XDG_DATA_HOME/otel-ai-cost/usage.db`, or `~/.local/share/otel-ai-cost/usage.db` when
`XDG_DATA_HOME` is unset (or not absolute, as the XDG specification requires).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from urllib.parse import urlsplit

from otel_ai_cost.contract import Env
from otel_ai_cost.ledger.store import LedgerStore

__all__ = [
    "DISABLED",
    "LEDGER_ENV",
    "LedgerConfigError",
    "LedgerDisabled",
    "configured_url",
    "default_ledger_path",
    "default_ledger_url",
    "is_disabled",
    "open_store",
    "sqlite_path",
]

# Until contract.Env carries it (Env.LEDGER): the ledger URL.
LEDGER_ENV = Env.LEDGER
XDG_DATA_HOME = "XDG_DATA_HOME"
DISABLED = "none"
_DYNAMODB_MODULE = "otel_ai_cost.ledger.dynamodb_store"


class LedgerConfigError(ValueError):
    """The ledger URL is not one we understand (the message names where it came from and what is accepted)."""


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
    """The ledger URL in effect: `OTEL_AI_COST_LEDGER`, else the default SQLite file."""
    return os.environ.get(LEDGER_ENV, "").strip() or default_ledger_url()


def is_disabled(url: str | None = None) -> bool:
    """True when the ledger is turned off (`none`, any case)."""
    return (configured_url() if url is None else url).strip().lower() == DISABLED


def open_store(url: str | None = None, *, origin: str | None = None) -> LedgerStore:
    """Opens the store named by `url` (default: `configured_url()`).

    `origin` names where the URL came from, for error messages (default: `OTEL_AI_COST_LEDGER` when `url` is
    None, else "the ledger URL"). Raises `LedgerDisabled` for `none` and `LedgerConfigError` for a URL it cannot
    use; errors of the store itself (`StoreUnavailable`, a missing boto3) propagate.
    """
    if url is None:
        url = configured_url()
        origin = origin or LEDGER_ENV
    origin = origin or "the ledger URL"
    url = url.strip()
    if url.lower() == DISABLED:
        raise LedgerDisabled(f"the ledger is disabled ({origin}={DISABLED})")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        from otel_ai_cost.ledger.sqlite_store import SQLiteStore

        return SQLiteStore(sqlite_path(url, origin=origin))
    if scheme == "dynamodb":
        # Imported only when asked for: it needs boto3, which the embedded default does not.
        try:
            module = importlib.import_module(_DYNAMODB_MODULE)
        except ImportError as exc:
            raise LedgerConfigError(
                f"{origin}={url!r} asks for DynamoDB, which needs boto3: pip install boto3 ({exc})"
            ) from exc
        try:
            return module.DynamoDBStore.from_url(url)
        except ValueError as exc:  # the store's own URL checks (table name, parameters)
            raise LedgerConfigError(f"{origin}={url!r}: {exc}") from exc
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
