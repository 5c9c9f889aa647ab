"""`otel-ai-cost prices`: show the price in force for a model, price a call by hand, check overrides."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import click

from otel_ai_cost.contract import Env, PricingStatus
from otel_ai_cost.decimal_text import parse_decimal
from otel_ai_cost.ledger.limits import MAX_TOKENS, MAX_WEB_SEARCH_REQUESTS
from otel_ai_cost.pricing.tiers import TIERS
from otel_ai_cost.when import parse_when

if TYPE_CHECKING:
    from otel_ai_cost.pricing.catalog import PriceCatalog
    from otel_ai_cost.pricing.model_price import ModelPrice

# Model-name prefixes -> gen_ai.provider.name, for when --provider is not given.
_PROVIDER_PREFIXES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("gpt-", "o1", "o3", "o4", "text-embedding", "chatgpt-", "whisper-", "tts-"), "openai"),
    (("claude",), "anthropic"),
    (("grok",), "x_ai"),
    (("sonar",), "perplexity"),
    (("gemini",), "gcp.gemini"),
)
_TOKEN_ROWS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "reasoning")
_MAX_AUDIO_SECONDS = Decimal(7 * 24 * 3600)  # of one call: the ledger's longest call duration (a week)
_TOKENS = click.IntRange(min=0, max=MAX_TOKENS)  # the ledger's bound per token count of a call


class _Moment(click.ParamType):
    """A date (UTC midnight) or an ISO 8601 datetime (naive means UTC)."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            return parse_when(text)
        except ValueError:
            self.fail(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 datetime", param, ctx)


class _Seconds(click.ParamType):
    """Seconds as an exact decimal (`0.1` is one tenth, not a binary float's expansion), finite and bounded."""

    name = "SECONDS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        if isinstance(value, Decimal):
            return value
        try:
            return parse_decimal(str(value), maximum=_MAX_AUDIO_SECONDS, what="seconds")
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


_provider_option = click.option(
    "--provider",
    "-p",
    help="gen_ai.provider.name (openai, anthropic, aws.bedrock, x_ai, perplexity, gcp.gemini, ...). "
    "Default: inferred from the model name.",
)
_at_option = click.option(
    "--at",
    "at",
    type=_Moment(),
    help="When the call happened (YYYY-MM-DD or ISO datetime, UTC). Default: now.",
)
_tier_option = click.option(
    "--tier",
    type=click.Choice(TIERS, case_sensitive=False),
    default="standard",
    show_default=True,
    help="Service tier the call was billed in.",
)


@click.group(name="prices")
def prices() -> None:
    """Inspect prices, price a call by hand, and check price override files.

    Prices come from genai-prices, layered with the catalog shipped in otel-ai-cost and the override file
    named by OTEL_AI_COST_PRICES_FILE.
    """


@prices.command()
@click.argument("model")
@_provider_option
@_at_option
@_tier_option
def show(model: str, provider: str | None, at: datetime | None, tier: str) -> None:
    """Show the rates in force for MODEL (USD per million tokens), their source and validity window."""
    provider = provider or _infer_provider(model)
    at = at or datetime.now(timezone.utc)
    catalog = _catalog()
    price = catalog.resolve(provider, model, at=at, tier=tier.lower())
    if price is None:
        raise click.ClickException(
            f"unknown model {model!r} for provider {provider!r}: no price in {catalog.version} at {at:%Y-%m-%d}"
        )
    _print_price(price, requested_tier=tier.lower(), version=catalog.version)


@prices.command()
@click.option("--model", "-m", required=True, help="Model id, as requested or as the response reports it.")
@click.option(
    "--input",
    "input_tokens",
    type=_TOKENS,
    default=0,
    help="Total input tokens, cache reads and cache writes INCLUDED (semconv gen_ai.usage.input_tokens; "
    "for Anthropic add input_tokens + cache_read_input_tokens + cache_creation_input_tokens).",
)
@click.option(
    "--output",
    "output_tokens",
    type=_TOKENS,
    default=0,
    help="Total output tokens, reasoning INCLUDED.",
)
@click.option("--cache-read", type=_TOKENS, default=0, help="Of --input: tokens read from cache.")
@click.option("--cache-write-5m", type=_TOKENS, default=0, help="Of --input: 5-minute cache writes.")
@click.option("--cache-write-1h", type=_TOKENS, default=0, help="Of --input: 1-hour cache writes.")
@click.option("--reasoning", type=_TOKENS, default=0, help="Of --output: reasoning tokens.")
@click.option(
    "--web-search", type=click.IntRange(min=0, max=MAX_WEB_SEARCH_REQUESTS), default=0, help="Web search calls."
)
@click.option(
    "--audio-seconds", type=_Seconds(), default="0", help="Seconds of audio billed by duration (whisper-1), exact."
)
@_provider_option
@_tier_option
@_at_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON (amounts as exact decimal strings).")
def cost(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read: int,
    cache_write_5m: int,
    cache_write_1h: int,
    reasoning: int,
    web_search: int,
    audio_seconds: Decimal,
    provider: str | None,
    tier: str,
    at: datetime | None,
    as_json: bool,
) -> None:
    """Price one call exactly and show its components.

    --input is the semconv total: it includes --cache-read, --cache-write-5m and --cache-write-1h, just as
    --output includes --reasoning.
    """
    from otel_ai_cost.pricing.usage import Usage

    if cache_read + cache_write_5m + cache_write_1h > input_tokens:
        raise click.UsageError(
            "--cache-read + --cache-write-5m + --cache-write-1h exceed --input; "
            "--input is the total including cache reads and writes"
        )
    if reasoning > output_tokens:
        raise click.UsageError("--reasoning exceeds --output; --output is the total including reasoning")
    provider = provider or _infer_provider(model)
    at = at or datetime.now(timezone.utc)
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_input_tokens=cache_read,
        cache_write_5m_input_tokens=cache_write_5m,
        cache_write_1h_input_tokens=cache_write_1h,
        reasoning_output_tokens=reasoning,
        web_search_requests=web_search,
        input_audio_seconds=audio_seconds,
    )
    catalog = _catalog()
    quote = catalog.quote(provider, model, usage, at=at, service_tier=tier.lower())
    if quote.status is not PricingStatus.PRICED or quote.amount is None:
        raise click.ClickException(f"cannot price {provider} model {model!r} at {at:%Y-%m-%d} ({catalog.version})")
    if as_json:
        click.echo(
            json.dumps(
                {
                    "provider": provider,
                    "model": model,
                    "at": at.isoformat(),
                    "tier": quote.tier,
                    "status": quote.status.value,
                    "amount": _fmt(quote.amount),
                    "currency": quote.currency,
                    "components": {name: _fmt(value) for name, value in quote.components.items()},
                    "version": quote.version,
                },
                indent=2,
            )
        )
        return
    click.echo(f"{provider} {model} ({quote.tier} tier) at {at.isoformat()}")
    for name, value in quote.components.items():
        click.echo(f"  {name:<19}{_fmt(value):>17} {quote.currency}")
    click.echo(f"  {'total':<19}{_fmt(quote.amount):>17} {quote.currency}")
    click.echo(f"  version: {quote.version}")


@prices.command()
@click.argument("file", type=click.Path(dir_okay=False))
def check(file: str) -> None:
    """Validate a price override file (same schema as the shipped catalog.yaml); lists every problem."""
    from otel_ai_cost.pricing.price_file import PriceFileError, load_price_file

    try:
        loaded = load_price_file(file)
    except PriceFileError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    click.echo(f"{file}: ok ({len(loaded.models)} models, {len(loaded.discounts)} discounts)")


def _catalog() -> PriceCatalog:
    """Shipped prices plus OTEL_AI_COST_PRICES_FILE; unlike at runtime, a bad file is an error here."""
    from otel_ai_cost.pricing.catalog import load_catalog
    from otel_ai_cost.pricing.price_file import PriceFileError

    try:
        return load_catalog(os.environ.get(Env.PRICES_FILE, "").strip() or None)
    except PriceFileError as exc:
        raise click.ClickException(f"{Env.PRICES_FILE}: {exc}") from None


def _infer_provider(model: str) -> str:
    name = model.strip().lower().rsplit("/", 1)[-1]
    for prefixes, provider in _PROVIDER_PREFIXES:
        if name.startswith(prefixes):
            return provider
    raise click.UsageError(f"cannot tell the provider of model {model!r}: pass --provider")


def _fmt(value: Decimal) -> str:
    """An exact decimal in plain notation, without trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _print_price(price: ModelPrice, *, requested_tier: str, version: str) -> None:
    tier = price.tier if price.tier == requested_tier else f"{price.tier} (no {requested_tier} prices)"
    start = price.effective_from.isoformat() if price.effective_from else "(always)"
    end = price.effective_until.isoformat() if price.effective_until else "(until further notice)"
    click.echo(f"{price.provider} {price.model}")
    click.echo(f"  matched:   {price.matched_model}")
    click.echo(f"  tier:      {tier}")
    click.echo(f"  source:    {price.source}")
    click.echo(f"  in force:  {start} -> {end}")
    click.echo(f"  version:   {version}")
    click.echo("  USD per 1M tokens:")
    for name in _TOKEN_ROWS:
        _row(name, getattr(price, name))
    if price.per_web_search is not None or price.per_request is not None:
        click.echo("  USD per 1K calls:")
        _row("web_search", None if price.per_web_search is None else price.per_web_search * 1000)
        _row("request", None if price.per_request is None else price.per_request * 1000)
    if price.per_hour_input_audio is not None:
        click.echo("  USD per minute of audio:")
        _row("input_audio", price.per_hour_input_audio / 60)
    for tier_rates in price.long_context:
        click.echo(f"  long context, whole request when input > {tier_rates.threshold:,} tokens (USD per 1M):")
        for name in _TOKEN_ROWS:
            _row(name, getattr(tier_rates, name))
    if price.discount_percent:
        click.echo(f"  discount:  {_fmt(price.discount_percent)}% off the total")


def _row(name: str, value: Decimal | None) -> None:
    if value is not None:
        click.echo(f"    {name:<16}{_fmt(value):>12}")
