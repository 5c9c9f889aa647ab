"""OpenAI Costs API `line_item` text, read into model, token class and tier.

The Costs API names what it bills in one free-text string per result. Observed shapes::

    gpt-4.1-2025-04-14, input                    model, token class
    gpt-4.1-2025-04-14, cached input             cache reads
    gpt-5.5-2026-04-23, cache writes             cache writes (newer models)
    gpt-4o-mini-tts audio, output                a modality word after the model: audio, image, text
    priority | gpt-4.1, output, long context     a tier before `|`; `long context` after the class
    batch | gpt-4o-mini, input                   batch and flex likewise
    ft-gpt-4o-mini-2024-07-18, input             fine-tuned model inference (the model kept as billed)
    whisper-1, audio                             seconds of audio transcribed
    web search tool calls                        a fee of no model
    Vector storage                               not a model's line at all

`parse_line_item` never raises: text it does not understand comes back with `token_class` `billed.OTHER` and
`parsed=False`, so the line stays on the bill (its money counted, reported as unparsed) instead of being dropped
or guessed at. The function is pure: no I/O, no state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from otel_ai_cost.reconcile.billed import OTHER

__all__ = ["ParsedLineItem", "parse_line_item"]


@dataclass(frozen=True, slots=True)
class ParsedLineItem:
    """What a line item says. `model` is "" for a line of no model and for text not understood."""

    text: str  # the line item as billed
    model: str = ""
    token_class: str = OTHER  # a `contract.TokenType` value, a fee or non-model class, or OTHER
    tier: str = ""  # batch, flex, priority; "" for standard (the line names no tier)
    long_context: bool = False  # billed at the model's long-context rates (`, long context`)
    parsed: bool = False


# Tier words before `|`. Standard, default and scale (prepaid capacity, billed at standard rates) name no tier.
_TIERS: dict[str, str] = {
    "batch": "batch",
    "flex": "flex",
    "priority": "priority",
    "standard": "",
    "default": "",
    "scale": "",
}

# The class words after the model's comma, normalised (lower case, `_` as a space, single spaces).
_CLASSES: dict[str, str] = {
    "input": "input",
    "input tokens": "input",
    "uncached input": "input",
    "cached input": "cache_read",
    "cached input tokens": "cache_read",
    "cache read": "cache_read",
    "cache reads": "cache_read",
    # OpenAI's cache writes (newer models; 30-minute and 12-hour retentions) have one price in the price data,
    # which our instrumentation records in the `cache_write_5m` class (see
    # `instrumentation/openai/response_extractors.py`): the bill's line goes to that class, so the two meet.
    "cache writes": "cache_write_5m",
    "cache write": "cache_write_5m",
    "cache write tokens": "cache_write_5m",
    "output": "output",
    "output tokens": "output",
}

# A modality word between the model and its comma moves the class to that modality's own rate.
_MODALITIES: dict[str, dict[str, str]] = {
    "text": {},
    "audio": {"input": "input_audio", "output": "output_audio"},
    "image": {"input": "input_image", "output": "output_image"},
}

# Classes a model line may have with no input/output word: `whisper-1, audio` bills seconds of audio heard,
# which our instrumentation prices as input audio by duration.
_MODEL_ONLY_CLASSES: dict[str, str] = {"audio": "input_audio"}

# Lines of no model: fees and storage the bill lists on their own.
_NON_MODEL: dict[str, str] = {
    "web search tool calls": "web_search",
    "web search calls": "web_search",
    "file search tool calls": "file_search",
    "file search calls": "file_search",
    "code interpreter sessions": "code_interpreter",
    "vector storage": "vector_storage",
}

_QUALIFIERS = frozenset({"long context"})
# A model id as OpenAI writes it: no spaces; `ft:` ids carry colons, organisation-scoped ones a slash.
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+-]*")
_SPACES = re.compile(r"\s+")


def parse_line_item(text: object) -> ParsedLineItem:
    """What one `line_item` bills. Never raises; anything not understood is `OTHER`, `parsed=False`."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    try:
        return _parse(text)
    except Exception:  # pure string handling cannot fail; if it ever does, the line is kept, not lost
        return ParsedLineItem(text)


def _parse(text: str) -> ParsedLineItem:
    unparsed = ParsedLineItem(text)
    rest = text.strip()
    tier = ""
    if "|" in rest:
        head, _, rest = rest.partition("|")
        found = _TIERS.get(_normal(head))
        if found is None or "|" in rest:
            return unparsed
        tier = found
    parts = [_normal(part) for part in rest.split(",")]
    if len(parts) == 1:
        token_class = _NON_MODEL.get(parts[0])
        if token_class is None:
            return unparsed
        return ParsedLineItem(text, "", token_class, tier, False, True)
    # Keep the model's own spelling: only the words after it are normalised.
    subject = rest.split(",", 1)[0].split()
    if not subject or len(subject) > 2 or not _MODEL.fullmatch(subject[0]):
        return unparsed
    model = subject[0]
    modality = subject[1].lower() if len(subject) == 2 else None
    qualifiers = parts[2:]
    if any(q not in _QUALIFIERS for q in qualifiers) or len(set(qualifiers)) != len(qualifiers):
        return unparsed
    long_context = "long context" in qualifiers
    word = parts[1]
    if modality is None and word in _MODEL_ONLY_CLASSES:
        return ParsedLineItem(text, model, _MODEL_ONLY_CLASSES[word], tier, long_context, True)
    token_class = _CLASSES.get(word)
    if token_class is None:
        return unparsed
    if modality is not None:
        moved = _MODALITIES.get(modality)
        if moved is None:
            return unparsed
        token_class = moved.get(token_class, token_class)
    return ParsedLineItem(text, model, token_class, tier, long_context, True)


def _normal(words: str) -> str:
    return _SPACES.sub(" ", words.replace("_", " ")).strip().lower()
