"""Which billing sources a run uses: each provider's source, configured from the environment.

- `openai`: `openai_costs.OpenAICosts` (the Costs and Usage APIs), when `OPENAI_ADMIN_KEY` (or
  `OPENAI_ADMIN_KEY_FILE`) is set; the `openai` extra.
- `anthropic`: `anthropic_costs.AnthropicCostReport` (the cost and usage reports), when `ANTHROPIC_ADMIN_KEY` (or
  `ANTHROPIC_ADMIN_KEY_FILE`) is set; the `anthropic` extra.
- `aws.bedrock`: `aws_cost_explorer.AWSCostExplorer`, only when named (Cost Explorer charges per request); AWS
  credentials as boto3 finds them; the `bedrock` extra.
- `gcp` (`gcp.gemini`, `gcp.vertex_ai`, `google_places`): `gcp_billing_export.GCPBillingExport`, when
  `OTEL_AI_COST_GCP_BILLING_TABLE` names the export table; the `gcp-billing` extra.

Without `--provider`, every source whose key is configured runs (AWS only when named). With `--provider`, exactly
those run, and one without its key is reported as not pulled (its stored lines are still compared).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from otel_ai_cost.reconcile.billed import AccountMap, BillingSource

__all__ = ["GCP_TABLE_ENV", "SOURCES", "SourceSpec", "billed_providers", "configured_sources", "providers_billed_by"]

GCP_TABLE_ENV = "OTEL_AI_COST_GCP_BILLING_TABLE"


@dataclass(frozen=True)
class SourceSpec:
    name: str  # what --provider takes
    source: str  # the `source` of the lines it returns (the class's `name`)
    module: str
    cls: str
    providers: tuple[str, ...]  # gen_ai.provider.name values it bills
    variables: tuple[str, ...]  # any of them set: configured
    by_default: bool = True  # run without --provider when configured


SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("openai", "openai_admin", "otel_ai_cost.reconcile.openai_costs", "OpenAICosts", ("openai",),
               ("OPENAI_ADMIN_KEY", "OPENAI_ADMIN_KEY_FILE")),
    SourceSpec("anthropic", "anthropic_admin", "otel_ai_cost.reconcile.anthropic_costs", "AnthropicCostReport",
               ("anthropic",), ("ANTHROPIC_ADMIN_KEY", "ANTHROPIC_ADMIN_KEY_FILE")),
    SourceSpec("aws.bedrock", "aws_cost_explorer", "otel_ai_cost.reconcile.aws_cost_explorer", "AWSCostExplorer",
               ("aws.bedrock",), (), by_default=False),
    SourceSpec("gcp", "gcp_billing_export", "otel_ai_cost.reconcile.gcp_billing_export", "GCPBillingExport",
               ("gcp.gemini", "gcp.vertex_ai", "google_places"), (GCP_TABLE_ENV,)),
)  # fmt: skip


def providers_billed_by(source: str) -> tuple[str, ...]:
    """The `gen_ai.provider.name` values an API source's lines bill (none for a source entered by hand)."""
    return next((spec.providers for spec in SOURCES if spec.source == source), ())


def billed_providers(names: Sequence[str]) -> list[str]:
    """The `gen_ai.provider.name` values `--provider` names stand for (`gcp` is three; others are themselves)."""
    out: list[str] = []
    for name in names:
        spec = next((spec for spec in SOURCES if spec.name == name), None)
        out.extend(spec.providers if spec else (name,))
    return out


def configured_sources(
    names: Sequence[str] = (), environ: Mapping[str, str] | None = None, account_map: AccountMap | None = None
) -> list[BillingSource]:
    """The sources for `names` (`--provider` values; empty: every configured default source); `account_map` maps
    their accounts to environments (`reconcile.accounts`)."""
    env = os.environ if environ is None else environ
    wanted = set(names)
    chosen = []
    for spec in SOURCES:
        named = spec.name in wanted or bool(wanted & set(spec.providers))
        configured = any(env.get(variable, "").strip() for variable in spec.variables)
        if named or (not wanted and spec.by_default and configured):
            chosen.append(_build(spec, env, account_map or AccountMap()))
    return chosen


def _build(spec: SourceSpec, env: Mapping[str, str], account_map: AccountMap) -> BillingSource:
    if spec.name == "gcp" and not env.get(GCP_TABLE_ENV, "").strip():
        return _Unconfigured(spec, f"set ${GCP_TABLE_ENV} to the billing export table (project.dataset.table)")
    try:
        module = importlib.import_module(spec.module)
    except ImportError as error:
        return _Unconfigured(spec, f"{spec.name}'s billing source needs a package that is not installed ({error.name})")
    cls = getattr(module, spec.cls)
    if spec.name == "gcp":
        return cls(table=env[GCP_TABLE_ENV].strip(), account_map=account_map)
    return cls(account_map=account_map)  # each reads its own key at pull time (`billed.admin_key`)


class _Unconfigured:
    """A source named but not usable here: its pull says why (reported, the run goes on)."""

    def __init__(self, spec: SourceSpec, reason: str) -> None:
        self.name = spec.source
        self.providers = spec.providers
        self._reason = reason

    def pull(self, start_day: object, end_day: object) -> object:
        from otel_ai_cost.reconcile.billed import MissingCredentials

        raise MissingCredentials(self._reason)
