"""`otel-ai-cost stand-in serve`: run the local OpenAI/Anthropic look-alike as a server.

For the compose stack's example app (and anyone trying the instrumentation without API keys): point
`OPENAI_BASE_URL` at `http://HOST:PORT/v1` and `ANTHROPIC_BASE_URL` at `http://HOST:PORT`.

Also runnable before the group is registered: `python -m otel_ai_cost.cli.stand_in serve --port 8080`.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

import click


@click.group("stand-in")
def stand_in() -> None:
    """A local stand-in for the OpenAI and Anthropic APIs (no API key, no network, deterministic answers)."""


@stand_in.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 in a container).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free).")
def serve(host: str, port: int) -> None:
    """Serve the stand-in in the foreground until SIGINT or SIGTERM, printing the base URLs to use."""
    from otel_ai_cost.stand_in import serve as serve_forever

    def stop(signum: int, frame: FrameType | None) -> None:
        # `serve` ends cleanly on KeyboardInterrupt; turn `docker stop`'s SIGTERM into one.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        serve_forever(port=port, host=host)
    except OSError as error:  # e.g. the port is taken
        raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from None
    sys.stdout.flush()
