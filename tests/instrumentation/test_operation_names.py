"""Every `gen_ai.operation.name` an instrumentor emits is declared in `contract.Operation`, and the generated
telemetry doc lists exactly that enumeration (issue 10, item 23: the doc said "`chat` or `embeddings`")."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from otel_ai_cost import contract
from otel_ai_cost.contract import Operation
from otel_ai_cost.instrumentation.anthropic import patch as anthropic_patch
from otel_ai_cost.instrumentation.google_genai import patch as genai_patch
from otel_ai_cost.instrumentation.googlemaps.skus import OPERATIONS as GOOGLEMAPS_OPERATIONS
from otel_ai_cost.instrumentation.openai import patch as openai_patch
from otel_ai_cost.instrumentation.per_request.skus import DEFAULT_SKUS
from otel_ai_cost.telemetry.contract_doc import render

INSTRUMENTATION = Path(inspect.getfile(openai_patch)).parents[1]
DECLARED = {op.value for op in Operation}


def _route_operations(module: object) -> set[str]:
    return {
        cls.operation
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if isinstance(getattr(cls, "operation", None), str)
    }


def test_every_registered_operation_is_declared():
    emitted = (
        _route_operations(openai_patch)
        | _route_operations(anthropic_patch)
        | {genai_patch.OPERATION}
        | set(GOOGLEMAPS_OPERATIONS.values())
        | {operation for _, operation in DEFAULT_SKUS}
    )
    assert emitted - DECLARED == set()
    assert {"chat", "embeddings", "generate_content", "transcription", "place_details"} <= emitted


def test_no_instrumentor_spells_an_operation_as_a_literal():
    """An operation name written as a string literal (`operation="chat"`) would bypass the enumeration."""
    literals = []
    for path in sorted(INSTRUMENTATION.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "operation":
                value = node.value
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in {"operation", "OPERATION"} for t in node.targets
            ):
                value = node.value
            else:
                continue
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                literals.append(f"{path.relative_to(INSTRUMENTATION)}:{node.lineno}")
    assert literals == []


def test_googlemaps_and_track_request_operations_are_the_enumeration_values():
    for operation in (*GOOGLEMAPS_OPERATIONS.values(), *(op for _, op in DEFAULT_SKUS)):
        assert Operation(operation).value == operation


def test_the_doc_lists_every_operation_name():
    [row] = [line for line in render().splitlines() if line.startswith(f"| `{contract.GenAI.OPERATION_NAME}` |")]
    assert "`chat` or `embeddings`" not in row
    listed = {part.strip("` ") for part in row.split("|")[3].split(";")[0].split(",")}
    assert listed == DECLARED
