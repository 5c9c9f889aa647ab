"""The DynamoDB ledger's API key registry: per (key fingerprint, provider, environment), the first and last UTC day
a record with that key was written, in one partition (`API_KEYS`) that `shared_api_keys` reads with one `Query`,
never a `Scan` of the records.

Kept like the environment registry: each store registers a (fingerprint, provider, environment) once per UTC day
(one `UpdateItem`, after the records' transactions succeeded; a set lookup on the hot path after that), so a busy
writer sends a handful of updates a day. It holds no call counts (they would cost an update per write): the
SQLite ledger's `api_keys` table has them, here `SharedApiKey.calls` is None.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import date
from typing import Any

from botocore.exceptions import ClientError

from otel_ai_cost.ledger import dynamodb_retry as retry
from otel_ai_cost.ledger.api_keys import SharedApiKey, shared_keys
from otel_ai_cost.ledger.dynamodb_schema import MAX_SORT_KEY_BYTES, PK, SK, escape
from otel_ai_cost.ledger.record import LedgerRecord

__all__ = ["API_KEYS_PK", "KeyRegistry", "api_key_item_key"]

logger = logging.getLogger("otel_ai_cost.ledger")

API_KEYS_PK = "API_KEYS"
_MAX_REMEMBERED = 10_000  # (fingerprint, provider, environment, day) registrations remembered per store


def api_key_item_key(fingerprint: str, provider: str, environment: str) -> dict[str, dict[str, str]]:
    return {PK: {"S": API_KEYS_PK}, SK: {"S": f"KEY#{escape(fingerprint)}#{escape(provider)}#{escape(environment)}"}}


class KeyRegistry:
    """One store's registrations (the store's client, table and retry policy are passed in)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: set[tuple[str, str, str, str]] = set()

    def forget(self) -> None:
        """After a failed write: register again (the table may have been recreated)."""
        with self._lock:
            self._done.clear()

    def register(self, store: Any, records: Iterable[LedgerRecord], deadline: float) -> int:
        """Registers the fingerprints of records just written; returns the retries it took."""
        wanted = {(r.api_key_fingerprint, r.provider, r.environment, r.day) for r in records if r.api_key_fingerprint}
        with self._lock:
            wanted -= self._done
        retries = 0
        for fingerprint, provider, environment, day in sorted(wanted):
            key = api_key_item_key(fingerprint, provider, environment)
            if len(key[SK]["S"].encode()) > MAX_SORT_KEY_BYTES:  # a provider and environment of 200 characters
                logger.debug("otel-ai-cost ledger: API key registry key too long for %s/%s", provider, environment)
                continue

            def update(key: dict[str, Any] = key, fields: tuple[str, ...] = (fingerprint, provider, environment),
                       day: str = day) -> dict[str, Any]:  # fmt: skip
                try:
                    return store.client.update_item(
                        TableName=store.table,
                        Key=key,
                        UpdateExpression="SET #fp = :fp, #provider = :provider, #environment = :environment, "
                        "#first = if_not_exists(#first, :day), #last = :day",
                        ConditionExpression="attribute_not_exists(#last) OR #last < :day",
                        ExpressionAttributeNames={
                            "#fp": "fingerprint",
                            "#provider": "provider",
                            "#environment": "environment",
                            "#first": "first_day",
                            "#last": "last_day",
                        },
                        ExpressionAttributeValues={
                            ":fp": {"S": fields[0]},
                            ":provider": {"S": fields[1]},
                            ":environment": {"S": fields[2]},
                            ":day": {"S": day},
                        },
                    )
                except ClientError as error:
                    if retry.error_code(error) == "ConditionalCheckFailedException":
                        return {}  # registered for this day (or a later one) already
                    raise

            _, call_retries = retry.call(store.retry_policy, "UpdateItem (API key registry)", update, deadline=deadline)
            retries += call_retries
            with self._lock:
                if len(self._done) >= _MAX_REMEMBERED:
                    self._done.clear()
                self._done.add((fingerprint, provider, environment, day))
        return retries

    @staticmethod
    def shared(items: Iterable[dict[str, Any]], since: date | str) -> list[SharedApiKey]:
        start = since if isinstance(since, str) else since.isoformat()
        rows = [
            (i["fingerprint"]["S"], i["provider"]["S"], i["environment"]["S"], None, i["last_day"]["S"])
            for i in items
            if i.get("last_day", {}).get("S", "") >= start
        ]
        return shared_keys(rows)
