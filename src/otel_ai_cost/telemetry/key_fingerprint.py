"""`ai_cost.api_key.fingerprint`: which API key paid for a call, without the key.

The fingerprint is the first 8 hex digits of HMAC-SHA256(secret, key): never the key, never a prefix of it, and
the same in every process that uses the same secret (`OTEL_AI_COST_KEY_FINGERPRINT_SECRET`, else the project-wide
`contract.KEY_FINGERPRINT_DEFAULT_SECRET`), so the ledger can tell that one key was used from two environments.
Each key is hashed once: the fingerprints are kept per key string, a few of them (a process uses a handful of keys).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

from otel_ai_cost.contract import KEY_FINGERPRINT_DEFAULT_SECRET, KEY_FINGERPRINT_HEX_DIGITS, Env

__all__ = ["KeyFingerprints", "fingerprint"]

_MAX_KEYS = 64  # keys remembered per recorder; a process beyond that still gets fingerprints, hashed per call
# What an SDK puts in `api_key` when there is no key (openai's workload identity: `WORKLOAD_IDENTITY_API_KEY_
# PLACEHOLDER` in openai/_client.py): not a key, so no fingerprint.
_NOT_KEYS = frozenset({"workload-identity-auth"})


def _secret(environ: Mapping[str, str]) -> bytes:
    return (environ.get(Env.KEY_FINGERPRINT_SECRET) or KEY_FINGERPRINT_DEFAULT_SECRET).encode()


def fingerprint(key: str, environ: Mapping[str, str] | None = None) -> str:
    """The fingerprint of one key (for `otel-ai-cost` commands and tests: the recorder keeps its own cache)."""
    secret = _secret(os.environ if environ is None else environ)
    digest = hmac.new(secret, key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return digest[:KEY_FINGERPRINT_HEX_DIGITS]


class KeyFingerprints:
    """The fingerprints of the keys one recorder has seen, computed once per key string."""

    __slots__ = ("_known", "_secret")

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._secret = _secret(os.environ if environ is None else environ)
        self._known: dict[str, str] = dict.fromkeys(_NOT_KEYS, "")

    def of_client(self, client: object) -> str | None:
        """The fingerprint of the SDK client's `api_key` (openai, anthropic and OpenAI-compatible clients); None
        when it has none (a workload identity, an Anthropic OAuth token, a Bedrock or Vertex client)."""
        key = getattr(client, "api_key", None)
        if key.__class__ is not str or not key:
            return None
        value = self._known.get(key)
        if value is not None:
            return value or None  # "": a placeholder, not a key
        value = hmac.new(self._secret, key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        value = value[:KEY_FINGERPRINT_HEX_DIGITS]
        if len(self._known) < _MAX_KEYS + len(_NOT_KEYS):
            self._known[key] = value
        return value
