"""How far over a limit concurrent processes go: several processes spend on one job, capped, through one shared
SQLite ledger; together they stop within one call per process past the line.

Each process is a real Python process with `otel_ai_cost.instrument()` and the real `openai` SDK, calling the
stand-in server until the quota refuses it three times. They start together (a start file they wait for), so
their calls interleave. The limit reads the ledger at every call (`refresh_seconds: 0`), the setting under which
docs/operations.md states the bound without a proviso.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery
from otel_ai_cost.stand_in.scenario import Scenario

PROCESSES = 4
CALL_COST = Decimal("0.0015")  # 10,000 input tokens of gpt-4o-mini
CAP = Decimal("0.03")  # 20 calls' worth
CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    import openai
    import otel_ai_cost
    from otel_ai_cost import BudgetExceeded, ai_usage_context

    base_url, start = sys.argv[1], Path(sys.argv[2])
    otel_ai_cost.instrument()
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
    while not start.exists():  # every process ready: go together
        time.sleep(0.002)
    made = refused = 0
    with ai_usage_context(job_id="nightly-reindex"):
        while refused < 3:
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "go"}])
                made += 1
            except BudgetExceeded:
                refused += 1
    print(json.dumps({"made": made, "refused": refused}))
    """
)


def test_concurrent_processes_go_over_a_job_cap_by_at_most_one_call_each(stand_in, tmp_path: Path):
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(
        "budgets:\n  enforce:\n"
        f"    - {{environment: cicd, period: job, amount: {CAP}, mode: block, refresh_seconds: 0}}\n"
    )
    ledger = tmp_path / "usage.db"
    SQLiteStore(ledger).close()
    stand_in.push(*[Scenario(prompt_tokens=10_000, cached_tokens=0, completion_tokens=0)] * 200)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    start = tmp_path / "start"
    env = {
        **os.environ,
        "OTEL_AI_COST_BUDGETS": str(budgets),
        "OTEL_AI_COST_LEDGER": f"sqlite://{ledger}",
        "ENVIRONMENT": "cicd",
    }
    children = [
        subprocess.Popen(
            [sys.executable, str(script), stand_in.openai_base_url, str(start)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    start.touch()
    results = []
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    made = sum(result["made"] for result in results)
    line = int(CAP / CALL_COST)  # the calls that fit under the cap: 20
    past = made - line
    assert 0 <= past <= PROCESSES, (results, past)  # at most one call per process past the line
    assert len(stand_in.requests) == made  # every refused call sent nothing
    store = SQLiteStore(ledger)
    try:
        records = list(store.query(UsageQuery(job_id="nightly-reindex")))
    finally:
        store.close()
    assert len(records) == made
    spent = sum((record.amount for record in records), Decimal(0))
    assert spent == made * CALL_COST <= CAP + PROCESSES * CALL_COST
    print(f"\n{PROCESSES} processes, cap ${CAP}: {made} calls (${spent}), {past} past the line: {results}")
