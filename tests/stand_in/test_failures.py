"""Error statuses, retries, disconnects, timeouts and broken streams, as the real SDKs see them."""

from __future__ import annotations

import anthropic
import httpx2
import openai
import pytest

from otel_ai_cost.stand_in import Scenario, StandInServer

CLAUDE = "claude-haiku-4-5"
USER = [{"role": "user", "content": "Hello"}]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_openai_error_statuses(
    server: StandInServer, oai: openai.OpenAI, status: int, error: type[openai.APIStatusError]
) -> None:
    server.push(Scenario(status=status))
    with pytest.raises(error) as caught:
        oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict) and {"message", "type", "param", "code"} <= caught.value.body.keys()
    assert caught.value.response.headers["x-request-id"].startswith("req_")


def test_openai_rate_limit_body(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(Scenario(status=429, error_type="insufficient_quota", error_code="insufficient_quota"))
    with pytest.raises(openai.RateLimitError) as caught:
        oai.embeddings.create(model="text-embedding-3-small", input="hi")
    assert caught.value.code == "insufficient_quota" and caught.value.type == "insufficient_quota"
    assert caught.value.response.headers["retry-after-ms"] == "1"


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_anthropic_error_statuses(
    server: StandInServer,
    anth: anthropic.Anthropic,
    status: int,
    error: type[anthropic.APIStatusError],
    kind: str,
) -> None:
    server.push(Scenario(status=status))
    with pytest.raises(error) as caught:
        anth.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
    assert caught.value.status_code == status
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error" and body["error"]["type"] == kind
    assert caught.value.response.headers["request-id"].startswith("req_")


def test_529_is_an_internal_server_error(server: StandInServer, anth: anthropic.Anthropic) -> None:
    server.push(Scenario(status=529))
    with pytest.raises(anthropic.InternalServerError):
        anth.messages.create(model=CLAUDE, max_tokens=10, messages=USER)


def test_openai_retries_429_then_500(server: StandInServer) -> None:
    server.push(Scenario(status=429), Scenario(status=500))
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=2)
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert completion.choices[0].message.content
    assert len(server.requests) == 3
    assert [r.scenario.status if r.scenario else None for r in server.requests] == [429, 500, None]
    # The SDK marks its retries: same idempotency key, growing retry count.
    headers = [r.headers for r in server.requests]
    assert [h["x-stainless-retry-count"] for h in headers] == ["0", "1", "2"]


def test_anthropic_retries_overloaded(server: StandInServer) -> None:
    server.push(Scenario(status=529), Scenario(status=529))
    client = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="test", max_retries=2)
    message = client.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
    assert message.content
    assert len(server.requests) == 3


def test_retries_exhausted(server: StandInServer) -> None:
    server.push(*[Scenario(status=500)] * 3)
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=2)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert len(server.requests) == 3


def test_x_should_retry_false_stops_retries(server: StandInServer) -> None:
    server.push(Scenario(status=500, should_retry=False))
    client = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="test", max_retries=2)
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
    assert len(server.requests) == 1


def test_disconnect_is_a_connection_error(server: StandInServer, oai: openai.OpenAI, anth: anthropic.Anthropic) -> None:
    server.push(Scenario(disconnect=True), Scenario(disconnect=True))
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    with pytest.raises(anthropic.APIConnectionError):
        anth.messages.create(model=CLAUDE, max_tokens=10, messages=USER)


def test_disconnect_is_retried(server: StandInServer) -> None:
    server.push(Scenario(disconnect=True))
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=1)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=USER).choices
    assert len(server.requests) == 2


def test_delay_beyond_the_timeout(server: StandInServer, oai: openai.OpenAI, anth: anthropic.Anthropic) -> None:
    server.push(Scenario(delay_s=2.0), Scenario(delay_s=2.0))
    with pytest.raises(openai.APITimeoutError):
        oai.with_options(timeout=0.1).chat.completions.create(model="gpt-4o-mini", messages=USER)
    with pytest.raises(anthropic.APITimeoutError):
        anth.with_options(timeout=0.1).messages.create(model=CLAUDE, max_tokens=10, messages=USER)


def test_short_delay_still_answers(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(Scenario(delay_s=0.05, prompt_tokens=3))
    completion = oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert completion.usage and completion.usage.prompt_tokens == 3


def test_openai_chat_stream_error_after_chunks(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(Scenario(text="one two three four", stream_error_after=2))
    received: list[str] = []
    with pytest.raises(openai.APIError, match="server had an error"):
        for chunk in oai.chat.completions.create(
            model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True}
        ):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one two"


def test_openai_chat_stream_cut(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(Scenario(text="one two three", stream_error_after=1, stream_error_mode="disconnect"))
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one"


def test_responses_stream_error_event(server: StandInServer, oai: openai.OpenAI) -> None:
    server.push(Scenario(text="one two three", stream_error_after=1))
    events = list(oai.responses.create(model="gpt-4.1", input="hi", stream=True))
    assert events[-1].type == "error"
    assert "response.completed" not in [e.type for e in events]


def test_anthropic_stream_error_event(server: StandInServer, anth: anthropic.Anthropic) -> None:
    server.push(Scenario(text="one two three", stream_error_after=2))
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        for event in anth.messages.create(model=CLAUDE, max_tokens=10, messages=USER, stream=True):
            seen.append(event.type)
    assert seen == ["message_start", "content_block_start", "content_block_delta", "content_block_delta"]
    body = caught.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "overloaded_error"


def test_anthropic_stream_cut(server: StandInServer, anth: anthropic.Anthropic) -> None:
    server.push(Scenario(text="one two three", stream_error_after=0, stream_error_mode="disconnect"))
    with (
        pytest.raises((anthropic.APIConnectionError, httpx2.HTTPError)),
        anth.messages.stream(model=CLAUDE, max_tokens=10, messages=USER) as stream,
    ):
        stream.get_final_message()
