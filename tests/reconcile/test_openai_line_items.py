"""OpenAI Costs API line items read into model, token class and tier; anything else kept as `other`."""

from __future__ import annotations

import pytest

from otel_ai_cost.reconcile.billed import OTHER
from otel_ai_cost.reconcile.openai_line_items import ParsedLineItem, parse_line_item

# (line item, model, token class, tier, long context)
UNDERSTOOD = [
    ("gpt-4.1-2025-04-14, input", "gpt-4.1-2025-04-14", "input", "", False),
    ("gpt-4.1-2025-04-14, cached input", "gpt-4.1-2025-04-14", "cache_read", "", False),
    ("gpt-4.1-2025-04-14, output", "gpt-4.1-2025-04-14", "output", "", False),
    ("gpt-5.5-2026-04-23, cache writes", "gpt-5.5-2026-04-23", "cache_write_5m", "", False),
    ("gpt-4o-mini-2024-07-18, cached input", "gpt-4o-mini-2024-07-18", "cache_read", "", False),
    ("gpt-6.2-astra, input_tokens", "gpt-6.2-astra", "input", "", False),  # the SDK docstring's newer spelling
    ("gpt-5-mini, output_tokens", "gpt-5-mini", "output", "", False),
    ("gpt-audio-mini-2025-12-15 audio, input", "gpt-audio-mini-2025-12-15", "input_audio", "", False),
    ("gpt-4o-mini-tts audio, output", "gpt-4o-mini-tts", "output_audio", "", False),
    ("gpt-image-2.5-flare image, output", "gpt-image-2.5-flare", "output_image", "", False),
    ("gpt-image-2.5-flare image, input", "gpt-image-2.5-flare", "input_image", "", False),
    ("gpt-image-2.5-sunburst text, cached input", "gpt-image-2.5-sunburst", "cache_read", "", False),
    ("priority | gpt-4.1, output, long context", "gpt-4.1", "output", "priority", True),
    ("priority | gpt-5.6-sol, cached input", "gpt-5.6-sol", "cache_read", "priority", False),
    ("gpt-5.4-2026-03-05, input, long context", "gpt-5.4-2026-03-05", "input", "", True),
    ("batch | gpt-4o-mini-2024-07-18, input", "gpt-4o-mini-2024-07-18", "input", "batch", False),
    ("flex | o3-2025-04-16, output", "o3-2025-04-16", "output", "flex", False),
    ("Priority | gpt-4.1, input", "gpt-4.1", "input", "priority", False),
    ("default | gpt-4.1, input", "gpt-4.1", "input", "", False),
    ("ft-gpt-4o-mini-2024-07-18, input", "ft-gpt-4o-mini-2024-07-18", "input", "", False),
    ("ft:gpt-4o-mini-2024-07-18:acme::abc123, output", "ft:gpt-4o-mini-2024-07-18:acme::abc123", "output", "", False),
    ("whisper-1, audio", "whisper-1", "input_audio", "", False),
    ("text-embedding-3-small, input", "text-embedding-3-small", "input", "", False),
    ("  gpt-4.1 ,   Cached   Input  ", "gpt-4.1", "cache_read", "", False),
    ("web search tool calls", "", "web_search", "", False),
    ("Web Search Tool Calls", "", "web_search", "", False),
    ("file search tool calls", "", "file_search", "", False),
    ("Vector storage", "", "vector_storage", "", False),
    ("code interpreter sessions", "", "code_interpreter", "", False),
]


@pytest.mark.parametrize(("text", "model", "token_class", "tier", "long_context"), UNDERSTOOD)
def test_line_items_are_read(text: str, model: str, token_class: str, tier: str, long_context: bool) -> None:
    assert parse_line_item(text) == ParsedLineItem(text, model, token_class, tier, long_context, parsed=True)


NOT_UNDERSTOOD = [
    "",
    "   ",
    ",",
    ", input",
    "gpt-4.1",  # a model with no class: not a known non-model line either
    "gpt-4.1, training",
    "gpt-4.1, input, long context, long context",
    "gpt-4.1, input, short context",
    "gpt-4.1 video, input",  # a modality we do not know
    "gpt 4 1 turbo, input",  # spaces where a model id has none
    "whisper-1 audio, audio",
    "turbo | gpt-4.1, input",  # a tier we do not know
    "priority | batch | gpt-4.1, input",
    "Image models",
    "dall-e-3, 1024x1024 hd",
    "\x00\ufffd, \u202e",
    "a" * 10_000,
    ",,,,,,",
    "| |",
]


@pytest.mark.parametrize("text", NOT_UNDERSTOOD)
def test_other_text_is_kept_as_other(text: str) -> None:
    result = parse_line_item(text)
    assert result == ParsedLineItem(text, "", OTHER, "", False, parsed=False)
    assert result.text == text  # kept verbatim, to be reported


@pytest.mark.parametrize("value", [None, 42, b"gpt-4.1, input", ["gpt-4.1, input"]])
def test_values_that_are_not_text_do_not_raise(value: object) -> None:
    result = parse_line_item(value)
    assert result.parsed is False
    assert result.token_class == OTHER
