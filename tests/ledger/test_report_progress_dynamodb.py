"""A report over a remote DynamoDB ledger shows how many records it has read, with a rate, on standard error
(when asked, or on a terminal); silent otherwise, and the figures are the same either way."""

from __future__ import annotations

import uuid

import pytest
from dynamodb_server import REGION

from conftest import build_record
from otel_ai_cost.cli.report import open_ledger
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.store import UsageQuery

pytestmark = pytest.mark.usefixtures("aws_environment")


def test_reading_a_dynamodb_ledger_shows_records_read(server, capsys: pytest.CaptureFixture[str]) -> None:
    table = f"ledger-{uuid.uuid4().hex[:12]}"
    url = f"dynamodb://{table}?region={REGION}&endpoint_url={server.endpoint_url}"
    seed = DynamoDBStore(table, region=REGION, endpoint_url=server.endpoint_url)
    seed.ensure_table()
    seed.write([build_record(n) for n in range(1, 41)])
    seed.close()
    with open_ledger(url, create=False, progress=True) as store:
        (shown,) = store.aggregate(UsageQuery(), [])
    err = capsys.readouterr().err
    assert "reading the ledger" in err and "40" in err and "records" in err
    with open_ledger(url, create=False, progress=False) as store:
        (silent,) = store.aggregate(UsageQuery(), [])
    assert capsys.readouterr().err == ""
    assert shown == silent and shown.calls == 40
