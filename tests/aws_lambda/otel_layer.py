"""The OTel Lambda layer's Python instrumentation, `opentelemetry-instrumentation-aws-lambda`, for the function's
process only.

It is not a dependency of the project: it pins `opentelemetry-instrumentation` to its own beta, and its entry point
would be loaded by every `opentelemetry-instrument` run of the other tests. So, as the layer ships it beside the
function, it is installed (once, from PyPI, without its dependencies) into a cache directory that only the
function's process puts on `sys.path`. Its two requirements the environment has at a later beta of the same release
(`opentelemetry-instrumentation`, `opentelemetry-semantic-conventions`); the X-Ray propagator is installed with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PACKAGES = ("opentelemetry-instrumentation-aws-lambda==0.66b1", "opentelemetry-propagator-aws-xray==1.0.2")
LAYER_SCOPE = "opentelemetry.instrumentation.aws_lambda"


def layer_dir() -> Path:
    """The directory holding PACKAGES, installed there on first use (a failed install fails the test)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    directory = Path(cache) / "otel-ai-cost-tests" / "otel-lambda-layer"
    marker = directory / "installed.txt"
    wanted = "\n".join(PACKAGES) + "\n"
    if not (marker.is_file() and marker.read_text() == wanted):
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
        subprocess.run([*command, "--upgrade", "--target", str(directory), *PACKAGES], check=True, timeout=300)
        marker.write_text(wanted)
    return directory
