"""`otel-ai-cost demo`: real SDK calls against a local stand-in for the providers, priced and attributed.

No API key and no network: the `openai` and `anthropic` clients talk HTTP to `otel_ai_cost.stand_in`, which
answers with the providers' own response shapes. What is printed is read back from the spans and metrics the
instrumentation produced, exactly as an exporter would ship them.

The calls are also written through the in-process ledger exporter into a usage ledger (by default a fresh SQLite
file in a temporary directory, whose path is printed; `--ledger URL` to choose), then the ledger's report, and the
demo ends with a reconciliation against the stand-in's billing endpoints: the whole chain, call -> span -> ledger
record -> report -> the bill beside it, on a fresh machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import click

from otel_ai_cost.contract import SPEND, Attribution, Cost, GenAI, Resource

_ATTRIBUTION = (Attribution.OPERATION_TYPE, Attribution.JOB_ID, Attribution.BATCH_ID, Attribution.TEAM)

Step = tuple[str, Callable[[Any, Any, Any], Any]]


def _calls() -> list[Step]:
    from otel_ai_cost.stand_in import Scenario

    user = [{"role": "user", "content": "Summarise this receipt: 2x coffee, 1x bagel, total $11.40"}]

    def chat(s: Any, o: Any, a: Any) -> Any:
        return o.chat.completions.create(model="gpt-4o-mini", messages=user)

    def cached_chat(s: Any, o: Any, a: Any) -> Any:
        s.push(Scenario(prompt_tokens=2048, cached_tokens=1920, completion_tokens=120))
        return o.chat.completions.create(model="gpt-4o-mini", messages=user)

    def streamed_chat(s: Any, o: Any, a: Any) -> Any:
        # No stream_options: the instrumentation asks for the usage chunk and hides it from this loop.
        return "".join(c.choices[0].delta.content or "" for c in o.chat.completions.create(
            model="gpt-4.1", messages=user, stream=True) if c.choices)  # fmt: skip

    def reasoning(s: Any, o: Any, a: Any) -> Any:
        s.push(Scenario(prompt_tokens=900, completion_tokens=1400, reasoning_tokens=1152))
        return o.responses.create(model="o4-mini", input="Which merchant category is this receipt?")

    def embeddings(s: Any, o: Any, a: Any) -> Any:
        return o.embeddings.create(model="text-embedding-3-small", input=["coffee", "bagel"])

    def cache_write(s: Any, o: Any, a: Any) -> Any:
        s.push(Scenario(input_tokens=40, cache_write_5m_input_tokens=3000, cache_write_1h_input_tokens=6000,
                        output_tokens=300))  # fmt: skip
        return a.messages.create(model="claude-haiku-4-5", max_tokens=400, messages=user)

    def cache_read_stream(s: Any, o: Any, a: Any) -> Any:
        s.push(Scenario(input_tokens=40, cache_read_input_tokens=9000, output_tokens=250))
        with a.messages.stream(model="claude-haiku-4-5", max_tokens=400, messages=user) as stream:
            return stream.get_final_message()

    def batch_tier(s: Any, o: Any, a: Any) -> Any:
        s.push(Scenario(input_tokens=1200, output_tokens=400, service_tier="batch"))
        return a.messages.create(model="claude-haiku-4-5", max_tokens=400, messages=user)

    def unknown_model(s: Any, o: Any, a: Any) -> Any:
        return o.chat.completions.create(model="acme-llm-7b", messages=user)

    def rate_limited(s: Any, o: Any, a: Any) -> Any:
        s.push(Scenario(status=429), Scenario(status=429), Scenario(status=429))
        try:
            return o.with_options(max_retries=2).chat.completions.create(model="gpt-4o-mini", messages=user)
        except Exception as exc:  # the demo shows the failure's telemetry
            return exc

    def async_chat(s: Any, o: Any, a: Any) -> Any:
        import openai

        async def go() -> Any:
            async with openai.AsyncOpenAI(base_url=s.openai_base_url, api_key="sk-demo-not-a-real-key") as client:
                return await client.chat.completions.create(model="gpt-4o-mini", messages=user)

        return asyncio.run(go())

    return [
        ("chat", chat),
        ("chat, 1920 of 2048 input tokens cached", cached_chat),
        ("chat, streamed without include_usage", streamed_chat),
        ("responses, reasoning model", reasoning),
        ("embeddings", embeddings),
        ("anthropic, cache writes 5m + 1h", cache_write),
        ("anthropic, streamed, cache read", cache_read_stream),
        ("anthropic, batch tier", batch_tier),
        ("chat, model with no price", unknown_model),
        ("chat, 429 after 2 retries", rate_limited),
        ("chat, async client", async_chat),
    ]


@click.command()
@click.option(
    "--ledger",
    metavar="URL",
    help="Ledger to record the calls into, e.g. sqlite:///tmp/demo.db (default: a fresh SQLite file in a "
    "temporary directory).",
)
def demo(ledger: str | None) -> None:
    """Make real SDK calls against a local stand-in provider and print each call's tokens, cost and attribution,
    then the usage ledger's report of them."""
    import anthropic
    import openai
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource as SdkResource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import otel_ai_cost
    from otel_ai_cost.attribution import detect_resource_attributes
    from otel_ai_cost.contract import INSTRUMENTATION_SCOPE
    from otel_ai_cost.instrument_api import attach_ledger
    from otel_ai_cost.stand_in import StandInServer

    resource = SdkResource.create({"service.name": "otel-ai-cost-demo", **detect_resource_attributes()})
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], resource=resource)
    store, ledger_url = _open_ledger(ledger)
    attach_ledger(tracer_provider, store=store)  # the in-process exporter, as instrument() wires it by default
    otel_ai_cost.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)

    env = resource.attributes.get(Resource.DEPLOYMENT_ENVIRONMENT_NAME)
    click.echo(f"service otel-ai-cost-demo, environment {env}: calls against a local stand-in provider\n")
    header = f"{'call':<40} {'provider':<9} {'model':<22} {'in':>6} {'cached':>6} {'cwrite':>6} {'out':>6} "
    header += f"{'reason':>6} {'cost USD':>12}  status"
    click.echo(header)
    click.echo("-" * len(header))
    try:
        with StandInServer() as server:
            oai = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-demo-not-a-real-key", max_retries=0)
            anth = anthropic.Anthropic(
                base_url=server.anthropic_base_url, api_key="sk-ant-demo-not-a-real-key", open_telemetry=False
            )
            with otel_ai_cost.ai_usage_context(
                operation_type="receipt_labelling", job_id="demo-job-1", batch_id="batch-7", team="platform"
            ):
                for label, step in _calls():
                    spans.clear()
                    step(server, oai, anth)
                    for span in spans.get_finished_spans():
                        if span.instrumentation_scope and span.instrumentation_scope.name == INSTRUMENTATION_SCOPE:
                            attributes = span.attributes or {}
                            click.echo(_row(label, attributes))
            tracer_provider.force_flush()  # the ledger exporter's batch processor writes what it holds
            reconciliation = _reconcile(server, store)
    finally:
        otel_ai_cost.uninstrument()

    # Read back from the last span, as a backend would see it.
    attribution = {k: v for k, v in attributes.items() if k.startswith("ai_cost.") and k in _ATTRIBUTION}
    click.echo("\nattribution on each span: " + ", ".join(f"{k}={v}" for k, v in attribution.items()))
    click.echo(f"\n{SPEND.prometheus_name} by provider/model (what Prometheus would scrape):")
    for labels, value in _spend(reader):
        click.echo(f"  {labels[GenAI.PROVIDER_NAME]:<10} {labels[GenAI.REQUEST_MODEL]:<22} {value:.8f}")
    _print_report(store, ledger_url, str(env))
    _print_reconciliation(reconciliation, ledger_url)
    meter_provider.shutdown()
    tracer_provider.shutdown()  # closes the ledger


def _open_ledger(url: str | None) -> tuple[Any, str]:
    import tempfile
    from pathlib import Path

    from otel_ai_cost.ledger.open_store import LedgerConfigError, open_store
    from otel_ai_cost.ledger.store import StoreUnavailable

    if url is None:  # a fresh file per run, so the report shows this run's calls only
        url = "sqlite://" + str(Path(tempfile.mkdtemp(prefix="otel-ai-cost-demo-")) / "usage.db")
    try:
        return open_store(url, origin="--ledger"), url
    except (LedgerConfigError, StoreUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc


def _print_report(store: Any, url: str, environment: str) -> None:
    """The ledger's report of today's calls in the demo's environment, read back from the store."""
    from datetime import datetime, timezone

    from otel_ai_cost.ledger.report import render_report
    from otel_ai_cost.ledger.store import UsageQuery

    today = datetime.now(timezone.utc).date()
    query = UsageQuery(start_day=today, end_day=today, environment=environment, service="otel-ai-cost-demo")
    group_by = ["provider", "model"]
    rows = store.aggregate(query, group_by)
    unpriced = [(dict(r.group)["provider"], dict(r.group)["model"], r.unpriced_calls) for r in rows if r.unpriced_calls]
    click.echo(f"\nusage ledger {url}: today's calls, by provider and model (`otel-ai-cost report`):\n")
    click.echo(render_report(rows, group_by, "table", unpriced_models=unpriced))  # the report's own table
    click.echo(f"\nmore: otel-ai-cost report --ledger {url} --by day,operation_type,team")
    click.echo(f"      otel-ai-cost jobs show demo-job-1 --ledger {url}")


def _reconcile(server: Any, store: Any) -> Any:
    """Today's reconciliation against the stand-in's billing endpoints (OpenAI's Costs and Usage APIs, Anthropic's
    cost and usage reports, read by the real admin clients), which bill the calls the stand-in served."""
    from datetime import datetime, timezone

    import anthropic
    import openai

    from otel_ai_cost.reconcile.anthropic_costs import AnthropicCostReport
    from otel_ai_cost.reconcile.openai_costs import OpenAICosts
    from otel_ai_cost.reconcile.run import reconcile

    today = datetime.now(timezone.utc).date()
    admin = "sk-admin-demo-not-a-real-key"  # the stand-in takes any key
    sources = [
        OpenAICosts(client=openai.OpenAI(base_url=server.openai_base_url, admin_api_key=admin, api_key="")),
        AnthropicCostReport(
            client=anthropic.Anthropic(base_url=server.anthropic_base_url, api_key=admin, open_telemetry=False)
        ),
    ]
    return reconcile(store, start_day=today, end_day=today, sources=sources, today=today)


def _print_reconciliation(result: Any, url: str) -> None:
    from otel_ai_cost.reconcile.render import render

    click.echo("\nreconciliation: tracked beside what the stand-in billed (its Costs and usage APIs), "
               "`otel-ai-cost reconcile`:")  # fmt: skip
    click.echo(render(result, "table"), nl=False)
    click.echo(f"more: otel-ai-cost reconcile --no-pull --format html -o reconciliation.html --ledger {url}")


def _row(label: str, a: Any) -> str:
    def n(key: str) -> str:
        value = a.get(key)
        return "" if value is None else str(value)

    amount = a.get(Cost.AMOUNT)
    cost = f"{Decimal(amount):.8f}" if amount is not None else "-"
    status = a.get(Cost.PRICING_STATUS, "")
    if a.get("error.type"):
        status += f" ({a['error.type']})"
    if a.get(Cost.PRICING_TIER) not in (None, "standard"):
        status += f" [{a[Cost.PRICING_TIER]} tier]"
    return (
        f"{label:<40} {n(GenAI.PROVIDER_NAME):<9} {n(GenAI.RESPONSE_MODEL) or n(GenAI.REQUEST_MODEL):<22} "
        f"{n(GenAI.USAGE_INPUT_TOKENS):>6} {n(GenAI.USAGE_CACHE_READ_INPUT_TOKENS):>6} "
        f"{n(GenAI.USAGE_CACHE_CREATION_INPUT_TOKENS):>6} {n(GenAI.USAGE_OUTPUT_TOKENS):>6} "
        f"{n(GenAI.USAGE_REASONING_OUTPUT_TOKENS):>6} {cost:>12}  {status}"
    )


def _spend(reader: Any) -> list[tuple[dict[str, str], float]]:
    data = reader.get_metrics_data()
    rows = []
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == SPEND.name:
                    rows += [(dict(p.attributes), p.value) for p in metric.data.data_points]
    return sorted(rows, key=lambda r: -r[1])
