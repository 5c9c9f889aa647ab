"""One API key per environment: the keys (by fingerprint) the ledger recorded in more than one environment.

Every call's record carries its key's fingerprint (`ai_cost.api_key.fingerprint`: a keyed hash, never the key).
A key seen in two environments (a production key used from `development` or `cicd`) mixes their spend and widens
a leak; this check lists each such key with its environments, over the last `SHARED_API_KEY_LOOKBACK_DAYS` days,
the window of the ledger service's `ai_cost_ledger_shared_api_keys` and its alert `AICostSharedApiKeys`. It
only reads the ledger (`open_store(create=False)`): a ledger that does not exist yet is a skip, not a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Any

from otel_ai_cost.contract import SHARED_API_KEY_LOOKBACK_DAYS, ApiKey, Env
from otel_ai_cost.doctor.checks import Result, Status
from otel_ai_cost.ledger.api_keys import lookback_start

__all__ = ["API_KEYS", "check_api_keys"]

API_KEYS = "api-keys"

_FIX = (
    "give each environment its own key (OpenAI: a project key per environment; Anthropic: a workspace per "
    "environment; AWS: an account or role per environment), then revoke the shared one: docs/operations.md, "
    '"One API key per environment"'
)


def check_api_keys(open_ledger: Callable[[], Any] | None = None, today: Callable[[], date] | None = None) -> Result:
    """`warn` for each key recorded in more than one environment over the lookback window; `ok` when none;
    `skip` when the ledger is off, missing, or keeps no fingerprints."""
    from otel_ai_cost.ledger.open_store import LedgerDisabled, LedgerNotFound, open_store

    day = today() if today is not None else datetime.now(timezone.utc).date()
    try:
        store = open_ledger() if open_ledger is not None else open_store(create=False)
    except LedgerDisabled as exc:
        return Result(API_KEYS, Status.SKIP, f"no ledger to read the keys from ({exc})")
    except LedgerNotFound as exc:
        return Result(API_KEYS, Status.SKIP, f"no ledger yet ({exc})")
    try:
        read = getattr(store, "shared_api_keys", None)
        if read is None:
            return Result(API_KEYS, Status.SKIP, f"this ledger ({type(store).__name__}) keeps no key fingerprints")
        shared = read(lookback_start(day))
    finally:
        store.close()
    window = f"over the last {SHARED_API_KEY_LOOKBACK_DAYS} days"
    if not shared:
        return Result(API_KEYS, Status.OK, f"no API key was recorded in more than one environment {window}")
    details = tuple(
        f"{key.provider} key {key.fingerprint} ({ApiKey.FINGERPRINT}): {', '.join(key.environments)}; "
        + (f"{key.calls} calls, " if key.calls is not None else "")
        + f"last seen {key.last_day}"
        for key in shared
    )
    return Result(
        API_KEYS,
        Status.WARN,
        f"{len(shared)} API key{'s' if len(shared) != 1 else ''} recorded in more than one environment {window}",
        fix=f"{_FIX}. A fingerprint is the first 8 hex digits of a keyed hash of the key "
        f"({Env.KEY_FINGERPRINT_SECRET}): otel-ai-cost never stores the key",
        details=details,
    )
