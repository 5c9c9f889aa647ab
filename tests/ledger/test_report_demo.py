"""`otel-ai-cost demo` shows the whole chain on a fresh machine: calls -> spans -> ledger records -> report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from otel_ai_cost.ledger.open_store import sqlite_path
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery


def _demo(tmp_path: Path, *args: str) -> str:
    script = Path(sys.executable).with_name("otel-ai-cost")
    # TMPDIR: the demo's fresh ledger goes to a temporary directory; keep it inside this test's.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run([str(script), "demo", *args], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_demo_records_its_calls_in_a_fresh_ledger_and_prints_the_report(tmp_path: Path):
    out = _demo(tmp_path)
    url = re.search(r"^usage ledger (sqlite://\S+): today's calls", out, re.MULTILINE).group(1)  # type: ignore[union-attr]
    path = sqlite_path(url)
    assert path.is_file() and tmp_path in path.parents  # a fresh temporary file, its path printed

    # The per-call table is still there; its costs add up to the report's total, read back from the ledger.
    call_costs = [
        Decimal(m.group(1))
        for m in re.finditer(r"^(?:chat|responses|embeddings|anthropic)\S*.*?(\d+\.\d{8})  ", out, re.M)
    ]
    assert len(call_costs) == 9  # 11 calls; the unpriced one and the 429 have no cost
    total = next(line for line in out.splitlines() if line.startswith("total "))
    calls, unknown, amount = [cell.strip() for cell in total.split("│")][2:5]  # after provider and model
    assert (calls, unknown) == ("11", "1")
    assert amount.startswith(">= ")  # a lower bound: the unpriced call's cost is unknown
    assert Decimal(amount.removeprefix(">= ")) == sum(call_costs)
    assert "Store(" not in out  # the ledger is named by its URL, never a Python repr
    assert "!! 1 call(s) have no price" in out and "no price: openai acme-llm-7b" in out
    assert f"otel-ai-cost jobs show demo-job-1 --ledger {url}" in out

    with SQLiteStore(path) as store:
        records = list(store.query(UsageQuery(job_id="demo-job-1")))
    assert len(records) == 11 and {r.service for r in records} == {"otel-ai-cost-demo"}
    assert {r.team for r in records} == {"platform"}


def test_demo_ledger_option_is_checked_before_any_call():
    from click.testing import CliRunner

    from otel_ai_cost.cli import main

    result = CliRunner().invoke(main, ["demo", "--ledger", "ledger.db"])
    assert result.exit_code == 1 and "--ledger='ledger.db' is not a ledger URL" in result.output
    assert "calls against a local stand-in" not in result.output
