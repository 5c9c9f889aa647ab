"""Fixtures: one stand-in server per module (reset before each test) and real SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from otel_ai_cost.stand_in import StandInServer


@pytest.fixture(scope="module")
def _shared_server() -> Iterator[StandInServer]:
    with StandInServer() as server:
        yield server


@pytest.fixture
def server(_shared_server: StandInServer) -> StandInServer:
    _shared_server.reset()
    return _shared_server


@pytest.fixture
def oai(server: StandInServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)
    yield client
    client.close()


@pytest.fixture
def anth(server: StandInServer) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="test", max_retries=0)
    yield client
    client.close()
