"""Fixtures for the pricing tests: a fresh catalog per test, override files on disk, a clean environment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from otel_ai_cost.contract import Env
from otel_ai_cost.pricing.catalog import PriceCatalog, load_catalog, reset_default_catalog


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(Env.PRICES_FILE, raising=False)
    reset_default_catalog()
    yield
    reset_default_catalog()


@pytest.fixture
def catalog() -> PriceCatalog:
    """Shipped prices only, with its own cache and warn-once state."""
    return load_catalog()


@pytest.fixture
def price_file(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a price file: `price_file(text, name="prices.yaml")`."""

    def write(text: str, name: str = "prices.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
