"""Totals that include calls of unknown cost say so: `jobs show` and `report` never sum such a call as $0 silently.

The ledger is a real SQLite file fed by real calls: the openai client talks HTTP to the stand-in server, the
instrumentation records each call's span, and each span becomes its ledger record (`record_from_span`, as the
exporter and the ledger service do). The calls: one priced, one of
a model without a price (`unpriced`), one stream closed before its usage arrived (`no_usage`, outcome `partial`),
and one answered 429 (`no_usage`, outcome `error`: nothing was generated, so it cost nothing and is NOT unknown).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from click.testing import CliRunner, Result

import otel_ai_cost
from otel_ai_cost.cli import main
from otel_ai_cost.contract import Outcome, PricingStatus
from otel_ai_cost.ledger.from_span import record_from_span
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.report import render_report
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import AggregateRow, UsageQuery
from otel_ai_cost.ledger.unknown_cost import cost_is_unknown, is_cost_unknown
from otel_ai_cost.stand_in import Scenario

MSGS = [{"role": "user", "content": "hi"}]
JOB = "job-unknown-cost"
PRICED = "0.00027"  # gpt-4o-mini, 1,000 input and 200 output tokens


@pytest.fixture
def ledger(telemetry, stand_in, ledger_path: Path) -> Iterator[str]:
    """A SQLite ledger holding the four calls of the module documentation, all of job `JOB`."""
    client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0)
    stand_in.push(
        Scenario(prompt_tokens=1000, completion_tokens=200),
        Scenario(prompt_tokens=1000, completion_tokens=200),
        Scenario(text=["a", "b", "c", "d"], prompt_tokens=40, completion_tokens=4),
        Scenario(status=429),
    )
    with otel_ai_cost.ai_usage_context(job_id=JOB):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        client.chat.completions.create(model="acme-llm-7b", messages=MSGS)
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
        for _ in stream:
            break
        stream.close()
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    store = SQLiteStore(ledger_path)
    store.write([record for span in telemetry.spans() if (record := record_from_span(span)) is not None])
    statuses = sorted((r.pricing_status, r.outcome) for r in store.query(UsageQuery(job_id=JOB)))
    assert statuses == [("no_usage", "error"), ("no_usage", "partial"), ("priced", "success"), ("unpriced", "success")]
    store.close()
    yield f"sqlite://{ledger_path}"


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split("│")]


# -- jobs show: the command reads every record, so every kind of unknown cost is counted ------------------------


def test_jobs_show_marks_the_total_a_lower_bound_and_counts_the_calls_of_unknown_cost(ledger: str):
    result = _run("jobs", "show", JOB, "--ledger", ledger)
    assert result.exit_code == 0, result.output
    assert f"job total: >= {PRICED} USD over 4 call(s), 2 of unknown cost" in result.output
    assert "!! 1 call(s) have no price" in result.output
    assert "!! 1 call(s) ended before their usage was reported (a stream closed early)" in result.output
    rows = [_cells(line) for line in result.output.splitlines() if line.startswith("20")]
    cost = {row[10]: row[9] for row in rows}  # status -> cost USD
    assert cost["no_usage (partial)"] == "unknown" and cost["unpriced"] == "unknown"  # never "-" or 0.00
    assert cost["no_usage (RateLimitError)"] == "-"  # a 429 cost nothing: it is not unknown
    assert cost["priced"] == PRICED  # the column's precision: the most decimals any of its amounts needs


def test_jobs_show_json_counts_the_calls_of_unknown_cost(ledger: str):
    document = json.loads(_run("jobs", "show", JOB, "--format", "json", "--ledger", ledger).output)
    total = document["total"]
    assert Decimal(total.pop("amount")) == Decimal(PRICED)
    assert total == {"calls": 4, "unpriced_calls": 1, "unknown_cost_calls": 2}
    unknown = sorted((c["pricing_status"], c["outcome"]) for c in document["calls"] if c["cost_unknown"])
    assert unknown == [("no_usage", "partial"), ("unpriced", "success")]


def test_jobs_show_of_known_costs_only_is_not_marked(ledger_path: Path, make_record):
    with SQLiteStore(ledger_path) as store:
        store.write([make_record(job_id="j", amount=Decimal("1.5")),
                     make_record(job_id="j", amount=None, pricing_status="no_usage", outcome="error",
                                 error_type="RateLimitError")])  # fmt: skip
    result = _run("jobs", "show", "j", "--ledger", f"sqlite://{ledger_path}")
    assert "job total: 1.50 USD over 2 call(s)" in result.output
    assert "unknown" not in result.output.lower() and "!!" not in result.output


def test_jobs_show_marks_the_known_part_of_a_stream_closed_early_as_a_lower_bound(ledger_path: Path, make_record):
    # Anthropic reports the input at the stream's start: a stream closed early is priced from it, output missing.
    with SQLiteStore(ledger_path) as store:
        store.write([make_record(job_id="j", amount=Decimal("0.5"), outcome="partial")])
    result = _run("jobs", "show", "j", "--ledger", f"sqlite://{ledger_path}")
    assert "job total: >= 0.50 USD over 1 call(s), 1 of unknown cost" in result.output
    (row,) = [line for line in result.output.splitlines() if line.startswith("20")]
    assert ">= 0.50" in row and "priced (partial)" in row
    assert "!! 1 call(s) ended before their usage was reported (a stream closed early)" in result.output


# -- report: the stores' aggregates count every call of unknown cost (`AggregateRow.unknown_cost_calls`) ----------


def test_report_marks_every_total_that_includes_calls_of_unknown_cost(ledger: str):
    result = _run("report", "--by", "model", "--ledger", ledger)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    acme = _cells(next(line for line in lines if line.startswith("acme-llm-7b")))
    gpt = _cells(next(line for line in lines if line.startswith("gpt-4o-mini")))
    total = _cells(next(line for line in lines if line.startswith("total")))
    assert acme[:4] == ["acme-llm-7b", "1", "1", "unknown"]  # nothing known: unknown, never 0.00
    # The stream closed before its usage arrived is counted too (the 429 is not: it cost nothing).
    assert gpt[:4] == ["gpt-4o-mini", "3", "1", f">= {PRICED}"]
    assert total[:4] == ["total", "4", "2", f">= {PRICED}"]
    assert "!! 2 call(s) of unknown cost: the amounts marked >= are lower bounds" in result.output
    assert "!! 1 call(s) ended before their usage was reported" in result.output


def test_report_json_and_csv_count_the_calls_of_unknown_cost(ledger: str):
    document = json.loads(_run("report", "--by", "model", "--format", "json", "--ledger", ledger).output)
    by_model = {row["model"]: row for row in document["rows"]}
    assert by_model["acme-llm-7b"]["unknown_cost_calls"] == 1
    assert by_model["gpt-4o-mini"]["unknown_cost_calls"] == 1  # the partial stream
    assert document["total"]["unknown_cost_calls"] == 2
    assert document["total"]["amount"] == PRICED
    csv_text = _run("report", "--by", "model", "--format", "csv", "--ledger", ledger).output
    rows = {row["model"]: row for row in csv.DictReader(io.StringIO(csv_text))}
    assert rows["acme-llm-7b"]["unknown_cost_calls"] == "1", csv_text
    assert rows["gpt-4o-mini"]["unknown_cost_calls"] == "1", csv_text


def test_report_of_known_costs_only_is_not_marked(ledger_path: Path, make_record):
    with SQLiteStore(ledger_path) as store:
        store.write([make_record(amount=Decimal("2"))])
    result = _run("report", "--since", "2026-01-30", "--until", "2026-01-30", "--ledger", f"sqlite://{ledger_path}")
    assert result.exit_code == 0 and "2.00" in result.output
    assert ">=" not in result.output and "unknown" not in result.output.replace("cost unknown", "")
    assert "!!" not in result.output


def test_report_uses_the_stores_count_of_unknown_cost():
    # A priced call and a partial stream: no unpriced call, yet the total is a lower bound.
    row = AggregateRow((("model", "gpt-4o-mini"),), Decimal("0.5"), 2, 0, 10, 2, 0, 0, 0, unknown_cost_calls=1)
    table = render_report([row], ["model"], "table")
    assert ">= 0.50" in table and "1 call(s) of unknown cost" in table
    document = json.loads(render_report([row], ["model"], "json"))
    assert document["rows"][0]["unknown_cost_calls"] == 1 and document["total"]["unknown_cost_calls"] == 1


# -- which calls have an unknown cost -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome", "unknown"),
    [
        (PricingStatus.PRICED, Outcome.SUCCESS, False),
        (PricingStatus.PRICED, Outcome.PARTIAL, True),  # a stream closed early: the output it generated is missing
        (PricingStatus.UNPRICED, Outcome.SUCCESS, True),
        (PricingStatus.UNPRICED, Outcome.ERROR, True),
        (PricingStatus.NO_USAGE, Outcome.SUCCESS, True),  # an answer without usage: billed, amount unknown
        (PricingStatus.NO_USAGE, Outcome.PARTIAL, True),
        (PricingStatus.NO_USAGE, Outcome.ERROR, False),  # failed before any usage (a 429): nothing was billed
    ],
)
def test_which_calls_have_an_unknown_cost(status: PricingStatus, outcome: Outcome, unknown: bool):
    assert cost_is_unknown(status.value, outcome.value) is unknown


def test_an_unknown_pricing_status_is_an_unknown_cost(make_record):
    assert cost_is_unknown("estimated", Outcome.SUCCESS.value)
    record: LedgerRecord = make_record(pricing_status="priced", amount=None)  # a priced call without an amount
    assert is_cost_unknown(record)
    assert not is_cost_unknown(make_record())
