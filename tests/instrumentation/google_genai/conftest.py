"""Fixtures for the google-genai tests: the Gemini stand-in, our instrumentor, real `google.genai` clients."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from google import genai
from google.genai import types

from otel_ai_cost.instrumentation.google_genai import GoogleGenAICostInstrumentor
from otel_ai_cost.stand_in.gemini_api import GeminiStandIn


@pytest.fixture(scope="session")
def _gemini_server() -> Iterator[GeminiStandIn]:
    with GeminiStandIn() as server:
        yield server


@pytest.fixture
def gemini(_gemini_server: GeminiStandIn) -> GeminiStandIn:
    _gemini_server.reset()
    return _gemini_server


@pytest.fixture
def instrumented(telemetry) -> GoogleGenAICostInstrumentor:
    """Our instrumentor, as `otel_ai_cost.instrument()` (the telemetry fixture) set it up."""
    instrumentor = GoogleGenAICostInstrumentor()
    assert instrumentor.is_instrumented_by_opentelemetry
    return instrumentor


def make_client(server: GeminiStandIn, *, vertexai: bool = False) -> genai.Client:
    return genai.Client(
        vertexai=vertexai or None, api_key="test-key", http_options=types.HttpOptions(base_url=server.base_url)
    )


@pytest.fixture
def client(gemini, instrumented) -> genai.Client:
    return make_client(gemini)


@pytest.fixture
def vertex_client(gemini, instrumented) -> genai.Client:
    """A Vertex AI client (express mode: an API key, no project) pointed at the stand-in."""
    return make_client(gemini, vertexai=True)


@pytest.fixture
def arun(client: genai.Client) -> Callable[[Callable[[], Awaitable[Any]]], Any]:
    """`asyncio.run` for a test's coroutine, closing the client's async transport in the same loop."""

    def run(main: Callable[[], Awaitable[Any]]) -> Any:
        async def closing() -> Any:
            try:
                return await main()
            finally:
                await client.aio.aclose()

        return asyncio.run(closing())

    return run
