"""Alertmanager's channel secrets in docker-compose.yml: every `*_file` setting of alerts/alertmanager.yml is
provided by a compose secret (or mount), every secret's default file is a committed placeholder, and the real
files are git-ignored. No Docker engine here: the compose file is checked, not run."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_PATH = ROOT / "docker-compose.yml"
ALERTMANAGER_PATH = ROOT / "alerts" / "alertmanager.yml"
SECRETS_DIR = ROOT / "deploy" / "secrets"
ALERTMANAGER_CONFIG_TARGET = "/etc/alertmanager/alertmanager.yml"

# `${NAME:-default}`: the only interpolation the secrets use (compose resolves relative paths against the project).
VARIABLE = re.compile(r"^\$\{(?P<name>[A-Z][A-Z0-9_]*):-(?P<default>[^}]+)\}$")
# The compose specification's keys for a top-level secret and for a service's long-syntax secret.
SECRET_KEYS = {"file", "environment", "external", "name", "labels", "driver", "driver_opts", "template_driver"}
SERVICE_SECRET_KEYS = {"source", "target", "uid", "gid", "mode"}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE_PATH)


@pytest.fixture(scope="module")
def alertmanager_config() -> dict[str, Any]:
    return load(ALERTMANAGER_PATH)


def default_file(spec: str) -> tuple[str | None, str]:
    """`${VAR:-./x}` -> ("VAR", "./x"); a plain path -> (None, path)."""
    match = VARIABLE.match(spec)
    if match:
        return match["name"], match["default"]
    assert "$" not in spec, f"unsupported interpolation in {spec!r}"
    return None, spec


def file_settings(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(where, path) of every `*_file` setting (slack_api_url_file, credentials_file, ca_file, ...) in a config."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if str(key).endswith("_file") and isinstance(value, str):
                yield here, value
            else:
                yield from file_settings(value, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from file_settings(item, f"{where}[{index}]")


def git_ignored(path: Path) -> bool:
    git = shutil.which("git")
    assert git, "git is needed to check what is ignored"
    done = subprocess.run([git, "check-ignore", "-q", str(path)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 0


def alertmanager_files(compose: dict[str, Any]) -> dict[str, Path]:
    """{path in the Alertmanager container: the repository file compose puts there by default}."""
    service = compose["services"]["alertmanager"]
    files = {}
    for entry in service.get("secrets", []):
        _, path = default_file(compose["secrets"][entry["source"]]["file"])
        files[entry["target"]] = ROOT / path
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            files[target] = ROOT / source
    return files


def test_secrets_are_declared_as_files(compose: dict[str, Any]) -> None:
    secrets = compose.get("secrets")
    assert secrets, "docker-compose.yml declares no secrets"
    for name, spec in secrets.items():
        assert set(spec) <= SECRET_KEYS, f"{name}: unknown keys {set(spec) - SECRET_KEYS}"
        assert set(spec) == {"file"}, f"{name}: expected a file secret, got {spec}"
        variable, _ = default_file(spec["file"])
        assert variable, f"{name}: name the real file with a ${{VARIABLE:-default}} so it can live outside the repo"


def test_every_service_secret_is_declared_and_every_declared_secret_used(compose: dict[str, Any]) -> None:
    declared = set(compose["secrets"])
    used = set()
    for name, service in compose["services"].items():
        for entry in service.get("secrets", []):
            assert isinstance(entry, dict), f"{name}: use the long syntax (source, target) for {entry!r}"
            assert set(entry) <= SERVICE_SECRET_KEYS, f"{name}: unknown keys {set(entry) - SERVICE_SECRET_KEYS}"
            assert entry["source"] in declared, f"{name}: secret {entry['source']} is not declared"
            assert PurePosixPath(entry["target"]).is_absolute(), f"{name}: {entry['target']} is not absolute"
            used.add(entry["source"])
    assert used == declared, f"declared but unused: {declared - used}"


def test_every_secret_default_is_a_committed_placeholder(compose: dict[str, Any]) -> None:
    """`docker compose up` on a fresh clone needs every file to exist; the placeholders are committed, the real
    files beside them (same name without .example) are git-ignored."""
    for name, spec in compose["secrets"].items():
        _, path = default_file(spec["file"])
        example = ROOT / path
        assert example.is_file(), f"{name}: {path} does not exist"
        assert example.parent == SECRETS_DIR and example.suffix == ".example", f"{name}: {path}"
        assert not git_ignored(example), f"{path} is git-ignored: the placeholder must be committed"
        real = example.with_suffix("")
        assert git_ignored(real), f"{real.relative_to(ROOT)} (the real secret) is not git-ignored"
    assert git_ignored(ROOT / ".env"), ".env (where the variables and GRAFANA_ADMIN_PASSWORD go) is not git-ignored"
    assert not git_ignored(SECRETS_DIR / "README.md")


def test_placeholders_are_one_value_without_a_newline_and_lead_nowhere(compose: dict[str, Any]) -> None:
    """Alertmanager reads each file as the value itself (a trailing newline would end up in the SMTP password)."""
    for spec in compose["secrets"].values():
        _, path = default_file(spec["file"])
        text = (ROOT / path).read_text(encoding="utf-8")
        assert text and text == text.strip() and "\n" not in text, f"{path}: one value, no trailing newline"
    slack = compose["secrets"]["alertmanager-slack-webhook-url"]
    url = urlsplit((ROOT / default_file(slack["file"])[1]).read_text(encoding="utf-8"))
    assert url.scheme == "https" and url.path.startswith("/services/"), url
    # `.invalid` never resolves (RFC 2606): the placeholder cannot post alerts anywhere.
    assert (url.hostname or "").endswith(".invalid"), url


def test_every_file_alertmanager_reads_is_provided(compose: dict[str, Any], alertmanager_config: dict) -> None:
    files = alertmanager_files(compose)
    assert files[ALERTMANAGER_CONFIG_TARGET] == ALERTMANAGER_PATH
    settings = list(file_settings(alertmanager_config))
    assert {where for where, _ in settings} >= {"global.slack_api_url_file", "global.smtp_auth_password_file"}
    for where, path in settings:
        assert path in files, f"alerts/alertmanager.yml {where}: {path} is not mounted in the alertmanager service"
        assert files[path].is_file(), f"{where}: {files[path]} does not exist"
    # Nothing mounted for nothing: every secret of the service is read by the config.
    secret_targets = {entry["target"] for entry in compose["services"]["alertmanager"]["secrets"]}
    assert secret_targets <= {path for _, path in settings}


def test_amtool_accepts_the_config_with_the_compose_files_in_place(compose: dict[str, Any], tmp_path: Path) -> None:
    """The shipped config, its /etc/alertmanager paths moved under tmp with the files compose mounts there."""
    amtool = shutil.which("amtool")
    assert amtool, "amtool is not installed (apt-get install -y prometheus-alertmanager)"
    text = ALERTMANAGER_PATH.read_text(encoding="utf-8")
    for target, source in alertmanager_files(compose).items():
        if target == ALERTMANAGER_CONFIG_TARGET:
            continue
        moved = tmp_path / target.lstrip("/")
        moved.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, moved)
        text = text.replace(target, str(moved))
    unmoved = [where for where, path in file_settings(yaml.safe_load(text)) if not path.startswith(str(tmp_path))]
    assert not unmoved, f"not provided by compose: {unmoved}"
    config = tmp_path / "alertmanager.yml"
    config.write_text(text, encoding="utf-8")
    done = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
