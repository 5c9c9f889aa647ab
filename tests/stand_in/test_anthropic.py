"""The real `anthropic` SDK parses every Anthropic answer of the stand-in: messages, streams, count_tokens."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import anthropic
from pydantic import BaseModel

from otel_ai_cost.stand_in import Scenario, StandInServer

CLAUDE = "claude-haiku-4-5"  # not in the SDK's deprecated-model list: no DeprecationWarning
USER = [{"role": "user", "content": "What is the capital of France?"}]

CACHED = Scenario(
    model="claude-haiku-4-5-20251001",
    text="Paris is the capital of France.",
    input_tokens=20,
    cache_read_input_tokens=1000,
    cache_write_5m_input_tokens=300,
    cache_write_1h_input_tokens=200,
    output_tokens=50,
    web_search_requests=2,
    service_tier="priority",
)


class City(BaseModel):
    name: str
    population: int


def test_messages_create_reports_scenario_usage(server: StandInServer, anth: anthropic.Anthropic) -> None:
    server.push(CACHED)
    message = anth.messages.create(model=CLAUDE, max_tokens=100, messages=USER)
    assert message.id.startswith("msg_")
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "claude-haiku-4-5-20251001"
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text == "Paris is the capital of France."
    usage = message.usage
    assert usage.input_tokens == 20  # excludes cache reads and writes
    assert usage.cache_read_input_tokens == 1000
    assert usage.cache_creation_input_tokens == 500
    assert usage.cache_creation is not None
    assert usage.cache_creation.ephemeral_5m_input_tokens == 300
    assert usage.cache_creation.ephemeral_1h_input_tokens == 200
    assert usage.output_tokens == 50
    assert usage.service_tier == "priority"
    assert usage.server_tool_use and usage.server_tool_use.web_search_requests == 2


def test_messages_default_answer(server: StandInServer, anth: anthropic.Anthropic) -> None:
    first = anth.messages.create(model=CLAUDE, max_tokens=100, messages=USER)
    second = anth.messages.create(model=CLAUDE, max_tokens=100, messages=USER)
    assert first.model == CLAUDE
    assert first.usage == second.usage
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0
    assert first.usage.cache_read_input_tokens == 0 and first.usage.cache_creation_input_tokens == 0
    assert first.usage.server_tool_use is None  # the real API omits it when no server tool ran
    assert first.usage.service_tier == "standard"
    assert "capital of France" in first.content[0].text  # type: ignore[union-attr]


def test_raw_stream_event_sequence(server: StandInServer) -> None:
    server.push(CACHED)
    body = {"model": CLAUDE, "max_tokens": 100, "messages": USER, "stream": True}
    request = urllib.request.Request(
        f"{server.anthropic_base_url}/v1/messages",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "anthropic-version": "2023-06-01"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    events = [
        (
            block.split("\n")[0].removeprefix("event: "),
            json.loads(block.split("\n")[1].removeprefix("data: ")),
        )
        for block in text.strip().split("\n\n")
    ]
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in events)
    start_usage = events[0][1]["message"]["usage"]
    assert (start_usage["input_tokens"], start_usage["cache_read_input_tokens"]) == (20, 1000)
    assert start_usage["output_tokens"] == 1
    delta_usage = events[-2][1]["usage"]
    assert delta_usage["output_tokens"] == 50 and delta_usage["input_tokens"] == 20
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"


def test_stream_true(server: StandInServer, anth: anthropic.Anthropic) -> None:
    server.push(CACHED)
    events = list(anth.messages.create(model=CLAUDE, max_tokens=100, messages=USER, stream=True))
    assert [e.type for e in events][:2] == ["message_start", "content_block_start"]
    start = events[0]
    assert start.type == "message_start" and start.message.usage.input_tokens == 20
    delta = next(e for e in events if e.type == "message_delta")
    assert delta.usage.output_tokens == 50
    assert delta.usage.cache_creation_input_tokens == 500
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == "Paris is the capital of France."


def test_stream_helper_final_message(server: StandInServer, anth: anthropic.Anthropic) -> None:
    server.push(CACHED)
    with anth.messages.stream(model=CLAUDE, max_tokens=100, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Paris is the capital of France."
    usage = final.usage
    assert (usage.input_tokens, usage.output_tokens) == (20, 50)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (1000, 500)
    assert usage.cache_creation and usage.cache_creation.ephemeral_1h_input_tokens == 200
    assert usage.server_tool_use and usage.server_tool_use.web_search_requests == 2
    assert final.stop_reason == "end_turn"


def test_thinking_tokens(server: StandInServer, anth: anthropic.Anthropic) -> None:
    server.push(Scenario(output_tokens=120, thinking_tokens=100))
    message = anth.messages.create(model=CLAUDE, max_tokens=200, messages=USER)
    assert message.usage.output_tokens == 120
    assert message.usage.output_tokens_details and message.usage.output_tokens_details.thinking_tokens == 100


def test_beta_messages(server: StandInServer, anth: anthropic.Anthropic) -> None:
    server.push(Scenario(input_tokens=11, output_tokens=22), Scenario(input_tokens=33, output_tokens=44))
    message = anth.beta.messages.create(
        model=CLAUDE, max_tokens=100, messages=USER, betas=["context-management-2025-06-27"]
    )
    assert type(message).__name__ == "BetaMessage"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 22)
    request = server.requests[-1]
    assert request.path == "/v1/messages"
    assert request.headers["anthropic-beta"] == "context-management-2025-06-27"
    with anth.beta.messages.stream(model=CLAUDE, max_tokens=100, messages=USER) as stream:
        final = stream.get_final_message()
    assert (final.usage.input_tokens, final.usage.output_tokens) == (33, 44)


def test_count_tokens(server: StandInServer, anth: anthropic.Anthropic) -> None:
    counted = anth.messages.count_tokens(model=CLAUDE, messages=USER)
    created = anth.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
    assert counted.input_tokens == created.usage.input_tokens
    server.push(Scenario(input_tokens=1234))
    assert anth.messages.count_tokens(model=CLAUDE, messages=USER).input_tokens == 1234
    assert server.requests[-1].path == "/v1/messages/count_tokens"


def test_prompt_caching_is_simulated(server: StandInServer, anth: anthropic.Anthropic) -> None:
    system = [{"type": "text", "text": "Long instructions. " * 100, "cache_control": {"type": "ephemeral"}}]
    first = anth.messages.create(model=CLAUDE, max_tokens=10, system=system, messages=USER)
    second = anth.messages.create(
        model=CLAUDE, max_tokens=10, system=system, messages=[{"role": "user", "content": "And Italy?"}]
    )
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.cache_creation and first.usage.cache_creation.ephemeral_5m_input_tokens > 0
    written = first.usage.cache_creation_input_tokens
    assert second.usage.cache_read_input_tokens == written
    assert second.usage.cache_creation_input_tokens == 0
    hour = [{"type": "text", "text": "Other. " * 100, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    third = anth.messages.create(model=CLAUDE, max_tokens=10, system=hour, messages=USER)
    assert third.usage.cache_creation and third.usage.cache_creation.ephemeral_1h_input_tokens > 0


def test_structured_output_default_fits_the_schema(server: StandInServer, anth: anthropic.Anthropic) -> None:
    message = anth.messages.parse(model=CLAUDE, max_tokens=100, messages=USER, output_format=City)
    assert isinstance(message.parsed_output, City)


def test_async_client(server: StandInServer) -> None:
    async def run() -> tuple[int, int]:
        async with anthropic.AsyncAnthropic(
            base_url=server.anthropic_base_url, api_key="test", max_retries=0
        ) as client:
            created = await client.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
            async with client.messages.stream(model=CLAUDE, max_tokens=10, messages=USER) as stream:
                final = await stream.get_final_message()
            return created.usage.output_tokens, final.usage.output_tokens

    server.push(Scenario(output_tokens=5), Scenario(output_tokens=6))
    assert asyncio.run(run()) == (5, 6)
