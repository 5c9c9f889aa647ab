"""The real `openai` SDK parses every OpenAI answer of the stand-in: chat, parse, responses, embeddings."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import openai
import pytest
from pydantic import BaseModel

from otel_ai_cost.stand_in import Scenario, StandInServer

USER = [{"role": "user", "content": "What is the capital of France?"}]


class City(BaseModel):
    name: str
    population: int
    landmarks: list[str]


def test_chat_create_reports_scenario_usage(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(
        Scenario(
            model="gpt-4o-2024-08-06",
            text="Paris.",
            prompt_tokens=1500,
            cached_tokens=1024,
            completion_tokens=300,
            reasoning_tokens=200,
            service_tier="flex",
        )
    )
    completion = oai.chat.completions.create(model="gpt-4o", messages=USER)
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-2024-08-06"
    assert completion.service_tier == "flex"
    assert completion.system_fingerprint and completion.system_fingerprint.startswith("fp_")
    assert completion.choices[0].message.content == "Paris."
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1500, 300, 1800)
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens == 1024
    assert usage.completion_tokens_details and usage.completion_tokens_details.reasoning_tokens == 200
    assert usage.completion_tokens_details.accepted_prediction_tokens == 0


def test_chat_default_answer_is_deterministic(server: StandInServer, oai: openai.OpenAI) -> None:
    first = oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    second = oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert first.model == "gpt-4o-mini"
    assert first.service_tier == "default"
    assert "capital of France" in (first.choices[0].message.content or "")
    assert first.usage == second.usage
    assert first.usage and first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0
    longer = oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x" * 400}])
    assert longer.usage and longer.usage.prompt_tokens > first.usage.prompt_tokens


def test_chat_service_tier_follows_the_request(server: StandInServer, oai: openai.OpenAI) -> None:
    tiers = [
        oai.chat.completions.create(model="gpt-4o-mini", messages=USER, service_tier=tier).service_tier
        for tier in ("auto", "flex", "priority")
    ]
    assert tiers == ["default", "flex", "priority"]


def test_chat_stream_without_include_usage_has_no_usage_chunk(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(Scenario(text=["Par", "is", "."], prompt_tokens=10, completion_tokens=3))
    chunks = list(oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Paris."
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {chunk.id for chunk in chunks} == {chunks[0].id}
    assert "stream_options" not in server.requests[-1].body


def test_chat_stream_with_include_usage_ends_with_the_usage_chunk(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(Scenario(text="Paris.", prompt_tokens=40, cached_tokens=32, completion_tokens=7))
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    *content, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (40, 7, 47)
    assert last.usage.prompt_tokens_details and last.usage.prompt_tokens_details.cached_tokens == 32
    assert all(chunk.usage is None and chunk.choices for chunk in content)
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}


def test_raw_chat_stream_carries_usage_null_on_every_chunk(server: StandInServer) -> None:
    body = {"model": "m", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    request = urllib.request.Request(
        f"{server.openai_base_url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line.decode().strip() for line in response if line.strip()]
    assert lines[-1] == "data: [DONE]"
    payloads = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all("usage" in payload for payload in payloads)
    assert [p["usage"] is None for p in payloads] == [True] * (len(payloads) - 1) + [False]


def test_chat_stream_helper(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(Scenario(text="Paris is the capital.", prompt_tokens=12, completion_tokens=5))
    with oai.chat.completions.stream(
        model="gpt-4o-mini", messages=USER, stream_options={"include_usage": True}
    ) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == "Paris is the capital."
    assert final.choices[0].message.content == "Paris is the capital."
    assert final.usage and final.usage.total_tokens == 17


def test_chat_parse_with_scenario_json(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(Scenario(text='{"name": "Paris", "population": 2100000, "landmarks": ["Louvre"]}'))
    completion = oai.chat.completions.parse(model="gpt-4o", messages=USER, response_format=City)
    assert completion.choices[0].message.parsed == City(name="Paris", population=2100000, landmarks=["Louvre"])
    assert server.requests[-1].body["response_format"]["type"] == "json_schema"


def test_chat_parse_default_answer_fits_the_schema(server: StandInServer, oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.parse(model="gpt-4o", messages=USER, response_format=City)
    assert isinstance(completion.choices[0].message.parsed, City)


def test_reasoning_effort_gives_default_reasoning_tokens(server: StandInServer, oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="o4-mini", messages=USER, reasoning_effort="low")
    details = completion.usage and completion.usage.completion_tokens_details
    assert details and details.reasoning_tokens == 64
    assert completion.usage and completion.usage.completion_tokens > 64


def test_responses_create(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(
        Scenario(text="Paris.", prompt_tokens=2000, cached_tokens=1536, completion_tokens=500, reasoning_tokens=400)
    )
    response = oai.responses.create(model="gpt-5", input="What is the capital of France?")
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.output_text == "Paris."
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.service_tier == "default"
    usage = response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (2000, 500, 2500)
    assert usage.input_tokens_details.cached_tokens == 1536
    assert usage.output_tokens_details.reasoning_tokens == 400


def test_responses_stream_reports_usage_in_completed(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(Scenario(text="Paris is lovely.", prompt_tokens=20, completion_tokens=4))
    events = list(oai.responses.create(model="gpt-4.1", input="Capital of France?", stream=True))
    types = [event.type for event in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Paris is lovely."
    created, completed = events[0], events[-1]
    assert created.type == "response.created" and created.response.usage is None
    assert completed.type == "response.completed"
    assert completed.response.usage and completed.response.usage.total_tokens == 24
    assert completed.response.output_text == "Paris is lovely."


def test_responses_stream_helper_and_parse(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(Scenario(prompt_tokens=30, completion_tokens=10))
    with oai.responses.stream(model="gpt-4.1", input="Capital of France?") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.usage and (final.usage.input_tokens, final.usage.output_tokens) == (30, 10)
    parsed = oai.responses.parse(model="gpt-4.1", input="Describe Paris", text_format=City)
    assert isinstance(parsed.output_parsed, City)


def test_responses_incomplete(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(Scenario(finish_reason="length", completion_tokens=16))
    response = oai.responses.create(model="gpt-4.1", input="Tell me everything", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details and response.incomplete_details.reason == "max_output_tokens"


def test_embeddings(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(Scenario(prompt_tokens=42))
    result = oai.embeddings.create(model="text-embedding-3-small", input=["hello", "world"])
    assert result.object == "list"
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 1536
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (42, 42)
    assert server.requests[-1].body["encoding_format"] == "base64"  # the SDK's default; it decodes it
    floats = oai.embeddings.create(model="text-embedding-3-small", input="hello", encoding_format="float", dimensions=8)
    assert len(floats.data[0].embedding) == 8
    assert floats.usage.prompt_tokens == 2
    again = oai.embeddings.create(model="text-embedding-3-small", input="hello", dimensions=8)
    assert again.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)


def test_async_client(server: StandInServer) -> None:
    async def run() -> tuple[openai.types.CompletionUsage | None, int]:
        async with openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True}
            )
            chunks = [chunk async for chunk in stream]
            response = await client.responses.create(model="gpt-4.1", input="hi")
            return chunks[-1].usage, response.usage.total_tokens if response.usage else 0

    server.push(Scenario(prompt_tokens=5, completion_tokens=6), Scenario(prompt_tokens=7, completion_tokens=8))
    usage, response_total = asyncio.run(run())
    assert usage and usage.total_tokens == 11
    assert response_total == 15


def test_automatic_prompt_caching_is_simulated(server: StandInServer, oai: openai.OpenAI) -> None:
    system = {"role": "system", "content": "You are a careful assistant. " * 200}  # ~1500 tokens
    first = oai.chat.completions.create(model="gpt-4o-mini", messages=[system, *USER])
    second = oai.chat.completions.create(
        model="gpt-4o-mini", messages=[system, {"role": "user", "content": "And of Italy?"}]
    )
    assert first.usage and first.usage.prompt_tokens_details
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage and second.usage.prompt_tokens_details
    cached = second.usage.prompt_tokens_details.cached_tokens or 0
    assert cached >= 1024 and cached % 128 == 0 and cached <= second.usage.prompt_tokens
