"""The server itself: lifecycle, the scenario queue, request recording, unknown paths, scenario checks."""

from __future__ import annotations

import socket
import threading
import time

import anthropic
import openai
import pytest

from otel_ai_cost.stand_in import RecordedRequest, Scenario, StandInServer

CLAUDE = "claude-haiku-4-5"
USER = [{"role": "user", "content": "Hello"}]


def test_lifecycle() -> None:
    server = StandInServer()
    with pytest.raises(RuntimeError):
        _ = server.port
    server.start()
    try:
        port = server.port
        assert port > 0
        assert server.openai_base_url == f"http://127.0.0.1:{port}/v1"
        assert server.anthropic_base_url == f"http://127.0.0.1:{port}"
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        server.stop()
    server.stop()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_stop_is_prompt_with_open_connections_and_pending_delays() -> None:
    with StandInServer() as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # leaves a keep-alive connection
        server.push(Scenario(delay_s=30))
        errors: list[BaseException] = []

        def slow_call() -> None:
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=USER)
            except openai.APIError as err:
                errors.append(err)

        thread = threading.Thread(target=slow_call)
        thread.start()
        while len(server.requests) < 2:
            time.sleep(0.01)
        started = time.monotonic()
    assert time.monotonic() - started < 3
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_scenarios_are_consumed_in_order(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(Scenario(prompt_tokens=1), Scenario(prompt_tokens=2))
    assert server.pending == 2
    first = oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    second = oai.embeddings.create(model="text-embedding-3-small", input="hi")
    assert first.usage and first.usage.prompt_tokens == 1
    assert second.usage.prompt_tokens == 2
    assert server.pending == 0


def test_push_with_path_filter(server: StandInServer, oai: openai.OpenAI, anth: anthropic.Anthropic) -> None:
    server.push(Scenario(input_tokens=77), path="/v1/messages")
    server.push(Scenario(prompt_tokens=5))
    completion = oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    message = anth.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
    assert completion.usage and completion.usage.prompt_tokens == 5
    assert message.usage.input_tokens == 77


def test_requests_are_recorded(server: StandInServer, anth: anthropic.Anthropic) -> None:
    scenario = Scenario(output_tokens=3)
    server.push(scenario)
    anth.messages.create(model=CLAUDE, max_tokens=10, messages=USER, metadata={"user_id": "u1"})
    anth.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
    first, second = server.requests
    assert isinstance(first, RecordedRequest)
    assert (first.method, first.path, first.query) == ("POST", "/v1/messages", {})
    assert first.headers["authorization"] == "Bearer test"  # anthropic 2.x: Bearer, not x-api-key
    assert first.headers["anthropic-version"]
    assert all(key == key.lower() for key in first.headers)
    assert first.body["metadata"] == {"user_id": "u1"}
    assert first.scenario is scenario and second.scenario is None
    assert server.requests_to("/v1/messages") == [first, second]
    server.reset()
    assert server.requests == [] and server.pending == 0


def test_unknown_path_is_a_404_in_the_providers_shape(
    server: StandInServer, oai: openai.OpenAI, anth: anthropic.Anthropic
) -> None:
    server.push(Scenario(prompt_tokens=9))
    with pytest.raises(openai.NotFoundError) as openai_error:
        oai.models.list()
    assert isinstance(openai_error.value.body, dict) and openai_error.value.body["code"] == "unknown_url"
    with pytest.raises(anthropic.NotFoundError) as anthropic_error:
        anth.models.list()
    body = anthropic_error.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "not_found_error"
    assert server.pending == 1  # unknown paths do not consume scenarios
    assert [r.path for r in server.requests] == ["/v1/models", "/v1/models"]


def test_scenario_validation() -> None:
    with pytest.raises(ValueError, match="mixes"):
        Scenario(prompt_tokens=1, input_tokens=1)
    with pytest.raises(ValueError):
        Scenario(stream_error_mode="explode")  # type: ignore[arg-type]
    assert Scenario(cached_tokens=1).provider == "openai"
    assert Scenario(cache_write_1h_input_tokens=1).provider == "anthropic"
    assert Scenario(status=429).provider is None


def test_push_rejects_non_scenarios(server: StandInServer) -> None:
    with pytest.raises(TypeError):
        server.push({"prompt_tokens": 1})  # type: ignore[arg-type]


def test_scenario_for_the_wrong_provider_is_refused(server: StandInServer, anth: anthropic.Anthropic) -> None:
    server.push(Scenario(prompt_tokens=5))
    with pytest.raises(anthropic.BadRequestError, match="openai usage fields"):
        anth.messages.create(model=CLAUDE, max_tokens=10, messages=USER)


def test_extra_headers_and_chunk_delay(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(Scenario(text=["a", "b", "c"], chunk_delay_s=0.05, headers={"x-custom": "yes"}))
    started = time.monotonic()
    response = oai.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER, stream=True)
    assert response.headers["x-custom"] == "yes"
    assert "".join(c.choices[0].delta.content or "" for c in response.parse()) == "abc"
    assert time.monotonic() - started >= 0.2  # 5 events, 4 gaps
