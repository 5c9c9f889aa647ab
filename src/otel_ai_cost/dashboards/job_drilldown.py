"""Job drill-down: one job's calls, their cost, and links to their traces.

Job ids are never metric labels (unbounded), so Prometheus cannot select one job. What stock Grafana can do:

- the trace store's search (the core Jaeger datasource) finds the traces whose spans carry the job's
  `ai_cost.job.id`; each row links to its trace, whose GenAI spans hold the exact cost (`ai_cost.amount`),
  model and tokens;
- the spend and call counters carry exemplars (the trace id of a call behind each point): the time-series panels
  show them as dots that open the trace, for the environment, provider and model selected;
- the ledger's exact per-job records and totals are JSON behind a bearer token (`/v1/usage?job_id=`); stock
  Grafana has no JSON datasource, so the dashboard points to `otel-ai-cost jobs show` instead.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from otel_ai_cost import contract
from otel_ai_cost.contract import Attribution
from otel_ai_cost.dashboards import datasources
from otel_ai_cost.dashboards import panels as p
from otel_ai_cost.dashboards import promql as q
from otel_ai_cost.dashboards.dashboard import dashboard
from otel_ai_cost.dashboards.layout import Grid
from otel_ai_cost.dashboards.variables import filter_variables, textbox

UID = "ai-cost-job"
USD = "currencyUSD"
DEFAULT_SERVICE = "otel-ai-cost-stack-app"  # the compose stack's example app (service.name)
JAEGER_UI = "http://localhost:16686"  # where a browser reaches the Jaeger UI (editable on the dashboard)
SPEND = q.otel(contract.SPEND)
REQUESTS = q.otel(contract.REQUESTS)
MODEL_LEGEND = f"{{{{{q.PROVIDER}}}}} / {{{{{q.MODEL}}}}}"


def jaeger_ui_search() -> str:
    """The Jaeger UI's search for the job's traces (its `tags` parameter is URL-encoded JSON)."""
    before, after = json.dumps({Attribution.JOB_ID: "JOB"}, separators=(",", ":")).split("JOB")
    tags = quote(before, safe="") + "${job_id:percentencode}" + quote(after, safe="")
    return f"${{jaeger_ui}}/search?service=${{service:percentencode}}&tags={tags}&limit=200"


HOW_TO = f"""\
Enter a **job id** above (the `{Attribution.JOB_ID}` set by `ai_usage_context(job_id=...)`) and the **service** it ran
in (Jaeger's search needs one).

* **Traces of the job**: the table lists them; click a trace id to open it. Each GenAI span carries the call's exact
  cost (`{contract.Cost.AMOUNT}`), model and tokens. Also [in the Jaeger UI]({jaeger_ui_search()}).
* **Exact cost of the job**: `otel-ai-cost jobs show ${{job_id}}` (the ledger), or the ledger's
  `/v1/usage?job_id=${{job_id}}&aggregation=provider,model` with its bearer token.
* **Dots on the graphs** are exemplars: each opens the trace of one call (any job) behind that point.
"""


def trace_search_target(job_variable: str = "job_id") -> dict[str, Any]:
    """The Jaeger datasource's tag search for one job's traces (tags in logfmt)."""
    return {
        "datasource": datasources.traces(),
        "queryType": "search",
        "service": "$service",
        "tags": f'{Attribution.JOB_ID}="${job_variable}"',
        "limit": 200,
    }


def build() -> dict[str, Any]:
    grid = Grid()
    grid.add(p.text("How to drill into a job", HOW_TO), w=8, h=10)
    calls = p.table(
        "Traces of job ${job_id}",
        [trace_search_target()],
        datasource=datasources.traces(),
        description=f"Traces with a span whose {Attribution.JOB_ID} is the job id, from Jaeger. Each trace id "
        "links to its trace.",
    )
    calls["fieldConfig"]["defaults"]["links"] = [p.link("Search this job in the Jaeger UI", jaeger_ui_search())]
    grid.add(calls, w=16, h=10)
    grid.add(
        p.timeseries(
            "Spend rate per hour, with call exemplars",
            [p.target(f"{q.sum_rate(SPEND.select(), (q.PROVIDER, q.MODEL))} * 3600", MODEL_LEGEND, exemplar=True)],
            unit=USD,
            description="Each dot is an exemplar: the trace id of a call behind that point. Click it to open the "
            f"trace (and read its {Attribution.JOB_ID}).",
        ),
        w=12,
        h=9,
    )
    grid.add(
        p.timeseries(
            "Calls per minute by outcome, with call exemplars",
            [p.target(f"{q.sum_rate(REQUESTS.select(), (q.OUTCOME,))} * 60", f"{{{{{q.OUTCOME}}}}}", exemplar=True)],
        ),
        w=12,
        h=9,
    )
    variables = [
        *filter_variables(SPEND),
        textbox("job_id", "Job id", description=f"{Attribution.JOB_ID} of the job to drill into"),
        textbox("service", "Service", DEFAULT_SERVICE, "service.name the job ran in (Jaeger's search needs it)"),
        textbox("jaeger_ui", "Jaeger UI", JAEGER_UI, "Where your browser reaches the Jaeger UI"),
    ]
    return dashboard(
        UID,
        "AI cost: job drill-down",
        grid.panels,
        variables,
        description="One job's calls and cost, with links to their traces.",
        time_from="now-24h",
    )
