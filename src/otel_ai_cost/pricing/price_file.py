"""The price file schema (shipped `data/catalog.yaml` and user overrides alike), validated as it is read.

```yaml
version: "2026-11-22"              # optional label (the shipped catalog's goes into the version string)
models:                            # prices for one model and tier; later entries win key by key
  - provider: openai               # gen_ai.provider.name
    model: gpt-4.1                 # model id or glob; also matched against genai-prices' canonical id
    tier: priority                 # standard (default) | batch | flex | priority
    region: "ap-*"                 # optional cloud region or glob (Bedrock prices by region): the entry applies
                                   # only to calls served from a matching region, and wins there over entries
                                   # without a region; calls with no known region never use it
    effective_from: 2025-07-01     # optional, inclusive; a date is UTC midnight
    effective_until: 2026-01-01    # optional, exclusive
    prices: {input: 3.5, cache_read: 0.875, output: 14}   # USD per million tokens
    requests: {web_search: 10}     # USD per thousand calls: web_search, request
    per_minute: {input_audio: 0.006}  # USD per minute of input audio (duration-billed transcription)
    long_context: {threshold: 200000, prices: {input: 6, output: 22.5}}  # whole request above threshold
    replace: false                 # true: ignore lower layers' rates for this model instead of patching them
discounts:                         # negotiated percent off the total
  - {provider: openai, model: "gpt-4.1*", percent: 15, tiers: [standard], effective_from: 2026-01-01}
tiers:                             # tier = multiplier x standard token rates, if nothing more specific
  - {provider: openai, tier: batch, multiplier: 0.5}
defaults:                          # rates a provider's models lack, filled in (never creates a model)
  - {provider: anthropic, requests: {web_search: 10}}
```

Every rate is at most `MAX_RATE` (USD per million tokens, per thousand calls or per minute), a multiplier at most
`MAX_MULTIPLIER`, a long-context threshold at most 1,000,000,000 tokens; numbers are plain decimals (no `1_000`,
`1e400`, `.inf`). A bad file fails with every problem listed, one `file:line: key.path: problem` per line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fnmatch import fnmatchcase
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

import yaml

from otel_ai_cost.pricing.model_price import CALL_CLASSES, DURATION_CLASSES, TOKEN_CLASSES
from otel_ai_cost.pricing.tiers import STANDARD, TIERS
from otel_ai_cost.pricing.yaml_nodes import NodeReader, PriceFileError

__all__ = [
    "MAX_MULTIPLIER",
    "MAX_RATE",
    "Discount",
    "LongContextSpec",
    "ModelEntry",
    "PriceFile",
    "PriceFileError",
    "ProviderDefault",
    "TierRule",
    "load_price_file",
    "parse_price_file",
]

_DATED = ("effective_from", "effective_until")
MAX_RATE = Decimal(1_000_000)  # USD per unit of any rate: far above any real price, far below overflow
MAX_MULTIPLIER = Decimal(100)  # a tier's multiplier of the standard rates
# A cloud region name or glob: lower-case letters, digits and dashes, with `*`, `?` and `[...]` wildcards.
_REGION = re.compile(r"[a-z*?\[][a-z0-9*?\[\]!-]*")
_T = TypeVar("_T")


@dataclass(frozen=True)
class _Dated:
    effective_from: datetime | None
    effective_until: datetime | None

    def in_force(self, at: datetime) -> bool:
        return (self.effective_from is None or self.effective_from <= at) and (
            self.effective_until is None or at < self.effective_until
        )

    def boundaries(self) -> tuple[datetime, ...]:
        return tuple(moment for moment in (self.effective_from, self.effective_until) if moment is not None)


@dataclass(frozen=True)
class LongContextSpec:
    threshold: int  # total input tokens (cache reads and writes included) above which `prices` apply
    prices: Mapping[str, Decimal]


@dataclass(frozen=True)
class ModelEntry(_Dated):
    provider: str
    model: str  # lower-cased id or glob
    tier: str
    prices: Mapping[str, Decimal]  # USD per million tokens, by token class
    requests: Mapping[str, Decimal]  # USD per thousand calls, by call class
    long_context: LongContextSpec | None
    replace: bool
    line: int
    region: str | None = None  # lower-case region name or glob; None: every region (and calls without one)
    per_minute: Mapping[str, Decimal] = field(default_factory=dict)  # USD per minute, by duration class

    def matches(self, provider: str, names: tuple[str, ...]) -> bool:
        return provider == self.provider and any(fnmatchcase(name, self.model) for name in names)

    def applies_in(self, region: str | None) -> bool:
        """Whether the entry prices calls served from `region` (None: the call's region is unknown)."""
        return self.region is None or (region is not None and fnmatchcase(region, self.region))


@dataclass(frozen=True)
class Discount(_Dated):
    provider: str  # glob
    model: str  # glob
    percent: Decimal
    tiers: frozenset[str] | None  # None: every tier
    line: int

    def covers(self, provider: str, names: tuple[str, ...]) -> bool:
        """Whether the discount is about this model, whatever the tier."""
        return fnmatchcase(provider, self.provider) and any(fnmatchcase(name, self.model) for name in names)

    def matches(self, provider: str, names: tuple[str, ...], tier: str) -> bool:
        return self.covers(provider, names) and (self.tiers is None or tier in self.tiers)


@dataclass(frozen=True)
class TierRule(_Dated):
    provider: str
    tier: str
    multiplier: Decimal
    line: int


@dataclass(frozen=True)
class ProviderDefault(_Dated):
    provider: str
    prices: Mapping[str, Decimal]
    requests: Mapping[str, Decimal]
    line: int


@dataclass(frozen=True)
class PriceFile:
    """One validated price file: the shipped catalog or a user override."""

    path: str
    source: str  # "catalog" | "override": what a price it contributed to reports as its source
    version: str | None
    sha256: str
    models: tuple[ModelEntry, ...] = ()
    discounts: tuple[Discount, ...] = ()
    tiers: tuple[TierRule, ...] = ()
    defaults: tuple[ProviderDefault, ...] = ()


def load_price_file(path: str | Path, *, source: str = "override") -> PriceFile:
    """Read and validate a price file; raises `PriceFileError` naming the file, line and key."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PriceFileError(f"{name}:0: (file): cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PriceFileError(f"{name}:0: (file): not UTF-8 text: {exc}") from None
    return parse_price_file(text, filename=name, source=source, sha256=hashlib.sha256(data).hexdigest())


def parse_price_file(text: str, *, filename: str, source: str = "override", sha256: str | None = None) -> PriceFile:
    """Validate price-file text; see the module docstring for the schema."""
    reader = NodeReader(filename)
    digest = sha256 or hashlib.sha256(text.encode("utf-8")).hexdigest()
    root = reader.compose(text)
    if reader.is_null(root):
        return PriceFile(path=filename, source=source, version=None, sha256=digest)
    assert root is not None
    top = reader.mapping(root, "", allowed=("version", "models", "discounts", "tiers", "defaults"))
    version = reader.string(top["version"], "version") if "version" in top else None
    parser = _Parser(reader)
    price_file = PriceFile(
        path=filename,
        source=source,
        version=version,
        sha256=digest,
        models=tuple(parser.items(top.get("models"), "models", parser.model)),
        discounts=tuple(parser.items(top.get("discounts"), "discounts", parser.discount)),
        tiers=tuple(parser.items(top.get("tiers"), "tiers", parser.tier_rule)),
        defaults=tuple(parser.items(top.get("defaults"), "defaults", parser.provider_default)),
    )
    reader.raise_problems()  # every entry was read: report all their problems at once
    return price_file


class _Parser:
    """Builds the typed entries of each section."""

    def __init__(self, reader: NodeReader) -> None:
        self.r = reader

    def items(self, node: yaml.Node | None, path: str, build: Callable[[yaml.Node, str], _T]) -> list[_T]:
        if node is None:
            return []
        built: list[_T] = []
        for index, item in enumerate(self.r.sequence(node, path)):
            with self.r.recording():  # a bad entry is reported with the others, after the whole file is read
                built.append(build(item, f"{path}[{index}]"))
        return built

    def model(self, node: yaml.Node, path: str) -> ModelEntry:
        fields = self.r.mapping(
            node,
            path,
            allowed=(
                "provider",
                "model",
                "tier",
                "region",
                "prices",
                "requests",
                "per_minute",
                "long_context",
                "replace",
                *_DATED,
            ),
            required=("provider", "model"),
        )
        if not any(key in fields for key in ("prices", "requests", "per_minute", "long_context")):
            self.r.fail(node, path, "an entry needs at least one of prices, requests, per_minute, long_context")
        long_context = None
        if "long_context" in fields:
            lc_path = f"{path}.long_context"
            lc = self.r.mapping(
                fields["long_context"],
                lc_path,
                allowed=("threshold", "prices"),
                required=("threshold", "prices"),
            )
            long_context = LongContextSpec(
                threshold=self.r.positive_int(lc["threshold"], f"{lc_path}.threshold"),
                prices=self._rates(lc["prices"], f"{lc_path}.prices", TOKEN_CLASSES),
            )
        effective_from, effective_until = self._dates(node, fields, path)
        return ModelEntry(
            provider=self.r.string(fields["provider"], f"{path}.provider"),
            model=self.r.string(fields["model"], f"{path}.model").lower(),
            tier=self.r.choice(fields["tier"], f"{path}.tier", TIERS) if "tier" in fields else STANDARD,
            prices=self._rates(fields.get("prices"), f"{path}.prices", TOKEN_CLASSES),
            requests=self._rates(fields.get("requests"), f"{path}.requests", CALL_CLASSES),
            long_context=long_context,
            replace=self.r.boolean(fields["replace"], f"{path}.replace") if "replace" in fields else False,
            effective_from=effective_from,
            effective_until=effective_until,
            line=node.start_mark.line + 1,
            region=self._region(fields["region"], f"{path}.region") if "region" in fields else None,
            per_minute=self._rates(fields.get("per_minute"), f"{path}.per_minute", DURATION_CLASSES),
        )

    def _region(self, node: yaml.Node, path: str) -> str:
        region = self.r.string(node, path).lower()
        if not _REGION.fullmatch(region):
            self.r.fail(node, path, f"expected a region name or glob such as us-east-1 or ap-*, got {region!r}")
        return region

    def discount(self, node: yaml.Node, path: str) -> Discount:
        fields = self.r.mapping(
            node,
            path,
            allowed=("provider", "model", "percent", "tiers", *_DATED),
            required=("provider", "percent"),
        )
        tiers = None
        if "tiers" in fields:
            items = self.r.sequence(fields["tiers"], f"{path}.tiers")
            tiers = frozenset(self.r.choice(item, f"{path}.tiers[{i}]", TIERS) for i, item in enumerate(items))
        effective_from, effective_until = self._dates(node, fields, path)
        return Discount(
            provider=self.r.string(fields["provider"], f"{path}.provider"),
            model=self.r.string(fields["model"], f"{path}.model").lower() if "model" in fields else "*",
            percent=self.r.percent(fields["percent"], f"{path}.percent"),
            tiers=tiers,
            effective_from=effective_from,
            effective_until=effective_until,
            line=node.start_mark.line + 1,
        )

    def tier_rule(self, node: yaml.Node, path: str) -> TierRule:
        fields = self.r.mapping(
            node,
            path,
            allowed=("provider", "tier", "multiplier", *_DATED),
            required=("provider", "tier", "multiplier"),
        )
        effective_from, effective_until = self._dates(node, fields, path)
        return TierRule(
            provider=self.r.string(fields["provider"], f"{path}.provider"),
            tier=self.r.choice(fields["tier"], f"{path}.tier", tuple(t for t in TIERS if t != STANDARD)),
            multiplier=self.r.number(fields["multiplier"], f"{path}.multiplier", maximum=MAX_MULTIPLIER),
            effective_from=effective_from,
            effective_until=effective_until,
            line=node.start_mark.line + 1,
        )

    def provider_default(self, node: yaml.Node, path: str) -> ProviderDefault:
        fields = self.r.mapping(node, path, allowed=("provider", "prices", "requests", *_DATED), required=("provider",))
        if "prices" not in fields and "requests" not in fields:
            self.r.fail(node, path, "a default needs prices or requests")
        effective_from, effective_until = self._dates(node, fields, path)
        return ProviderDefault(
            provider=self.r.string(fields["provider"], f"{path}.provider"),
            prices=self._rates(fields.get("prices"), f"{path}.prices", TOKEN_CLASSES),
            requests=self._rates(fields.get("requests"), f"{path}.requests", CALL_CLASSES),
            effective_from=effective_from,
            effective_until=effective_until,
            line=node.start_mark.line + 1,
        )

    def _rates(self, node: yaml.Node | None, path: str, classes: tuple[str, ...]) -> Mapping[str, Decimal]:
        if node is None:
            return MappingProxyType({})
        fields = self.r.mapping(node, path, allowed=classes)
        rates: dict[str, Decimal] = {}
        for key, value in fields.items():
            with self.r.recording():  # every bad rate of an entry is reported, not only the first
                rates[key] = self.r.number(value, f"{path}.{key}", maximum=MAX_RATE)
        return MappingProxyType(rates)

    def _dates(
        self, node: yaml.Node, fields: dict[str, yaml.Node], path: str
    ) -> tuple[datetime | None, datetime | None]:
        start = end = None
        if "effective_from" in fields and not self.r.is_null(fields["effective_from"]):
            start = self.r.timestamp(fields["effective_from"], f"{path}.effective_from")
        if "effective_until" in fields and not self.r.is_null(fields["effective_until"]):
            end = self.r.timestamp(fields["effective_until"], f"{path}.effective_until")
            if start is not None and end <= start:
                self.r.fail(fields["effective_until"], f"{path}.effective_until", "must be after effective_from")
        return start, end
