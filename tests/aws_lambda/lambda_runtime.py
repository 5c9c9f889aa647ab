"""Drives `lambda_runtime_child.py`: invocations of a Lambda function in a child process that is frozen (SIGSTOP)
after every response and ended with SIGKILL, so nothing that was still queued when a handler returned can leave."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CHILD = Path(__file__).with_name("lambda_runtime_child.py")
FUNCTION_NAME = "receipts-labeler"
_LONG_MS = "600000"  # batch delays and export intervals far beyond any test: only a flush exports


def function_environment(**extra: str) -> dict[str, str]:
    """The process environment of the function: this test process's (the neutral one of tests/conftest.py), what
    Lambda sets, and batch queues that never export on their own during a test."""
    env = dict(os.environ)
    env.update(
        AWS_LAMBDA_FUNCTION_NAME=FUNCTION_NAME,
        AWS_LAMBDA_FUNCTION_VERSION="7",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
        AWS_LAMBDA_LOG_STREAM_NAME="2026/11/22/[7]0123456789abcdef",
        AWS_REGION="us-east-1",
        OTEL_BSP_SCHEDULE_DELAY=_LONG_MS,
        OTEL_METRIC_EXPORT_INTERVAL=_LONG_MS,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class FrozenLambda:
    """One execution environment: `invoke()` thaws it, runs one invocation and waits until it is frozen again;
    `end()` kills it (the platform ending a frozen environment)."""

    def __init__(self, handler: str, env: dict[str, str]) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty child never blocks on it
        self._process = subprocess.Popen(
            [sys.executable, str(CHILD)],
            env={**env, "_HANDLER": handler},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._frozen = False
        self._count = 0

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """The handler's outcome: `{"result": ...}` or `{"error": "Type: message"}`."""
        assert self._process.stdin is not None and self._process.stdout is not None
        if self._frozen:
            os.kill(self._process.pid, signal.SIGCONT)
            self._frozen = False
        request_id = f"req-{self._count:04d}"
        self._count += 1
        self._process.stdin.write(json.dumps({"request_id": request_id, "event": event}) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise AssertionError(f"the function process died: {self.end()}")
        self._wait_frozen()
        return {"request_id": request_id, **json.loads(line)}

    def _wait_frozen(self) -> None:
        """Returns once the child has stopped itself (so no thread of it runs any more)."""
        _, status = os.waitpid(self._process.pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            raise AssertionError(f"the function process ended instead of freezing (status {status})")
        self._frozen = True

    def end(self) -> str:
        """SIGKILL, frozen or not; returns the child's stderr (for failure messages)."""
        if self._process.poll() is None:
            self._process.kill()  # SIGKILL is delivered to a stopped process too
        self._process.wait(timeout=30)
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()
        self._stderr.seek(0)
        text = self._stderr.read()
        self._stderr.close()
        return text
