"""Which provider an `openai` client really talks to, from its base URL.

The `openai` SDK is used for many OpenAI-compatible APIs; labelling them all `openai` gives wrong labels and wrong
prices. Entries of `OTEL_AI_COST_PROVIDER_HOSTS` (`host[:port][/path-prefix]=provider`, comma-separated) come
first, for self-hosted gateways; then the providers' public hosts. Other hosts (a local server, an unlisted
gateway) are taken to be OpenAI.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from otel_ai_cost.contract import Env
from otel_ai_cost.pricing.aliases import parse_pairs

logger = logging.getLogger("otel_ai_cost")

DEFAULT_PROVIDER = "openai"

# host suffix -> gen_ai.provider.name (the semconv well-known values; `openrouter` has none)
_HOSTS: tuple[tuple[str, str], ...] = (
    ("api.openai.com", "openai"),
    (".openai.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.openai"),
    ("api.x.ai", "x_ai"),
    ("api.perplexity.ai", "perplexity"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("api.deepseek.com", "deepseek"),
    ("api.groq.com", "groq"),
    ("api.mistral.ai", "mistral_ai"),
    ("openrouter.ai", "openrouter"),
)


@dataclass(frozen=True)
class _Configured:
    host: str
    port: int | None
    path: str
    provider: str

    def matches(self, host: str, port: int | None, path: str) -> bool:
        return (
            host == self.host
            and (self.port is None or port == self.port)
            and (path == self.path or path.startswith(self.path.rstrip("/") + "/") or not self.path)
        )


class ProviderMap:
    """Base URL -> `gen_ai.provider.name`; built once per instrumentor, consulted once per client."""

    def __init__(self, configured: Mapping[str, str] | None = None) -> None:
        self._configured: list[_Configured] = []
        for key, provider in (configured or {}).items():
            entry = _parse_key(key, provider)
            if entry is not None:
                self._configured.append(entry)
        # Longest path prefix first, so /xai wins over / on the same gateway host.
        self._configured.sort(key=lambda e: len(e.path), reverse=True)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ProviderMap:
        return cls(parse_pairs(environ.get(Env.PROVIDER_HOSTS), variable=Env.PROVIDER_HOSTS))

    def provider_for(self, host: str, port: int | None = None, path: str = "") -> str:
        host = host.lower()
        for entry in self._configured:
            if entry.matches(host, port, path):
                return entry.provider
        for suffix, provider in _HOSTS:
            if host == suffix.lstrip(".") or host.endswith(suffix):
                return provider
        return DEFAULT_PROVIDER


def _parse_key(key: str, provider: str) -> _Configured | None:
    hostport, slash, path = key.partition("/")
    host, colon, port_text = hostport.partition(":")
    port: int | None = None
    if colon:
        if not port_text.isdigit():
            logger.warning("%s: ignoring %r: the port must be a number", Env.PROVIDER_HOSTS, key)
            return None
        port = int(port_text)
    if not host:
        logger.warning("%s: ignoring %r: no host", Env.PROVIDER_HOSTS, key)
        return None
    return _Configured(host.lower(), port, f"/{path}".rstrip("/") if slash else "", provider)
