"""`otel-ai-cost ledger serve|init`: options, the token file, and a clean exit on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import requests
from click.testing import CliRunner

from otel_ai_cost.cli.ledger import ledger


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_init_creates_the_sqlite_file_and_prints_its_url(tmp_path):
    db = tmp_path / "nested" / "usage.db"
    result = CliRunner().invoke(ledger, ["init", "--ledger", f"sqlite://{db}"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"otel-ai-cost ledger: SQLite ledger ready (sqlite://{db})"
    assert "Store(" not in result.output  # the URL the user gave, never a Python repr
    assert db.exists()


def test_serve_refuses_a_bad_ledger_url_or_an_empty_token_file(tmp_path):
    bad = CliRunner().invoke(ledger, ["serve", "--ledger", "postgres://nope"])
    assert bad.exit_code != 0
    assert "cannot open the ledger" in bad.output
    empty = tmp_path / "token"
    empty.write_text("\n")
    result = CliRunner().invoke(
        ledger, ["serve", "--ledger", f"sqlite://{tmp_path / 'u.db'}", "--token-file", str(empty)]
    )
    assert result.exit_code != 0
    assert "empty" in result.output


def test_serve_with_a_token_file_then_sigterm_exits_0_without_printing_the_token(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("tok-7f3a9c\n")
    port = free_port()
    command = [sys.executable, "-m", "otel_ai_cost", "ledger", "serve", "--ledger", f"sqlite://{tmp_path / 'u.db'}"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--token-file", str(token_file), "--log-level", "debug"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.02)
        assert requests.get(f"{url}/metrics", timeout=5).status_code == 401
        authorized = requests.get(f"{url}/metrics", headers={"Authorization": "Bearer tok-7f3a9c"}, timeout=5)
        assert authorized.status_code == 200
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert f"listening on {url} (bearer token required); ledger: sqlite://{tmp_path / 'u.db'}" in output
    assert "stopped" in output
    assert "tok-7f3a9c" not in output
