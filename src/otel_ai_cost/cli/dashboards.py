"""`otel-ai-cost dashboards`: the Grafana dashboards, generated from the telemetry contract."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def dashboards() -> None:
    """Grafana dashboards generated from the telemetry contract."""


@dashboards.command("render")
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dashboards"),
    show_default=True,
    help="Directory to write one JSON file per dashboard into.",
)
def render(output: Path) -> None:
    """Write the dashboards' JSON (commit it: a test fails when it drifts from the generator)."""
    from otel_ai_cost.dashboards import render as render_dashboards

    for path in render_dashboards(output):
        click.echo(str(path))
