"""`computed_amount`: our catalog's figure beside a provider-reported amount, from the span to the record, through
the SQLite store (and its version 1 -> 2 migration), the OTLP ledger service, `/v1/usage` and the report."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_ai_cost.cli import main
from otel_ai_cost.contract import INSTRUMENTATION_SCOPE, Cost, CostSource, GenAI, Record
from otel_ai_cost.ledger import sqlite_store
from otel_ai_cost.ledger.from_span import InvalidSpan, record_from_attributes
from otel_ai_cost.ledger.manual import manual_record
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.report import render_job, render_report
from otel_ai_cost.ledger.service import LedgerService, ServiceConfig
from otel_ai_cost.ledger.sqlite_store import SCHEMA_VERSION, SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery

MakeRecord = Callable[..., LedgerRecord]  # the `make_record` fixture of conftest.py
PROVIDER = CostSource.PROVIDER.value
T0 = datetime(2026, 1, 30, 12, 0, tzinfo=timezone.utc)

# The schema of version 1 exactly as otel-ai-cost wrote it before `computed_amount` (PRAGMA user_version = 1).
# Hard-coded on purpose: the store's own DDL now derives from a record that has the new field.
_V1_DDL = [
    """CREATE TABLE IF NOT EXISTS records (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    environment TEXT NOT NULL,
    service TEXT,
    provider TEXT,
    request_model TEXT,
    response_model TEXT,
    operation TEXT,
    operation_type TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cache_read_input_tokens INTEGER,
    cache_write_5m_input_tokens INTEGER,
    cache_write_1h_input_tokens INTEGER,
    reasoning_output_tokens INTEGER,
    web_search_requests INTEGER,
    amount TEXT,
    currency TEXT,
    cost_source TEXT,
    pricing_status TEXT,
    pricing_version TEXT,
    pricing_tier TEXT,
    duration_ms REAL,
    outcome TEXT,
    error_type TEXT,
    job_id TEXT,
    batch_id TEXT,
    team TEXT,
    user_id TEXT,
    tags TEXT,
    cicd_pipeline_name TEXT,
    cicd_run_id TEXT,
    cicd_run_url TEXT,
    cicd_task_name TEXT,
    vcs_repository_url TEXT,
    vcs_revision TEXT,
    vcs_ref_name TEXT,
    vcs_change_id TEXT,
    record_source TEXT,
    note TEXT,
    schema_version INTEGER,
    day TEXT NOT NULL,
    model TEXT NOT NULL,
    amount_micro INTEGER,
    amount_pico INTEGER,
    amount_residual TEXT,
    PRIMARY KEY (trace_id, span_id)
)""",
    "CREATE INDEX IF NOT EXISTS records_environment_day ON records (environment, day)",
    "CREATE INDEX IF NOT EXISTS records_day ON records (day)",
    "CREATE INDEX IF NOT EXISTS records_provider_model_day ON records (provider, model, day)",
    "CREATE INDEX IF NOT EXISTS records_model_day ON records (model, day)",
    "CREATE INDEX IF NOT EXISTS records_request_model_day ON records (request_model, day)",
    "CREATE INDEX IF NOT EXISTS records_job ON records (job_id)",
    "CREATE INDEX IF NOT EXISTS records_batch ON records (batch_id)",
    "CREATE INDEX IF NOT EXISTS records_cicd_run ON records (cicd_run_id)",
    """CREATE TABLE IF NOT EXISTS daily (
    day TEXT NOT NULL,
    environment TEXT NOT NULL,
    service TEXT NOT NULL,
    provider TEXT NOT NULL,
    request_model TEXT NOT NULL,
    response_model TEXT NOT NULL,
    operation TEXT NOT NULL,
    operation_type TEXT NOT NULL,
    team TEXT NOT NULL,
    model TEXT NOT NULL,
    calls INTEGER NOT NULL,
    unpriced_calls INTEGER NOT NULL,
    amount_micro INTEGER NOT NULL,
    amount_pico INTEGER NOT NULL,
    amount_residual TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_input_tokens INTEGER NOT NULL,
    cache_write_5m_input_tokens INTEGER NOT NULL,
    cache_write_1h_input_tokens INTEGER NOT NULL,
    reasoning_output_tokens INTEGER NOT NULL,
    PRIMARY KEY (day, environment, service, provider, request_model, response_model, operation, operation_type, team)
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS totals (
    environment TEXT NOT NULL,
    period TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    amount TEXT NOT NULL,
    calls INTEGER NOT NULL,
    unpriced_calls INTEGER NOT NULL,
    PRIMARY KEY (environment, period, provider, model)
)""",
]


def _xai(n: int, **fields: Any) -> dict[str, Any]:
    """A provider-reported xAI call with our catalog's figure beside it (record fields)."""
    values: dict[str, Any] = {
        "provider": "xai",
        "request_model": "grok-4",
        "response_model": "grok-4-0709",
        "amount": Decimal("0.0123"),
        "computed_amount": Decimal("0.0120"),
        "cost_source": PROVIDER,
    }
    values.update(fields)
    return values


# -- the record -----------------------------------------------------------------------------------------------


def test_the_field_is_a_contract_name():
    assert Record.COMPUTED_AMOUNT == "computed_amount"
    assert Record.COMPUTED_AMOUNT in {f for f in LedgerRecord.__dataclass_fields__}


def test_to_dict_and_from_dict_keep_it_exactly(make_record: MakeRecord):
    record = make_record(**_xai(1, computed_amount=Decimal("0.000000000000000001")))
    data = record.to_dict()
    assert data["computed_amount"] == "0.000000000000000001"
    assert LedgerRecord.from_dict(json.loads(json.dumps(data))) == record

    plain = make_record()
    assert plain.to_dict()["computed_amount"] is None
    assert LedgerRecord.from_dict(plain.to_dict()).computed_amount is None
    older = {k: v for k, v in plain.to_dict().items() if k != "computed_amount"}  # written before the field
    assert LedgerRecord.from_dict(older) == plain
    assert LedgerRecord.from_dict({**plain.to_dict(), "computed_amount": ""}).computed_amount is None


def test_manual_identities_are_unchanged_by_the_new_field():
    """A re-import after the upgrade must still find its entries (identity = hash of the content)."""
    record = manual_record(
        provider="openai", amount="45.23", model="gpt-4o", environment="production", when="2026-01-30", note="invoice"
    )
    assert record.key == ("1e7249fa263819d8dbe1473607a83014", "20ff4c0eaf5285ca")  # as computed before the field


# -- from the span ----------------------------------------------------------------------------------------------


def _attributes(**extra: Any) -> dict[str, Any]:
    return {
        GenAI.OPERATION_NAME: "chat",
        GenAI.PROVIDER_NAME: "xai",
        GenAI.REQUEST_MODEL: "grok-4",
        GenAI.USAGE_INPUT_TOKENS: 1000,
        GenAI.USAGE_OUTPUT_TOKENS: 200,
        Cost.AMOUNT: "0.0123",
        Cost.SOURCE: PROVIDER,
        Cost.PRICING_STATUS: "priced",
        **extra,
    }


_START_NS = int(datetime(2026, 11, 22, tzinfo=timezone.utc).timestamp()) * 10**9


def _from_attributes(attributes: dict[str, Any]) -> LedgerRecord:
    return record_from_attributes(
        trace_id="a" * 32,
        span_id="b" * 16,
        start_time_ns=_START_NS,
        end_time_ns=_START_NS + 1,
        resource={},
        attributes=attributes,
    )


def test_the_span_attribute_is_read_exactly():
    record = _from_attributes(_attributes(**{Cost.COMPUTED_AMOUNT: "0.012000000000000000000000000001"}))
    assert record.computed_amount == Decimal("0.012000000000000000000000000001")
    assert record.amount == Decimal("0.0123") and record.cost_source == PROVIDER
    assert _from_attributes(_attributes()).computed_amount is None


@pytest.mark.parametrize("raw", ["cheap", "-1", "NaN", "Infinity", ""])
def test_a_malformed_computed_amount_is_refused_like_a_malformed_amount(raw: str):
    with pytest.raises(InvalidSpan, match=Cost.COMPUTED_AMOUNT):
        _from_attributes(_attributes(**{Cost.COMPUTED_AMOUNT: raw}))
    with pytest.raises(InvalidSpan, match=Cost.AMOUNT):
        _from_attributes(_attributes(**{Cost.AMOUNT: raw}))


# -- SQLite: version 1 -> 2 -------------------------------------------------------------------------------------

_V1_RECORD = {
    "trace_id": "0" * 31 + "1",
    "span_id": "0" * 15 + "1",
    "timestamp": "2026-01-30T12:00:00.000000Z",
    "environment": "production",
    "service": "receipts",
    "provider": "xai",
    "request_model": "grok-4",
    "response_model": "grok-4-0709",
    "operation": "chat",
    "operation_type": "",
    "input_tokens": 100,
    "output_tokens": 20,
    "cache_read_input_tokens": 0,
    "cache_write_5m_input_tokens": 0,
    "cache_write_1h_input_tokens": 0,
    "reasoning_output_tokens": 0,
    "web_search_requests": 0,
    "amount": "0.0123",
    "currency": "USD",
    "cost_source": "provider",
    "pricing_status": "priced",
    "pricing_version": "2026-01-01",
    "pricing_tier": "standard",
    "duration_ms": 12.5,
    "outcome": "success",
    "error_type": "",
    "job_id": "job-1",
    "batch_id": "",
    "team": "search",
    "user_id": "",
    "tags": '{"k":"v"}',
    "cicd_pipeline_name": "",
    "cicd_run_id": "",
    "cicd_run_url": "",
    "cicd_task_name": "",
    "vcs_repository_url": "",
    "vcs_revision": "",
    "vcs_ref_name": "",
    "vcs_change_id": "",
    "record_source": "span",
    "note": "",
    "schema_version": 1,
    "day": "2026-01-30",
    "model": "grok-4-0709",
    "amount_micro": 12300,
    "amount_pico": 0,
    "amount_residual": None,
}


def _write_v1_file(path: Path) -> None:
    """A ledger file as version 1 left it: the schema, one record, its daily rollup row and its running totals."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    for statement in _V1_DDL:
        conn.execute(statement)
    conn.execute(
        f"INSERT INTO records ({', '.join(_V1_RECORD)}) VALUES ({', '.join('?' * len(_V1_RECORD))})",
        tuple(_V1_RECORD.values()),
    )
    conn.execute(
        "INSERT INTO daily VALUES ('2026-01-30', 'production', 'receipts', 'xai', 'grok-4', 'grok-4-0709', 'chat', "
        "'', 'search', 'grok-4-0709', 1, 0, 12300, 0, NULL, 100, 20, 0, 0, 0, 0)"
    )
    for period in ("2026-01-30", "2026-01"):
        conn.execute("INSERT INTO totals VALUES ('production', ?, 'xai', 'grok-4-0709', '0.0123', 1, 0)", (period,))
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_a_version_1_file_is_migrated_and_keeps_its_records(ledger_path: Path, make_record: MakeRecord):
    _write_v1_file(ledger_path)

    with SQLiteStore(ledger_path) as store:
        (old,) = store.query(UsageQuery())
        assert old.key == (_V1_RECORD["trace_id"], _V1_RECORD["span_id"])
        assert old.amount == Decimal("0.0123") and old.computed_amount is None
        assert (old.job_id, old.team, old.tags, old.pricing_tier, old.duration_ms) == (
            "job-1", "search", {"k": "v"}, "standard", 12.5
        )  # fmt: skip
        assert old.schema_version == 1
        # Nothing to compare yet: the old record has no computed figure.
        (row,) = store.aggregate(UsageQuery(), ["provider"])
        assert (row.amount, row.calls, row.computed_amount) == (Decimal("0.0123"), 1, None)

        new = make_record(n=2, **_xai(2, amount=Decimal("0.02"), computed_amount=Decimal("0.0185")))
        assert store.write([new]).written == 1
        assert store.write([new]).duplicates == 1
        by_key = {r.key: r for r in store.query(UsageQuery())}
        assert by_key[new.key] == new and by_key[new.key].computed_amount == Decimal("0.0185")
        assert by_key[old.key].computed_amount is None

        # Totals and rollups stay on `amount` only.
        totals = store.totals("production", "2026-01")
        assert (totals.amount, totals.calls) == (Decimal("0.0323"), 2)
        (row,) = store.aggregate(UsageQuery(), ["provider"])
        assert row.amount == Decimal("0.0323")
        assert row.computed_amount == Decimal("0.0308")  # 0.0123 (nothing computed) + 0.0185 in place of 0.02

    conn = sqlite3.connect(ledger_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # migrated to the latest
    columns = {row[1]: row[2] for row in conn.execute("PRAGMA table_info(records)")}
    assert columns["computed_amount"] == "TEXT"
    stored = conn.execute("SELECT computed_amount FROM records ORDER BY span_id").fetchall()
    assert stored == [(None,), ("0.0185",)]  # exact decimal text, never a float
    conn.close()

    with SQLiteStore(ledger_path) as store:  # reopening a migrated file migrates nothing
        assert len(list(store.query(UsageQuery()))) == 2


def test_a_new_file_has_the_column_and_the_version_1_tables(ledger_path: Path):
    with SQLiteStore(ledger_path):
        pass
    conn = sqlite3.connect(ledger_path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(records)")]
    v1_columns = [
        line.strip().split()[0] for line in _V1_DDL[0].splitlines()[1:] if not line.strip().startswith(("PRIMARY", ")"))
    ]
    # a new file is a migrated version 1 file
    assert columns == [*v1_columns, "computed_amount", *sqlite_store._ADDED_COLUMNS[5]]
    indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "records_computed_day" in indexes
    conn.close()


# -- SQLite: aggregates -------------------------------------------------------------------------------------------


@pytest.fixture
def mixed(sqlite_store: SQLiteStore, make_record: MakeRecord) -> SQLiteStore:
    sqlite_store.write(
        [
            make_record(**_xai(0)),  # 0.0123 reported, 0.0120 computed
            make_record(**_xai(0, amount=Decimal("0.1"), computed_amount=Decimal("0.100000000000001"))),
            make_record(**_xai(0, amount=Decimal("0.05"), computed_amount=None)),  # reported, catalog had no price
            make_record(
                provider="perplexity",
                request_model="sonar",
                response_model="",
                amount=Decimal("0.006"),
                computed_amount=Decimal("0.005"),
                cost_source=PROVIDER,
                job_id="job-7",
            ),
            make_record(amount=Decimal("0.2")),  # openai, priced locally
            make_record(
                amount=None,
                pricing_status="unpriced",
                provider="xai",
                request_model="grok-x",
                response_model="",
                cost_source=PROVIDER,
            ),
        ]
    )
    return sqlite_store


def test_computed_is_the_amount_with_the_catalog_figure_in_place_of_the_providers(mixed: SQLiteStore):
    rows = {dict(r.group)["provider"]: r for r in mixed.aggregate(UsageQuery(), ["provider"])}
    assert rows["xai"].amount == Decimal("0.1623")
    assert rows["xai"].computed_amount == Decimal("0.162000000000001")  # 0.0120 + 0.100000000000001 + 0.05
    assert rows["perplexity"].computed_amount == Decimal("0.005")
    assert rows["openai"].computed_amount is None  # nothing reported by the provider
    (everything,) = mixed.aggregate(UsageQuery(), [])
    assert everything.computed_amount == Decimal("0.367000000000001")
    assert everything.amount == Decimal("0.3683")


@pytest.mark.parametrize(
    ("query", "group_by"),
    [
        (UsageQuery(), ["provider", "model"]),
        (UsageQuery(environment="production", start_day=T0.date(), end_day=T0.date()), ["day"]),
        (UsageQuery(model="grok-4"), ["model"]),
        (UsageQuery(provider="xai"), ["team"]),
        (UsageQuery(environment="staging"), ["provider"]),
    ],
)
def test_rollup_and_records_agree_on_computed(mixed: SQLiteStore, query: UsageQuery, group_by: list[str]):
    assert mixed._aggregate_from("daily", query, group_by) == mixed._aggregate_from("records", query, group_by)


def test_queries_by_job_use_the_job_index_and_still_compare(mixed: SQLiteStore):
    (row,) = mixed.aggregate(UsageQuery(job_id="job-7"), ["job_id"])
    assert (row.amount, row.computed_amount) == (Decimal("0.006"), Decimal("0.005"))


# -- the report ------------------------------------------------------------------------------------------------


def test_the_report_gains_a_computed_column_only_when_there_is_something_to_compare(mixed: SQLiteStore):
    rows = mixed.aggregate(UsageQuery(), ["provider"])
    table = render_report(rows, ["provider"], "table")
    heading = [cell.strip() for cell in next(line for line in table.splitlines() if "┃" in line).split("┃")]
    assert heading[3:5] == ["cost USD", "catalog USD"]
    lines = {cells[0]: cells for line in table.splitlines() if len(cells := [c.strip() for c in line.split("│")]) > 1}
    # provider, calls, cost unknown, amount, computed; one precision per money column
    assert lines["xai"][3:5] == [">= 0.1623", ">= 0.162000000000001"]  # an unpriced grok-x call: lower bounds
    assert lines["perplexity"][3:5] == ["0.0060", "0.005000000000000"]
    assert lines["openai"][3:5] == ["0.2000", "-"]
    assert lines["total"][3:5] == [">= 0.3683", ">= 0.367000000000001"]

    document = json.loads(render_report(rows, ["provider"], "json"))
    by_provider = {row["provider"]: row for row in document["rows"]}
    assert by_provider["xai"]["computed_amount"] == "0.162000000000001"
    assert "computed_amount" not in by_provider["openai"]
    assert document["total"]["computed_amount"] == "0.367000000000001"

    lines_csv = render_report(rows, ["provider"], "csv").splitlines()
    assert lines_csv[0].split(",")[:5] == ["provider", "calls", "unpriced_calls", "amount", "computed_amount"]
    assert any(line.startswith("openai,1,0,0.2,,") for line in lines_csv)

    local = [r for r in rows if dict(r.group)["provider"] == "openai"]
    assert "computed" not in render_report(local, ["provider"], "table")
    assert "computed" not in render_report(local, ["provider"], "csv")
    assert "computed_amount" not in render_report(local, ["provider"], "json")


def test_otel_ai_cost_report_shows_the_difference(mixed: SQLiteStore):
    url = f"sqlite://{mixed.path}"
    period = ["--since", "2026-01-30", "--until", "2026-01-30"]
    result = CliRunner().invoke(main, ["report", "--ledger", url, *period, "--by", "provider"])
    assert result.exit_code == 0, result.output
    assert "catalog USD" in result.output and "0.162000000000001" in result.output
    local = CliRunner().invoke(main, ["report", "--ledger", url, *period, "--by", "provider", "--provider", "openai"])
    assert local.exit_code == 0 and "computed" not in local.output


def test_jobs_show_lists_the_computed_figure(make_record: MakeRecord):
    records = [make_record(**_xai(0, job_id="j")), make_record(job_id="j", amount=Decimal("0.2"))]
    table = render_job("j", records)
    assert "catalog USD" in table and "0.012" in table
    assert "catalog" not in render_job("j", records[1:])
    calls = json.loads(render_job("j", records, "json"))["calls"]
    assert [c["computed_amount"] for c in calls] == ["0.0120", None]


# -- the OTLP ledger service and /v1/usage ---------------------------------------------------------------------


def _spans(*attribute_sets: dict[str, Any]) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "billing", "deployment.environment.name": "production"})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(INSTRUMENTATION_SCOPE)
    for attributes in attribute_sets:
        tracer.start_span("chat grok-4", attributes=attributes).end()
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[LedgerService, SQLiteStore]]:
    store = SQLiteStore(tmp_path / "ledger.db")
    with LedgerService(store, ServiceConfig(port=0)) as running:
        yield running, store


def test_otlp_spans_carry_it_into_the_ledger_and_the_query_api(service: tuple[LedgerService, SQLiteStore]):
    ledger, store = service
    spans = _spans(
        _attributes(**{Cost.COMPUTED_AMOUNT: "0.0120"}),
        _attributes(**{Cost.COMPUTED_AMOUNT: "not money"}),  # rejected, like a malformed ai_cost.amount
        _attributes(),  # provider-reported, not priced by the catalog
    )
    response = requests.post(
        f"{ledger.url}/v1/traces",
        data=encode_spans(spans).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert Cost.COMPUTED_AMOUNT in answer.partial_success.error_message

    stored = sorted(store.query(UsageQuery()), key=lambda r: r.computed_amount is None)
    assert [r.computed_amount for r in stored] == [Decimal("0.0120"), None]

    listing = requests.get(f"{ledger.url}/v1/usage", timeout=10).json()
    assert sorted(map(str, (r["computed_amount"] for r in listing["records"]))) == ["0.0120", "None"]

    grouped = requests.get(f"{ledger.url}/v1/usage", params={"aggregation": "provider"}, timeout=10).json()
    (row,) = grouped["rows"]
    assert (row["amount"], row["computed_amount"]) == ("0.0246", "0.0243")
    assert grouped["summary"]["computed_amount"] == "0.0243"

    by_day = requests.get(f"{ledger.url}/v1/usage", params={"aggregation": "day", "provider": "openai"}, timeout=10)
    assert by_day.json()["rows"] == [] and "computed_amount" not in by_day.json()["summary"]
