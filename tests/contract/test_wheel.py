"""The wheel the README tells people to build: it holds every module and every data file the code reads, and its
entry points, and it works installed on its own (outside this checkout).

Built with `python -m build --wheel --no-isolation` (the `test` extra brings `build` and `hatchling`, so no package
index is needed), installed with `--no-deps --no-index` into a fresh virtual environment that sees this
environment's dependencies but not the editable checkout first.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
import venv
import zipfile
from importlib.metadata import distribution
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "otel_ai_cost"


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out, ROOT, cwd=ROOT)
    (built,) = out.glob("otel_ai_cost-*.whl")
    return built


def _package_files() -> list[str]:
    """Every file of the package as the wheel must hold it (`otel_ai_cost/...`), caches aside."""
    return sorted(
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    )


def test_the_wheel_holds_every_module_and_data_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = _package_files()
    assert "otel_ai_cost/pricing/data/catalog.yaml" in expected
    assert [name for name in expected if name not in names] == []


def test_the_wheel_declares_every_entry_point_of_pyproject(wheel: Path) -> None:
    """The same entry points as this checkout's own (editable) install, which pip read from pyproject.toml."""
    expected: dict[str, dict[str, str]] = {}
    for ep in distribution("otel-ai-cost").entry_points:
        expected.setdefault(ep.group, {})[ep.name] = ep.value
    with zipfile.ZipFile(wheel) as archive:
        (entry_file,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        declared = configparser.ConfigParser(delimiters=("=",))
        declared.optionxform = str  # type: ignore[assignment,method-assign]  # names are case-sensitive
        declared.read_string(archive.read(entry_file).decode("utf-8"))
    assert {"console_scripts", "opentelemetry_instrumentor", "opentelemetry_resource_detector"} <= set(expected)
    assert {group: dict(declared[group]) for group in declared.sections()} == expected


def test_the_installed_wheel_runs_from_its_own_files(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel)
    located = _run(python, "-c", "import otel_ai_cost; print(otel_ai_cost.__file__)", cwd=tmp_path)
    assert Path(located.strip()).is_relative_to(env_dir), located  # the wheel's copy, not the checkout's
    # The console script, reading the packaged price catalog (a data file), and the instrumentor entry points.
    shown = _run(env_dir / "bin" / "otel-ai-cost", "prices", "show", "gpt-4o-mini", cwd=tmp_path)
    assert "openai gpt-4o-mini" in shown and "catalog" in shown
    script = (
        "from importlib.metadata import entry_points\n"
        "for group in ('opentelemetry_instrumentor', 'opentelemetry_resource_detector'):\n"
        "    for ep in entry_points(group=group):\n"
        "        if ep.value.startswith('otel_ai_cost.'):\n"
        "            print(group, ep.name, ep.load().__module__.split('.')[0])\n"
    )
    loaded = _run(python, "-c", script, cwd=tmp_path).split("\n")
    assert "opentelemetry_instrumentor ai_cost_openai otel_ai_cost" in loaded
    assert "opentelemetry_resource_detector ai_cost otel_ai_cost" in loaded
