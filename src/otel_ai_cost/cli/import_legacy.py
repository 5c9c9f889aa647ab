"""`otel-ai-cost import legacy-dynamodb --table NAME`: the legacy tracker's history, into the ledger.

```bash
otel-ai-cost import legacy-dynamodb --table ReceiptsTable-prod-xyz789 --resume-file legacy-prod.json
otel-ai-cost import legacy-dynamodb --table ReceiptsTable-dev-abc123 --segments 4 --ledger dynamodb://ledger
```

Reads every `AIUsageMetric` item of the table (a filtered, paginated Scan; `--segments N` parallel segments) and
writes one ledger record per item, in the ledger `--ledger`/`OTEL_AI_COST_LEDGER` names. How each attribute maps:
`otel_ai_cost.migrate.legacy_item`; the scan and the resume file: `otel_ai_cost.migrate.legacy_scan`; step by step:
docs/migration.md, section 2.

Running it again changes nothing (each record's identity is its item's `requestId`): it says
"N imported, M already present". With `--resume-file`, an interrupted import continues where it stopped.

**Exit status**: 0 when every item was imported (or already present); 1 when any item could not be, each one
listed on standard error with its PK and SK (the rest are imported all the same); 1 for a table, ledger or
resume file it cannot use; 130 on Ctrl-C. The AWS credentials are the usual ones (environment, profile, role)
and are never printed.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import click

from otel_ai_cost.cli.progress import interrupted, progress_bar, progress_option, show_progress
from otel_ai_cost.cli.report import ledger_option, ledger_url, open_ledger
from otel_ai_cost.migrate.legacy_item import MappingDefaults, environment_from_table, normalize_environment
from otel_ai_cost.migrate.legacy_scan import (
    MAX_PROBLEMS_KEPT,
    MAX_SEGMENTS,
    CheckpointError,
    LegacyImportCancelled,
    LegacyImportInterrupted,
    LegacyImportResult,
    LegacyTableError,
    check_legacy_table,
    import_legacy_table,
    legacy_client,
)

__all__ = ["legacy_dynamodb"]


@click.command("legacy-dynamodb")
@click.option("--table", required=True, metavar="NAME", help="The legacy table, e.g. ReceiptsTable-prod-xyz789.")
@click.option(
    "--environment",
    "-e",
    help="Environment of every record (default: the item's own, else the table name's stack token: "
    "ReceiptsTable-prod-... is production).",
)
@click.option(
    "--service", help="The ledger service of every record (default: the item's metadata.service, else legacy-tracker)."
)
@click.option(
    "--segments",
    type=click.IntRange(1, MAX_SEGMENTS),
    help="Parallel Scan segments, for large tables (default: 1, or the resume file's).",
)
@click.option(
    "--resume-file",
    type=click.Path(dir_okay=False),
    help="Keep each segment's position in this file, so an interrupted import continues (no default: without "
    "it an interrupted import starts over, which is safe but reads everything again). Removed when done.",
)
@click.option(
    "--page-size", type=click.IntRange(1, 1_000_000), help="Items per Scan request (default: DynamoDB's 1 MB pages)."
)
@click.option("--region", help="The table's AWS region (default: AWS_REGION, else the profile's).")
@click.option(
    "--endpoint-url", metavar="URL", help="DynamoDB endpoint (default: AWS_ENDPOINT_URL_DYNAMODB, else AWS's own)."
)
@progress_option
@ledger_option
def legacy_dynamodb(
    table: str,
    environment: str | None,
    service: str | None,
    segments: int | None,
    resume_file: str | None,
    page_size: int | None,
    region: str | None,
    endpoint_url: str | None,
    progress: bool | None,
    ledger: str | None,
) -> None:
    """Import the legacy tracker's AIUsageMetric items from its DynamoDB table into the ledger.

    Safe to run again: records already imported are recognised by their requestId and change nothing. Items that
    cannot be imported are listed with their PK and SK, and the exit status is then 1.
    """
    table = table.strip()
    if environment is not None and not environment.strip():
        raise click.BadParameter("must not be empty", param_hint="--environment")
    table_environment = environment_from_table(table)
    if not environment and table_environment is None:
        click.echo(
            f"warning: the table name {table} has no stack token (NAME-STACK-...): items that name no environment "
            "of their own cannot be imported; pass --environment",
            err=True,
        )
    defaults = MappingDefaults(
        environment=normalize_environment(environment) if environment else None,
        table_environment=table_environment,
        service=service.strip() if service and service.strip() else None,
    )
    try:
        client = legacy_client(region=region, endpoint_url=endpoint_url, segments=segments or 1)
        check_legacy_table(client, table)
    except LegacyTableError as exc:
        raise click.ClickException(str(exc)) from None
    where = _endpoint(endpoint_url or client.meta.endpoint_url)
    click.echo(f"reading {table} (region {client.meta.region_name}, {where}); {_environment_rule(defaults)}", err=True)
    try:
        with (
            open_ledger(ledger) as store,
            progress_bar("importing legacy items", show=show_progress(progress), unit="items") as bar,
        ):
            try:
                result = import_legacy_table(
                    client,
                    table,
                    store,
                    defaults=defaults,
                    segments=segments,
                    resume_file=resume_file,
                    page_size=page_size,
                    on_page=lambda running: bar(running.scanned),
                )
            except CheckpointError as exc:
                raise click.BadParameter(str(exc), param_hint="--resume-file") from None
            except LegacyImportInterrupted as exc:
                _report_problems(exc.result)
                raise click.ClickException(str(exc)) from None
    except LegacyImportCancelled as cancelled:
        _report_problems(cancelled.result)
        interrupted(str(cancelled))
    except KeyboardInterrupt:  # before the first page: nothing written
        interrupted(f"{table}: interrupted before any item was imported; re-running is safe")
    click.echo(_summary(table, result, ledger_url(ledger)))
    if result.tags_trimmed:
        click.echo(
            f"{result.tags_trimmed} records had metadata cut to the ledger's tag bounds (64 tags, 100-character "
            "keys, 200-character values): their tag legacy.tags_trimmed says how many tags",
            err=True,
        )
    if result.not_imported:
        _report_problems(result)
        raise SystemExit(1)


def _summary(table: str, result: LegacyImportResult, where: str) -> str:
    parts = [f"{result.imported} imported", f"{result.already_present} already present"]
    if result.conflicts:
        parts[-1] += f" ({result.conflicts} with other content: kept as first imported)"
    if result.not_imported:
        parts.append(f"{result.not_imported} not imported")
    resumed = ", resumed from the resume file" if result.resumed else ""
    return f"{table}: {result.scanned} AIUsageMetric items read{resumed}: {', '.join(parts)}, into {where}"


def _report_problems(result: LegacyImportResult) -> None:
    for problem in result.problems:
        click.echo(f"not imported: {problem}", err=True)
    unlisted = result.not_imported - len(result.problems)
    if unlisted > 0:
        click.echo(f"... and {unlisted} more not imported (the first {MAX_PROBLEMS_KEPT:,} are listed)", err=True)


def _environment_rule(defaults: MappingDefaults) -> str:
    if defaults.environment:
        return f"environment {defaults.environment} (--environment) for every item"
    if defaults.table_environment:
        return f"environment: the item's own, else {defaults.table_environment} (from the table name)"
    return "environment: the item's own"


def _endpoint(url: str | None) -> str:
    """The endpoint for a message, without any `user:password@` part."""
    if not url:
        return "AWS endpoint"
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]  # never a user:password@ part
    return f"endpoint {urlunsplit((parts.scheme, netloc, parts.path, '', ''))}"
