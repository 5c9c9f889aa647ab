"""The Slack message of the daily workflow (`.github/workflows/ai-usage-report.yml`), built from what the earlier
steps wrote: the daily report's JSON (`report daily --format json`) and the budget check's (`budgets check --json`).

```bash
python -m otel_ai_cost.ci.slack_summary --report reports/report.json --budgets reports/budgets.json \\
    --run-url "$RUN_URL" > slack.json
curl --fail --data-binary @slack.json -H 'Content-Type: application/json' "$SLACK_WEBHOOK_URL"
```

The message (an incoming webhook's `{"text": ...}`, Slack's mrkdwn) says the report's day and total, the spend by
environment and by service, the anomalies, the budget check's worst status with the budgets past a threshold, and
links to the run (where the HTML report is an artifact). Amounts are the files' exact decimal strings; a total that
leaves out calls of unknown cost reads `≥ 1.20 USD (3 calls of unknown cost)`. A file that is missing (its step
failed) is said in the message, never a crash: the message is posted whatever happened. Text from the files is
escaped for Slack (`&`, `<`, `>`), so a model or budget name cannot become a link or a mention.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["MAX_ANOMALIES", "main", "slack_escape", "slack_message"]

MAX_ANOMALIES = 5  # listed in the message; the rest are counted (the report has them all)
MAX_TEXT_CHARS = 3000  # Slack shows about this much of a message's text before "see more"


def slack_escape(text: str) -> str:
    """`text` as literal Slack mrkdwn (the three characters Slack's formatting reference says to escape)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _amount(cost: Any, unknown: Any = 0) -> str:
    if cost is None:
        return "cost unknown"
    bound = "≥ " if isinstance(unknown, int) and unknown > 0 else ""
    return f"{bound}{slack_escape(str(cost))} USD"


def _pairs(mapping: Any) -> str:
    if not isinstance(mapping, Mapping) or not mapping:
        return "none"
    return ", ".join(f"{slack_escape(str(name) or '(none)')} {_amount(cost)}" for name, cost in mapping.items())


def slack_message(
    report: Mapping[str, Any] | None,
    budgets: Mapping[str, Any] | None,
    *,
    run_url: str = "",
    budget_outcome: str = "",
) -> dict[str, str]:
    """The webhook's JSON body (see the module documentation); `budget_outcome` is the budget step's outcome
    (`success`, `failure`, `skipped`), said when the check wrote no result."""
    lines: list[str] = []
    if report is None:
        lines.append("*AI usage report*: the report was not generated (see the run).")
    else:
        summary = report.get("summary") if isinstance(report.get("summary"), Mapping) else {}
        days = report.get("days")
        period = slack_escape(str(report.get("date", "?")))
        if isinstance(days, int) and days > 1:
            period = f"{slack_escape(str(report.get('start_date', '?')))} to {period} ({days} days)"
        scope = report.get("environment")
        where = f", environment {slack_escape(str(scope))}" if scope else ""
        total = _amount(summary.get("total_cost"), summary.get("unknown_cost_calls"))
        lines.append(f"*AI usage report {period}{where}*: {total} over {summary.get('calls', 0):,} calls")
        unknown = summary.get("unknown_cost_calls")
        if isinstance(unknown, int) and unknown > 0:
            lines.append(f"{unknown:,} calls of unknown cost are left out: the total is a lower bound")
        lines.append(f"By environment: {_pairs(summary.get('by_environment'))}")
        lines.append(f"By service: {_pairs(summary.get('by_service'))}")
        lines.extend(_anomalies(report.get("anomalies")))
    lines.append(_budget_line(budgets, budget_outcome))
    if run_url:
        lines.append(f"<{slack_escape(run_url)}|The run> (the HTML report is its artifact)")
    text = "\n".join(lines)
    if len(text) > MAX_TEXT_CHARS:
        text = text[: MAX_TEXT_CHARS - 40].rsplit("\n", 1)[0] + "\n… (cut: the run has the whole report)"
    return {"text": text}


def _anomalies(anomalies: Any) -> list[str]:
    if not isinstance(anomalies, Sequence) or isinstance(anomalies, str) or not anomalies:
        return ["No anomalies."]
    listed = [a for a in anomalies if isinstance(a, Mapping)][:MAX_ANOMALIES]
    out = [f"*{len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'}*:"]
    out.extend(f"• {slack_escape(str(a.get('description') or a.get('type') or '?'))}" for a in listed)
    if len(anomalies) > len(listed):
        out.append(f"• … and {len(anomalies) - len(listed)} more in the report")
    return out


def _budget_line(budgets: Mapping[str, Any] | None, outcome: str) -> str:
    if budgets is None:
        said = f" (the step's outcome: {slack_escape(outcome)})" if outcome else ""
        return f"*Budgets*: not checked{said}."
    status = slack_escape(str(budgets.get("status", "?")))
    rows = [b for b in budgets.get("budgets", []) if isinstance(b, Mapping) and b.get("status") not in ("ok", None)]
    if not rows:
        return f"*Budgets*: {status}, every budget within its thresholds."
    shown = "; ".join(
        f"{slack_escape(str(b.get('budget')))} {_amount(b.get('spent'), b.get('unknown_cost_calls'))} of "
        f"{slack_escape(str(b.get('limit')))} USD ({slack_escape(str(b.get('status')))})"
        for b in rows
    )
    return f"*Budgets*: {status}: {shown}"


def _read(path: str | None) -> dict[str, Any] | None:
    """A step's JSON, or None when the step wrote none (it failed or was skipped)."""
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m otel_ai_cost.ci.slack_summary", description=__doc__.split("\n")[0])
    parser.add_argument("--report", help="the daily report's JSON (report daily --format json)")
    parser.add_argument("--budgets", help="the budget check's JSON (budgets check --json)")
    parser.add_argument("--run-url", default="", help="the workflow run's URL")
    parser.add_argument("--budget-outcome", default="", help="the budget step's outcome (steps.<id>.outcome)")
    args = parser.parse_args(argv)
    message = slack_message(
        _read(args.report), _read(args.budgets), run_url=args.run_url, budget_outcome=args.budget_outcome
    )
    sys.stdout.write(json.dumps(message, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
