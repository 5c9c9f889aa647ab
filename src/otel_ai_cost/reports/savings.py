"""Savings: what the report's period would have cost otherwise, from the ledger's token sums and the price catalog.

The input is `LedgerStore.aggregate(query, GROUP_BY)`: token sums per (day, provider, model, operation type,
pricing tier). Each row is priced with `PriceCatalog.resolve` at noon UTC of its day and the catalog's own exact
arithmetic (`ModelPrice.cost`), so every figure is exact for the tokens the ledger holds. Three kinds:

- **batch_tier** (exact): calls that need no interactive answer, priced at the batch tier instead of the tier they
  ran at. Eligible: operation type `batch` or `batch_processing`, or one with the word `test` or `tests` in it
  (split on `_`, `-`, `.` and spaces: `test`, `integration_test`, `unit-tests`, `e2e.test`; not `latest` or
  `contest`). Calls already on the batch tier are left out, and so is a model whose batch prices the catalog does
  not have (it would only price it at standard rates). Amount = the catalog's price of the same tokens at the
  calls' tier minus at the batch tier.
- **prompt_cache** (an upper bound, marked as an estimate): per model, the share of input tokens read from the
  prompt cache (`hit_rate` = cache reads / input tokens), the cost of the cache misses (the uncached input
  tokens at the input rate) and what those misses would have cost less as cache reads. Only a repeated prompt
  prefix can be cached, so this is the most caching could have saved, never a promise. Models whose cache reads
  cost the same as input (no caching) are left out.
- **cheaper_model** (an estimate, never advice): the same token mix priced as another model of the same family,
  where that is cheaper. Families are named conservatively, by the models' ids (dates and `-latest` removed):
  OpenAI `gpt-N[.M][o]` with its `-mini` and `-nano` sizes and `oN` with `oN-mini`; Anthropic Claude Opus, Sonnet
  and Haiku of the same version (`claude-sonnet-4-5`, `claude-haiku-4-5`; `claude-3-5-sonnet`,
  `claude-3-5-haiku`); Google `gemini-X.Y-pro`, `-flash` and `-flash-lite`. No other provider or model has a
  family. A candidate counts only when the catalog prices that very model at the calls' tier (not a close name it
  falls back to). It compares prices only: it says nothing of the quality a cheaper model gives.

Limits, all of which make a figure lower rather than higher where they matter: the ledger keeps cache writes as
one sum, priced here at the 5-minute rate (1-hour writes cost more, and save more at the batch tier); calls over a
model's long-context threshold are priced at its base rates (the aggregate does not keep each call's input size);
image and audio tokens are priced as text; per-call fees (web search) are the same on every tier and are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timezone
from decimal import Decimal

from otel_ai_cost.ledger.report import format_amount
from otel_ai_cost.ledger.store import EXACT_SUMS, AggregateRow
from otel_ai_cost.pricing.catalog import PriceCatalog
from otel_ai_cost.pricing.model_price import MissingPriceError, ModelPrice
from otel_ai_cost.pricing.resolver import normalize_model
from otel_ai_cost.pricing.tiers import BATCH, STANDARD, tier_for
from otel_ai_cost.pricing.usage import Usage
from otel_ai_cost.reports.anomalies import divide
from otel_ai_cost.reports.model import Saving

__all__ = [
    "BATCH_OPERATION_TYPES",
    "GROUP_BY",
    "KINDS",
    "batch_eligible",
    "family_members",
    "find_savings",
    "token_cost",
]

GROUP_BY = ("day", "provider", "model", "operation_type", "pricing_tier")
KINDS = ("batch_tier", "prompt_cache", "cheaper_model")
BATCH_OPERATION_TYPES = frozenset({"batch", "batch_processing"})
_TEST_WORDS = frozenset({"test", "tests"})
_WORDS = re.compile(r"[_\-.\s]+")
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")
_OPENAI = re.compile(r"(gpt-\d+(?:\.\d+)?o?|o\d+)(?:-(?:mini|nano))?")
_CLAUDE = re.compile(r"claude-(opus|sonnet|haiku)-(\d+(?:-\d)?)")
_CLAUDE_OLD = re.compile(r"claude-(\d(?:-\d)?)-(opus|sonnet|haiku)")
_GEMINI = re.compile(r"gemini-(\d+(?:\.\d+)?)-(pro|flash-lite|flash)")
_GOOGLE = ("gcp.gemini", "gcp.vertex_ai", "gcp.gen_ai")


def batch_eligible(operation_type: str) -> bool:
    """Whether calls of this operation type need no interactive answer (see the module documentation)."""
    name = operation_type.strip().lower()
    return name in BATCH_OPERATION_TYPES or not _TEST_WORDS.isdisjoint(_WORDS.split(name))


def _stem(provider: str, model: str) -> str:
    """The model id without its date or `-latest` (and Anthropic's `-0`): `gpt-4o-2024-08-06` -> `gpt-4o`."""
    stem = normalize_model(model)
    stem = _DATE_SUFFIX.sub("", stem.removesuffix("-latest"))
    if provider == "anthropic" and stem.endswith("-0"):
        stem = stem[:-2]
    return stem


def family_members(provider: str, model: str) -> tuple[str, ...]:
    """The other models of `model`'s family (see the module documentation), by id; () when it has none."""
    stem = _stem(provider, model)
    members: tuple[str, ...] = ()
    if provider == "openai" and (match := _OPENAI.fullmatch(stem)):
        base = match.group(1)
        members = (base, f"{base}-mini", f"{base}-nano") if base.startswith("gpt-") else (base, f"{base}-mini")
    elif provider == "anthropic" and (match := _CLAUDE.fullmatch(stem)):
        members = tuple(f"claude-{size}-{match.group(2)}" for size in ("opus", "sonnet", "haiku"))
    elif provider == "anthropic" and (match := _CLAUDE_OLD.fullmatch(stem)):
        members = tuple(f"claude-{match.group(1)}-{size}" for size in ("opus", "sonnet", "haiku"))
    elif provider in _GOOGLE and (match := _GEMINI.fullmatch(stem)):
        members = tuple(f"gemini-{match.group(1)}-{size}" for size in ("pro", "flash", "flash-lite"))
    return tuple(member for member in members if member != stem)


@dataclass(frozen=True)
class _Tokens:
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0

    @classmethod
    def of(cls, row: AggregateRow) -> _Tokens:
        return cls(row.input_tokens, row.output_tokens, row.cache_read_input_tokens, row.cache_write_input_tokens,
                   row.reasoning_output_tokens)  # fmt: skip

    @property
    def uncached(self) -> int:
        return max(0, self.input - self.cache_read - self.cache_write)


def token_cost(price: ModelPrice, tokens: _Tokens | AggregateRow) -> Decimal | None:
    """The exact cost of these token sums at `price`'s base rates (None when a class they use has no rate)."""
    if isinstance(tokens, AggregateRow):
        tokens = _Tokens.of(tokens)
    usage = Usage(
        input_tokens=tokens.input,
        output_tokens=tokens.output,
        cache_read_input_tokens=tokens.cache_read,
        cache_write_5m_input_tokens=tokens.cache_write,
        reasoning_output_tokens=min(tokens.reasoning, tokens.output),
        requests=0,  # per-call fees are left out (see the module documentation)
    )
    try:
        amount, _ = replace(price, long_context=()).cost(usage)
    except (MissingPriceError, ValueError, ArithmeticError):
        return None
    return amount


class _Pricer:
    """Prices resolved once per (provider, model, tier, day)."""

    def __init__(self, catalog: PriceCatalog) -> None:
        self.catalog = catalog
        self._cache: dict[tuple[str, str, str, date], ModelPrice | None] = {}

    def price(self, provider: str, model: str, tier: str, day: date) -> ModelPrice | None:
        key = (provider, model, tier, day)
        if key not in self._cache:
            at = datetime.combine(day, time(12), tzinfo=timezone.utc)
            try:
                # warn=False: a missing tier is asked on purpose here (does it exist?), not a call priced wrongly
                self._cache[key] = self.catalog.resolve(provider, model, at=at, tier=tier, warn=False)
            except ValueError:
                self._cache[key] = None
        return self._cache[key]


@dataclass
class _Pair:
    """Sums of two prices of the same tokens: as they ran (`now`) and otherwise (`other`)."""

    calls: int = 0
    now: Decimal = Decimal(0)
    other: Decimal = Decimal(0)
    tokens: _Tokens = _Tokens()

    def add(self, calls: int, now: Decimal, other: Decimal, tokens: _Tokens | None = None) -> None:
        self.calls += calls
        self.now = EXACT_SUMS.add(self.now, now)
        self.other = EXACT_SUMS.add(self.other, other)
        if tokens is not None:
            mine = self.tokens
            self.tokens = _Tokens(mine.input + tokens.input, mine.output + tokens.output,
                                  mine.cache_read + tokens.cache_read, mine.cache_write + tokens.cache_write,
                                  mine.reasoning + tokens.reasoning)  # fmt: skip

    @property
    def saved(self) -> Decimal:
        return _plain(EXACT_SUMS.subtract(self.now, self.other))


def _plain(amount: Decimal) -> Decimal:
    """The same amount without the price data's trailing zeros (`0.0150000` -> `0.015`; `10` stays `10`)."""
    normal = amount.normalize()
    exponent = normal.as_tuple().exponent
    return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal


def find_savings(rows: Iterable[AggregateRow], catalog: PriceCatalog) -> list[Saving]:
    """Every saving of the rows (grouped by `GROUP_BY`), largest first within each kind (`KINDS` order)."""
    return _find_savings(rows, catalog)


def _find_savings(rows: Iterable[AggregateRow], catalog: PriceCatalog) -> list[Saving]:
    pricer = _Pricer(catalog)
    batch: dict[tuple[str, str, str], _Pair] = {}
    cache: dict[tuple[str, str], _Pair] = {}
    cheaper: dict[tuple[str, str, str, str], _Pair] = {}
    for row in rows:
        group = dict(row.group)
        provider, model, operation_type = group["provider"], group["model"], group.get("operation_type", "")
        tier = tier_for(group.get("pricing_tier", "")) or STANDARD
        day = date.fromisoformat(group["day"])
        price = pricer.price(provider, model, tier, day) if model else None
        if price is None:
            continue  # unpriced (or no model): nothing to compare
        tokens = _Tokens.of(row)
        now = token_cost(price, tokens)
        if now is None:
            continue
        if tier != BATCH and batch_eligible(operation_type):
            batch_price = pricer.price(provider, model, BATCH, day)
            at_batch = None if batch_price is None or batch_price.tier != BATCH else token_cost(batch_price, tokens)
            if at_batch is not None:
                batch.setdefault((provider, model, operation_type), _Pair()).add(row.calls, now, at_batch)
        if tokens.uncached and price.cache_read is not None and price.input is not None:
            misses = _Tokens(input=tokens.uncached)
            as_hits = _Tokens(input=tokens.uncached, cache_read=tokens.uncached)
            miss_cost, hit_cost = token_cost(price, misses), token_cost(price, as_hits)
            if miss_cost is not None and hit_cost is not None:
                cache.setdefault((provider, model), _Pair()).add(row.calls, miss_cost, hit_cost, tokens)
        for candidate in family_members(provider, model):
            other = pricer.price(provider, candidate, tier, day)
            if other is None or other.tier != price.tier or _stem(provider, other.matched_model) != candidate:
                continue  # not that very model at this tier: never a guess
            at_other = token_cost(other, tokens)
            if at_other is not None:
                cheaper.setdefault((provider, model, tier, candidate), _Pair()).add(row.calls, now, at_other)
    out = _batch_savings(batch) + _cache_savings(cache) + _cheaper_savings(cheaper)
    return out


def _batch_savings(found: Mapping[tuple[str, str, str], _Pair]) -> list[Saving]:
    out = []
    for (provider, model, operation_type), pair in found.items():
        if pair.saved <= 0:
            continue
        subject = {"provider": provider, "model": model, "operation_type": operation_type, "calls": str(pair.calls)}
        message = (
            f"{pair.calls:,} call(s) of {model} ({provider}) with operation type {operation_type} need no "
            f"interactive answer: at the batch tier's prices they would have cost ${format_amount(pair.other)} "
            f"instead of ${format_amount(pair.now)}, ${format_amount(pair.saved)} less"
        )
        out.append(Saving("batch_tier", subject, pair.saved, message))
    return sorted(out, key=_largest)


def _cache_savings(found: Mapping[tuple[str, str], _Pair]) -> list[Saving]:
    out = []
    for (provider, model), pair in found.items():
        tokens = pair.tokens
        if pair.saved <= 0 or not tokens.input:
            continue
        hit_rate = divide(Decimal(tokens.cache_read), Decimal(tokens.input))
        subject = {
            "provider": provider,
            "model": model,
            "hit_rate": format(hit_rate, "f"),
            "input_tokens": str(tokens.input),
            "cache_read_input_tokens": str(tokens.cache_read),
            "uncached_input_tokens": str(tokens.uncached),
            "miss_cost": format(_plain(pair.now), "f"),
        }
        message = (
            f"{model} ({provider}): {_percent(hit_rate)} of input tokens read from the prompt cache; the "
            f"{tokens.uncached:,} uncached input tokens cost ${format_amount(pair.now)}, and as cache reads would have "
            f"cost ${format_amount(pair.other)}: at most ${format_amount(pair.saved)} less (only a repeated prompt "
            "prefix can be cached)"
        )
        out.append(Saving("prompt_cache", subject, pair.saved, message, estimate=True))
    return sorted(out, key=_largest)


def _cheaper_savings(found: Mapping[tuple[str, str, str, str], _Pair]) -> list[Saving]:
    out = []
    for (provider, model, tier, candidate), pair in found.items():
        if pair.saved <= 0:
            continue
        subject = {"provider": provider, "model": model, "candidate": candidate, "tier": tier,
                   "calls": str(pair.calls)}  # fmt: skip
        message = (
            f"Estimate: the token mix of {pair.calls:,} call(s) of {model} ({provider}) would have cost "
            f"${format_amount(pair.other)} at {candidate}'s prices instead of ${format_amount(pair.now)}, "
            f"${format_amount(pair.saved)} less. A price comparison only, not advice: it says nothing of how "
            f"{candidate} would do the job"
        )
        out.append(Saving("cheaper_model", subject, pair.saved, message, estimate=True))
    return sorted(out, key=_largest)


def _largest(saving: Saving) -> tuple[Decimal, tuple[tuple[str, str], ...]]:
    return (-saving.amount, tuple(sorted(saving.subject.items())))


def _percent(ratio: Decimal) -> str:
    """A share for a sentence, to one decimal place (a rate, not an amount)."""
    return f"{ratio * 100:.1f}%"
