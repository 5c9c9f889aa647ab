"""Building a recorder's quota guard at `instrument()`: which budgets file, which ledger, which counters.

The budgets file is the one `budgets check` reads (`$OTEL_AI_COST_BUDGETS`, else the nearest `config/budgets.yaml`
from the working directory up). No file, or no `enforce:` limit for the recorder's environment: no guard. A file
that cannot be used is logged as an error naming the file, line and key, and the process runs without quotas (a
typo in the budgets file must not stop a service from starting); `otel-ai-cost budgets check` shows the same error.

One book of figures per (budgets file, ledger) in the process, shared by every recorder that uses them.
"""

from __future__ import annotations

import logging
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import MeterProvider, get_meter

from otel_ai_cost import __version__
from otel_ai_cost.budgets.config import BudgetConfig, BudgetConfigError, find_budgets_file, load_budgets
from otel_ai_cost.budgets.quota_book import QuotaBook
from otel_ai_cost.budgets.quota_guard import LimitGuard
from otel_ai_cost.contract import INSTRUMENTATION_SCOPE, QUOTA_BLOCKED, QUOTA_WARNED, SCHEMA_URL, Env, Record
from otel_ai_cost.ledger.open_store import configured_url, is_disabled, open_store

if TYPE_CHECKING:
    from otel_ai_cost.telemetry.recorder import Recorder

__all__ = ["build_guard", "load_quota_config"]

logger = logging.getLogger("otel_ai_cost")

_lock = threading.Lock()
_configs: dict[tuple[str, int, int], BudgetConfig | None] = {}  # (file, mtime_ns, size) -> config (None: unusable)
_books: weakref.WeakValueDictionary[tuple[str, str], QuotaBook] = weakref.WeakValueDictionary()
_counters: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = weakref.WeakKeyDictionary()
_global_counters: tuple[Any, Any] | None = None


def build_guard(recorder: Recorder) -> LimitGuard | None:
    """The guard of the limits of the recorder's environment, or None (see the module documentation)."""
    config = load_quota_config()
    if config is None or not config.limits:
        return None
    environment = str(recorder.record_fields.get(Record.ENVIRONMENT) or recorder.environment)
    limits = [limit for limit in config.limits if limit.environment == environment]
    if not limits:
        return None
    book = _book_for(config.path)
    if recorder.ledger is not None:
        book.attach_ledger(recorder.ledger)
    blocked, warned = _counters_for(recorder)
    return LimitGuard(
        book,
        limits,
        environment=environment,
        resource_fields=recorder.record_fields,
        blocked=blocked,
        warned=warned,
        source=f"budgets file {config.path}",
    )


def load_quota_config() -> BudgetConfig | None:
    """The budgets file in effect, parsed once per version of the file; None when there is none or it is unusable
    (logged once)."""
    try:
        path, _ = find_budgets_file(None)
    except BudgetConfigError:
        return None  # no budgets file: no quotas
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = (str(path), 0, -1)
    with _lock:
        if key in _configs:
            return _configs[key]
    try:
        config: BudgetConfig | None = load_budgets(path)
    except BudgetConfigError as exc:
        logger.error("otel-ai-cost: usage quotas are OFF: the budgets file cannot be used:\n%s", exc)
        config = None
    with _lock:
        if len(_configs) > 64:
            _configs.clear()
        _configs[key] = config
    return config


def _book_for(budgets_path: str) -> QuotaBook:
    url = configured_url()
    key = (str(Path(budgets_path).resolve()), url)
    with _lock:
        book = _books.get(key)
        if book is None:
            if is_disabled(url):
                logger.info("otel-ai-cost: the ledger is off (%s=none): quotas count this process's calls", Env.LEDGER)
                book = QuotaBook(None)
            else:
                book = QuotaBook(lambda: open_store(url, origin=Env.LEDGER), where=_where(url))
            _books[key] = book
    return book


def _where(url: str) -> str:
    """The ledger, named for a log line: its URL without the query (region, endpoint)."""
    return f"the ledger {url.split('?', 1)[0]}"


def _counters_for(recorder: Recorder) -> tuple[Any, Any]:
    """The blocked and warned counters of the recorder's meter provider (one pair per provider)."""
    global _global_counters
    provider = _meter_provider_of(recorder)
    with _lock:
        if provider is None:
            if _global_counters is None:
                _global_counters = _make_counters(None)
            return _global_counters
        pair = _counters.get(provider)
        if pair is None:
            pair = _counters[provider] = _make_counters(provider)
        return pair


def _make_counters(provider: MeterProvider | None) -> tuple[Any, Any]:
    meter = get_meter(INSTRUMENTATION_SCOPE, __version__, provider, schema_url=SCHEMA_URL)
    return tuple(  # type: ignore[return-value]
        meter.create_counter(spec.name, unit=spec.unit, description=spec.description)
        for spec in (QUOTA_BLOCKED, QUOTA_WARNED)
    )


def _meter_provider_of(recorder: Recorder) -> MeterProvider | None:
    """The meter provider the recorder was built with (None: the global one)."""
    return recorder.meter_provider
