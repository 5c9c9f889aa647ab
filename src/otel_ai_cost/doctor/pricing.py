"""The price catalog in force, and whether the override file (`OTEL_AI_COST_PRICES_FILE`) is valid.

At run time a bad override file is logged once and ignored (`pricing.catalog.default_catalog`): the calls are then
priced from the shipped catalog alone, which is rarely what was meant. Here it is a failure, with every problem
the file has (the same validation as `otel-ai-cost prices check FILE`).
"""

from __future__ import annotations

import os

from otel_ai_cost.contract import Env
from otel_ai_cost.doctor.checks import Result, Status

__all__ = ["PRICES_CATALOG", "PRICES_OVERRIDE", "check_catalog", "check_override"]

PRICES_CATALOG = "prices.catalog"
PRICES_OVERRIDE = "prices.override"


def check_catalog() -> Result:
    """The shipped catalog loads; its version (what `ai_cost.pricing.version` says, before overrides)."""
    from otel_ai_cost.pricing.catalog import load_catalog
    from otel_ai_cost.pricing.price_file import PriceFileError

    try:
        catalog = load_catalog(None)
    except PriceFileError as exc:  # the shipped file itself: a broken install
        return Result(
            PRICES_CATALOG, Status.FAIL, f"the shipped catalog does not load: {exc}", fix="reinstall otel-ai-cost"
        )
    return Result(PRICES_CATALOG, Status.OK, f"catalog version {catalog.version}")


def check_override() -> Result:
    """`OTEL_AI_COST_PRICES_FILE`, when set: readable and valid; the catalog version with it."""
    from otel_ai_cost.pricing.catalog import load_catalog
    from otel_ai_cost.pricing.price_file import PriceFileError

    path = os.environ.get(Env.PRICES_FILE, "").strip()
    if not path:
        return Result(PRICES_OVERRIDE, Status.SKIP, f"no override file ({Env.PRICES_FILE} unset)")
    try:
        catalog = load_catalog(path)
    except PriceFileError as exc:
        problems = tuple(str(exc).splitlines())
        return Result(
            PRICES_OVERRIDE,
            Status.FAIL,
            f"{Env.PRICES_FILE}={path} is not a valid price file: it is ignored at run time",
            fix=f"correct the problems listed (otel-ai-cost prices check {path} lists them), or unset "
            f"{Env.PRICES_FILE}",
            details=problems,
        )
    overrides = catalog.files[-1]
    return Result(
        PRICES_OVERRIDE,
        Status.OK,
        f"{path}: valid ({len(overrides.models)} models, {len(overrides.discounts)} discounts); "
        f"version {catalog.version}",
    )
