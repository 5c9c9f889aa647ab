"""Per-environment access scoping of the ledger service (a tokens file): writes outside a token's environments are
rejected alone in `partial_success`, reads (`/v1/usage`, `/ai_usage`, `/metrics`) answer only its environments.
Real HTTP requests against a real SQLite store; spans sent by the OpenTelemetry SDK's OTLP/HTTP exporter."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import replace
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

from otel_ai_cost.cli.ledger import ledger
from otel_ai_cost.contract import INSTRUMENTATION_SCOPE, Cost, GenAI
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.service import LedgerService, ServiceConfig
from otel_ai_cost.ledger.service.access import TokensFileError, load_tokens, parse_tokens
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery

CI_TOKEN = "ci-sender-4f9a1c2e7b"
PROD_TOKEN = "prod-sender-8d2b6e0a31"
GRAFANA_TOKEN = "grafana-reader-c3e5a7f90d"
SINGLE_TOKEN = "single-token-1a2b3c4d5e"
NOW = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


X = sha("x")
TOKENS_YAML = f"""\
tokens:
  - name: ci
    sha256: {sha(CI_TOKEN)}
    write: [cicd]
    read: [cicd, staging]
  - name: production-sender
    token: {PROD_TOKEN}
    write: [production]
  - name: grafana
    sha256: {sha(GRAFANA_TOKEN).upper()}
    read: ["*"]
"""


def record(n: int, environment: str, amount: str, **fields: Any) -> LedgerRecord:
    values: dict[str, Any] = {
        "service": "billing", "provider": "openai", "request_model": "gpt-4o-mini", "input_tokens": 1000,
        "output_tokens": 200, "amount": Decimal(amount), **fields,
    }  # fmt: skip
    return LedgerRecord(f"{n:032x}", f"{n:016x}", NOW, environment=environment, **values)


@pytest.fixture
def start(start_service: Callable[..., LedgerService]) -> Callable[..., LedgerService]:
    return functools.partial(start_service, clock=lambda: NOW)


@pytest.fixture
def scoped(start: Callable[..., LedgerService], tmp_path: Path) -> LedgerService:
    path = tmp_path / "ledger-tokens.yaml"
    path.write_text(TOKENS_YAML)
    return start(tokens=load_tokens(path))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cost_spans(*environments: str) -> list[ReadableSpan]:
    """One finished cost span per environment (each in its own resource, as separate senders would send)."""
    spans: list[ReadableSpan] = []
    for environment in environments:
        memory = InMemorySpanExporter()
        resource = Resource.create({"service.name": "billing", "deployment.environment.name": environment})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(memory))
        attributes = {
            GenAI.OPERATION_NAME: "chat", GenAI.PROVIDER_NAME: "openai", GenAI.REQUEST_MODEL: "gpt-4o-mini",
            GenAI.USAGE_INPUT_TOKENS: 1000, GenAI.USAGE_OUTPUT_TOKENS: 200, Cost.AMOUNT: "0.00027",
            Cost.CURRENCY: "USD", Cost.SOURCE: "local", Cost.PRICING_STATUS: "priced",
        }  # fmt: skip
        provider.get_tracer(INSTRUMENTATION_SCOPE).start_span("chat gpt-4o-mini", attributes=attributes).end()
        provider.shutdown()
        spans.extend(memory.get_finished_spans())
    return spans


def send(service: LedgerService, token: str, *environments: str) -> tuple[int, ExportTraceServiceResponse]:
    body = encode_spans(cost_spans(*environments)).SerializeToString()
    headers = {"Content-Type": "application/x-protobuf", **bearer(token)}
    response = requests.post(f"{service.url}/v1/traces", data=body, headers=headers, timeout=10)
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    return response.status_code, answer


def stored_environments(store: SQLiteStore) -> list[str]:
    return sorted(r.environment for r in store.query(UsageQuery()))


# --- writes --------------------------------------------------------------------------------------------------------
def test_a_record_outside_the_senders_environments_is_rejected_alone_with_the_reason(scoped, store):
    status, answer = send(scoped, CI_TOKEN, "cicd", "production", "cicd")
    assert status == 200
    assert answer.partial_success.rejected_spans == 1
    assert "token 'ci' may not write environment 'production'" in answer.partial_success.error_message
    assert stored_environments(store) == ["cicd", "cicd"]  # the rest of the batch is stored
    assert store.totals("production", "2026-11").calls == 0  # production's budget never saw it


def test_each_token_writes_its_own_environments_and_a_read_only_token_writes_none(scoped, store):
    assert send(scoped, PROD_TOKEN, "production")[1].partial_success.rejected_spans == 0
    _, answer = send(scoped, GRAFANA_TOKEN, "staging")
    assert answer.partial_success.rejected_spans == 1
    assert stored_environments(store) == ["production"]


def test_unknown_or_missing_tokens_are_401_on_every_route_but_healthz(scoped):
    for path in ("/v1/usage", "/ai_usage", "/metrics"):
        assert requests.get(f"{scoped.url}{path}", timeout=5).status_code == 401
        assert requests.get(f"{scoped.url}{path}", headers=bearer("nope" * 5), timeout=5).status_code == 401
        basic = {"Authorization": f"Basic {CI_TOKEN}"}
        assert requests.get(f"{scoped.url}{path}", headers=basic, timeout=5).status_code == 401
    assert requests.get(f"{scoped.url}/healthz", timeout=5).status_code == 200


# --- reads ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def three_environments(store: SQLiteStore) -> None:
    store.write([record(1, "cicd", "1.5"), record(2, "staging", "0.25"), record(3, "production", "7")])


@pytest.mark.parametrize("path", ["/v1/usage", "/ai_usage"])
def test_an_explicit_environment_outside_the_scope_is_403(scoped, three_environments, path):
    response = requests.get(f"{scoped.url}{path}", params={"environment": "production"}, headers=bearer(CI_TOKEN))
    assert response.status_code == 403
    assert "production" in response.json()["error"]
    allowed = requests.get(f"{scoped.url}{path}", params={"environment": "staging"}, headers=bearer(CI_TOKEN))
    assert allowed.status_code == 200


def test_usage_without_an_environment_answers_the_readable_ones_only(scoped, three_environments):
    params = {"aggregation": "environment"}
    rows = requests.get(f"{scoped.url}/v1/usage", params=params, headers=bearer(CI_TOKEN), timeout=5).json()["rows"]
    assert {(r["environment"], r["amount"]) for r in rows} == {("cicd", "1.5"), ("staging", "0.25")}
    summed = requests.get(f"{scoped.url}/v1/usage", params={"aggregation": "provider"}, headers=bearer(CI_TOKEN))
    assert summed.json()["summary"]["amount"] == "1.75"  # merged across the two, exactly
    listed = requests.get(f"{scoped.url}/v1/usage", headers=bearer(CI_TOKEN), timeout=5).json()["records"]
    assert sorted(r["environment"] for r in listed) == ["cicd", "staging"]
    everything = requests.get(f"{scoped.url}/v1/usage", params=params, headers=bearer(GRAFANA_TOKEN), timeout=5)
    assert len(everything.json()["rows"]) == 3


def test_a_write_only_token_reads_nothing(scoped, three_environments):
    response = requests.get(f"{scoped.url}/v1/usage", params={"aggregation": "day"}, headers=bearer(PROD_TOKEN))
    assert response.status_code == 200
    assert response.json()["rows"] == []
    ai = requests.get(f"{scoped.url}/ai_usage", headers=bearer(PROD_TOKEN), timeout=5).json()
    assert ai["summary"]["total_api_calls"] == 0


def spend_environments(text: str) -> set[str]:
    return {
        line.split('environment="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("ai_cost_ledger_spend_USD{")
    }


def test_metrics_show_only_the_tokens_readable_environments(scoped, three_environments):
    ci = requests.get(f"{scoped.url}/metrics", headers=bearer(CI_TOKEN), timeout=5)
    assert spend_environments(ci.text) == {"cicd", "staging"}
    grafana = requests.get(f"{scoped.url}/metrics", headers=bearer(GRAFANA_TOKEN), timeout=5)
    assert spend_environments(grafana.text) == {"cicd", "staging", "production"}
    assert spend_environments(requests.get(f"{scoped.url}/metrics", headers=bearer(PROD_TOKEN)).text) == set()


def test_the_single_token_mode_still_means_every_environment(start, store, three_environments):
    service = start(token=SINGLE_TOKEN)
    assert send(service, SINGLE_TOKEN, "production", "anything")[1].partial_success.rejected_spans == 0
    assert requests.get(f"{service.url}/metrics", timeout=5).status_code == 401
    text = requests.get(f"{service.url}/metrics", headers=bearer(SINGLE_TOKEN), timeout=5).text
    assert spend_environments(text) == {"cicd", "staging", "production", "anything"}


def test_a_token_and_a_tokens_file_together_are_refused(tmp_path):
    with pytest.raises(ValueError, match="either"):
        ServiceConfig(token=SINGLE_TOKEN, tokens=parse_tokens(TOKENS_YAML))


# --- the file ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("tokens: []\n", "f.yaml:1: tokens: expected at least one token"),
        ("tokenz: []\n", "f.yaml:1: tokenz: unknown key (did you mean 'tokens'?)"),
        ("tokens:\n  - name: a\n    sha256: abc\n    read: ['*']\n", "f.yaml:3: tokens[0].sha256: expected 64 hex"),
        ("tokens:\n  - name: a\n    token: short\n    read: [x]\n", "f.yaml:3: tokens[0].token: shorter than 16"),
        (f"tokens:\n  - name: a\n    sha256: {sha('x')}\n", "f.yaml:2: tokens[0]: grants nothing"),
        (f"tokens:\n  - name: a\n    sha256: {sha('x')}\n    token: {'y' * 20}\n    read: [e]\n", "exactly one of"),
        (f"tokens:\n  - name: a\n    sha256: {sha('x')}\n    read: ['*', prod]\n", "f.yaml:4: tokens[0].read: '*'"),
        (
            f"tokens:\n  - name: a\n    sha256: {sha('x')}\n    write: cicd\n",
            "f.yaml:4: tokens[0].write: expected a list",
        ),
        (f"tokens:\n  - name: a\n    sha256: {sha('x')}\n    reads: [e]\n", "f.yaml:4: tokens[0].reads: unknown key"),
        (
            f"tokens:\n  - {{name: a, sha256: {X}, read: [e]}}\n  - {{name: a, sha256: {sha('y')}, read: [e]}}\n",
            "f.yaml:3: tokens[1].name: duplicate name (also on line 2)",
        ),
        (
            f"tokens:\n  - {{name: a, sha256: {X}, read: [e]}}\n  - {{name: b, sha256: {X}, read: [e]}}\n",
            "f.yaml:3: tokens[1]: the same token as 'a'",
        ),
        ("tokens: [\n", "f.yaml:2: (yaml)"),
    ],
)
def test_a_bad_tokens_file_names_file_line_and_key(text, where):
    with pytest.raises(TokensFileError) as error:
        parse_tokens(text, "f.yaml")
    assert where in str(error.value)


def test_an_unreadable_tokens_file_says_so(tmp_path):
    with pytest.raises(TokensFileError, match="cannot read"):
        load_tokens(tmp_path / "missing.yaml")


# --- serve ---------------------------------------------------------------------------------------------------------
def test_serve_warns_when_listening_beyond_loopback_without_a_token(tmp_path, monkeypatch):
    monkeypatch.delenv("OTEL_AI_COST_LEDGER_TOKEN", raising=False)
    # A bad ledger URL stops serve right after the warning, before anything binds.
    open_ = CliRunner().invoke(ledger, ["serve", "--ledger", "postgres://nope", "--host", "0.0.0.0"])
    assert "warning: listening on 0.0.0.0 without a token" in open_.output
    for host in ("127.0.0.1", "::1", "localhost"):
        quiet = CliRunner().invoke(ledger, ["serve", "--ledger", "postgres://nope", "--host", host])
        assert "warning" not in quiet.output, host
    tokens = tmp_path / "t.yaml"
    tokens.write_text(TOKENS_YAML)
    guarded = CliRunner().invoke(
        ledger, ["serve", "--ledger", "postgres://nope", "--host", "0.0.0.0", "--tokens-file", str(tokens)]
    )
    assert "warning" not in guarded.output
    assert "cannot open the ledger" in guarded.output


def test_serve_refuses_a_bad_tokens_file_naming_the_line(tmp_path):
    tokens = tmp_path / "t.yaml"
    tokens.write_text("tokens:\n  - name: a\n    sha256: nothex\n    read: [e]\n")
    result = CliRunner().invoke(
        ledger, ["serve", "--ledger", f"sqlite://{tmp_path / 'u.db'}", "--tokens-file", str(tokens)]
    )
    assert result.exit_code != 0
    assert f"{tokens}:3: tokens[0].sha256" in result.output


def test_a_read_merged_across_environments_keeps_the_calls_of_unknown_cost(scoped, store):
    # A stream closed before its usage arrived, in each of the token's two environments: merging the two
    # environments' groups must not lose them (they are no "unpriced" calls, so only their own count shows them).
    partial = {"pricing_status": "no_usage", "outcome": "partial"}
    streams = [
        replace(record(n, environment, "0", **partial), amount=None) for n, environment in ((1, "cicd"), (2, "staging"))
    ]
    store.write([*streams, record(3, "cicd", "1.5")])
    answer = requests.get(
        f"{scoped.url}/v1/usage", params={"aggregation": "provider"}, headers=bearer(CI_TOKEN), timeout=5
    ).json()
    assert answer["summary"]["unknown_cost_calls"] == 2
    assert [row["unknown_cost_calls"] for row in answer["rows"]] == [2]
