"""An instrumented program for the compose stack: loops making OpenAI and Anthropic calls against the stand-in.

Every call is priced and attributed by otel-ai-cost (`ai_usage_context`: operation type, job id, batch id, team,
a free-form tag) and exported over OTLP/HTTP to the collector, which sends the spans to the ledger and the trace
store and the metrics to Prometheus, so the stack shows data without any API key.

Configuration is the standard OpenTelemetry environment (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_METRIC_EXPORT_INTERVAL`) plus::

    python examples/stack_app.py --stand-in http://stand-in:8080 --interval 5       # the compose service
    python examples/stack_app.py --iterations 2 --interval 0                        # a local stand-in, 2 rounds

Without `--stand-in`, a stand-in server is started in this process.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otel_ai_cost.contract import Env

SERVICE_NAME = "otel-ai-cost-stack-app"
OPERATION_TYPES = ("receipt_labelling", "support_summary", "search_rerank")
TEAMS = ("platform", "growth")


@dataclass(frozen=True)
class Options:
    """Command-line options."""

    iterations: int
    interval: float
    stand_in: str | None
    heartbeat_file: Path | None


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Parses the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--iterations", type=int, default=0, help="rounds of calls (0: until stopped)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between rounds")
    parser.add_argument("--stand-in", metavar="URL", help="a running stand-in (default: start one in-process)")
    parser.add_argument("--heartbeat-file", type=Path, help="touched after every round (container healthcheck)")
    args = parser.parse_args(argv)
    if args.iterations < 0 or args.interval < 0:
        parser.error("--iterations and --interval must not be negative")
    return Options(args.iterations, args.interval, args.stand_in, args.heartbeat_file)


def setup_telemetry() -> tuple[Any, Any]:
    """SDK providers exporting over OTLP/HTTP (endpoint from `OTEL_EXPORTER_OTLP_ENDPOINT`), instrumented."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    import otel_ai_cost
    from otel_ai_cost.attribution import detect_resource_attributes

    # The collector forwards the spans to the ledger service: an in-process ledger as well would record every
    # call a second time, in a second store.
    os.environ.setdefault(Env.LEDGER, "none")
    # One series per process: without an instance id, several replicas would write the same cumulative series.
    defaults = {"service.name": SERVICE_NAME, "service.instance.id": str(uuid.uuid4())}
    resource = Resource.create({**defaults, **detect_resource_attributes()})  # OTEL_* variables take precedence
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    otel_ai_cost.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    return tracer_provider, meter_provider


@contextmanager
def stand_in_urls(url: str | None) -> Iterator[tuple[str, str]]:
    """(OpenAI base URL, Anthropic base URL): of the given stand-in, or of one started here."""
    if url:
        base = url.rstrip("/")
        yield f"{base}/v1", base
        return
    from otel_ai_cost.stand_in import StandInServer

    with StandInServer() as server:
        yield server.openai_base_url, server.anthropic_base_url


def one_round(number: int, openai_client: Any, anthropic_client: Any) -> int:
    """One job's calls: a chat completion, an embedding and an Anthropic message. Returns the calls made."""
    import otel_ai_cost

    operation_type = OPERATION_TYPES[number % len(OPERATION_TYPES)]
    team = TEAMS[number % len(TEAMS)]
    messages = [{"role": "user", "content": f"Summarise ticket #{number}: the printer is on fire again."}]
    with otel_ai_cost.ai_usage_context(
        operation_type=operation_type,
        job_id=f"stack-job-{number}",  # unbounded: on spans and in the ledger, stripped from metric labels
        batch_id=f"stack-batch-{number // 10}",
        team=team,
        customer=f"customer-{number % 7}",  # a free-form tag: ai_cost.tag.customer
    ):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        openai_client.embeddings.create(model="text-embedding-3-small", input=[messages[0]["content"]])
        anthropic_client.messages.create(model="claude-haiku-4-5", max_tokens=300, messages=messages)
    return 3


def run(options: Options) -> int:
    """Makes the calls; returns the number of calls made."""
    import anthropic
    import openai

    tracer_provider, meter_provider = setup_telemetry()
    calls = 0
    try:
        with stand_in_urls(options.stand_in) as (openai_url, anthropic_url):
            openai_client = openai.OpenAI(base_url=openai_url, api_key="sk-stack-not-a-real-key")
            anthropic_client = anthropic.Anthropic(base_url=anthropic_url, api_key="sk-ant-stack-not-a-real-key")
            rounds = range(options.iterations) if options.iterations else itertools.count()
            for number in rounds:
                if number and options.interval:
                    time.sleep(options.interval)
                calls += one_round(number, openai_client, anthropic_client)
                print(f"round {number + 1}: {calls} calls so far", flush=True)
                if options.heartbeat_file is not None:
                    options.heartbeat_file.touch()
    except KeyboardInterrupt:
        pass
    finally:
        # Export what is still buffered before exiting (the last round's spans and metrics).
        tracer_provider.force_flush()
        meter_provider.force_flush()
        tracer_provider.shutdown()
        meter_provider.shutdown()
    return calls


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: exit status 0 when every round completed."""
    signal_to_interrupt()
    run(parse_args(argv))
    return 0


def signal_to_interrupt() -> None:
    """`docker stop` sends SIGTERM: end the loop like Ctrl-C, so the buffered telemetry is flushed."""
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    sys.exit(main())
