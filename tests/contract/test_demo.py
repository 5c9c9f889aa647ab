"""The README's first command ends in `otel-ai-cost demo`: it must work with nothing configured."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path


def test_demo_prints_each_calls_tokens_cost_and_attribution(tmp_path):
    script = Path(sys.executable).with_name("otel-ai-cost")
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the demo's throwaway ledger goes here
    result = subprocess.run([str(script), "demo"], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = {line.split("  ")[0].strip(): line for line in out.splitlines() if "  " in line}
    # claude-haiku-4-5, 40 input + 3000 5m writes + 6000 1h writes + 300 output:
    # 40*1.00 + 3000*1.25 + 6000*2.00 + 300*5.00 = 17290 per 1M
    row = lines["anthropic, cache writes 5m + 1h"]
    assert "9040" in row and Decimal(row.split()[-2]) == Decimal("0.01729000")
    assert "unpriced" in lines["chat, model with no price"]
    assert "RateLimitError" in lines["chat, 429 after 2 retries"]
    assert "ai_cost.job.id=demo-job-1" in out and "ai_cost.team=platform" in out
    assert "sk-demo-not-a-real-key" not in out + result.stderr
    # It ends with a reconciliation against the stand-in's billing endpoints: each provider's day, exactly 0.00%.
    reconciliation = out[out.index("reconciliation: tracked beside what the stand-in billed") :]
    day_rows = [line for line in reconciliation.splitlines() if "│ 20" in line]
    assert {row.split("│")[2].strip() for row in day_rows} == {"openai", "anthropic"}
    assert all("0.00%" in row and "match" in row for row in day_rows), reconciliation
    assert "unpriced records: 1 tracked call(s) of acme-llm-7b" in reconciliation
    assert "sk-admin-demo-not-a-real-key" not in out + result.stderr
