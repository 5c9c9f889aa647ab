"""What a call consumed, in the shape the semantic conventions use, and the pricing classes derived from it."""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from otel_ai_cost.ledger.limits import MAX_DURATION_MS, MAX_TOKENS, MAX_WEB_SEARCH_REQUESTS

# The largest token count of one pricing class a call may report: the ledger's bound on every record (stated, with
# its reasoning, in `ledger/limits.py`), so a call the instrumentation prices is a call the ledger can store.
# Anything beyond is junk (a broken gateway, a corrupted body), never a bill.
MAX_TOKEN_COUNT = MAX_TOKENS
# Likewise the other two numbers a price multiplies: billable requests per call (`track_request(count=)`), the
# ledger's per-call bound on requests, and seconds of audio (whisper's `usage.seconds`), the ledger's bound on a
# call's duration (7 days). At the bounds, the shipped prices give at most a few tens of thousands of USD a call,
# far below the ledger's per-record bound on amounts.
MAX_REQUEST_COUNT = MAX_WEB_SEARCH_REQUESTS
MAX_AUDIO_SECONDS = Decimal(int(MAX_DURATION_MS // 1000))


@dataclass(frozen=True, slots=True)
class Usage:
    """Token and request usage of one call, as the provider reported it.

    Totals follow the GenAI semantic conventions: `input_tokens` includes cache reads and cache writes,
    `output_tokens` includes reasoning tokens. The pricing classes (`uncached_input_tokens`,
    `plain_output_tokens`, ...) are derived, so nothing is counted twice. Image and audio tokens are likewise
    parts of the totals, priced at their own rates where a model has them.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_5m_input_tokens: int = 0
    cache_write_1h_input_tokens: int = 0
    reasoning_output_tokens: int = 0
    image_input_tokens: int = 0
    audio_input_tokens: int = 0
    image_output_tokens: int = 0
    audio_output_tokens: int = 0
    web_search_requests: int = 0
    # Seconds of input audio billed by duration (whisper-1 transcription); a decimal, as the provider reports it.
    input_audio_seconds: Decimal | int = 0
    requests: int = 1  # billable requests: one per call, N for `track_request(count=N)`
    # Why the provider's usage could not be read (`field=value`); then no count above is known (they are zeros
    # that mean nothing) and the call is `unpriced` with reason `malformed_usage`, never a priced $0.
    malformed: str | None = None

    def __post_init__(self) -> None:
        if self.requests == 1 and not self.input_audio_seconds:
            return  # the hot path: every call of a token-billed API
        problem = _request_problem(self.requests) or _seconds_problem(self.input_audio_seconds)
        if problem is not None:  # a number past its bound is as unknown as a malformed one: never priced
            object.__setattr__(self, "malformed", self.malformed or problem)
            object.__setattr__(self, "requests", 1)
            object.__setattr__(self, "input_audio_seconds", 0)

    @property
    def cache_creation_input_tokens(self) -> int:
        return self.cache_write_5m_input_tokens + self.cache_write_1h_input_tokens

    @property
    def uncached_input_tokens(self) -> int:
        """Input billed at the plain input rate."""
        return max(
            0,
            self.input_tokens
            - self.cache_read_input_tokens
            - self.cache_creation_input_tokens
            - self.image_input_tokens
            - self.audio_input_tokens,
        )

    @property
    def plain_output_tokens(self) -> int:
        """Output other than reasoning, images and audio."""
        return max(
            0, self.output_tokens - self.reasoning_output_tokens - self.image_output_tokens - self.audio_output_tokens
        )


def _request_problem(requests: object) -> str | None:
    """None for a billable request count (an int from 0 to MAX_REQUEST_COUNT), else `requests=<value>`."""
    if type(requests) is int and 0 <= requests <= MAX_REQUEST_COUNT:
        return None
    return f"requests={reprlib.repr(requests)}"


def _seconds_problem(seconds: object) -> str | None:
    """None for seconds of audio (a finite, non-negative int or Decimal up to MAX_AUDIO_SECONDS), else why not."""
    if type(seconds) is int or (type(seconds) is Decimal and seconds.is_finite()):  # Decimal NaN cannot compare
        if 0 <= seconds <= MAX_AUDIO_SECONDS:  # type: ignore[operator]
            return None
    return f"seconds={reprlib.repr(seconds)}"


_MAX_DIGITS = len(str(MAX_TOKEN_COUNT))  # longer digit strings are beyond the bound (and int() of them is slow)


class TokenCounts:
    """Reads one response's token counts through one validator, remembering the first value that is not a count.

    A count is an `int` (not a `bool`) in [0, MAX_TOKEN_COUNT]. `None` is an absent count (0) unless the field is
    `required` (a total the API always sends: a null one is malformed). Strings, floats, lists, negatives and
    counts beyond the bound are malformed: `usage()` then gives a `Usage` whose `malformed` says which field,
    so the call is unpriced rather than priced as if those tokens were 0. Every extractor reads counts this way.
    """

    __slots__ = ("problem",)

    def __init__(self) -> None:
        self.problem: str | None = None

    def count(self, value: Any, name: str, *, required: bool = False) -> int:
        if type(value) is int and 0 <= value <= MAX_TOKEN_COUNT:  # the hot path: one type check, one range check
            return value
        if value is None and not required:
            return 0
        self.fail(f"{name}={reprlib.repr(value)}")  # abbreviated: a huge list must not reach a log
        return 0

    def fail(self, problem: str) -> None:
        """Mark the usage malformed for a reason no single count shows (e.g. parts that exceed their total)."""
        if self.problem is None:
            self.problem = problem

    def within(self, total_name: str, total: int, parts_name: str, parts: int) -> None:
        """Mark the usage malformed when parts of a total (cache reads of the input, ...) add up to more."""
        if parts > total:
            self.fail(f"{parts_name} ({parts}) > {total_name} ({total})")

    def attr(self, obj: Any, name: str, *, required: bool = False) -> int:
        """The count in attribute `name` of an SDK object (absent attribute: None)."""
        return self.count(getattr(obj, name, None), name, required=required)

    def key(self, mapping: Any, name: str, *, required: bool = False) -> int:
        """The count under `name` of a parsed JSON object (not a mapping: every key absent)."""
        return self.count(mapping.get(name) if isinstance(mapping, Mapping) else None, name, required=required)

    def text(self, value: Any, name: str, *, required: bool = False) -> int:
        """A count sent as text (an HTTP header): plain ASCII digits only, then as `count`."""
        if isinstance(value, str):
            digits = value.strip()
            if digits.isascii() and digits.isdigit() and len(digits) <= _MAX_DIGITS:
                value = int(digits)
        return self.count(value, name, required=required)

    def usage(self, **counts: Any) -> Usage:
        """`Usage(**counts)`, or, if any count read so far was malformed, a `Usage` that says so."""
        if self.problem is not None:
            return Usage(malformed=self.problem)
        return Usage(**counts)
