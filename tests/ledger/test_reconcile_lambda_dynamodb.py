"""The Lambda entry point end to end, as the seeds' teams deploy it: a DynamoDB ledger (moto's server on loopback),
the real `openai` admin client reading the stand-in's Costs and Usage APIs, the run stored in the table."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import openai
import pytest
from dynamodb_server import REGION

from conftest import build_record
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.store import BilledQuery
from otel_ai_cost.pricing.catalog import default_catalog
from otel_ai_cost.pricing.usage import Usage
from otel_ai_cost.reconcile import lambda_handler
from otel_ai_cost.stand_in import StandInServer

pytestmark = pytest.mark.usefixtures("aws_environment")
KEY = "sk-admin-lambda-0123456789abcdef"


def test_the_lambda_handler_reconciles_a_dynamodb_ledger(server, monkeypatch: pytest.MonkeyPatch) -> None:
    table = f"ledger-{uuid.uuid4().hex[:12]}"
    url = f"dynamodb://{table}?region={REGION}&endpoint_url={server.endpoint_url}"
    store = DynamoDBStore(table, region=REGION, endpoint_url=server.endpoint_url)
    store.ensure_table()
    today = datetime.now(timezone.utc).date()
    with StandInServer() as stand_in:
        client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-app-not-admin")
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        (served,) = stand_in.billing.usage("openai")
        at = datetime(today.year, today.month, today.day, tzinfo=timezone.utc)
        amount = default_catalog().quote("openai", served.model, Usage(input_tokens=served.input_tokens,
                                         output_tokens=served.output_tokens), at=at, warn=False).amount  # fmt: skip
        store.write([build_record(1, timestamp=at, provider="openai", request_model="gpt-4o-mini",
                                  response_model=served.model, input_tokens=served.input_tokens,
                                  output_tokens=served.output_tokens, amount=amount, cost_source="local")])  # fmt: skip
        monkeypatch.setenv("OTEL_AI_COST_LEDGER", url)
        monkeypatch.setenv("OPENAI_BASE_URL", stand_in.openai_base_url)
        monkeypatch.setenv("OPENAI_ADMIN_KEY", KEY)
        summary = lambda_handler({"from": today.isoformat(), "providers": ["openai"]}, None)
    assert summary["verdicts"] == {"match": 1}, summary
    assert summary["sources"][0]["pulled"] and not summary["discrepancies"]
    (day,) = store.reconciled_days(BilledQuery(today, today))
    assert (day.provider, day.verdict, day.tracked, day.billed) == ("openai", "match", amount, amount)
    lines = store.billed_lines(BilledQuery(today, today))
    assert sum((line.amount for line in lines), Decimal(0)) == amount
    (run,) = store.reconciliation_runs()
    assert KEY not in json.dumps(run.document) + json.dumps(summary)
    store.close()


def test_an_unknown_event_key_is_refused_before_anything_runs() -> None:
    with pytest.raises(ValueError, match="unknown event key\\(s\\) form"):
        lambda_handler({"form": date(2026, 11, 1).isoformat()})
