"""Fixtures of the Lambda and short-lived-process tests: an OTLP/HTTP receiver, a moto DynamoDB server, and the
function's environment pointed at them, at the stand-in and at a ledger in `tmp_path`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The DynamoDB test server is shared with the ledger tests, imported by the same module name they use.
sys.path.insert(0, str(Path(__file__).parents[1] / "ledger"))

from dynamodb_server import FAKE_CREDENTIALS, LoopbackDynamoDB, start_server

from launcher.otlp_receiver import OtlpReceiver


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[LoopbackDynamoDB]:
    running = start_server()
    yield running
    running.stop()


@pytest.fixture
def aws_credentials() -> dict[str, str]:
    """Test credentials for a child process: never a real account, no AWS config file read."""
    return {
        "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["aws_secret_access_key"],
        "AWS_CONFIG_FILE": "/nonexistent/otel-ai-cost-tests/config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/otel-ai-cost-tests/credentials",
    }
