"""A short-lived batch script, as a user writes one: OTLP providers, `otel_ai_cost.instrument()`, a few real
`openai` calls, and the end right after the last one, the way `SCRIPT_EXIT` says:

- `end`: falls off the end of the script; `sys.exit`: `sys.exit(3)`; `raise`: an uncaught exception (exit 1).
  All three are normal interpreter exits: the SDK's providers shut down at exit and export what is queued.
- `os._exit`: leaves without the interpreter's exit (as a `multiprocessing` worker does): nothing is flushed.
- `flush-then-os._exit`: `otel_ai_cost.flush()` first, then `os._exit(0)`.
"""

from __future__ import annotations

import os
import sys

import openai
from user_telemetry import set_up_otlp

import otel_ai_cost

set_up_otlp(os.environ["OTLP_ENDPOINT"])
otel_ai_cost.instrument()
client = openai.OpenAI(base_url=os.environ["STAND_IN_OPENAI"], api_key="sk-batch-test", max_retries=0)
for n in range(int(os.environ["SCRIPT_CALLS"])):
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"receipt {n}"}])

how = os.environ["SCRIPT_EXIT"]
if how == "sys.exit":
    sys.exit(3)
elif how == "raise":
    raise RuntimeError("the batch failed after its last call")
elif how == "os._exit":
    os._exit(0)
elif how == "flush-then-os._exit":
    flushed = otel_ai_cost.flush(timeout_s=30)
    os._exit(0 if flushed else 7)
