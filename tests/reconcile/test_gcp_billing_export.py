"""The GCP billing export source through the real `google.cloud.bigquery.Client`.

The client (anonymous credentials) talks HTTP to a small local server that answers the BigQuery REST calls that
`Client.query_and_wait` makes, as the REST API does: `jobs.query` (POST .../queries) answers with the schema and the
first page of rows; when a `pageToken` is left, the client reads the job (`jobs.get`) and the next pages
(`jobs.getQueryResults` with `pageToken`). Rows are JSON strings typed by the schema (NUMERIC as decimal text), as
BigQuery sends them. The server does not run the SQL: it answers the rows a test gives it (what the export's query
would return) and records every request, so the tests can check what was asked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from otel_ai_cost.reconcile.billed import OTHER, AccountMap, BilledLine, MissingCredentials
from otel_ai_cost.reconcile.gcp_billing_export import BillingCurrencyError, GCPBillingExport

TABLE = "acme-billing.billing_export.gcp_billing_export_v1_0123AB_4567CD_89EF01"
COLUMNS = [
    ("usage_day", "DATE"),
    ("service_name", "STRING"),
    ("sku_name", "STRING"),
    ("project_id", "STRING"),
    ("cost_usd", "NUMERIC"),
    ("credits_usd", "NUMERIC"),
    ("usage_amount", "NUMERIC"),
    ("usage_unit", "STRING"),
    ("currencies", "STRING"),
    ("unconvertible", "INTEGER"),
]


def row(
    day: str, service: str, sku: str, project: str, cost: str, credits: str = "0", usage: str | None = "1",
    unit: str = "count", currency: str = "USD", unconvertible: int = 0,
) -> list[str | None]:  # fmt: skip
    return [day, service, sku, project, cost, credits, usage, unit, currency, str(unconvertible)]


class FakeBigQuery:
    """The BigQuery REST API's query calls on a loopback port, answering `rows` in pages of `page_size`.
    `failures`: (status, reason) answers given to the first jobs.query calls, before the rows."""

    def __init__(self, rows: list[list[str | None]], *, page_size: int = 2, types: dict[str, str] | None = None):
        self.rows = rows
        self.page_size = page_size
        self.schema = {
            "fields": [
                {"name": name, "type": (types or {}).get(name, kind), "mode": "NULLABLE"} for name, kind in COLUMNS
            ]
        }
        self.failures: list[tuple[int, str]] = []
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.requests.append(("POST", self.path, body))
                path = urlparse(self.path).path
                if path.endswith("/queries"):  # jobs.query
                    if fake.failures:
                        status, reason = fake.failures.pop(0)
                        return self.send(status, fake.error(status, reason))
                    return self.send(200, {"kind": "bigquery#queryResponse", **fake.page(0)})
                return self.send(404, fake.error(404, "notFound"))

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path, None))
                url = urlparse(self.path)
                parts = url.path.split("/")
                if "/queries/" in url.path:  # jobs.getQueryResults
                    token = parse_qs(url.query).get("pageToken", ["0"])[0]
                    return self.send(200, {"kind": "bigquery#getQueryResultsResponse", **fake.page(int(token))})
                if "/jobs/" in url.path:  # jobs.get
                    return self.send(200, fake.job(parts[-1]))
                return self.send(404, fake.error(404, "notFound"))

            def send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    JOB = {"projectId": "acme-billing", "jobId": "job_reconcile_1", "location": "US"}

    def page(self, start: int) -> dict[str, Any]:
        chunk = self.rows[start : start + self.page_size]
        answer: dict[str, Any] = {
            "schema": self.schema,
            "jobReference": self.JOB,
            "totalRows": str(len(self.rows)),
            "rows": [{"f": [{"v": value} for value in values]} for values in chunk],
            "jobComplete": True,
        }
        if start + self.page_size < len(self.rows):
            answer["pageToken"] = str(start + self.page_size)
        return answer

    def job(self, job_id: str) -> dict[str, Any]:
        return {
            "kind": "bigquery#job",
            "id": f"acme-billing:US.{job_id}",
            "jobReference": self.JOB,
            "status": {"state": "DONE"},
            "configuration": {
                "query": {
                    "query": self.query_request()["query"],
                    "destinationTable": {"projectId": "acme-billing", "datasetId": "_anon", "tableId": "anon_1"},
                }
            },
            "statistics": {"query": {"totalBytesProcessed": "1024"}},
        }

    @staticmethod
    def error(status: int, reason: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": reason, "errors": [{"reason": reason, "message": reason}]}}

    def query_request(self) -> dict[str, Any]:
        """The body of the (last) jobs.query call."""
        bodies = [body for method, path, body in self.requests if method == "POST" and "/queries" in path]
        assert bodies and bodies[-1] is not None
        return bodies[-1]

    def client(self) -> bigquery.Client:
        return bigquery.Client(
            project="acme-billing",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=f"http://127.0.0.1:{self.server.server_address[1]}"),
        )

    def __enter__(self) -> FakeBigQuery:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def fake() -> Iterator[FakeBigQuery]:
    with FakeBigQuery([]) as server:
        yield server


GEMINI_INPUT = "Generate content input token count Gemini 2.5 Flash short input text"
VERTEX_THINKING = "Gemini 2.5 Pro GA Thinking Text Output - Predictions"
VERTEX_BATCH_INPUT = "Gemini 2.5 Flash Text Input - Batch Predictions"


def test_rows_become_lines_net_of_credits_with_exact_amounts(fake: FakeBigQuery) -> None:
    fake.rows = [
        row("2026-03-01", "Gemini API", GEMINI_INPUT, "proj-a", "1.234567891", "-0.234567890", "4115226.3", "count"),
        row("2026-03-01", "Places API", "Place Details Pro", "proj-maps", "0.017", "-0.017", "1"),
        row("2026-03-01", "Vertex AI", VERTEX_THINKING, "proj-b", "0.000000001", usage="0.1", unit="1k characters"),
        row("2026-03-01", "Vertex AI", "Vertex AI Search: Enterprise Edition", "proj-b", "4.000000000", usage=None),
        row("2026-03-02", "Vertex AI", VERTEX_BATCH_INPUT, "proj-b", "0.3"),
    ]
    source = GCPBillingExport(
        TABLE,
        client=fake.client(),
        account_map=AccountMap({"gcp.gemini": {"proj-a": "production"}}),
        today=date(2026, 3, 2),
    )

    pull = source.pull(date(2026, 3, 1), date(2026, 3, 2))

    assert (pull.source, pull.start_day, pull.end_day, pull.requests, list(pull.notes)) == (
        "gcp_billing_export", date(2026, 3, 1), date(2026, 3, 2), 3, [],
    )  # fmt: skip
    by_line = {(line.day.isoformat(), line.line): line for line in pull.lines}
    assert by_line[("2026-03-01", f"Gemini API / {GEMINI_INPUT}")] == BilledLine(
        provider="gcp.gemini",
        day=date(2026, 3, 1),
        source="gcp_billing_export",
        line=f"Gemini API / {GEMINI_INPUT}",
        amount=Decimal("1.000000001"),  # cost + credits, to the last digit
        account="proj-a",
        model="gemini-2.5-flash",
        token_class="input",
        tier="",
        quantity=Decimal("4115226.3"),
        unit="count",
        environment="production",
        final=True,
        parsed=True,
    )
    places = by_line[("2026-03-01", "Places API / Place Details Pro")]
    assert (places.provider, places.model, places.token_class, places.amount, places.account) == (
        "google_places", "place_details_pro", "request", Decimal("0.000"), "proj-maps",
    )  # fmt: skip
    # (fully covered by the free tier's credit: on the bill, at $0 net)
    thinking = by_line[("2026-03-01", f"Vertex AI / {VERTEX_THINKING}")]
    assert (thinking.provider, thinking.model, thinking.token_class, thinking.amount, thinking.environment) == (
        "gcp.vertex_ai", "gemini-2.5-pro", "reasoning", Decimal("0.000000001"), "",
    )  # fmt: skip
    search = by_line[("2026-03-01", "Vertex AI / Vertex AI Search: Enterprise Edition")]
    assert (search.token_class, search.parsed, search.amount, search.quantity, search.unit) == (
        OTHER, False, Decimal("4.000000000"), None, "",
    )  # fmt: skip
    batch = by_line[("2026-03-02", f"Vertex AI / {VERTEX_BATCH_INPUT}")]
    assert (batch.model, batch.token_class, batch.tier, batch.final) == ("gemini-2.5-flash", "input", "batch", False)
    assert len(pull.lines) == 5

    # The days are query parameters, never SQL text; the table is the one named, backticked.
    request = fake.query_request()
    assert request["parameterMode"] == "NAMED" and request["useLegacySql"] is False
    parameters = {parameter["name"]: parameter for parameter in request["queryParameters"]}
    assert parameters["start_day"] == {
        "name": "start_day", "parameterType": {"type": "DATE"}, "parameterValue": {"value": "2026-03-01"},
    }  # fmt: skip
    assert parameters["end_day"]["parameterValue"] == {"value": "2026-03-02"}
    assert {value["value"] for value in parameters["services"]["parameterValue"]["arrayValues"]} == {
        "Gemini API", "Generative Language API", "Vertex AI",
    }  # fmt: skip
    sql = request["query"]
    assert "2026-03" not in sql and "@start_day" in sql and "@end_day" in sql
    assert f"FROM `{TABLE}`" in sql and "cost_type = 'regular'" in sql and "_PARTITIONTIME" in sql
    assert "CAST(cost AS NUMERIC)" in sql and "UNNEST(credits)" in sql
    # One query; the further pages are read from its job.
    assert [method for method, path, _ in fake.requests if "/queries" in path and method == "POST"] == ["POST"]


def test_days_after_today_are_not_asked_for_and_today_is_not_final(fake: FakeBigQuery) -> None:
    fake.rows = [row("2026-03-05", "Generative Language API", GEMINI_INPUT, "proj-a", "0.5")]

    pull = GCPBillingExport(TABLE, client=fake.client(), today=lambda: date(2026, 3, 5)).pull(
        date(2026, 3, 4), date(2026, 3, 9)
    )

    assert [(line.provider, line.amount, line.final) for line in pull.lines] == [("gcp.gemini", Decimal("0.5"), False)]
    assert (pull.start_day, pull.end_day) == (date(2026, 3, 4), date(2026, 3, 9))
    parameters = {parameter["name"]: parameter for parameter in fake.query_request()["queryParameters"]}
    assert parameters["end_day"]["parameterValue"] == {"value": "2026-03-05"}


def test_a_non_usd_export_is_converted_with_its_rate_and_says_so(fake: FakeBigQuery) -> None:
    # The server answers what BigQuery computes: the EUR rows divided by their currency_conversion_rate.
    fake.rows = [row("2026-03-01", "Gemini API", GEMINI_INPUT, "proj-a", "1.086956522", "-0.108695652", currency="EUR")]

    pull = GCPBillingExport(TABLE, client=fake.client(), today=date(2026, 3, 10)).pull(
        date(2026, 3, 1), date(2026, 3, 1)
    )

    assert [line.amount for line in pull.lines] == [Decimal("0.978260870")]
    assert len(pull.notes) == 1 and "EUR" in pull.notes[0] and "currency_conversion_rate" in pull.notes[0]
    sql = fake.query_request()["query"]
    assert "SAFE_DIVIDE(CAST(cost AS NUMERIC), CAST(NULLIF(currency_conversion_rate, 0) AS NUMERIC))" in sql


def test_a_non_usd_row_without_a_rate_is_refused_not_counted_as_zero(fake: FakeBigQuery) -> None:
    fake.rows = [row("2026-03-01", "Vertex AI", VERTEX_THINKING, "proj-b", "2.5", currency="JPY", unconvertible=1)]

    with pytest.raises(BillingCurrencyError, match="JPY"):
        GCPBillingExport(TABLE, client=fake.client(), today=date(2026, 3, 10)).pull(date(2026, 3, 1), date(2026, 3, 1))


def test_money_typed_as_float_is_refused(fake: FakeBigQuery) -> None:
    # A view that forgot the NUMERIC cast would hand back floats: never summed into a bill.
    fake.schema["fields"][4]["type"] = "FLOAT"
    fake.rows = [row("2026-03-01", "Gemini API", GEMINI_INPUT, "proj-a", "0.1")]

    with pytest.raises(TypeError, match="NUMERIC"):
        GCPBillingExport(TABLE, client=fake.client(), today=date(2026, 3, 10)).pull(date(2026, 3, 1), date(2026, 3, 1))


def test_rate_limits_and_server_errors_are_retried(fake: FakeBigQuery) -> None:
    fake.failures = [(429, "rateLimitExceeded"), (503, "backendError")]
    fake.rows = [row("2026-03-01", "Gemini API", GEMINI_INPUT, "proj-a", "0.25")]
    retry = bigquery.DEFAULT_RETRY.with_delay(initial=0.01, maximum=0.02).with_timeout(5)

    pull = GCPBillingExport(TABLE, client=fake.client(), today=date(2026, 3, 10), retry=retry).pull(
        date(2026, 3, 1), date(2026, 3, 1)
    )

    assert [line.amount for line in pull.lines] == [Decimal("0.25")]
    assert [method for method, path, _ in fake.requests if path.split("?")[0].endswith("/queries")] == ["POST"] * 3


@pytest.mark.parametrize(
    "table",
    [
        "acme.billing.export`; DROP TABLE acme.billing.export; --",
        "acme.billing.export WHERE TRUE",
        "acme.billing",
        "acme.billing.export.extra",
        "acme..export",
        "acme.billing.export\nUNION ALL SELECT 1",
        "acme.billing.exp'ort",
    ],
)
def test_a_table_name_that_is_not_only_a_table_name_is_refused(table: str, fake: FakeBigQuery) -> None:
    with pytest.raises(ValueError, match=r"PROJECT\.DATASET\.TABLE"):
        GCPBillingExport(table, client=fake.client())
    assert fake.requests == []


def test_a_backticked_table_name_is_accepted(fake: FakeBigQuery) -> None:
    GCPBillingExport(f"`{TABLE}`", client=fake.client(), today=date(2026, 3, 10)).pull(
        date(2026, 3, 1), date(2026, 3, 1)
    )

    assert f"FROM `{TABLE}`" in fake.query_request()["query"]


def test_no_google_credentials_is_missing_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent-key.json"))

    with pytest.raises(MissingCredentials, match="GOOGLE_APPLICATION_CREDENTIALS"):
        GCPBillingExport(TABLE, today=date(2026, 3, 10)).pull(date(2026, 3, 1), date(2026, 3, 1))


@pytest.mark.parametrize(
    ("service", "sku", "expected"),
    [
        ("Gemini API", "Generate content output token count Gemini 2.5 Pro long input text",
         ("gcp.gemini", "gemini-2.5-pro", "output", "")),
        ("Gemini API", "Generate content cached input token count Gemini 2.5 Flash",
         ("gcp.gemini", "gemini-2.5-flash", "cache_read", "")),
        ("Vertex AI", "Gemini 2.5 Flash Lite GA Text Input - Predictions",
         ("gcp.vertex_ai", "gemini-2.5-flash-lite", "input", "")),
        ("Vertex AI", "Gemini 2.5 Flash Audio Input - Batch Predictions",
         ("gcp.vertex_ai", "gemini-2.5-flash", "input_audio", "batch")),
        ("Vertex AI", "Gemini 2.5 Pro Caching Storage", ("gcp.vertex_ai", "gemini-2.5-pro", "cache_storage", "")),
        ("Places API (New)", "Text Search Enterprise + Atmosphere",
         ("google_places", "text_search_enterprise_atmosphere", "request", "")),
        ("Places API", "Autocomplete Requests", ("google_places", "autocomplete_requests", "request", "")),
    ],
)  # fmt: skip
def test_skus_are_read_into_provider_model_token_class_and_tier(
    service: str, sku: str, expected: tuple[str, str, str, str], fake: FakeBigQuery
) -> None:
    fake.rows = [row("2026-03-01", service, sku, "proj-a", "1.5")]

    (line,) = (
        GCPBillingExport(TABLE, client=fake.client(), today=date(2026, 3, 10))
        .pull(date(2026, 3, 1), date(2026, 3, 1))
        .lines
    )

    assert (line.provider, line.model, line.token_class, line.tier, line.parsed) == (*expected, True)
