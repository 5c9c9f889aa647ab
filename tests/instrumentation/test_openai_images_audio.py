"""Images and audio through the real `openai` client: image and audio tokens priced at their own rates.

Prices used (USD per million tokens, genai-prices' data):
  gpt-image-1:       text input 5, image input 10, output (the image) 40
  gpt-image-1.5:     text input 5, image input 8, text output 10, image output 32
  gpt-4o-transcribe: text input 2.5, audio input 6, output 10
  gpt-audio:         text input 2.5, audio input 32, text output 10, audio output 64
  whisper-1:         0.006 per minute of audio (genai-prices: 0.36 an hour)
"""

from __future__ import annotations

import io
from decimal import Decimal

import openai
import pytest

from otel_ai_cost.stand_in import Scenario


@pytest.fixture
def client(stand_in, telemetry):
    return openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0)


def test_generated_image_is_priced_at_the_image_output_rate(client, stand_in, telemetry):
    stand_in.push(Scenario(prompt_tokens=50, completion_tokens=4160))
    result = client.images.generate(model="gpt-image-1", prompt="a receipt", size="1024x1536")

    assert len(result.data) == 1
    span = telemetry.span()
    a = span.attributes
    assert span.name == "generate_content gpt-image-1"
    assert a["gen_ai.operation.name"] == "generate_content"
    assert a["ai_cost.usage.image.output_tokens"] == 4160
    # 50 * 5 + 4160 * 40 = 250 + 166400 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.16665")
    tokens = {p.attributes["gen_ai.token.type"]: p.value for p in telemetry.points("ai_cost.tokens")}
    assert tokens == {"input": 50, "output_image": 4160}


def test_input_images_and_text_output_each_take_their_rate(client, stand_in, telemetry):
    details = {
        "input_tokens": 373,
        "input_tokens_details": {"text_tokens": 50, "image_tokens": 323},
        "output_tokens": 1010,
        "output_tokens_details": {"text_tokens": 10, "image_tokens": 1000},
        "total_tokens": 1383,
    }
    stand_in.push(Scenario(prompt_tokens=373, completion_tokens=1010, usage_extra=details))
    client.images.generate(model="gpt-image-1.5", prompt="the same receipt, cleaner")

    a = telemetry.span().attributes
    assert a["ai_cost.usage.image.input_tokens"] == 323
    # 50 * 5 + 323 * 8 + 10 * 10 + 1000 * 32 = 250 + 2584 + 100 + 32000 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.034934")


def test_dall_e_reports_no_usage_and_is_never_a_silent_zero(client, stand_in, telemetry):
    client.images.generate(model="dall-e-3", prompt="a receipt")

    a = telemetry.span().attributes
    assert a["ai_cost.pricing.status"] == "no_usage"
    assert "ai_cost.amount" not in a


def test_token_billed_transcription_prices_audio_input(client, stand_in, telemetry):
    stand_in.push(Scenario(prompt_tokens=1200, completion_tokens=30, text="Two coffees."))
    result = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("memo.wav", io.BytesIO(b"RIFF")))

    assert result.text == "Two coffees."
    span = telemetry.span()
    a = span.attributes
    assert span.name == "transcription gpt-4o-transcribe"
    assert a["ai_cost.usage.audio.input_tokens"] == 1200
    # 1200 * 6 + 30 * 10 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.0075")


def test_duration_billed_whisper_is_priced_per_minute_of_audio(client, stand_in, telemetry):
    stand_in.push(Scenario(usage_extra={"type": "duration", "seconds": 90.5}))
    client.audio.transcriptions.create(model="whisper-1", file=("memo.wav", io.BytesIO(b"RIFF")))

    a = telemetry.span().attributes
    assert a["gen_ai.request.model"] == "whisper-1"
    assert a["ai_cost.usage.audio.input_seconds"] == 90.5
    assert a["ai_cost.pricing.status"] == "priced"
    # $0.006 a minute: 90.5 / 60 * 0.006
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.00905")
    [spend] = telemetry.points("ai_cost.spend")
    assert spend.value == pytest.approx(0.00905)
    assert telemetry.points("ai_cost.tokens") == []  # seconds are not tokens


def test_audio_seconds_on_a_model_without_a_duration_price_are_unpriced(client, stand_in, telemetry):
    stand_in.push(Scenario(usage_extra={"type": "duration", "seconds": 12}))
    client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=("memo.wav", io.BytesIO(b"RIFF")))

    a = telemetry.span().attributes
    assert a["ai_cost.usage.audio.input_seconds"] == 12
    assert a["ai_cost.pricing.status"] == "unpriced"
    assert "ai_cost.amount" not in a


def test_a_text_format_transcription_has_no_usage(client, stand_in, telemetry):
    client.audio.transcriptions.create(
        model="whisper-1", file=("memo.wav", io.BytesIO(b"RIFF")), response_format="text"
    )

    a = telemetry.span().attributes
    assert a["ai_cost.pricing.status"] == "no_usage"


def test_spoken_chat_answers_price_audio_tokens_apart(client, stand_in, telemetry):
    details = {
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 80},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 150},
    }
    stand_in.push(Scenario(prompt_tokens=100, completion_tokens=200, usage_extra=details))
    client.chat.completions.create(model="gpt-audio", messages=[{"role": "user", "content": "Read it out"}])

    a = telemetry.span().attributes
    assert (a["ai_cost.usage.audio.input_tokens"], a["ai_cost.usage.audio.output_tokens"]) == (80, 150)
    # 20 * 2.5 + 80 * 32 + 50 * 10 + 150 * 64 = 50 + 2560 + 500 + 9600 per 1M
    assert Decimal(a["ai_cost.amount"]) == Decimal("0.01271")


def test_audio_tokens_on_a_model_without_audio_rates_are_unpriced_not_billed_as_text(client, stand_in, telemetry):
    details = {"prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 80}}
    stand_in.push(Scenario(prompt_tokens=100, completion_tokens=20, usage_extra=details))
    client.chat.completions.create(model="gpt-4o-audio-preview", messages=[{"role": "user", "content": "Hi"}])

    a = telemetry.span().attributes
    assert a["ai_cost.pricing.status"] == "unpriced"
    assert "ai_cost.amount" not in a
