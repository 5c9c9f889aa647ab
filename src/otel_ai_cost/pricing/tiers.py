"""Service tiers: the `service_tier` string a response reports, mapped to the tier whose prices apply."""

from __future__ import annotations

STANDARD = "standard"
BATCH = "batch"
FLEX = "flex"
PRIORITY = "priority"
TIERS: tuple[str, ...] = (STANDARD, BATCH, FLEX, PRIORITY)

# What providers echo back. OpenAI: default/auto/scale/flex/priority (scale tier is prepaid capacity, billed
# per token at standard rates); Anthropic: standard/priority/batch. The echoed value, not the requested one,
# decides the price: OpenAI downgrades priority to default under its ramp-rate limit and bills it as standard.
_SERVICE_TIERS: dict[str | None, str] = {
    None: STANDARD,
    "": STANDARD,
    "default": STANDARD,
    "auto": STANDARD,
    "scale": STANDARD,
    "standard": STANDARD,
    "batch": BATCH,
    "flex": FLEX,
    "priority": PRIORITY,
    "fast": PRIORITY,  # OpenAI's newer name for the priority lane; genai-prices prices it as priority
}


def tier_for(service_tier: str | None) -> str | None:
    """The pricing tier for a reported `service_tier`, or None when the value is not one we know."""
    tier = _SERVICE_TIERS.get(service_tier)
    if tier is None and isinstance(service_tier, str):
        tier = _SERVICE_TIERS.get(service_tier.strip().lower())
    return tier
