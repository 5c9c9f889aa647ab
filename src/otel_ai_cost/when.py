"""Dates and times given by people (CLI options, price files, usage.jsonl), read one way everywhere."""

from __future__ import annotations

from datetime import date, datetime, timezone


class NoTimezoneError(ValueError):
    """A date-time without a timezone where one is required."""


def parse_when(text: str, *, naive_is_utc: bool = True) -> datetime:
    """`YYYY-MM-DD` (UTC midnight) or an ISO 8601 date-time (`Z` accepted), as an aware UTC datetime.

    A date-time without a timezone is UTC, or `NoTimezoneError` with `naive_is_utc=False`. Anything else is a
    `ValueError`.
    """
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        if not naive_is_utc:
            raise NoTimezoneError(f"{text!r} has no timezone")
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
