"""google-genai calls carry the fingerprint of the client's API key (`ai_cost.api_key.fingerprint`), never the key."""

from __future__ import annotations

import hashlib
import hmac

from google import genai
from google.genai import types

from otel_ai_cost.contract import KEY_FINGERPRINT_DEFAULT_SECRET

KEY = "AIzaSyD-gemini-test-key-Qw7Er"


def test_a_gemini_call_carries_its_keys_fingerprint(gemini, instrumented, telemetry):
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=gemini.base_url))
    client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    attributes = telemetry.span().attributes
    expected = hmac.new(KEY_FINGERPRINT_DEFAULT_SECRET.encode(), KEY.encode(), hashlib.sha256).hexdigest()[:8]
    assert attributes["ai_cost.api_key.fingerprint"] == expected
    assert not [v for v in attributes.values() if "Qw7Er" in str(v) or KEY[:10] in str(v)]
