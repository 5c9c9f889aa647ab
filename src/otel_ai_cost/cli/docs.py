"""`otel-ai-cost docs`: documents generated from the code."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def docs() -> None:
    """Generate documentation from the code's single sources of truth."""


@docs.command("telemetry")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
def telemetry(output: Path | None) -> None:
    """The telemetry contract (docs/telemetry.md)."""
    from otel_ai_cost.telemetry.contract_doc import render

    text = render()
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
