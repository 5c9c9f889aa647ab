"""What a call consumed, in the shape the semantic conventions use, and the pricing classes derived from it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Usage:
    """Token and request usage of one call, as the provider reported it.

    Totals follow the GenAI semantic conventions: `input_tokens` includes cache reads and cache writes,
    `output_tokens` includes reasoning tokens. The pricing classes (`uncached_input_tokens`,
    `plain_output_tokens`, ...) are derived, so nothing is counted twice. Image and audio tokens are likewise
    parts of the totals, priced at their own rates where a model has them.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_5m_input_tokens: int = 0
    cache_write_1h_input_tokens: int = 0
    reasoning_output_tokens: int = 0
    image_input_tokens: int = 0
    audio_input_tokens: int = 0
    image_output_tokens: int = 0
    audio_output_tokens: int = 0
    web_search_requests: int = 0
    # Seconds of input audio billed by duration (whisper-1 transcription); a decimal, as the provider reports it.
    input_audio_seconds: Decimal | int = 0
    requests: int = 1  # billable requests: one per call, N for `track_request(count=N)`

    @property
    def cache_creation_input_tokens(self) -> int:
        return self.cache_write_5m_input_tokens + self.cache_write_1h_input_tokens

    @property
    def uncached_input_tokens(self) -> int:
        """Input billed at the plain input rate."""
        return max(
            0,
            self.input_tokens
            - self.cache_read_input_tokens
            - self.cache_creation_input_tokens
            - self.image_input_tokens
            - self.audio_input_tokens,
        )

    @property
    def plain_output_tokens(self) -> int:
        """Output other than reasoning, images and audio."""
        return max(
            0, self.output_tokens - self.reasoning_output_tokens - self.image_output_tokens - self.audio_output_tokens
        )
