"""A local stand-in for the OpenAI and Anthropic HTTP APIs, driven by the real SDK clients.

`StandInServer` answers `POST /v1/chat/completions`, `/v1/responses`, `/v1/embeddings`, `/v1/messages`
(also `?beta=true`) and `/v1/messages/count_tokens` with the providers' own JSON and SSE shapes; tests script
the next answers with `server.push(Scenario(...))` and inspect `server.requests`.
"""

from __future__ import annotations

from .scenario import (
    ANTHROPIC_USAGE_FIELDS,
    OPENAI_USAGE_FIELDS,
    Answer,
    RecordedRequest,
    Scenario,
    SSEEvent,
)
from .server import ROUTES, StandInServer, serve

__all__ = [
    "ANTHROPIC_USAGE_FIELDS",
    "OPENAI_USAGE_FIELDS",
    "ROUTES",
    "Answer",
    "RecordedRequest",
    "SSEEvent",
    "Scenario",
    "StandInServer",
    "serve",
]
