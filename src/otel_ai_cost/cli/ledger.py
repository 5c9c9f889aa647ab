"""`otel-ai-cost ledger`: run the ledger service (`serve`), prepare a store (`init`), prune old records (`prune`)."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

import click

from otel_ai_cost.contract import Env

if TYPE_CHECKING:
    from otel_ai_cost.ledger.service import LedgerService
    from otel_ai_cost.ledger.store import LedgerStore

TOKEN_ENV = Env.LEDGER_TOKEN
LEDGER_ENV = Env.LEDGER  # read by open_store when --ledger is not given

_ledger_option = click.option(
    "--ledger",
    "ledger_url",
    metavar="URL",
    help=f"The store: sqlite:///path/usage.db or dynamodb://table?region=...&endpoint_url=... "
    f"(default: ${LEDGER_ENV}, else the embedded SQLite file).",
)


@click.group("ledger")
def ledger() -> None:
    """The usage ledger: one durable, idempotent record per priced call."""


@ledger.command("serve")
@_ledger_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=4319, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free).")
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False),
    help=f"File holding the bearer token clients must send (default: ${TOKEN_ENV}; neither: no authentication).",
)
@click.option(
    "--tokens-file",
    type=click.Path(dir_okay=False),
    help="YAML file of tokens scoped by environment (which ones each may write and read; docs/ledger.md). "
    "Instead of --token-file.",
)
@click.option(
    "--metrics-top-n",
    default=20,
    show_default=True,
    type=click.IntRange(1),
    help="/metrics: models, teams, operation types shown per environment and period (the rest summed as other).",
)
@click.option(
    "--metrics-environments",
    default=20,
    show_default=True,
    type=click.IntRange(1),
    help="/metrics: environments shown, by month-to-date spend (the rest summed as other).",
)
@click.option(
    "--max-body-mib",
    default=16.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Largest request body accepted, compressed and decompressed (413 beyond).",
)
@click.option("--workers", default=8, show_default=True, type=click.IntRange(1), help="Requests processed at once.")
@click.option(
    "--max-connections",
    default=64,
    show_default=True,
    type=click.IntRange(1),
    help="Open connections; at the cap the longest-idle one is closed to make room.",
)
@click.option(
    "--max-connections-per-client",
    default=16,
    show_default=True,
    type=click.IntRange(1),
    help="Open connections per client address, likewise.",
)
@click.option(
    "--header-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a request head may take (and a new connection may wait before sending one).",
)
@click.option(
    "--body-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a request body may take to arrive (408 beyond).",
)
@click.option(
    "--idle-timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds an idle keep-alive connection is kept.",
)
@click.option(
    "--max-buffered-mib",
    type=click.FloatRange(min=0, min_open=True),
    help="Body bytes all requests may buffer together (503 beyond). Default: workers x --max-body-mib.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
def serve(
    ledger_url: str | None,
    host: str,
    port: int,
    token_file: str | None,
    tokens_file: str | None,
    metrics_top_n: int,
    metrics_environments: int,
    max_body_mib: float,
    workers: int,
    max_connections: int,
    max_connections_per_client: int,
    header_timeout: float,
    body_timeout: float,
    idle_timeout: float,
    max_buffered_mib: float | None,
    log_level: str,
) -> None:
    """Receive OTLP/HTTP spans (POST /v1/traces, protobuf or JSON, gzip) and record their cost in the ledger.

    Point the collector's otlp_http exporter (or any OTLP/HTTP exporter) at http://HOST:PORT. Also serves
    /healthz, /metrics (Prometheus) and /v1/usage (JSON queries). Stops gracefully on SIGTERM or SIGINT.
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from otel_ai_cost.ledger.service import LedgerService, ServiceConfig, run_until_signalled
        from otel_ai_cost.ledger.service.access import open_binding_warning
    except ImportError as error:  # the OTLP protobuf types are an optional dependency
        raise click.ClickException(f"the ledger service needs opentelemetry-proto ({error})") from None

    config = ServiceConfig(
        host=host,
        port=port,
        **_access(token_file, tokens_file),
        metrics_top_n=metrics_top_n,
        metrics_max_environments=metrics_environments,
        max_body_bytes=int(max_body_mib * 1024 * 1024),
        workers=workers,
        max_connections=max_connections,
        max_connections_per_client=max_connections_per_client,
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
        idle_timeout_s=idle_timeout,
        max_buffered_body_bytes=None if max_buffered_mib is None else int(max_buffered_mib * 1024 * 1024),
        warn_open_binding=False,  # printed here instead, before the ledger is opened, and not logged a second time
    )
    warning = open_binding_warning(host, config.access_tokens is not None)
    if warning:
        click.echo(warning, err=True)
    store = _open_store(ledger_url)

    def ready(service: LedgerService) -> None:
        auth = "scoped tokens" if config.tokens else "bearer token required" if config.token else "no authentication"
        click.echo(f"otel-ai-cost ledger: listening on {service.url} ({auth}); ledger: {_describe(ledger_url)}")
        sys.stdout.flush()

    try:
        status = run_until_signalled(LedgerService(store, config), on_ready=ready)
    except OSError as error:  # e.g. the port is taken
        store.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from None
    click.echo("otel-ai-cost ledger: stopped")
    sys.exit(status)


@ledger.command("init")
@_ledger_option
def init(ledger_url: str | None) -> None:
    """Create the store: the DynamoDB table (key schema, indexes, TTL) or the SQLite file."""
    if ledger_url is None:
        from otel_ai_cost.ledger.open_store import configured_url

        ledger_url = configured_url()
    if ledger_url.startswith("dynamodb:"):
        from otel_ai_cost.ledger.dynamodb_store import init_table

        result = init_table(ledger_url)
        click.echo(f"otel-ai-cost ledger: DynamoDB table ready ({ledger_url.split('?', 1)[0]})")
        if result:
            click.echo(str(result))
        return
    store = _open_store(ledger_url)
    try:
        click.echo(f"otel-ai-cost ledger: SQLite ledger ready ({_describe(ledger_url)})")
    finally:
        store.close()


def _add_prune() -> None:
    from otel_ai_cost.cli.ledger_prune import prune  # its own module: retention of the SQLite ledger

    ledger.add_command(prune)


_add_prune()


def _access(token_file: str | None, tokens_file: str | None) -> dict[str, object]:
    """ServiceConfig's `token` or `tokens`: a tokens file (scoped) replaces the one-token modes."""
    if tokens_file is None:
        return {"token": _read_token(token_file)}
    if token_file is not None:
        raise click.UsageError("give --tokens-file or --token-file, not both")
    from otel_ai_cost.ledger.service.access import TokensFileError, load_tokens

    try:
        return {"tokens": load_tokens(tokens_file)}
    except TokensFileError as error:
        raise click.ClickException(str(error)) from None


def _read_token(token_file: str | None) -> str | None:
    """From the file (first line, whitespace stripped) or the environment; never from the command line, where
    other users could read it in the process list."""
    if token_file:
        with open(token_file, encoding="utf-8") as handle:
            token = handle.read().strip()
        if not token:
            raise click.ClickException(f"the token file {token_file} is empty")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None


def _open_store(url: str | None) -> LedgerStore:
    from otel_ai_cost.ledger.open_store import open_store
    from otel_ai_cost.ledger.store import StoreUnavailable

    try:
        return open_store(url, origin="--ledger" if url else None)
    except (StoreUnavailable, ValueError) as error:  # LedgerConfigError is a ValueError
        raise click.ClickException(f"cannot open the ledger: {error}") from None


def _describe(url: str | None) -> str:
    """Where the records go, as the user names it: the ledger URL (`--ledger`, else `OTEL_AI_COST_LEDGER`, else the
    default `sqlite:///...` file), never a store's Python repr, and without anything secret."""
    from otel_ai_cost.cli.report import ledger_url

    return ledger_url(url)
