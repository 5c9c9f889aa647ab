"""A stand-in for the AWS Lambda Python runtime, in a child process driven by `lambda_runtime.FrozenLambda`.

It imports the handler named by `_HANDLER` (`module.function`, as Lambda does; the init phase), then serves one
invocation per JSON line on stdin: calls the handler with the event and a Lambda-shaped context, writes the outcome
as one JSON line on stdout, and stops itself (SIGSTOP): the execution environment is frozen, no thread of it runs
until the parent thaws it (SIGCONT) for the next invocation, or kills it (SIGKILL) as Lambda ends an environment.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
from pathlib import Path


class LambdaContext:
    """The attributes and method of the Lambda Python runtime's context object."""

    def __init__(self, request_id: str, timeout_s: float) -> None:
        name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.aws_request_id = request_id
        self.function_name = name
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    module_name, function_name = os.environ["_HANDLER"].rsplit(".", 1)
    if layer := os.environ.get("OTEL_LAMBDA_LAYER_DIR"):
        # As the OTel Lambda layer's `otel_wrapper` does: the instrumentor imports the handler named in
        # ORIG_HANDLER and wraps it, and the runtime then calls the wrapped function.
        sys.path.insert(0, layer)
        os.environ["ORIG_HANDLER"] = os.environ["_HANDLER"]
        from opentelemetry.instrumentation.aws_lambda import AwsLambdaInstrumentor

        AwsLambdaInstrumentor().instrument()
    handler = getattr(importlib.import_module(module_name), function_name)
    timeout_s = float(os.environ.get("FUNCTION_TIMEOUT_S", "60"))
    for line in sys.stdin:
        invocation = json.loads(line)
        context = LambdaContext(invocation["request_id"], timeout_s)
        try:
            outcome = {"result": handler(invocation["event"], context)}
        except Exception as exc:  # the runtime reports a handler's error and keeps the environment
            outcome = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(outcome) + "\n")
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGSTOP)  # frozen right after the handler returned


if __name__ == "__main__":
    main()
