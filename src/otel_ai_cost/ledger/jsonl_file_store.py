"""`TRACK_TO_FILE=true`: every call is also appended to a local file, one JSON line per call.

The legacy tracker's local logging for development, kept: with `TRACK_TO_FILE=true` the in-process ledger
(`instrument()`, `opentelemetry-instrument`) appends each call's record to a file as well as storing it in the
ledger. Development only: the file is never rotated, and a production program has its ledger.

```bash
TRACK_TO_FILE=true python app.py                                 # appends to /tmp/ai_usage.jsonl
TRACK_TO_FILE=true OTEL_AI_COST_USAGE_FILE=~/ai_usage.jsonl python app.py
TRACK_TO_FILE=true OTEL_AI_COST_LEDGER=none python app.py        # the file alone, no ledger
tail -f /tmp/ai_usage.jsonl
otel-ai-cost import /tmp/ai_usage.jsonl                          # into a ledger, exactly; again: nothing doubled
```

**Where.** `OTEL_AI_COST_USAGE_FILE` (`~` expanded; its directory is created if missing), else the legacy
tracker's own default, `/tmp/ai_usage.jsonl` (on systems without `/tmp`, the same name in the temporary
directory). Setting the path alone writes nothing: `TRACK_TO_FILE` is the switch. It reads `true`/`false` (also
`1`/`0`, `yes`/`no`, `on`/`off`, any case; `read_switch`, which reads `TRACK_AI_USAGE` too); unset or blank is
`false`. Another value is refused with a warning naming it, and no file is written.

**What a line is.** The record exactly as `otel-ai-cost export jsonl` writes it (`LedgerRecord.to_dict()` as
compact JSON, `otel_ai_cost.exports.jsonl.archive_line`): the call's identity (`trace_id`, `span_id`), every token
count, `amount` as exact decimal text (`null` when the cost is unknown, never 0), the attribution and CI fields.
`otel-ai-cost import FILE` reads such lines back with their own identity (`otel_ai_cost.ledger.manual`), so
importing the file into the ledger it was written beside, or twice, changes nothing, and into a fresh ledger gives
the same records and amounts. The legacy tracker's lines had other keys (`cost_usd` as a float, `request_id`);
this file is for `import` and for reading, not for the legacy's own tools.

**Safe in a shared `/tmp`.** The file is created readable by its owner only (mode 0600) and never through a
symbolic link; a file that belongs to another user is refused. Each batch of records is one `write` to a file
opened for appending, so on a local file system the lines of several processes writing the same file do not
interleave.

**Failures.** Beside a ledger (`TeeStore`), the ledger comes first: the records are appended once the ledger has
taken them, and a failed append is logged once (then counted in `ai_cost.instrumentation.errors`, component
`ledger.usage_file`, and in `TeeStore.file_failures`), and never fails the ledger's write. Alone
(`OTEL_AI_COST_LEDGER=none`, or a ledger that cannot be opened, which is logged), the file is the ledger: a failed
append is the store being unavailable, and the exporter keeps the records and retries, as for any store. Bounds
are a ledger's (`limits`): a record beyond one is refused alone, as any store refuses it, so every line can be
imported.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from otel_ai_cost.contract import Env
from otel_ai_cost.exports.jsonl import archive_line
from otel_ai_cost.ledger import limits
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.store import LedgerStore, StoreUnavailable, WriteResult

__all__ = [
    "DEFAULT_USAGE_FILE",
    "JsonlFileStore",
    "TeeStore",
    "UsageFileIsWriteOnly",
    "open_ledger_store",
    "read_switch",
    "tracks_to_file",
    "usage_file_from_env",
]

logger = logging.getLogger("otel_ai_cost.ledger")

# The legacy tracker's `log_file` default, kept so that a developer's `tail -f` still finds it.
DEFAULT_USAGE_FILE = (
    Path("/tmp/ai_usage.jsonl")  # nosec B108: created 0600, never through a link, never another user's (below)
    if os.name == "posix"
    else Path(tempfile.gettempdir()) / "ai_usage.jsonl"
)
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_FILE_COMPONENT = "ledger.usage_file"  # the ai_cost.instrumentation.errors component of a failed append


class UsageFileIsWriteOnly(NotImplementedError):
    """The usage file only takes records: reports, budgets and the API read a ledger (import the file into one)."""


def read_switch(name: str, environ: Mapping[str, str] | None = None, *, default: bool) -> bool:
    """The on/off variable `name`: `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off` (any case, trimmed); unset or
    blank is `default`. Raises ValueError naming the variable and its value for anything else."""
    environ = os.environ if environ is None else environ
    raw = environ.get(name) or ""
    value = raw.strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is neither true nor false (accepted: true/false, 1/0, yes/no, on/off)")


def usage_file_from_env(environ: Mapping[str, str] | None = None) -> Path | None:
    """The file each call is appended to (`OTEL_AI_COST_USAGE_FILE`, else `DEFAULT_USAGE_FILE`) when
    `TRACK_TO_FILE` is true; None when it is false or unset. ValueError for a `TRACK_TO_FILE` that is neither."""
    environ = os.environ if environ is None else environ
    if not read_switch(Env.TRACK_TO_FILE, environ, default=False):
        return None
    configured = (environ.get(Env.USAGE_FILE) or "").strip()
    return Path(configured).expanduser() if configured else DEFAULT_USAGE_FILE


def tracks_to_file(environ: Mapping[str, str] | None = None) -> bool:
    """True when `TRACK_TO_FILE` is true. A value that is neither true nor false counts as false, with a warning
    naming it (once per process): the host program starts all the same."""
    try:
        return usage_file_from_env(environ) is not None
    except ValueError as exc:
        global _warned_switch
        if not _warned_switch:
            _warned_switch = True
            logger.warning("otel-ai-cost: %s; no usage file is written", exc)
        return False


def open_ledger_store() -> LedgerStore:
    """The store the in-process ledger writes to: the ledger `open_store()` opens, with the usage file beside it
    (`TeeStore`) when `TRACK_TO_FILE` is true; the file alone when the ledger is off (`OTEL_AI_COST_LEDGER=none`)
    or cannot be opened (logged). Raises `LedgerDisabled` when the ledger is off and there is no file, and the
    ledger's own errors when it cannot be opened and there is no file."""
    from otel_ai_cost.ledger.open_store import LedgerDisabled, is_disabled, open_store, store_url

    usage_file = usage_file_from_env() if tracks_to_file() else None
    if usage_file is None:
        return open_store()
    file = JsonlFileStore(usage_file)
    if is_disabled():
        logger.debug("otel-ai-cost: the ledger is off; appending each call to the usage file %s", usage_file)
        return file
    try:
        ledger = open_store()
    except LedgerDisabled:
        return file
    except Exception as exc:
        logger.warning("otel-ai-cost: the usage ledger is off: %s; calls are appended to %s only", exc, usage_file)
        return file
    logger.debug("otel-ai-cost: recording calls into %s and appending them to %s", store_url(ledger), usage_file)
    return TeeStore(ledger, file)


_warned_switch = False


class JsonlFileStore:
    """A write-only store appending each record to `usage_file` as one archive line (see the module docs)."""

    def __init__(self, usage_file: str | Path) -> None:
        self.usage_file = Path(usage_file).expanduser()
        self._lock = threading.Lock()  # one append at a time per store: whole batches, in order

    def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
        """Appends `records`; raises `InvalidRecord` (nothing appended) for one beyond a ledger bound, and
        `StoreUnavailable` when the file cannot be written."""
        for record in records:
            limits.validate_record(record)  # a line `import` would refuse is never written
        if not records:
            return WriteResult(written=0, duplicates=0)
        data = "".join(archive_line(record) + "\n" for record in records).encode("utf-8")
        try:
            with self._lock:
                _append(self.usage_file, data)
        except OSError as exc:
            raise StoreUnavailable(f"cannot append to the usage file {self.usage_file}: {exc}") from exc
        return WriteResult(written=len(records), duplicates=0)

    def close(self) -> None:
        """Nothing to release: the file is opened for each append."""

    # A file of lines answers no query: these name what to do instead.
    def _write_only(self, *_: Any, **__: Any) -> Any:
        raise UsageFileIsWriteOnly(
            f"the usage file {self.usage_file} only takes records; import it into a ledger to read it: "
            f"otel-ai-cost import {self.usage_file}"
        )

    def query(self, query: Any) -> Iterator[LedgerRecord]:
        return self._write_only(query)

    aggregate = totals = replace_billed = write_billed = billed_lines = billed_usage = _write_only
    write_reconciliation = reconciled_days = reconciliation_runs = _write_only

    def __repr__(self) -> str:
        return f"JsonlFileStore({str(self.usage_file)!r})"


class TeeStore:
    """The ledger `store`, with every record it takes also appended to `file` (see the module docs).

    Reads go to the ledger alone. `file_failures` counts the appends that failed (the ledger had the records)."""

    def __init__(self, store: LedgerStore, file: JsonlFileStore) -> None:
        self.store = store
        self.file = file
        self.file_failures = 0

    def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
        result = self.store.write(records)  # the ledger first: its errors are the caller's, and nothing is appended
        try:
            self.file.write(records)
        except Exception as exc:  # never the ledger's failure
            from otel_ai_cost.telemetry.errors import report_internal_error  # lazy: telemetry imports the ledger

            self.file_failures += 1
            report_internal_error(_FILE_COMPONENT, exc)
        return result

    def close(self) -> None:
        try:
            self.file.close()
        finally:
            self.store.close()

    def query(self, query: Any) -> Iterator[LedgerRecord]:
        return self.store.query(query)

    def aggregate(self, query: Any, group_by: Sequence[str]) -> Any:
        return self.store.aggregate(query, group_by)

    def totals(self, environment: str, period: str) -> Any:
        return self.store.totals(environment, period)

    def __getattr__(self, name: str) -> Any:
        # The rest of the ledger's interface (the billed side, `environments`, `ping`, ...), as the ledger has it.
        if name in ("store", "file", "file_failures"):  # not set yet (a half-built instance): no recursion
            raise AttributeError(name)
        return getattr(self.store, name)

    def __repr__(self) -> str:
        return f"TeeStore({self.store!r}, {self.file!r})"


def _append(path: Path, data: bytes) -> None:
    """Appends `data` with one `write` (looping only on a short write), creating the file 0600. Refuses a
    symbolic link and, on POSIX, a file owned by another user: a shared /tmp must not redirect the lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP and path.is_symlink():  # O_NOFOLLOW's answer
            raise OSError(exc.errno, f"{path} is a symbolic link; not following it") from exc
        raise
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(f"{path} is not a regular file")
        if hasattr(os, "geteuid") and status.st_uid != os.geteuid():
            raise PermissionError(f"{path} belongs to another user (uid {status.st_uid}); not appending to it")
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)
