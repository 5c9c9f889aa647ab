"""Retries for the DynamoDB store: what is transient, how long we keep trying, and what the caller sees.

Two layers, on purpose:

1. **botocore** (inside one API call): short connect and read timeouts derived from the store's deadline and a
   single HTTP attempt (`BOTOCORE_ATTEMPTS`), so that no API call can outlast the deadline by more than one
   attempt; botocore's own retries (3 attempts of 10 s each) made a hung endpoint hold a write for 30-45 s.
2. **the store** (around API calls): retries throttling, 5xx and connection errors, a `TransactWriteItems`
   cancelled because of `TransactionConflict`/`ThrottlingError`/`ProvisionedThroughputExceeded` (a 400),
   `UnprocessedItems` of `BatchWriteItem` (a 200). It backs off exponentially with full jitter and gives up when
   its attempt budget or the operation's deadline is spent. Nothing is dropped silently: the caller still holds
   the records and writes them again (already stored ones count as duplicates).

**Every error a `write()` raises is one of the three classes of `ledger/store.py`** (docs/ledger.md, "Retries"):

| DynamoDB says                                                                    | class                         |
|----------------------------------------------------------------------------------|-------------------------------|
| `ValidationException`; cancellation reason `ValidationError`,                    | `InvalidRecord` (one record); |
| `ItemCollectionSizeLimitExceeded` (mostly refused before sending, by `validate`) | `RetryBatch` (several: split) |
| cancellation reason `TransactionConflict`, after the budget                      | `RetryBatch`                  |
| throttling codes and reasons, 5xx, `TransactionInProgressException`, connection  | `StoreUnavailable`            |
| errors and timeouts, after the budget or the deadline                            |                               |
| `ResourceNotFoundException`, access denied, bad or missing credentials           | `StoreUnavailable` at once    |
| any other code, or a cancellation reason this version does not know              | `StoreUnavailable` at once    |
| `ConditionalCheckFailed` on a record's `Put`                                     | none: a duplicate, counted    |

Worst case, one store operation returns or raises within `policy.deadline_s` plus one attempt
(`connect_timeout_s + read_timeout_s`): no new attempt starts once the deadline has passed.
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
from otel_ai_cost.ledger.store import RetryBatch, StoreUnavailable

T = TypeVar("T")

BOTOCORE_ATTEMPTS = 1  # HTTP attempts per API call: every retry is the store's own, under its deadline
DEFAULT_DEADLINE_S = 12.0  # whole write; + one attempt (7 s) stays under the shipped collector's 30 s timeout
MAX_DEADLINE_S = 300.0

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
# handled by the store) and ValidationError/ItemCollectionSizeLimitExceeded (a limit: never retried).
CONFLICT_CANCELLATION_REASONS = frozenset({"TransactionConflict"})  # this batch: exhausted -> RetryBatch
THROTTLED_CANCELLATION_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})  # the store
RETRYABLE_CANCELLATION_REASONS = CONFLICT_CANCELLATION_REASONS | THROTTLED_CANCELLATION_REASONS
# DynamoDB refuses the request as it is: a key or number over a limit. Retrying the same request cannot help.
INVALID_CODES = frozenset({"ValidationException"})
INVALID_CANCELLATION_REASONS = frozenset({"ValidationError", "ItemCollectionSizeLimitExceeded"})
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


class Refused(ValueError):
    """DynamoDB refused a write request as invalid (`ValidationException`, or a cancellation for a limit). Internal:
    the store turns it into `InvalidRecord` (a write of one record) or `RetryBatch` (several: split them)."""


def botocore_config(
    *, max_pool_connections: int = 32, connect_timeout_s: float = 2.0, read_timeout_s: float = 5.0
) -> Config:
    """The client configuration the store always uses (retries explicit, not inherited from ~/.aws/config): one HTTP
    attempt with short timeouts, so that the store's own loop owns every retry and can keep the deadline.

    botocore's client-side parameter validation is off: it was half of the store's CPU per record (measured with
    benchmarks/ledger_dynamodb.py), the store builds every request itself from validated records, and DynamoDB
    validates each request anyway (a malformed one is a ValidationException, never a silent write)."""
    return Config(
        parameter_validation=False,
        retries={"mode": "standard", "total_max_attempts": BOTOCORE_ATTEMPTS},
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        max_pool_connections=max_pool_connections,
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The store's own budget per operation (a whole `write()`, or one read call): at most `max_attempts` calls of
    one request and no new attempt after `deadline_s`; attempt n waits uniform(0, min(max_delay_s,
    base_delay_s * 2**n)) before it (full jitter). `connect_timeout_s`/`read_timeout_s` bound one HTTP attempt."""

    max_attempts: int = 8
    base_delay_s: float = 0.05
    max_delay_s: float = 2.0
    deadline_s: float = DEFAULT_DEADLINE_S
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError("RetryPolicy: max_attempts >= 1 and 0 <= base_delay_s <= max_delay_s")
        if not 0 < self.deadline_s <= MAX_DEADLINE_S or self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ValueError(f"RetryPolicy: 0 < deadline_s <= {MAX_DEADLINE_S:g} and positive timeouts")

    @classmethod
    def for_deadline(cls, deadline_s: float, **options: Any) -> RetryPolicy:
        """A policy whose HTTP timeouts fit the deadline: connect min(2 s, deadline/4), read min(5 s, deadline/2)."""
        return cls(deadline_s=deadline_s, connect_timeout_s=min(2.0, deadline_s / 4),
                   read_timeout_s=min(5.0, deadline_s / 2), **options)  # fmt: skip

    @property
    def retry_after_s(self) -> float:
        """What `StoreUnavailable` suggests to the caller: at least a second, the longest backoff otherwise."""
        return max(1.0, self.max_delay_s)

    def deadline(self) -> float:
        """The `time.monotonic()` after which an operation starting now starts no new attempt."""
        return time.monotonic() + self.deadline_s

    def start(self, what: str, deadline: float | None = None) -> Backoff:
        return Backoff(self, what, deadline)


class Backoff:
    """The retry state of one request (its attempts), under the deadline of the operation it belongs to."""

    def __init__(self, policy: RetryPolicy, what: str, deadline: float | None = None) -> None:
        self.policy = policy
        self.what = what
        self.attempts = 1  # the first attempt is under way
        self.retries = 0
        self._started = time.monotonic()
        self.deadline = policy.deadline() if deadline is None else deadline

    def wait(self, reason: str, *, conflict: bool = False) -> None:
        """Sleeps before the next attempt, or gives up when the budget is spent: `RetryBatch` when the failures
        were transaction conflicts (this batch), `StoreUnavailable` otherwise (the store)."""
        policy = self.policy
        delay = policy.rng.uniform(0, min(policy.max_delay_s, policy.base_delay_s * 2**self.attempts))
        now = time.monotonic()
        if self.attempts >= policy.max_attempts or now + delay > self.deadline:
            message = (
                f"DynamoDB {self.what}: still failing after {self.attempts} attempts in {now - self._started:.1f}s "
                f"({reason})"
            )
            if conflict:
                raise RetryBatch(message + "; write the batch again")
            raise StoreUnavailable(message, retry_after_s=policy.retry_after_s)
        policy.sleep(delay)
        self.attempts += 1
        self.retries += 1


def check_deadline(deadline: float, what: str, policy: RetryPolicy) -> None:
    """Raises `StoreUnavailable` when the operation's deadline has passed (before starting another request)."""
    if time.monotonic() >= deadline:
        raise StoreUnavailable(
            f"DynamoDB {what}: the {policy.deadline_s:g} s deadline passed", retry_after_s=policy.retry_after_s
        )


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


def cancellation_items(error: ClientError) -> list[dict[str, Any] | None]:
    """The stored item of each action of a `TransactionCanceledException` that asked for it
    (`ReturnValuesOnConditionCheckFailure: ALL_OLD`), None for the others, in the order of the actions."""
    return [reason.get("Item") for reason in error.response.get("CancellationReasons") or []]


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


def describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        message = error.response.get("Error", {}).get("Message", "")
        return f"{error_code(error)}: {message}"[:300]
    return f"{type(error).__name__}: {error}"[:300]


def failure(error: Exception, what: str, policy: RetryPolicy) -> Exception:
    """What a non-transient error of a request becomes: `Refused` (invalid input), else `StoreUnavailable` (a
    store that refuses us for a reason we cannot fix here, including error codes this version does not know)."""
    if isinstance(error, ClientError) and error_code(error) in INVALID_CODES:
        return Refused(f"DynamoDB {what}: {describe(error)}")
    return unavailable(error, what, policy) or StoreUnavailable(
        f"DynamoDB {what}: {describe(error)}", retry_after_s=policy.retry_after_s
    )


def call(policy: RetryPolicy, what: str, operation: Callable[[], T], *, deadline: float | None = None) -> tuple[T, int]:
    """Runs `operation` with the store's retries under `deadline` (default: the policy's from now); returns (result,
    retries including botocore's). Raises `StoreUnavailable` or `Refused`, never a botocore error."""
    backoff = policy.start(what, deadline)
    extra = 0
    while True:
        check_deadline(backoff.deadline, what, policy)
        try:
            result = operation()
        except (ClientError, BotoCoreError) as error:
            if isinstance(error, ClientError):
                extra += botocore_retries(error.response)
            if not is_transient(error):
                raise failure(error, what, policy) from error
            backoff.wait(describe(error))
            continue
        if isinstance(result, dict):
            extra += botocore_retries(result)
        return result, backoff.retries + extra


def batch_write(client: Any, table: str, requests: Sequence[dict[str, Any]], policy: RetryPolicy) -> int:
    """`BatchWriteItem` for unconditional puts/deletes: chunks of 25, `UnprocessedItems` re-sent with backoff until
    none is left or the budget is spent (`StoreUnavailable`). Returns the number of retries. A repair tool's call:
    each chunk has the policy's deadline (not one for all chunks)."""
    retries = 0
    for start in range(0, len(requests), MAX_BATCH_WRITE):
        pending: list[dict[str, Any]] = list(requests[start : start + MAX_BATCH_WRITE])
        backoff = policy.start("BatchWriteItem")
        while True:
            chunk = pending

            def send(chunk: list[dict[str, Any]] = chunk) -> Any:
                return client.batch_write_item(RequestItems={table: chunk})

            response, call_retries = call(policy, "BatchWriteItem", send, deadline=backoff.deadline)
            retries += call_retries
            pending = list(response.get("UnprocessedItems", {}).get(table, []))
            if not pending:
                break
            backoff.wait(f"{len(pending)} unprocessed items")
        retries += backoff.retries
    return retries
