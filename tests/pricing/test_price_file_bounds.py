"""Price files at their edges: every number bounded and in plain notation, and every problem of a file reported
in one run of `prices check`, each with its file, line and key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from otel_ai_cost.cli import main
from otel_ai_cost.pricing.price_file import PriceFileError, load_price_file

WriteFile = Callable[..., Path]


@pytest.mark.parametrize(
    ("entry", "key", "problem"),
    [
        ("prices: {input: 1e400}", "prices.input", "must be at most 1,000,000, got '1e400'"),
        ("prices: {output: 1e7}", "prices.output", "must be at most 1,000,000, got '1e7'"),
        ('prices: {input: "1_000"}', "prices.input", "must be a number without underscores, got '1_000'"),
        ("prices: {input: .inf}", "prices.input", "expected a non-negative number, got '.inf'"),
        ("prices: {input: 1e-400}", "prices.input", "must have at most 18 decimal places, got '1e-400'"),
        ("requests: {web_search: 1e400}", "requests.web_search", "must be at most 1,000,000"),
        ("per_minute: {input_audio: 1e400}", "per_minute.input_audio", "must be at most 1,000,000"),
        ('long_context: {threshold: "1_000", prices: {input: 1}}', "long_context.threshold", "got '1_000'"),
        ("long_context: {threshold: 1e400, prices: {input: 1}}", "long_context.threshold", "got '1e400'"),
        ("long_context: {threshold: 9999999999999, prices: {input: 1}}", "long_context.threshold", "at most"),
        ("long_context: {threshold: 200000, prices: {input: 1e400}}", "long_context.prices.input", "at most"),
    ],
)
def test_every_model_number_is_bounded(price_file: WriteFile, entry: str, key: str, problem: str) -> None:
    path = price_file(f"models:\n  - {{provider: openai, model: m, {entry}}}\n")
    with pytest.raises(PriceFileError) as raised:
        load_price_file(path)
    assert str(raised.value).startswith(f"{path}:2: models[0].{key}: ")
    assert problem in str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tiers:\n  - {provider: openai, tier: batch, multiplier: 1e400}\n", "2: tiers[0].multiplier: must be at most"),
        (
            'tiers:\n  - {provider: openai, tier: batch, multiplier: "0_5"}\n',
            "2: tiers[0].multiplier: must be a number",
        ),
        ('discounts:\n  - {provider: openai, percent: "1_0"}\n', "2: discounts[0].percent: must be a number without"),
        ("defaults:\n  - {provider: openai, requests: {web_search: 1e400}}\n", "2: defaults[0].requests.web_search"),
    ],
)
def test_every_other_section_number_is_bounded(price_file: WriteFile, text: str, expected: str) -> None:
    path = price_file(text)
    with pytest.raises(PriceFileError, match=rf"^{path}:{expected}".replace("[", r"\[").replace("]", r"\]")):
        load_price_file(path)


def test_prices_check_reports_every_problem_in_one_run(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n"
        '  - {provider: openai, model: a, prices: {input: 1e400, output: "1_000"}}\n'  # two problems on line 2
        "  - {provider: openai, model: b, prices: {input: 1}}\n"  # fine
        "  - {provider: openai, model: c, tier: premium, prices: {input: 1}}\n"
        "discounts:\n"
        "  - {provider: openai, percent: 120}\n"
        "tiers:\n"
        "  - {provider: openai, tier: batch, multiplier: lots}\n"
    )
    result = CliRunner().invoke(main, ["prices", "check", str(path)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines == [
        f"{path}:2: models[0].prices.input: must be at most 1,000,000, got '1e400'",
        f"{path}:2: models[0].prices.output: must be a number without underscores, got '1_000'",
        f"{path}:4: models[2].tier: expected one of standard, batch, flex, priority, got 'premium'",
        f"{path}:6: discounts[0].percent: expected a percentage between 0 and 100, got '120'",
        f"{path}:8: tiers[0].multiplier: expected a non-negative number, got 'lots'",
        f"{path}: 5 problems",
    ]
    assert result.stdout == ""


def test_a_yaml_number_may_group_its_digits(price_file: WriteFile) -> None:
    """A plain 1_000 is the YAML integer 1000 (YAML 1.1); only the quoted string "1_000" is not a number."""
    path = price_file("models:\n  - {provider: openai, model: m, prices: {input: 1_000.5}, long_context: "
                      "{threshold: 200_000, prices: {input: 2_000}}}\n")  # fmt: skip
    (entry,) = load_price_file(path).models
    assert (str(entry.prices["input"]), entry.long_context and entry.long_context.threshold) == ("1000.5", 200000)


def test_the_shipped_catalog_is_within_the_bounds() -> None:
    catalog = Path(__file__).parents[2] / "src/otel_ai_cost/pricing/data/catalog.yaml"
    assert load_price_file(catalog, source="catalog").models


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["-m", "whisper-1", "--audio-seconds", "1e400"], "must be at most"),
        (["-m", "whisper-1", "--audio-seconds", "nan"], "must be a finite number"),
        (["-m", "whisper-1", "--audio-seconds", "inf"], "must be a finite number"),
        (["-m", "whisper-1", "--audio-seconds", "1_0"], "without underscores"),
        (["-m", "gpt-4o", "--input", str(10**30)], "is not in the range"),
        (["-m", "gpt-4o", "--web-search", str(10**30)], "is not in the range"),
    ],
)
def test_prices_cost_bounds_its_numbers(args: list[str], problem: str) -> None:
    result = CliRunner().invoke(main, ["prices", "cost", *args])
    assert result.exit_code == 2 and problem in result.output, result.output
    assert "Infinity" not in result.output


def test_prices_cost_reads_audio_seconds_exactly() -> None:
    result = CliRunner().invoke(main, ["prices", "cost", "-m", "whisper-1", "--audio-seconds", "0.1", "--json"])
    assert result.exit_code == 0, result.output
    assert '"amount": "0.00001"' in result.output
