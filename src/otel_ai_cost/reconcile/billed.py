"""What a bill says: the money billed per UTC day and line, and the usage billed beside it.

Every billing source (`reconcile/openai_costs.py`, `anthropic_costs.py`, `aws_cost_explorer.py`,
`gcp_billing_export.py`, and the figures entered by hand) turns its provider's answer into these two shapes, so
the comparison, the ledger and the FOCUS export never see a provider's own format.

Money is exact: `amount` is a `Decimal` in USD, read from the provider's text (never through a float).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Protocol

__all__ = [
    "OTHER",
    "AccountMap",
    "BilledLine",
    "BilledPull",
    "BilledUsage",
    "BillingSource",
    "MissingCredentials",
    "admin_key",
]

OTHER = "other"  # the token class of a line the source could not parse: kept, counted and reported, never dropped


@dataclass(frozen=True, slots=True)
class BilledLine:
    """One line of a bill: `amount` USD billed for `day` (UTC) on one line item.

    Identity is `key` = (provider, day, source, account, line): a source pulling the same day again replaces its
    lines for that day (`LedgerStore.replace_billed`), so a re-run never doubles a bill.
    """

    provider: str  # gen_ai.provider.name of the calls billed: openai, anthropic, aws.bedrock, gcp.gemini, ...
    day: date  # the UTC day billed
    source: str  # which billing source produced it: openai_costs, anthropic_cost_report, aws_cost_explorer, ...
    line: str  # the bill's own text for the line (OpenAI line_item, Anthropic description, AWS usage type, SKU)
    amount: Decimal  # USD, exact; may be negative (a credit)
    account: str = ""  # OpenAI project, Anthropic workspace ("" = default), AWS linked account, GCP project
    model: str = ""  # the model the line bills, "" when it bills no model (a tool, storage) or cannot be parsed
    token_class: str = ""  # contract.TokenType value, a fee ("web_search", "request"), or OTHER when unparsed
    tier: str = ""  # standard, batch, flex, priority; "" when the line does not say (standard)
    quantity: Decimal | None = None  # what the line counts, when the bill says (tokens, requests, seconds)
    unit: str = ""  # the unit of `quantity`
    environment: str = ""  # the deployment environment this account is mapped to ("" = organization-wide)
    final: bool = True  # False: the provider may still change it (AWS `Estimated`, today's partial day)
    parsed: bool = True  # False: the line's text was not understood; it stays on the bill as `other`
    # "day": the line bills `day`; "month": it bills the whole month `day` falls in (an invoice entered by hand,
    # stored on the month's first day), so it is compared with the month, never with one day.
    period: str = "day"
    note: str = ""  # free text of a figure entered by hand

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.provider, self.day.isoformat(), self.source, self.account, self.line)


@dataclass(frozen=True, slots=True)
class BilledUsage:
    """Usage the provider counted for one day, model, account and tier (OpenAI and Anthropic usage APIs).

    Token counts follow the ledger's records (the GenAI semantic conventions): `input_tokens` INCLUDES cache reads
    and cache writes, `output_tokens` includes reasoning. A source whose API counts otherwise converts.
    """

    provider: str
    day: date
    source: str  # openai_usage, anthropic_usage_report
    model: str
    account: str = ""
    tier: str = ""  # standard, batch, flex, priority ("" = standard)
    input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_5m_input_tokens: int = 0
    cache_write_1h_input_tokens: int = 0
    output_tokens: int = 0
    requests: int | None = None  # model requests, when the API counts them
    # Usage the calls we instrument cannot show: Anthropic Workbench and console calls (no API key), when the
    # source can tell.
    provider_side: bool = False
    environment: str = ""
    final: bool = True

    @property
    def key(self) -> tuple[str, str, str, str, str, str, bool]:
        return (self.provider, self.day.isoformat(), self.source, self.account, self.model, self.tier,
                self.provider_side)  # fmt: skip


@dataclass(frozen=True)
class BilledPull:
    """What one source returned for the days `start_day`..`end_day` (inclusive): the whole of those days, so the
    ledger replaces the source's stored lines of those days with these."""

    source: str
    start_day: date
    end_day: date
    lines: Sequence[BilledLine] = ()
    usage: Sequence[BilledUsage] = ()
    # Facts the comparison must say rather than count as a difference (Anthropic: priority-tier cost is not in the
    # cost report), one sentence each.
    notes: Sequence[str] = ()
    requests: int = 0  # API requests made (pages), for the run's summary (Cost Explorer charges per request)
    retries: int = 0  # of them, retries after 429 or 5xx


class BillingSource(Protocol):
    """One provider's billing API. `name` is the `source` of what it returns; `providers` the
    `gen_ai.provider.name` values its bill covers."""

    name: str
    providers: tuple[str, ...]

    def pull(self, start_day: date, end_day: date) -> BilledPull:
        """Everything billed on the UTC days `start_day`..`end_day` (inclusive), every page read to the end.
        Raises `MissingCredentials` when its key is not configured."""
        ...


class MissingCredentials(RuntimeError):
    """A billing source's key is not configured. The message names the variables to set, never a value."""


def admin_key(variable: str, environ: Mapping[str, str] | None = None) -> str:
    """A secret from the environment: `$VARIABLE`, or the file named by `$VARIABLE_FILE` (a mounted secret; its
    surrounding whitespace is stripped). Raises `MissingCredentials` naming both variables, never a value."""
    env = os.environ if environ is None else environ
    value = env.get(variable, "").strip()
    if value:
        return value
    file = env.get(f"{variable}_FILE", "").strip()
    if file:
        try:
            secret = Path(file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise MissingCredentials(f"${variable}_FILE names {file!r}, which cannot be read: "
                                     f"{type(error).__name__}") from None  # fmt: skip
        if secret:
            return secret
        raise MissingCredentials(f"${variable}_FILE names {file!r}, which is empty")
    raise MissingCredentials(f"set ${variable} (or ${variable}_FILE, a file holding it)")


@dataclass(frozen=True)
class AccountMap:
    """Which deployment environment a billing account (OpenAI project, Anthropic workspace, AWS account, GCP
    project) belongs to, per provider: `{provider: {account: environment}}`. Accounts not listed are
    organization-wide (environment "")."""

    accounts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def environment(self, provider: str, account: str) -> str:
        return self.accounts.get(provider, {}).get(account, "")
