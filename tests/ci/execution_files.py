"""Shared pieces of the CI tests (imported by name: pytest puts this directory on sys.path).

A Claude Code execution file shaped as `anthropics/claude-code-action` writes it: `JSON.stringify(messages, null,
2)` of the Agent SDK's messages (base-action/src/execution-file.ts and run-claude-sdk.ts), the result message as in
base-action/test/run-claude-sdk.test.ts. And the GitHub Actions variables of a pull-request run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SESSION = "3f1c2a9e-5b7d-4e0a-9c41-2d8f6b0e7a13"
SONNET, HAIKU = "claude-sonnet-4-5-20250929", "claude-3-5-haiku-20241022"
SECRET_TEXT = "PROMPT-CONTENT-THAT-MUST-NEVER-BE-STORED"


def result_message(**overrides: Any) -> dict[str, Any]:
    """A result message of a two-model review (the main model and Claude Code's small helper model). JS numbers
    as `JSON.stringify` writes them: the costs are the shortest round-trip text of a double."""
    message: dict[str, Any] = {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "duration_ms": 48213,
        "duration_api_ms": 41022,
        "num_turns": 7,
        "result": f"Reviewed the change. {SECRET_TEXT}",
        "stop_reason": "end_turn",
        "session_id": SESSION,
        "total_cost_usd": 0.1612947,
        "usage": {
            "input_tokens": 1244,
            "cache_creation_input_tokens": 18034,
            "cache_read_input_tokens": 120544,
            "output_tokens": 2630,
            "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
            "service_tier": "standard",
            "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 18034},
        },
        "modelUsage": {
            SONNET: {
                "inputTokens": 41,
                "outputTokens": 2411,
                "cacheReadInputTokens": 120544,
                "cacheCreationInputTokens": 18034,
                "webSearchRequests": 0,
                "costUSD": 0.1592122,
                "contextWindow": 200000,
                "maxOutputTokens": 64000,
            },
            HAIKU: {
                "inputTokens": 1203,
                "outputTokens": 219,
                "cacheReadInputTokens": 0,
                "cacheCreationInputTokens": 0,
                "webSearchRequests": 0,
                "costUSD": 0.0020825,
                "contextWindow": 200000,
                "maxOutputTokens": 8192,
            },
        },
        "permission_denials": [],
        "uuid": "7b0e1c55-0a43-4b4e-a2b8-2d3c95f1e2aa",
    }
    message.update(overrides)
    return message


def messages(result: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The whole conversation: init, an assistant turn with a tool call, its result, and the result message."""
    out: list[dict[str, Any]] = [
        {"type": "system", "subtype": "init", "cwd": "/home/runner/work/app/app", "session_id": SESSION,
         "tools": ["Task", "Bash", "Read", "mcp__github_inline_comment__create_inline_comment"],
         "mcp_servers": [{"name": "github_inline_comment", "status": "connected"}], "model": SONNET,
         "permissionMode": "default", "apiKeySource": "ANTHROPIC_API_KEY",
         "uuid": "0c7e9d1a-1111-4c2b-9a55-6b1d2e3f4a5b"},
        {"type": "assistant", "message": {"id": "msg_01", "type": "message", "role": "assistant", "model": SONNET,
         "content": [{"type": "text", "text": SECRET_TEXT},
                     {"type": "tool_use", "id": "toolu_01", "name": "Read", "input": {"file_path": "src/app.py"}}],
         "stop_reason": "tool_use", "usage": {"input_tokens": 4, "cache_creation_input_tokens": 18034,
                                             "cache_read_input_tokens": 0, "output_tokens": 1}},
         "parent_tool_use_id": None, "session_id": SESSION},
        {"type": "user", "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01",
         "content": f"API_KEY = 'sk-live-{SECRET_TEXT}'"}]}, "parent_tool_use_id": None, "session_id": SESSION},
    ]  # fmt: skip
    if result is not None:
        out.append(result)
    return out


def write_execution_file(path: Path, result: dict[str, Any] | None = None, *, lines: bool = False) -> Path:
    """The action's file (an indented JSON array); `lines=True`: stream-json as printed, one message a line."""
    data = messages(result_message() if result is None else result)
    if lines:
        path.write_text("".join(json.dumps(m) + "\n" for m in data), encoding="utf-8")
    else:
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def github_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The variables GitHub sets for a `pull_request` run of a review workflow (no token: we never read one)."""
    env = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/receipts",
        "GITHUB_RUN_ID": "9876543210",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_WORKFLOW": "Claude Review",
        "GITHUB_JOB": "review",
        "GITHUB_SHA": "4c0ffee4c0ffee4c0ffee4c0ffee4c0ffee4c0ff",
        "GITHUB_REF": "refs/pull/42/merge",
        "GITHUB_HEAD_REF": "feature/receipt-ocr",
        "GITHUB_EVENT_NAME": "pull_request",
        "RUNNER_TEMP": str(tmp_path),
    }
    env.update(overrides)
    return env
