"""The shipped ledger service never listens beyond loopback without a token (issue 10, item 16).

Neither the compose stack's `ledger` service nor the ledger image's default command (`docker run` without compose)
may start an open service: each `serve` on a non-loopback address names a token file, the image's default is the
file compose mounts, and without that file the command refuses to start instead of serving everyone. The
collector's exporter and Prometheus authenticate with the same file (tests/deploy/test_deploy_compose.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from otel_ai_cost.ledger.service.access import open_binding_warning

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "ledger.Dockerfile"


def _image_command() -> list[str]:
    """The ledger image's ENTRYPOINT + CMD (exec form), as `docker run` without arguments runs them."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    (entrypoint,) = re.findall(r"^ENTRYPOINT (\[.*\])$", text, flags=re.M)
    (cmd,) = re.findall(r"^CMD (\[.*\])$", text, flags=re.M)
    return [*json.loads(entrypoint), *json.loads(cmd)]


def _compose_serve_commands() -> dict[str, list[str]]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    return {name: s["command"] for name, s in services.items() if s.get("command", [None])[0] == "serve"}


def _option(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


def _is_open(serve_args: list[str]) -> bool:
    token = _option(serve_args, "--token-file") or _option(serve_args, "--tokens-file")
    return open_binding_warning(_option(serve_args, "--host") or "127.0.0.1", token is not None) is not None


def test_every_shipped_serve_command_has_a_token() -> None:
    commands = {"deploy/ledger.Dockerfile": _image_command()[2:], **_compose_serve_commands()}
    assert "ledger" in commands  # the compose service is found (the check cannot pass vacuously)
    assert {name: args for name, args in commands.items() if _is_open(args)} == {}


def test_the_image_default_reads_the_token_where_compose_mounts_it() -> None:
    image = _option(_image_command(), "--token-file")
    assert image == _option(_compose_serve_commands()["ledger"], "--token-file")


def test_the_image_default_without_its_token_file_refuses_to_start() -> None:
    entrypoint = _image_command()
    assert entrypoint[:2] == ["otel-ai-cost", "ledger"] and not Path(_option(entrypoint, "--token-file")).exists()
    cli = [sys.executable, "-c", "from otel_ai_cost.cli import main; main()"]
    result = subprocess.run([*cli, *entrypoint[1:]], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr  # a usage error: nothing listened
    assert "--token-file" in result.stderr and "does not exist" in result.stderr
    assert "listening on" not in result.stdout
