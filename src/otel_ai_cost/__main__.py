"""`python -m otel_ai_cost ...` is `otel-ai-cost ...` (for environments without the console script on PATH)."""

from otel_ai_cost.cli import main

main(prog_name="otel-ai-cost")
