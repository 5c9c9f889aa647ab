"""Fixtures for the Bedrock tests: the Bedrock Runtime stand-in, our instrumentor, a real boto3 client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from otel_ai_cost.instrumentation.bedrock import BedrockCostInstrumentor
from otel_ai_cost.stand_in.bedrock_api import BedrockStandIn


@pytest.fixture(scope="session")
def _bedrock_server() -> Iterator[BedrockStandIn]:
    with BedrockStandIn() as server:
        yield server


@pytest.fixture
def bedrock(_bedrock_server: BedrockStandIn) -> BedrockStandIn:
    _bedrock_server.reset()
    return _bedrock_server


@pytest.fixture
def instrumented(telemetry) -> BedrockCostInstrumentor:
    """Our instrumentor, as `otel_ai_cost.instrument()` (the telemetry fixture) set it up."""
    instrumentor = BedrockCostInstrumentor()
    assert instrumentor.is_instrumented_by_opentelemetry
    return instrumentor


@pytest.fixture
def make_client(bedrock: BedrockStandIn) -> Callable[..., Any]:
    def make(region: str = "us-east-1", retries: int = 1) -> Any:
        return boto3.client(
            "bedrock-runtime",
            endpoint_url=bedrock.url,
            region_name=region,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"mode": "standard", "total_max_attempts": retries}),
        )

    return make


@pytest.fixture
def client(make_client, instrumented) -> Any:
    return make_client()
