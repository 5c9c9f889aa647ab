"""`otel-ai-cost prices show | cost | check` through click's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pricing_helpers import SHIPPED_VERSION

from otel_ai_cost.cli.prices import prices
from otel_ai_cost.contract import Env


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_show_rates_source_window_and_version(runner: CliRunner) -> None:
    result = runner.invoke(prices, ["show", "claude-sonnet-4-20250514", "--at", "2026-01-01"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "anthropic claude-sonnet-4-20250514"  # provider inferred from "claude"
    assert "  matched:   claude-sonnet-4-0" in lines
    assert "  source:    catalog" in lines  # the long-context tier comes from our catalog
    assert "  in force:  2025-08-12T00:00:00+00:00 -> (until further notice)" in lines
    assert f"  version:   {SHIPPED_VERSION}" in lines
    assert "    input                      3" in lines
    assert "    cache_write_1h             6" in lines
    assert "    web_search                10" in lines  # per 1K calls
    assert "  long context, whole request when input > 200,000 tokens (USD per 1M):" in lines
    assert "    output                  22.5" in lines


def test_show_tier_and_date(runner: CliRunner) -> None:
    result = runner.invoke(prices, ["show", "o3", "--at", "2025-06-01", "--tier", "priority"])
    assert result.exit_code == 0, result.output
    assert "  tier:      priority" in result.output
    assert "    input                    3.5" in result.output
    before_cut = runner.invoke(prices, ["show", "o3", "--at", "2025-06-01"])
    assert "    input                     10" in before_cut.output
    assert "  in force:  2025-04-16T00:00:00+00:00" not in before_cut.output  # flex rule date: not a standard input


def test_show_unknown_model_exits_1(runner: CliRunner) -> None:
    result = runner.invoke(prices, ["show", "gpt-9-ultra"])
    assert result.exit_code == 1
    assert "unknown model 'gpt-9-ultra' for provider 'openai'" in result.output


def test_show_needs_a_provider_it_cannot_infer(runner: CliRunner) -> None:
    result = runner.invoke(prices, ["show", "llama-3.3-70b"])
    assert result.exit_code != 0
    assert "pass --provider" in result.output
    explicit = runner.invoke(prices, ["show", "llama-3.3-70b-versatile", "--provider", "groq"])
    assert explicit.exit_code == 0, explicit.output


def test_cost_text(runner: CliRunner) -> None:
    # o3 after the cut ($2 in, $8 out): 1,000 x 2/1e6 = 0.002; plain output 500 x 8/1e6 = 0.004;
    # reasoning 1,500 x 8/1e6 = 0.012
    args = ["cost", "--model", "o3", "--input", "1000", "--output", "2000", "--reasoning", "1500"]
    result = runner.invoke(prices, [*args, "--at", "2025-07-01"])
    assert result.exit_code == 0, result.output
    assert "  input                          0.002 USD" in result.output
    assert "  output                         0.004 USD" in result.output
    assert "  reasoning                      0.012 USD" in result.output
    assert "  total                          0.018 USD" in result.output


def test_cost_and_show_of_a_duration_priced_model(runner: CliRunner) -> None:
    # whisper-1: $0.006 a minute; 90.5 s = 0.00905
    result = runner.invoke(prices, ["cost", "--model", "whisper-1", "--audio-seconds", "90.5"])
    assert result.exit_code == 0, result.output
    assert "  input_audio_seconds          0.00905 USD" in result.output
    shown = runner.invoke(prices, ["show", "whisper-1"])
    assert "  USD per minute of audio:\n    input_audio            0.006\n" in shown.output


def test_cost_json_with_cache_and_tier(runner: CliRunner) -> None:
    # claude-sonnet-4-5 batch (0.5x): 10,000 x 1.5 + 20,000 x 0.15 + 15,000 x 1.875 + 5,000 x 3 + 2,000 x 7.5,
    # all /1e6 = 0.015 + 0.003 + 0.028125 + 0.015 + 0.015 = 0.076125; + 1 web search at $10/1K = 0.086125
    args = [
        "cost", "--model", "claude-sonnet-4-5", "--input", "50000", "--output", "2000",
        "--cache-read", "20000", "--cache-write-5m", "15000", "--cache-write-1h", "5000",
        "--web-search", "1", "--tier", "batch", "--at", "2026-11-01", "--json",
    ]  # fmt: skip
    result = runner.invoke(prices, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["amount"] == "0.086125"
    assert data["tier"] == "batch"
    assert data["provider"] == "anthropic"
    assert data["components"] == {
        "input": "0.015",
        "cache_read": "0.003",
        "cache_write_5m": "0.028125",
        "cache_write_1h": "0.015",
        "output": "0.015",
        "web_search": "0.01",
    }
    assert data["version"] == SHIPPED_VERSION


def test_cost_rejects_cache_counts_outside_the_input_total(runner: CliRunner) -> None:
    result = runner.invoke(prices, ["cost", "-m", "gpt-4o", "--input", "10", "--output", "1", "--cache-read", "20"])
    assert result.exit_code == 2
    assert "--input is the total including cache reads and writes" in result.output


def test_cost_unknown_model_exits_1(runner: CliRunner) -> None:
    result = runner.invoke(prices, ["cost", "-m", "gpt-9-ultra", "--input", "10", "--output", "1"])
    assert result.exit_code == 1
    assert "cannot price openai model 'gpt-9-ultra'" in result.output


def test_cost_and_show_use_the_env_override_file(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text('discounts:\n  - {provider: openai, model: "gpt-4o-mini", percent: 50}\n')
    monkeypatch.setenv(Env.PRICES_FILE, str(path))
    # gpt-4o-mini: 1,000,000 x 0.15/1e6 = 0.15 -> 50% off = 0.075
    result = runner.invoke(prices, ["cost", "-m", "gpt-4o-mini", "--input", "1000000", "--output", "0", "--json"])
    assert json.loads(result.output)["amount"] == "0.075"
    assert "  discount:  50% off the total" in runner.invoke(prices, ["show", "gpt-4o-mini"]).output
    path.write_text("discounts:\n  - {provider: openai, percent: lots}\n")
    broken = runner.invoke(prices, ["show", "gpt-4o-mini"])
    assert broken.exit_code == 1
    assert f"{path}:2: discounts[0].percent" in broken.output


def test_check_ok(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("prices.yaml").write_text(
        "models:\n"
        "  - {provider: openai, model: gpt-4o, prices: {input: 2}}\n"
        "  - {provider: acme, model: acme-1, prices: {input: 1, output: 1}}\n"
        "discounts:\n"
        "  - {provider: openai, percent: 5}\n"
    )
    result = runner.invoke(prices, ["check", "prices.yaml"])
    assert result.exit_code == 0, result.output
    assert result.output == "prices.yaml: ok (2 models, 1 discounts)\n"


def test_check_reports_file_line_and_key(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("prices.yaml").write_text(
        "models:\n"
        "  - {provider: openai, model: a, prices: {input: 1}}\n"
        "  - {provider: openai, model: b, prices: {input: 1}}\n"
        "  - provider: openai\n"
        "    model: c\n"
        "    prices:\n"
        "      input: cheap\n"
    )
    result = runner.invoke(prices, ["check", "prices.yaml"])
    assert result.exit_code == 1
    assert result.stderr == "prices.yaml:7: models[2].prices.input: expected a non-negative number, got 'cheap'\n"


def test_check_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(prices, ["check", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 1
    assert "absent.yaml:0: (file): cannot read" in result.output
