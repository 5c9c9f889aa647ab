"""Which SDKs are installed and would be instrumented, and whether our entry points load.

`opentelemetry-instrument` finds our instrumentors through the `opentelemetry_instrumentor` entry points
(`ai_cost_openai`, ...) and the resource detector through `opentelemetry_resource_detector` (`ai_cost`): an entry
point that does not load is an instrumentor that silently never runs, so each one is loaded here.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points

from otel_ai_cost.contract import Env
from otel_ai_cost.doctor.checks import Result, Status

__all__ = ["ENTRY_POINTS", "SDKS", "TRACKING", "check_entry_points", "check_sdks", "check_tracking"]

TRACKING = "tracking"
ENTRY_POINTS = "entry-points"
SDKS = "sdks"

_INSTRUMENTOR_GROUP = "opentelemetry_instrumentor"
_DETECTOR_GROUP = "opentelemetry_resource_detector"
_PREFIX = "ai_cost"  # our entry points' names: ai_cost_openai, ..., and the detector `ai_cost`


def _ours(group: str) -> list[object]:
    return sorted((ep for ep in entry_points(group=group) if ep.name.startswith(_PREFIX)), key=lambda ep: ep.name)


def check_tracking() -> Result:
    """`TRACK_AI_USAGE` (the legacy tracker's switch): `false` turns every instrumentor into a no-op."""
    from otel_ai_cost.ledger.jsonl_file_store import read_switch

    raw = os.environ.get(Env.TRACK_AI_USAGE)
    try:
        on = read_switch(Env.TRACK_AI_USAGE, default=True)
    except ValueError as exc:
        return Result(
            TRACKING, Status.FAIL, f"{exc}: tracking is off", fix=f"set {Env.TRACK_AI_USAGE}=true (or unset it)"
        )
    if not on:
        return Result(
            TRACKING,
            Status.FAIL,
            f"{Env.TRACK_AI_USAGE}={raw}: nothing is instrumented, no call recorded",
            fix=f"unset {Env.TRACK_AI_USAGE} (or set it to true)",
        )
    where = f"{Env.TRACK_AI_USAGE}={raw}" if raw else f"{Env.TRACK_AI_USAGE} unset"
    return Result(TRACKING, Status.OK, f"tracking is on ({where})")


def check_entry_points() -> Result:
    """Loads each of our instrumentor entry points and the resource detector's."""
    found = _ours(_INSTRUMENTOR_GROUP) + _ours(_DETECTOR_GROUP)
    if not found:
        return Result(
            ENTRY_POINTS,
            Status.FAIL,
            "no otel-ai-cost entry points are registered",
            fix="install the package (pip install '/path/to/otel-ai-cost[all]'), not only put it on "
            "PYTHONPATH: opentelemetry-instrument finds instrumentors through installed entry points",
        )
    details, broken = [], []
    for ep in found:
        try:
            ep.load()  # type: ignore[attr-defined]
        except Exception as exc:
            broken.append(ep.name)  # type: ignore[attr-defined]
            details.append(f"{ep.group} {ep.name} = {ep.value}: does not load: {type(exc).__name__}: {exc}")  # type: ignore[attr-defined]
        else:
            details.append(f"{ep.group} {ep.name} = {ep.value}: loads")  # type: ignore[attr-defined]
    if broken:
        return Result(
            ENTRY_POINTS,
            Status.FAIL,
            f"entry points that do not load: {', '.join(broken)}",
            fix="reinstall otel-ai-cost in this environment (pip install --force-reinstall ...); the "
            "error above says which import failed",
            details=tuple(details),
        )
    return Result(ENTRY_POINTS, Status.OK, f"{len(found)} entry points load", details=tuple(details))


def _disabled() -> set[str]:
    raw = os.environ.get(Env.OTEL_DISABLED_INSTRUMENTATIONS, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def check_sdks() -> Result:
    """For each instrumentor: is its SDK installed (at a supported version), and is it switched off?"""
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

    disabled = _disabled()
    details, active = [], []
    for ep in _ours(_INSTRUMENTOR_GROUP):
        name = ep.name  # type: ignore[attr-defined]
        try:
            dependencies = list(ep.load()().instrumentation_dependencies())  # type: ignore[attr-defined]
        except Exception:
            details.append(f"{name}: its entry point does not load (see {ENTRY_POINTS})")
            continue
        conflict = get_dependency_conflicts(dependencies)
        wanted = ", ".join(dependencies) or "no SDK"
        if conflict is not None:
            details.append(f"{name}: not instrumented: {conflict} (needs {wanted})")
        elif name in disabled:
            details.append(f"{name}: installed ({wanted}), disabled by {Env.OTEL_DISABLED_INSTRUMENTATIONS}")
        else:
            active.append(name)
            details.append(f"{name}: installed ({wanted}), instrumented")
    if not active:
        return Result(
            SDKS,
            Status.WARN,
            "no supported SDK would be instrumented",
            fix=f"install the SDK your code calls (pip install openai / anthropic / boto3 / google-genai "
            f"/ googlemaps) in this environment, and check {Env.OTEL_DISABLED_INSTRUMENTATIONS}",
            details=tuple(details),
        )
    return Result(SDKS, Status.OK, f"instrumented: {', '.join(active)}", details=tuple(details))
