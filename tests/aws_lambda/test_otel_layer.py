"""`traced` beside the OTel Lambda layer's own handler wrapper (`opentelemetry-instrumentation-aws-lambda`, the
real package): one invocation span, the layer's, our GenAI spans its children, and every call's record, span and
metrics out before the environment is frozen."""

from __future__ import annotations

from pathlib import Path

from exported import ledger_records, metric_points
from lambda_runtime import FUNCTION_NAME, FrozenLambda, function_environment
from otel_layer import LAYER_SCOPE, layer_dir

from otel_ai_cost.contract import INSTRUMENTATION_SCOPE, REQUESTS
from otel_ai_cost.stand_in import Scenario

INVOCATIONS = ({"calls": 2}, {"calls": 1})
SERVER = 2  # SpanKind.SPAN_KIND_SERVER in OTLP


def _spans_by_scope(receiver) -> dict[str, list]:
    found: dict[str, list] = {}
    for request in receiver.traces:
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                found.setdefault(scope_spans.scope.name, []).extend(scope_spans.spans)
    return found


def test_traced_inside_the_layers_wrapper_one_invocation_span_and_nothing_lost(stand_in, receiver, tmp_path: Path):
    stand_in.push(*(Scenario(prompt_tokens=500 + n, completion_tokens=50) for n in range(3)))
    ledger_url = f"sqlite://{tmp_path / 'usage.db'}"
    env = function_environment(
        STAND_IN_OPENAI=stand_in.openai_base_url,
        OTLP_ENDPOINT=receiver.endpoint,
        FUNCTION_TELEMETRY="otlp",
        OTEL_AI_COST_LEDGER=ledger_url,
        OTEL_LAMBDA_LAYER_DIR=str(layer_dir()),
    )
    function = FrozenLambda("lambda_function.traced_handler", env)
    try:
        outcomes = [function.invoke(event) for event in INVOCATIONS]
    finally:
        stderr = function.end()
    assert [o.get("result", {}).get("calls") for o in outcomes] == [2, 1], stderr

    spans = _spans_by_scope(receiver)
    invocation_spans = spans.get(LAYER_SCOPE, [])
    ours = spans.get(INSTRUMENTATION_SCOPE, [])
    # One invocation span per invocation, the layer's (`traced` opens none), named after the function.
    assert [(s.name, s.kind) for s in invocation_spans] == [(FUNCTION_NAME, SERVER)] * len(INVOCATIONS)
    assert set(spans) == {LAYER_SCOPE, INSTRUMENTATION_SCOPE}
    # Our GenAI spans are the children of their invocation's span, and carry its request id.
    parents = {s.span_id: s for s in invocation_spans}
    assert len(ours) == 3
    assert all(s.parent_span_id in parents and s.trace_id == parents[s.parent_span_id].trace_id for s in ours)
    per_invocation = [sum(1 for s in ours if s.parent_span_id == p.span_id) for p in invocation_spans]
    assert per_invocation == [2, 1]
    # Every call's record and metrics were out before each freeze: records match the spans one to one.
    records = ledger_records(ledger_url)
    assert sorted((r.trace_id, r.span_id) for r in records) == sorted((s.trace_id.hex(), s.span_id.hex()) for s in ours)
    assert sorted(r.input_tokens for r in records) == [500, 501, 502]
    exports = metric_points(receiver, REQUESTS.name)
    assert exports and sum(p.as_int for _, p in exports[-1]) == 3
