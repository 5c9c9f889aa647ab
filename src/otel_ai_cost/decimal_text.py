"""Decimal numbers given by people (CLI options, price and budget files, usage.jsonl), read one way everywhere.

`Decimal()` alone accepts far more than an amount: `"1_000"` (underscores), `"NaN"`, `"Infinity"`, and
`"1e400"`, which is finite but overflows every store and breaks formatting. An amount here is plain decimal
notation with an optional exponent (`45.23`, `0.000375`, `2.5e-6`), non-negative, at most `maximum` (each caller
states its own bound), with at most `MAX_DECIMAL_PLACES` decimal places and `MAX_SIGNIFICANT_DIGITS` significant
digits (what DynamoDB keeps). Anything else is a `ValueError` saying what is wrong.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation

__all__ = ["MAX_DECIMAL_PLACES", "MAX_SIGNIFICANT_DIGITS", "DecimalTextError", "parse_decimal"]

MAX_DECIMAL_PLACES = 18  # far below any price or amount anyone bills (a millionth of a millionth of a cent)
MAX_SIGNIFICANT_DIGITS = 38  # DynamoDB's number precision
# Digits with one optional point, an optional exponent: no underscores, signs or words.
_DECIMAL = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NOT_FINITE = re.compile(r"[+-]?(?:s?nan|inf|infinity)", re.IGNORECASE)


class DecimalTextError(ValueError):
    """A number that is not an acceptable amount. `problem` says what is wrong ("must be at most 1,000"),
    `out_of_range` whether it is a number, only too large or too precise; str() reads `what problem, got value`."""

    def __init__(self, what: str, problem: str, value: object, *, out_of_range: bool = False) -> None:
        self.problem = problem
        self.out_of_range = out_of_range
        super().__init__(f"{what} {problem}, got {_shown(value)}")


def parse_decimal(
    value: str | int | Decimal, *, maximum: Decimal, what: str = "amount", normalize: bool = True
) -> Decimal:
    """The exact value of `value`, normalized by value (`45.230` -> `45.23`, `1e2` -> `100`), or with the digits
    as typed (`normalize=False`: `10.00` stays `10.00`, for files whose figures are shown as written).

    `value` is decimal text, an int or a Decimal (never a float: its binary expansion is not what was typed).
    Raises `DecimalTextError` naming `what` and the rule broken.
    """
    number = _number(value, what)
    if number < 0:
        raise DecimalTextError(what, "must be a non-negative number", value)
    if number > maximum:
        raise DecimalTextError(what, f"must be at most {format(maximum, ',f')}", value, out_of_range=True)
    if number == 0:
        return Decimal(0) if normalize else number
    places = f"must have at most {MAX_DECIMAL_PLACES} decimal places"
    if number.adjusted() < -MAX_DECIMAL_PLACES:  # cheap first: 1e-99999 must not be normalized digit by digit
        raise DecimalTextError(what, places, value, out_of_range=True)
    normalized = number.normalize(Context(prec=len(number.as_tuple().digits) + 2))
    exponent = normalized.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > MAX_DECIMAL_PLACES:
        raise DecimalTextError(what, places, value, out_of_range=True)
    if len(normalized.as_tuple().digits) > MAX_SIGNIFICANT_DIGITS:
        problem = f"must have at most {MAX_SIGNIFICANT_DIGITS} significant digits"
        raise DecimalTextError(what, problem, value, out_of_range=True)
    if not normalize:
        return number
    # A positive exponent (1e2 -> 1E+2) written out as the integer it is, so every spelling prints alike.
    return normalized.quantize(Decimal(1)) if exponent > 0 else normalized


def _number(value: object, what: str) -> Decimal:
    """`value` as a finite Decimal (text in plain notation only); its sign is checked by the caller."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise DecimalTextError(what, "must be a finite number", value)
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if not isinstance(value, str):
        raise DecimalTextError(what, "must be an exact decimal", value)
    text = value.strip()
    if _NOT_FINITE.fullmatch(text):
        raise DecimalTextError(what, "must be a finite number", value)
    body = text[1:] if text.startswith("-") else text
    if not _DECIMAL.fullmatch(body):
        problem = "must be a number without underscores" if "_" in text else "must be a number"
        raise DecimalTextError(what, problem, value)
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent beyond what Decimal can hold
        raise DecimalTextError(what, "must be a number of a sensible size", value, out_of_range=True) from None


def _shown(value: object) -> str:
    text = repr(value) if not isinstance(value, Decimal) else repr(str(value))
    return text if len(text) <= 60 else text[:57] + "..."
