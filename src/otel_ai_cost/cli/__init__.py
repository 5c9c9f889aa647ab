"""The `otel-ai-cost` command line."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="otel-ai-cost")
def main() -> None:
    """Exact cost tracking for AI API calls, built on OpenTelemetry."""


def _register() -> None:
    # Each concern's commands live in their own module.
    from otel_ai_cost.cli.demo import demo
    from otel_ai_cost.cli.docs import docs
    from otel_ai_cost.cli.prices import prices

    main.add_command(demo)
    main.add_command(docs)
    main.add_command(prices)


_register()
