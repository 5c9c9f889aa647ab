"""A resolved price for one (provider, model, tier) and the arithmetic that turns usage into money.

Rates are kept as the providers publish them (USD per million tokens, USD per call); at construction they are
compiled once into per-unit rates with the negotiated discount already applied, so `cost()` is a handful of
exact `Decimal` multiplications.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow

from otel_ai_cost.pricing.usage import Usage

# Token pricing classes, per million tokens (`TokenType` values) and per-call prices.
TOKEN_CLASSES: tuple[str, ...] = (
    "input",
    "output",
    "cache_read",
    "cache_write_5m",
    "cache_write_1h",
    "reasoning",
    "input_image",
    "input_audio",
    "output_image",
    "output_audio",
)
CALL_CLASSES: tuple[str, ...] = ("web_search", "request")
# Duration-priced classes, USD per hour (whisper-1 transcription bills the seconds of audio it heard).
DURATION_CLASSES: tuple[str, ...] = ("input_audio",)

# Exact or nothing: 60 digits is far beyond any token count times any rate, and Inexact is trapped, so an
# amount is never silently rounded (a trap surfaces as UNPRICED). The context is explicit so a caller that
# lowered the thread's decimal precision cannot change our figures.
MONEY = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
_PER_MILLION = Decimal(1_000_000)
_SECONDS_PER_HOUR = Decimal(3600)
# An hourly rate times seconds / 3600 need not be a finite decimal ($0.04 an hour for 1 s); such an amount is
# rounded half-even to a millionth of a micro-dollar, far below anything a provider bills.
_DURATION_QUANTUM = Decimal("1e-12")
_ROUNDED = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow])
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


class MissingPriceError(LookupError):
    """Usage has tokens (or calls) of a class this price has no rate for."""

    def __init__(self, pricing_class: str) -> None:
        super().__init__(f"no price for {pricing_class}")
        self.pricing_class = pricing_class


@dataclass(frozen=True, slots=True)
class LongContextTier:
    """Rates that apply to the whole request once its total input exceeds `threshold` tokens."""

    threshold: int
    input: Decimal | None
    output: Decimal | None
    cache_read: Decimal | None = None
    cache_write_5m: Decimal | None = None
    cache_write_1h: Decimal | None = None
    reasoning: Decimal | None = None
    input_image: Decimal | None = None
    input_audio: Decimal | None = None
    output_image: Decimal | None = None
    output_audio: Decimal | None = None

    def __post_init__(self) -> None:
        _fill_fallbacks(self)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Prices in force for one model and service tier during [effective_from, effective_until).

    Token rates are USD per million tokens; `per_request` and `per_web_search` are USD per call;
    `per_hour_input_audio` is USD per hour of input audio (duration-billed transcription). A class with
    no rate of its own falls back the way providers bill it: cache reads and writes at the input rate,
    reasoning at the output rate, image tokens at the text rates. Audio has no fallback: audio tokens on a model
    without audio rates are unpriced, not billed as text. `discount_percent` comes off every component.
    """

    provider: str
    model: str  # the model id as asked for
    matched_model: str  # the id that priced it: genai-prices' model id, or the catalog entry's pattern
    tier: str
    input: Decimal | None
    output: Decimal | None
    cache_read: Decimal | None = None
    cache_write_5m: Decimal | None = None
    cache_write_1h: Decimal | None = None
    reasoning: Decimal | None = None
    input_image: Decimal | None = None
    input_audio: Decimal | None = None
    output_image: Decimal | None = None
    output_audio: Decimal | None = None
    per_request: Decimal | None = None
    per_web_search: Decimal | None = None
    per_hour_input_audio: Decimal | None = None
    long_context: tuple[LongContextTier, ...] = ()
    discount_percent: Decimal = _ZERO
    effective_from: datetime | None = None  # None: open-ended
    effective_until: datetime | None = None
    source: str = "genai-prices"  # genai-prices | catalog | override: the highest layer that contributed
    _plan: tuple[tuple[int, tuple[Decimal | None, ...]], ...] = field(init=False, repr=False, compare=False, default=())
    _audio_hour: Decimal | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        _fill_fallbacks(self)
        object.__setattr__(self, "long_context", tuple(sorted(self.long_context, key=lambda t: t.threshold)))
        multiplier = MONEY.subtract(1, MONEY.divide(self.discount_percent, _HUNDRED))
        calls = (_scaled(self.per_web_search, multiplier, 1), _scaled(self.per_request, multiplier, 1))
        plan = [(tier.threshold, _compile(tier, multiplier) + calls) for tier in reversed(self.long_context)]
        plan.append((-1, _compile(self, multiplier) + calls))  # the base rates: any input is > -1
        object.__setattr__(self, "_plan", tuple(plan))
        object.__setattr__(self, "_audio_hour", _scaled(self.per_hour_input_audio, multiplier, 1))

    def cost(self, usage: Usage) -> tuple[Decimal, dict[str, Decimal]]:
        """The exact cost of `usage` and its non-zero components.

        Raises `MissingPriceError` when usage has a class with no rate, `ValueError` on negative counts.
        """
        # Hot path, inside every instrumented call: unrolled on purpose (a loop over (name, count, rate)
        # tuples costs ~30% more), each usage field read once, no property chains.
        n_input = usage.input_tokens
        n_read = usage.cache_read_input_tokens
        n_5m = usage.cache_write_5m_input_tokens
        n_1h = usage.cache_write_1h_input_tokens
        n_output = usage.output_tokens
        n_reasoning = usage.reasoning_output_tokens
        n_in_image = usage.image_input_tokens
        n_in_audio = usage.audio_input_tokens
        n_out_image = usage.image_output_tokens
        n_out_audio = usage.audio_output_tokens
        n_search = usage.web_search_requests
        n_requests = usage.requests
        n_audio_seconds = usage.input_audio_seconds
        if (
            n_input < 0
            or n_read < 0
            or n_5m < 0
            or n_1h < 0
            or n_output < 0
            or n_reasoning < 0
            or n_search < 0
            or n_in_image < 0
            or n_in_audio < 0
            or n_out_image < 0
            or n_out_audio < 0
            or n_requests < 0
            or n_audio_seconds < 0
        ):
            raise ValueError(f"negative usage: {usage!r}")
        # Highest threshold first; the whole request takes one tier's rates (the last entry is the base).
        for threshold, rates in self._plan:  # noqa: B007 - `rates` is the loop's result
            if n_input > threshold:
                break
        (
            r_input,
            r_read,
            r_5m,
            r_1h,
            r_output,
            r_reasoning,
            r_in_image,
            r_in_audio,
            r_out_image,
            r_out_audio,
            r_search,
            r_request,
        ) = rates
        mul = MONEY.multiply
        add = MONEY.add
        components: dict[str, Decimal] = {}
        total = _ZERO
        # Mutually exclusive classes: the semconv totals include cache reads/writes, reasoning, image and audio
        # tokens, so subtract.
        charges = (
            ("input", n_input - n_read - n_5m - n_1h - n_in_image - n_in_audio, r_input),
            ("cache_read", n_read, r_read),
            ("cache_write_5m", n_5m, r_5m),
            ("cache_write_1h", n_1h, r_1h),
            ("input_image", n_in_image, r_in_image),
            ("input_audio", n_in_audio, r_in_audio),
            ("output", n_output - n_reasoning - n_out_image - n_out_audio, r_output),
            ("reasoning", n_reasoning, r_reasoning),
            ("output_image", n_out_image, r_out_image),
            ("output_audio", n_out_audio, r_out_audio),
            ("web_search", n_search, r_search),
        )
        # A missing rate for a class the call used raises; a zero rate (a free class) adds no component.
        for name, count, rate in charges:
            if count > 0:
                if rate is None:
                    raise MissingPriceError(name)
                if rate:
                    amount = components[name] = mul(rate, count)
                    total = add(total, amount)
        if r_request and n_requests:
            amount = components["request"] = mul(r_request, n_requests)
            total = add(total, amount)
        if n_audio_seconds:
            if self._audio_hour is None:
                raise MissingPriceError("input_audio_seconds")
            if self._audio_hour:
                amount = components["input_audio_seconds"] = _per_hour(self._audio_hour, n_audio_seconds)
                total = add(total, amount)
        return total, components


def _per_hour(rate: Decimal, seconds: Decimal | int) -> Decimal:
    """`rate` USD an hour for `seconds`: exact where the quotient is finite, else rounded to 1e-12 USD."""
    cost = MONEY.multiply(rate, seconds)
    try:
        return MONEY.divide(cost, _SECONDS_PER_HOUR)
    except Inexact:
        return _ROUNDED.divide(cost, _SECONDS_PER_HOUR).quantize(_DURATION_QUANTUM, context=_ROUNDED)


def _fill_fallbacks(rates: ModelPrice | LongContextTier) -> None:
    """Classes without a rate of their own are billed like the class they belong to."""
    for name in ("cache_read", "cache_write_5m", "cache_write_1h"):
        if getattr(rates, name) is None:
            object.__setattr__(rates, name, rates.input)
    if rates.reasoning is None:
        object.__setattr__(rates, "reasoning", rates.output)
    if rates.input_image is None:
        object.__setattr__(rates, "input_image", rates.input)
    if rates.output_image is None:
        object.__setattr__(rates, "output_image", rates.output)


def _compile(rates: ModelPrice | LongContextTier, multiplier: Decimal) -> tuple[Decimal | None, ...]:
    """Per-token rates, discounted, in the order `cost()` unpacks them."""
    return tuple(
        _scaled(getattr(rates, name), multiplier, _PER_MILLION)
        for name in (
            "input",
            "cache_read",
            "cache_write_5m",
            "cache_write_1h",
            "output",
            "reasoning",
            "input_image",
            "input_audio",
            "output_image",
            "output_audio",
        )
    )


def _scaled(rate: Decimal | None, multiplier: Decimal, per: Decimal | int) -> Decimal | None:
    if rate is None:
        return None
    return MONEY.divide(MONEY.multiply(rate, multiplier), per)
