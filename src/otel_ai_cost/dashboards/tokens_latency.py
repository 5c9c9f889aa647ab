"""Tokens and latency: tokens per minute by pricing class (cache and reasoning included), p50/p95 duration, errors."""

from __future__ import annotations

from typing import Any

from otel_ai_cost import contract
from otel_ai_cost.contract import Outcome, TokenType
from otel_ai_cost.dashboards import panels as p
from otel_ai_cost.dashboards import promql as q
from otel_ai_cost.dashboards.dashboard import dashboard
from otel_ai_cost.dashboards.layout import Grid
from otel_ai_cost.dashboards.variables import filter_variables

UID = "ai-cost-tokens-latency"

TOKENS = q.otel(contract.TOKENS)
REQUESTS = q.otel(contract.REQUESTS)
DURATION_BUCKET = q.otel(contract.OPERATION_DURATION, "_bucket")
TOKEN_USAGE_BUCKET = q.otel(contract.TOKEN_USAGE, "_bucket")
INSTRUMENTATION_ERRORS = q.otel(contract.INSTRUMENTATION_ERRORS)
SPEND = q.otel(contract.SPEND)
MODEL_LEGEND = f"{{{{{q.PROVIDER}}}}} / {{{{{q.MODEL}}}}}"
MODEL = (q.PROVIDER, q.MODEL)
# Input-side pricing classes: plain input plus cache reads and writes (they are mutually exclusive).
INPUT_CLASSES = (
    TokenType.INPUT,
    TokenType.CACHE_READ,
    TokenType.CACHE_WRITE_5M,
    TokenType.CACHE_WRITE_1H,
    TokenType.INPUT_IMAGE,
    TokenType.INPUT_AUDIO,
)
OUTPUT_CLASSES = (TokenType.OUTPUT, TokenType.REASONING, TokenType.OUTPUT_IMAGE, TokenType.OUTPUT_AUDIO)
NO_ENVIRONMENT = (
    " The environment label is the collector's (copied from the resource): series of producers without one only "
    "show under All."
)


def _types(classes: tuple[TokenType, ...]) -> str:
    return f'{q.TOKEN_TYPE}=~"{"|".join(c.value for c in classes)}"'


def _share(part: TokenType, classes: tuple[TokenType, ...]) -> str:
    """The share of `part` among `classes` (0 when `part` never occurred)."""
    total = q.sum_rate(TOKENS.select(_types(classes)))
    share = q.sum_rate(TOKENS.select(f'{q.TOKEN_TYPE}="{part.value}"'))
    return q.ratio(q.zero_filled(share, total), total)


def build() -> dict[str, Any]:
    grid = Grid()
    grid.row("Tokens")
    grid.add(
        p.timeseries(
            "Tokens per minute by type",
            [p.target(f"{q.sum_rate(TOKENS.select(), (q.TOKEN_TYPE,))} * 60", f"{{{{{q.TOKEN_TYPE}}}}}")],
            stack=True,
            description="Pricing classes are exclusive: input excludes cache reads/writes, output excludes reasoning.",
        ),
        w=12,
        h=9,
    )
    grid.add(
        p.timeseries(
            "Tokens per minute by provider / model",
            [p.target(f"{q.sum_rate(TOKENS.select(), MODEL)} * 60", MODEL_LEGEND)],
            stack=True,
        ),
        w=12,
        h=9,
    )
    grid.add(
        p.stat(
            "Cache reads / input tokens",
            [p.target(_share(TokenType.CACHE_READ, INPUT_CLASSES), "cache hit share")],
            unit="percentunit",
            decimals=1,
            description="Share of input-side tokens served from the prompt cache (billed at the cache-read rate).",
        ),
        w=6,
        h=5,
    )
    grid.add(
        p.stat(
            "Reasoning / output tokens",
            [p.target(_share(TokenType.REASONING, OUTPUT_CLASSES), "reasoning share")],
            unit="percentunit",
            decimals=1,
        ),
        w=6,
        h=5,
    )
    per_call = q.quantile(0.95, TOKEN_USAGE_BUCKET.select(f'{q.TOKEN_TYPE}="input"'), MODEL)
    grid.add(
        p.timeseries(
            "Input tokens per call, p95",
            [p.target(per_call, MODEL_LEGEND)],
            description="From gen_ai.client.token.usage (semconv: input includes cached tokens)." + NO_ENVIRONMENT,
        ),
        w=12,
        h=5,
    )
    grid.row("Latency and errors")
    duration = DURATION_BUCKET.select()
    grid.add(
        p.timeseries(
            "Call duration p50 / p95",
            [
                p.target(q.quantile(0.5, duration, MODEL), f"p50 {MODEL_LEGEND}"),
                p.target(q.quantile(0.95, duration, MODEL), f"p95 {MODEL_LEGEND}"),
            ],
            unit="s",
            description="gen_ai.client.operation.duration, whole call including streaming." + NO_ENVIRONMENT,
        ),
        w=12,
        h=9,
    )
    errors = q.sum_rate(REQUESTS.select(f'{q.OUTCOME}="{Outcome.ERROR.value}"'), MODEL)
    calls = q.sum_rate(REQUESTS.select(), MODEL)
    grid.add(
        p.timeseries(
            "Error rate by provider / model",
            [p.target(q.ratio(q.zero_filled(errors, calls), calls), MODEL_LEGEND)],
            unit="percentunit",
            description="Share of logical calls (SDK retries count once) that ended in an error.",
        ),
        w=12,
        h=9,
    )
    grid.add(
        p.timeseries(
            "Calls per minute by outcome",
            [p.target(f"{q.sum_rate(REQUESTS.select(), (q.OUTCOME,))} * 60", f"{{{{{q.OUTCOME}}}}}", exemplar=True)],
            stack=True,
        ),
        w=12,
        h=8,
    )
    grid.add(
        p.stat(
            "Instrumentation errors (selected range)",
            [p.target(f"{q.sum_increase(INSTRUMENTATION_ERRORS.select())} or vector(0)", "errors", instant=True)],
            thresholds=[(None, "green"), (1, "red")],
            description="Errors caught inside the instrumentation; the host's calls were unaffected.",
        ),
        w=12,
        h=8,
    )
    return dashboard(
        UID,
        "AI cost: tokens and latency",
        grid.panels,
        filter_variables(SPEND),
        description="Token volume by pricing class, call latency and error rates per provider and model.",
        time_from="now-6h",
    )
