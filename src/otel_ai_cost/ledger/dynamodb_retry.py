"""Retries for the DynamoDB store: what is transient, how long we keep trying, and what the caller sees.

Two layers, on purpose:

1. **botocore** (inside one API call): `standard` retry mode, `total_max_attempts` HTTP attempts, exponential
   backoff with full jitter (base 1 s, capped at 20 s), retrying throttling errors, 5xx, `TransactionInProgress`
   and connection errors. It covers short blips without the store noticing.
2. **the store** (around API calls): retries what botocore does not or cannot: a `TransactWriteItems` cancelled
   because of `TransactionConflict`/`ThrottlingError`/`ProvisionedThroughputExceeded` (botocore sees a 400 and
   stops), `UnprocessedItems` of `BatchWriteItem` (a 200), and throttling that outlasted botocore's attempts. It
   backs off exponentially with full jitter and gives up when either its attempt or its time budget is spent,
   raising `StoreUnavailable(retry_after_s=...)`: the caller still holds the records and retries later (the
   ledger service answers 503 with `Retry-After`). Nothing is dropped silently.

Worst case, one store operation makes `policy.max_attempts` x `BOTOCORE_ATTEMPTS` HTTP requests, and it stops
starting new attempts once `policy.deadline_s` has passed.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from otel_ai_cost.ledger.dynamodb_schema import MAX_BATCH_WRITE
from otel_ai_cost.ledger.store import StoreUnavailable

T = TypeVar("T")

BOTOCORE_ATTEMPTS = 3  # HTTP attempts per API call, the first included

# Error codes worth another attempt: capacity and transient server-side trouble.
RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "LimitExceededException",
    }
)
# `TransactionCanceledException` reasons that mean "try again", as opposed to ConditionalCheckFailed (a duplicate,
# handled by the store) and ValidationError/ItemCollectionSizeLimitExceeded (a bug or a limit: never retried).
RETRYABLE_CANCELLATION_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
# The store cannot work at all until someone acts (create the table, fix credentials): no retry, but still
# "unavailable" rather than a crash, so the records are kept by the caller instead of dropped.
UNAVAILABLE_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
    }
)


def botocore_config(*, max_pool_connections: int = 32) -> Config:
    """The client configuration the store always uses (retries explicit, not inherited from ~/.aws/config).

    botocore's client-side parameter validation is off: it was half of the store's CPU per record (measured with
    benchmarks/ledger_dynamodb.py), the store builds every request itself from validated records, and DynamoDB
    validates each request anyway (a malformed one is a ValidationException, never a silent write)."""
    return Config(
        parameter_validation=False,
        retries={"mode": "standard", "total_max_attempts": BOTOCORE_ATTEMPTS},
        connect_timeout=3,
        read_timeout=10,
        max_pool_connections=max_pool_connections,
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The store's own budget per operation: at most `max_attempts` calls and no new attempt after `deadline_s`;
    attempt n waits uniform(0, min(max_delay_s, base_delay_s * 2**n)) before it (full jitter)."""

    max_attempts: int = 8
    base_delay_s: float = 0.05
    max_delay_s: float = 2.0
    deadline_s: float = 15.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError("RetryPolicy: max_attempts >= 1 and 0 <= base_delay_s <= max_delay_s")

    @property
    def retry_after_s(self) -> float:
        """What `StoreUnavailable` suggests to the caller: at least a second, the longest backoff otherwise."""
        return max(1.0, self.max_delay_s)

    def start(self, what: str) -> Backoff:
        return Backoff(self, what)


class Backoff:
    """The retry state of one operation."""

    def __init__(self, policy: RetryPolicy, what: str) -> None:
        self.policy = policy
        self.what = what
        self.attempts = 1  # the first attempt is under way
        self.retries = 0
        self._started = time.monotonic()

    def wait(self, reason: str) -> None:
        """Sleeps before the next attempt, or raises `StoreUnavailable` when the budget is spent."""
        policy = self.policy
        delay = policy.rng.uniform(0, min(policy.max_delay_s, policy.base_delay_s * 2**self.attempts))
        elapsed = time.monotonic() - self._started
        if self.attempts >= policy.max_attempts or elapsed + delay > policy.deadline_s:
            raise StoreUnavailable(
                f"DynamoDB {self.what}: still failing after {self.attempts} attempts in {elapsed:.1f}s ({reason})",
                retry_after_s=policy.retry_after_s,
            )
        policy.sleep(delay)
        self.attempts += 1
        self.retries += 1


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def botocore_retries(response: dict[str, Any]) -> int:
    """How many times botocore itself retried the call that produced `response` (or the error's response)."""
    return int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)


def cancellation_reasons(error: ClientError) -> list[str]:
    """The per-action reason codes of a `TransactionCanceledException`, in the order of the actions.

    Read from `CancellationReasons`; older servers only put them in the message ("... reasons [A, None]")."""
    reasons = error.response.get("CancellationReasons")
    if reasons:
        return [str(reason.get("Code") or "None") for reason in reasons]
    match = re.search(r"\[([^\]]*)\]", str(error.response.get("Error", {}).get("Message", "")))
    return [part.strip() for part in match.group(1).split(",")] if match else []


def is_transient(error: Exception) -> bool:
    """Worth another attempt after backing off."""
    if isinstance(error, ClientError):
        return error_code(error) in RETRYABLE_CODES
    return isinstance(error, (BotoConnectionError, HTTPClientError))


def unavailable(error: Exception, what: str, policy: RetryPolicy) -> StoreUnavailable | None:
    """`StoreUnavailable` for errors that no retry fixes but that must not lose records; None otherwise."""
    if isinstance(error, NoCredentialsError):
        return StoreUnavailable(f"DynamoDB {what}: no AWS credentials found", retry_after_s=policy.retry_after_s)
    if isinstance(error, ClientError) and error_code(error) in UNAVAILABLE_CODES:
        message = error.response.get("Error", {}).get("Message", "")
        hint = " (run `otel-ai-cost ledger init`)" if error_code(error) == "ResourceNotFoundException" else ""
        return StoreUnavailable(
            f"DynamoDB {what}: {error_code(error)}: {message}{hint}", retry_after_s=policy.retry_after_s
        )
    return None


def call(policy: RetryPolicy, what: str, operation: Callable[[], T]) -> tuple[T, int]:
    """Runs `operation` with the store's retries; returns (result, retries including botocore's)."""
    backoff = policy.start(what)
    extra = 0
    while True:
        try:
            result = operation()
        except (ClientError, BotoCoreError) as error:
            if isinstance(error, ClientError):
                extra += botocore_retries(error.response)
            problem = unavailable(error, what, policy)
            if problem is not None:
                raise problem from error
            if not is_transient(error):
                raise
            backoff.wait(str(error))
            continue
        if isinstance(result, dict):
            extra += botocore_retries(result)
        return result, backoff.retries + extra


def batch_write(client: Any, table: str, requests: Sequence[dict[str, Any]], policy: RetryPolicy) -> int:
    """`BatchWriteItem` for unconditional puts/deletes: chunks of 25, `UnprocessedItems` re-sent with backoff until
    none is left or the budget is spent (`StoreUnavailable`). Returns the number of retries."""
    retries = 0
    for start in range(0, len(requests), MAX_BATCH_WRITE):
        pending: list[dict[str, Any]] = list(requests[start : start + MAX_BATCH_WRITE])
        backoff = policy.start("BatchWriteItem")
        while True:
            chunk = pending

            def send(chunk: list[dict[str, Any]] = chunk) -> Any:
                return client.batch_write_item(RequestItems={table: chunk})

            response, call_retries = call(policy, "BatchWriteItem", send)
            retries += call_retries
            pending = list(response.get("UnprocessedItems", {}).get(table, []))
            if not pending:
                break
            backoff.wait(f"{len(pending)} unprocessed items")
        retries += backoff.retries
    return retries
